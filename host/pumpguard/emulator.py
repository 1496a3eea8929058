"""The emulator: the unchanged firmware shell on emulated hardware, in its own process.

``pumpguard emulate`` (or ``pumpguard.Emulator`` from Python) runs ``firmware/main.py``
with the ports of ``pumpguard.emuports``: a PTY (or a TCP server) for the protocol link,
a virtual clock running ``--time-scale`` times real time, one syringe model per channel
and a directory as the store. The first line on stdout is the port to open: a PTY path
such as ``/dev/pts/5``, or ``socket://127.0.0.1:PORT`` with ``--tcp``.

Fault injection, while it runs: one command per line on the emulator's stdin (type it
in the terminal running ``pumpguard emulate``, or call ``Emulator.command()``); each
gets one line back on stdout, ``ok ...`` or ``error ...``. ``CONTROL_HELP`` lists them.
Run as a background job (``pumpguard emulate &``), it leaves the terminal to the
shell: it reads the terminal only while in the foreground (``fg``) and never stops
for it (SIGTTIN ignored), so it goes on serving the link.

The emulated syringe: each channel's holds the board's ``SYRINGE_ML`` (50 mL on
``emulator``) at power-on and after ``refill CH``, whatever volume the start command
entered: like a real pump, the firmware cannot measure the syringe; its volume left is
computed from the volume the clinician entered. ``pumps`` shows the emulated one.

Power loss: kill the process with SIGKILL and start it again with the same
``--state-dir``; the firmware restores its channels from the store
(``Emulator.power_cycle()`` does both). A watchdog the firmware stops feeding resets
the emulated board the same way, without killing the process; firmware that dies (a
store it cannot write) leaves it unfed, so it resets the board too. One emulator per
state directory: a second one on it refuses to start (``emulator.lock``). SIGTERM stops it as
``quit`` does; either removes the state directory it made itself (never one given
with ``--state-dir``).

Runtimes: ``cpython`` (default) imports the firmware's sources into this process;
``micropython`` runs the board's compiled bundle on the real MicroPython interpreter
(``pumpguard.mpruntime``). The ports, and so everything the host sees, are the same.

Safe boot: a file named ``safeboot`` in the state directory makes the next boot leave
the pump loop unstarted, as on a board (``firmware/main.py``): the emulated board then
sits at its REPL, answering nothing on the link, until quit or power loss.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

from . import emuports
from .errors import UsageError

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


def syringe_help(spec):
    """What `emulate --help` says about the board's emulated syringe."""
    return (
        f"the emulated syringe holds {spec.SYRINGE_ML // 1_000_000} mL (board {spec.NAME}'s "
        "SYRINGE_ML) at power-on and after\n`refill CH`, whatever --volume the start "
        "command entered; the firmware's volume left\nis computed from that entered "
        "--volume\n"
    )


_FAULTS = {"occlusion": "occlusion", "air": "air_in_line", "empty": "syringe_empty"}
RUNTIMES = ("cpython", "micropython")
# Virtual ticks start this far before MicroPython's 2**30 wrap, so every emulated run
# crosses it within seconds and the firmware's non-wrapping uptime is always exercised.
_START_BEFORE_WRAP_MS = 5_000


class EmulatorError(Exception):
    """The emulator process did not start, or a control command failed."""


class _Control:
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
            return self._pumps[int(arg) - 1]
        except (ValueError, IndexError):
            raise EmulatorError(f"no channel {arg!r} (1..{len(self._pumps)})") from None

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
                self._clock.advance(int(float(args[0]) * 1000))
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


class _Quit(Exception):
    pass


def _runner(runtime):
    """run(board, ports, boot_id) for the runtime: returns only on a safe boot."""
    if runtime == "micropython":
        from .mpruntime import run

        return run
    from firmware import main as firmware_main

    return firmware_main.run


def _lock_store(state_dir):
    """An exclusive lock on the state dir, held while the returned file stays open."""
    os.makedirs(state_dir, exist_ok=True)
    lock = open(os.path.join(state_dir, "emulator.lock"), "w")  # noqa: SIM115 (held open: the lock)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        # A PumpguardError: `pumpguard emulate` prints it as one line and exits.
        raise UsageError(
            f"state dir {state_dir} is in use by another emulator (one board per store)"
        ) from None
    return lock


def serve(board="emulator", time_scale=1, state_dir=None, tcp=None, out=None, runtime="cpython"):
    """Run the firmware on emulated ports until ``quit`` (blocking).

    Prints the port to open as the first line on ``out`` (stdout). ``state_dir`` is
    the store (a fresh temporary directory when None); ``tcp`` a TCP port number to
    serve ``socket://`` on instead of a PTY (0 picks a free one); ``runtime`` one of
    ``RUNTIMES``.
    """
    import boards
    from firmware.filestore import FileStore

    out = out or sys.stdout
    spec = boards.get(board)
    clock = emuports.VirtualClock(time_scale, start=(1 << 30) - _START_BEFORE_WRAP_MS)
    link = emuports.PtyLink() if tcp is None else emuports.TcpLink(tcp)
    pumps = [emuports.SyringePump(clock, spec.SYRINGE_ML) for _ in range(spec.CHANNELS)]
    control = _Control(clock, link, pumps, out)
    made_dir = state_dir is None
    state_dir = state_dir or tempfile.mkdtemp(prefix="pumpguard-emulator-")
    # One board per store: a second emulator on the same state dir would resume the
    # first one's infusions as its own and the two would overwrite each other's record
    # (a stop on one undone by the other's next save). The lock dies with the process,
    # so a power cycle (SIGKILL, then start again) finds it free.
    lock = _lock_store(state_dir)
    run = _runner(runtime)
    watchdog = None

    def terminate(_signum, _frame):
        control.quit = True  # handled at the next idle(), outside the firmware's code

    signal.signal(signal.SIGTERM, terminate)
    # A background job using its terminal is stopped by SIGTTIN (reading it) or, with
    # `stty tostop`, SIGTTOU (writing the port line): never stop for either.
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)

    def idle(timeout):
        fd = control.fd if control.listening() else None
        ready = emuports.wait_readable([link] if fd is None else [link, fd], timeout)
        if fd is not None and fd in ready:
            control.read(fd)
        control.poll()
        if control.quit:
            raise _Quit
        if watchdog:
            watchdog.check()

    clock.idle = idle
    out.write(link.url + "\n")
    out.flush()
    print(
        f"emulator: board {spec.NAME}, {spec.CHANNELS} channels, time x{time_scale}, "
        f"{runtime} runtime, state in {state_dir}",
        file=sys.stderr,
        flush=True,
    )
    try:
        while True:
            watchdog = emuports.Watchdog(clock, spec.WATCHDOG_MS)
            ports = {
                "link": link,
                "motors": pumps,
                "clock": clock,
                "store": FileStore(state_dir),
                "alarm": emuports.AlarmOutput(),
                "watchdog": watchdog,
            }
            try:
                # What the firmware prints (a board's REPL output) goes to the log, as
                # on the micropython runtime: stdout carries the control replies only.
                with contextlib.redirect_stdout(sys.stderr):
                    run(spec, ports, int.from_bytes(os.urandom(4), "little"))
            except emuports.WatchdogReset as exc:
                _board_reset(exc, pumps)
                continue
            except _Quit:
                raise
            except Exception:
                # The firmware died (a store it cannot write, a bug): on a board the loop
                # stops, nothing feeds the watchdog, and after WATCHDOG_MS it resets the
                # board, which restores every channel from the store (shell.py, step 7).
                # The emulator process dying instead would be a pump that never powers
                # up again, and would hide what the reset does.
                traceback.print_exc(file=sys.stderr)
                print("emulator: firmware died: waiting for the watchdog", file=sys.stderr)
                try:
                    while True:
                        clock.ticks_ms()  # virtual time runs on (advance completes)
                        idle(0.1)
                except emuports.WatchdogReset as exc:
                    _board_reset(exc, pumps)
                continue
            # The firmware returned: a safe boot. The board sits at its REPL with no
            # watchdog running and nothing served on the link.
            print("emulator: pump loop not started (safe boot)", file=sys.stderr, flush=True)
            watchdog = None
            while True:
                clock.ticks_ms()  # its clock runs on: a fast-forward completes
                idle(0.1)
    except _Quit:
        pass
    finally:
        link.close()
        lock.close()
        if made_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


def _board_reset(why, pumps):
    """A board reset: pins fall back to their reset state, the motors stop until the
    restarted firmware restores them from the store."""
    print(f"emulator: {why}: board reset", file=sys.stderr, flush=True)
    for pump in pumps:
        pump.set_rate(0)


class Emulator:
    """The emulator in a subprocess, as a context manager with the ``.port`` to open.

    >>> with pumpguard.Emulator(time_scale=60) as emu, pumpguard.connect(emu.port) as pump:
    ...     pump.info()

    ``state_dir`` defaults to a temporary directory removed on exit; pass one to keep
    the store across ``power_cycle()`` or between runs. ``log`` is where the emulator's
    stderr goes (the file ``emulator.log`` in the state directory by default).
    """

    def __init__(self, board="emulator", time_scale=1, state_dir=None, tcp=None, runtime="cpython"):
        self.board = board
        self.runtime = runtime
        self.time_scale = time_scale
        self.tcp = tcp
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pumpguard-emulator-")
            state_dir = self._tmp.name
        self.state_dir = os.fspath(state_dir)
        self.port = None
        self._proc = None

    def start(self):
        argv = [sys.executable, "-m", "pumpguard", "emulate", "--board", self.board]
        argv += ["--time-scale", str(self.time_scale), "--state-dir", self.state_dir]
        argv += ["--runtime", self.runtime]
        if self.tcp is not None:
            argv += ["--tcp", str(self.tcp)]
        os.makedirs(self.state_dir, exist_ok=True)
        with open(os.path.join(self.state_dir, "emulator.log"), "ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        proc, _stdin, stdout = self._process()
        self.port = stdout.readline().strip()
        if not self.port:
            proc.wait()
            raise EmulatorError(
                f"emulator exited with {proc.returncode} before printing its port; "
                f"see {self.state_dir}/emulator.log"
            )
        return self

    def _process(self):
        """The emulator's process and its stdin and stdout pipes."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise EmulatorError("the emulator is not started: call start() or use `with`")
        return proc, proc.stdin, proc.stdout

    def command(self, line):
        """Send one control command (see the module docstring); returns its reply."""
        _proc, stdin, stdout = self._process()
        stdin.write(line + "\n")
        stdin.flush()
        reply = stdout.readline().strip()
        if not reply.startswith("ok") and not reply.startswith("["):
            raise EmulatorError(f"emulator: {line!r}: {reply or 'no reply'}")
        return reply

    def inject(self, fault, channel=1):
        """Inject ``fault`` (``"occlusion"``, ``"air"`` or ``"empty"``) on ``channel``."""
        return self.command(f"{fault} {channel}")

    def advance(self, seconds, keepalive=None, step=5):
        """Fast-forward the virtual clock by ``seconds``; returns once they passed.

        ``keepalive``, when given, is called every ``step`` virtual seconds (for
        example ``pump.uptime_ms``) so the firmware hears its host the whole time, as
        a host polling its pump would; without it the link goes silent and the
        firmware raises its link-loss alarm after the board's timeout.
        """
        done = 0
        while done < seconds:
            chunk = min(step, seconds - done) if keepalive else seconds
            self.command(f"advance {chunk}")
            done += chunk
            if keepalive:
                keepalive()

    def pumps(self):
        """The syringe models: rate, volume left and pumped (millionths), fault."""
        return json.loads(self.command("pumps"))

    def power_off(self):
        """SIGKILL: power lost at once, the store left as the firmware last wrote it.
        ``start()`` powers it on again on the same state dir (a new ``.port``); between
        the two, a test may damage the store as a failing flash would."""
        proc, _stdin, _stdout = self._process()
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def power_cycle(self):
        """Power loss and power on again on the same state dir; new ``.port``."""
        self.power_off()
        return self.start()

    def close(self):
        if self._proc:
            proc, stdin, stdout = self._process()
            if proc.poll() is None:
                try:
                    stdin.write("quit\n")
                    stdin.flush()
                    proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
                    proc.wait()
            stdin.close()
            stdout.close()
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
