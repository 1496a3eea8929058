"""The emulator's control commands: fault injection and time, one line each on stdin.

Typed in the terminal running ``pumpguard emulate``, or sent by ``Emulator.command()``;
each gets one line back on stdout, ``ok ...`` or ``error ...``, in the order they came:
one sent while an ``advance`` runs is answered after it. ``CONTROL_HELP`` lists them.
Lines that arrive before the port is printed wait for it (the port is the first line).
A command with an argument it does not take is answered with an error saying what it
takes, and changes nothing.

The owner: stdin a pipe (``Emulator``, a script's ``|``) that reaches its end means the
process that held it is gone, and the emulator quits as on ``quit``; stdin a terminal
or a file (``</dev/null``) at its end only means no more commands (a terminal that goes
away hangs the emulator up, SIGHUP, and it quits as on SIGTERM unless started with
``nohup``). Run as a background job, the
emulator reads its terminal only while in the foreground (``fg``), so the shell keeps
its input.
"""

import errno
import json
import os
import re
import stat
import sys
from decimal import Decimal

from ..errors import EmulatorError

# The longest one advance may fast-forward: a day takes the firmware 86,400 loop turns
# (seconds to minutes of real time); longer is several commands, each answered.
MAX_ADVANCE_S = 86_400

CONTROL_HELP = f"""\
control commands on stdin (one per line; each answers "ok ..." or "error ...", in order):
  occlusion CH      occlusion on channel CH (flow stops, the firmware alarms)
  air CH            air in line on channel CH
  empty CH          the syringe on channel CH pushed to its end
  clear CH          clear an occlusion or air in line
  refill CH         a full syringe on channel CH again
  load CH ML        a syringe holding ML mL on channel CH (the smallest size the board
                    takes that holds it), kept by the next start whatever it programs
  silence on|off    the link carries nothing either way (host-link loss)
  advance SECONDS   fast-forward the virtual clock by 0 to {MAX_ADVANCE_S} s (to the ms),
                    stepping the firmware at most one virtual second per loop turn;
                    the reply comes once the time has passed
  pumps             the syringe models as one JSON line
  factory-reset     a new board on the same port: the state dir emptied, full
                    syringes, the clock from its start; the reply comes once the new
                    boot answers on the link
  quit              stop the emulator (SIGTERM too; so does the end of a piped stdin)
channels CH are numbered from 1; power loss: SIGKILL the emulator, start it again with
the same --state-dir
in the background (`pumpguard emulate &`) the terminal is read only once in the
foreground again (`fg`); the emulator goes on serving its port meanwhile
"""


_FAULTS = {"occlusion": "occlusion", "air": "air_in_line", "empty": "syringe_empty"}
_CHANNEL = re.compile(r"[0-9]+", re.ASCII)
_SECONDS = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", re.ASCII)


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
        self.resetting = False  # factory-reset asked: the board acts on it (server.py)
        self._ready = False  # the port is printed: lines may be answered
        self._deferred = None  # reply to send once a fast-forward or reset is done

    def ready(self, url):
        """The firmware answers on ``url``: print it, the first line, and start
        answering the commands (those already sent first)."""
        self._reply(url)
        self._ready = True
        self.poll()

    def reset_done(self):
        self.resetting = False

    def poll(self):
        """Send the reply of a finished fast-forward or reset, then answer the lines
        that waited for it."""
        if not self._ready:
            return
        if self._deferred:
            if self._clock.fast_forwarding() or self.resetting:
                return
            self._reply(self._deferred)
            self._deferred = None
        while b"\n" in self._buf and not self._deferred and not self.quit:
            line, self._buf = self._buf.split(b"\n", 1)
            if line.strip():
                reply = self._apply(line.decode(errors="replace").split())
                if self.resetting or self._clock.fast_forwarding():
                    self._deferred = reply
                else:
                    self._reply(reply)

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
            self.fd = None  # no more commands
            mode = os.fstat(fd).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                # The owner is gone (or done): a quit after the whole lines it sent.
                print("emulator: stdin closed: its owner is gone, quitting", file=sys.stderr)
                self._buf = self._buf[: self._buf.rfind(b"\n") + 1] + b"quit\n"
        else:
            self._buf += data
        self.poll()

    def _reply(self, text):
        try:
            self._out.write(text + "\n")
            self._out.flush()
        except BrokenPipeError:
            # Nobody reads the replies: the owner is gone. Quit, and let what is still
            # buffered for the dead pipe go to /dev/null at exit instead of failing.
            self.quit = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._out.fileno())

    def _pump(self, cmd, arg):
        n = int(arg) if _CHANNEL.fullmatch(arg) else 0
        if not 1 <= n <= len(self._pumps):  # never -1: "0" is no channel, not the last one
            raise EmulatorError(
                f"{cmd}: no channel {arg!r}: CH is a channel from 1 to {len(self._pumps)}"
            )
        return self._pumps[n - 1]

    @staticmethod
    def _milliseconds(arg):
        # Digits only: no sign (time only goes forward), no inf or nan, no exponent.
        seconds = Decimal(arg) if _SECONDS.fullmatch(arg) else None
        if seconds is None or seconds > MAX_ADVANCE_S:
            raise EmulatorError(
                f"advance: {arg!r} is not a number of seconds from 0 to {MAX_ADVANCE_S} "
                "(one day per command)"
            )
        return int(seconds * 1000)

    @staticmethod
    def _micro_ml(arg):
        # mL to the microlitre, digits only: the firmware's volumes are millionths of mL
        # (which volumes a syringe holds is the pump's to say: SyringePump.fill()).
        micro = Decimal(arg) * 1_000_000 if _SECONDS.fullmatch(arg) else None
        if micro is None or micro != int(micro):  # (a quantize() of 10**40 would raise)
            raise EmulatorError(f"load: {arg!r} is not a volume in mL, to the microlitre")
        return int(micro)

    def _apply(self, words):
        try:
            return self._run(words[0], words[1:])
        except (EmulatorError, ValueError) as exc:
            return f"error {exc}; nothing changed"

    def _run(self, cmd, args):
        if cmd in _FAULTS or cmd in ("clear", "refill"):
            if len(args) != 1:
                raise EmulatorError(f"{cmd} takes one channel: {cmd} CH")
            pump = self._pump(cmd, args[0])
            if cmd in _FAULTS:
                pump.inject(_FAULTS[cmd])
            elif cmd == "clear":
                pump.clear()
            else:
                pump.refill()
        elif cmd == "load":
            if len(args) != 2:
                raise EmulatorError("load takes a channel and a volume: load CH ML")
            self._pump(cmd, args[0]).fill(self._micro_ml(args[1]))
        elif cmd == "silence":
            if args not in (["on"], ["off"]):
                raise EmulatorError("silence takes on or off: silence on|off")
            self._link.silent = args[0] == "on"
        elif cmd == "advance":
            if len(args) != 1:
                raise EmulatorError("advance takes one number of seconds: advance SECONDS")
            self._clock.advance(self._milliseconds(args[0]))
        elif cmd in ("pumps", "factory-reset", "quit"):
            if args:
                raise EmulatorError(f"{cmd} takes no argument")
            if cmd == "pumps":
                return json.dumps(
                    [
                        {
                            "rate": p.rate,
                            "left": p.held,
                            "syringe": p.capacity,
                            "pumped": p.pumped,
                            "fault": p.fault_kind,
                        }
                        for p in self._pumps
                    ]
                )
            if cmd == "quit":
                self.quit = True
            else:
                self.resetting = True
        else:
            raise EmulatorError(f"unknown command {' '.join([cmd, *args])!r} (see --help)")
        return "ok " + " ".join([cmd, *args])
