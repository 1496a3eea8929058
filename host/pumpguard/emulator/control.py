"""The emulator's control commands: fault injection and time, one line each on stdin.

Typed in the terminal running ``pumpguard emulate``, or sent by ``Emulator.command()``;
each gets one line back on stdout, ``ok ...`` or ``error ...``. ``CONTROL_HELP`` lists
them. Run as a background job, the emulator reads its terminal only while in the
foreground (``fg``), so the shell keeps its input.
"""

import errno
import json
import os

from ..errors import EmulatorError

CONTROL_HELP = """\
control commands on stdin (one per line; each answers "ok ..." or "error ..."):
  occlusion CH      occlusion on channel CH (flow stops, the firmware alarms)
  air CH            air in line on channel CH
  empty CH          the syringe on channel CH pushed to its end
  clear CH          clear an occlusion or air in line
  refill CH         a full syringe on channel CH again
  silence on|off    the link carries nothing either way (host-link loss)
  advance SECONDS   fast-forward the virtual clock, stepping the firmware one virtual
                    second per loop turn; the reply comes once the time has passed
  pumps             the syringe models as one JSON line
  quit              stop the emulator (SIGTERM too)
power loss: SIGKILL the emulator, start it again with the same --state-dir
in the background (`pumpguard emulate &`) the terminal is read only once in the
foreground again (`fg`); the emulator goes on serving its port meanwhile
"""


_FAULTS = {"occlusion": "occlusion", "air": "air_in_line", "empty": "syringe_empty"}


class Control:
    """Reads control commands from stdin and applies them to the emulated hardware."""

    def __init__(self, clock, link, pumps, out):
        self._clock = clock
        self._link = link
        self._pumps = pumps
        self._out = out
        self._buf = b""
        self.fd = 0
        self.quit = False
        self._deferred = None  # reply to send once a fast-forward is done

    def poll(self):
        """Send the reply of a finished fast-forward."""
        if self._deferred and not self._clock.fast_forwarding():
            self._reply(self._deferred)
            self._deferred = None

    def listening(self):
        """Whether to read stdin now: not once closed, nor from a terminal whose
        foreground is another process group (a background job: the shell's input)."""
        if self.fd is None:
            return False
        if not os.isatty(self.fd):
            return True
        try:
            return os.tcgetpgrp(self.fd) == os.getpgrp()
        except OSError:  # no controlling terminal any more
            return False

    def read(self, fd):
        try:
            data = os.read(fd, 4096)
        except OSError as exc:
            # EIO: sent to the background between select() and read(); SIGTTIN is
            # ignored (serve()), so the read fails instead of stopping the emulator.
            if exc.errno == errno.EIO:
                return
            raise
        if not data:
            self.fd = None  # stdin closed (</dev/null): no more commands
            return
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            if line.strip():
                reply = self._apply(line.decode(errors="replace").split())
                if self._clock.fast_forwarding() and reply.startswith("ok advance"):
                    self._deferred = reply
                else:
                    self._reply(reply)

    def _reply(self, text):
        self._out.write(text + "\n")
        self._out.flush()

    def _pump(self, arg):
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if not 1 <= n <= len(self._pumps):  # never -1: "0" is no channel, not the last one
            raise EmulatorError(f"no channel {arg!r} (1..{len(self._pumps)})")
        return self._pumps[n - 1]

    @staticmethod
    def _seconds(arg):
        try:
            seconds = float(arg)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds < 1e9:  # nan and inf fail this too: time only goes forward
            raise EmulatorError(f"advance takes seconds from 0 (below 1e9), not {arg!r}")
        return int(seconds * 1000)

    def _apply(self, words):
        cmd, args = words[0], words[1:]
        try:
            if cmd in _FAULTS and len(args) == 1:
                self._pump(args[0]).inject(_FAULTS[cmd])
            elif cmd == "clear" and len(args) == 1:
                self._pump(args[0]).clear()
            elif cmd == "refill" and len(args) == 1:
                self._pump(args[0]).refill()
            elif cmd == "silence" and args in (["on"], ["off"]):
                self._link.silent = args[0] == "on"
            elif cmd == "advance" and len(args) == 1:
                self._clock.advance(self._seconds(args[0]))
            elif cmd == "pumps" and not args:
                return json.dumps(
                    [
                        {"rate": p.rate, "left": p.left, "pumped": p.pumped, "fault": p.fault_kind}
                        for p in self._pumps
                    ]
                )
            elif cmd == "quit" and not args:
                self.quit = True
            else:
                raise EmulatorError(f"unknown command {' '.join(words)!r}")
        except (EmulatorError, ValueError) as exc:
            return f"error {exc}"
        return "ok " + " ".join(words)
