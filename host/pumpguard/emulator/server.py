"""``pumpguard emulate``: the unchanged firmware on the emulated board, until ``quit``.

``serve()`` builds the board's hardware models (``boards/emulator/hardware.py``) and
powers the board on: the firmware runs on those ports (in this process, or on
MicroPython: ``micropython.py``) until its watchdog resets the board, and then boots
again from the store, as a board does, until ``quit`` or SIGTERM. The port to open is
printed once the firmware answers on it (``probe.py``), never while it still boots.

Keys: the first start of a state dir gives its board new random keys, as ``pumpguard
flash`` does a real board's: the board's store file ``keys`` and the host key file
``key.json`` beside it, whose path is printed (``key: PATH``) before the port. Both
outlive resets, power cycles and factory resets. ``--insecure`` (development only) makes
a board without keys instead: its store's ``keys`` says so, it answers HELLO with auth 0
and lists a standing low alarm.
"""

import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback

from pumpguard._board import boards
from pumpguard._board.boards.drivers.filestore import FileStore
from pumpguard._board.boards.emulator import hardware
from pumpguard._board.firmware.libpush import ACTIVE

from ..api import libpush
from ..api.keys import BOARD_ID_HEX, KeyFile
from ..errors import EmulatorError, FirmwareDied, KeyFileError, UsageError
from .control import Control
from .probe import Probe

RUNTIMES = ("cpython", "micropython")
# Virtual ticks start this far before MicroPython's 2**30 wrap, so every emulated run
# crosses it within seconds and the firmware's non-wrapping uptime is always exercised.
_START_MS = (1 << 30) - 5_000
# How long a boot may take before its first answer on the link: MicroPython boots in
# about a second idle, several on a loaded machine; a firmware silent this long is
# broken, and `pumpguard emulate` says so instead of printing a port nobody answers.
READY_TIMEOUT_S = 60
# What a factory reset leaves in the state dir: the lock this process holds, the log
# Emulator (process.py) sends this process's stderr to, and the board's keys (a new
# board's store, but the keys a flash provisioned: a factory reset keeps them).
BOARD_KEYS = "keys"  # the board's store file of its keys (firmware)
HOST_KEY = "key.json"  # the host key file of the same keys
_KEPT = ("emulator.lock", "emulator.log", BOARD_KEYS, HOST_KEY)
# In the state dir from its board's first start on (a factory reset removes it): --library
# is placed in the store on that start only, as a flash ships a library, never over a
# library pushed since (a power cycle is no reflash).
_STARTED = "emulator.started"


def syringe_help(spec):
    """What `emulate --help` says about the board's emulated syringe."""
    sizes = "/".join(f"{size / 1_000_000:g}" for size in spec.SYRINGES_ML)
    return (
        f"the emulated syringes: board {spec.NAME} takes {sizes} mL (SYRINGES_ML); a full "
        f"{spec.SYRINGES_ML[-1] // 1_000_000} mL one is\nloaded at power-on; a start "
        "fills it with the --volume it programs (no more than the\nsyringe holds), "
        "unless `load CH ML` loaded another since; the firmware reads the\nplunger's "
        "place, so near empty comes before a syringe holding less than typed runs dry\n"
    )


class _Quit(BaseException):
    """``quit`` or SIGTERM: raised out of the firmware's idle wait, handled in serve().
    Not an error (so not a PumpguardError) but the end of the emulator's run: like
    SystemExit, no ``except Exception`` in the firmware may swallow it."""


class _FactoryReset(BaseException):
    """``factory-reset``: raised out of the firmware's idle wait like _Quit; boot()
    gives the board an empty store and new syringes and boots it again."""


class _EmulatorFault(BaseException):
    """An error of the emulator's own (its control commands, its idle wait), raised out
    of the firmware's call stack as a BaseException, so that it is never taken for the
    firmware's death (which resets the board) but ends the run: serve() raises the
    error it carries."""

    def __init__(self, error):
        super().__init__(error)
        self.error = error


def _runner(runtime, spec):
    """run(board, ports, boot_id) for the runtime, which returns only on a safe boot.

    Everything the runtime needs is checked here, before the port is printed: a
    runtime that cannot start is an EmulatorError that `pumpguard emulate` reports
    and exits with, never a board that seems to run and answers nothing."""
    if runtime == "micropython":
        from . import micropython

        return micropython.runner(spec)
    if runtime != "cpython":
        raise UsageError(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIMES)})")
    # A firmware that cannot load: said now. It runs in this process as the host's view
    # of the board's sources (pumpguard._board: its imports of its own names mapped there).
    from pumpguard._board.firmware import main as firmware_main

    return in_process(firmware_main.run)


def in_process(firmware_run):
    """The cpython runtime: firmware_run (firmware.main.run) in this process.

    Whatever the firmware raises is what stops a board's firmware (a store it cannot
    write, a bug a record triggers): FirmwareDied here, as node's exit is on the
    micropython runtime, so both runtimes reset the board alike. A watchdog reset, the
    emulator's quit and its own faults are BaseExceptions, and pass."""

    def run(board, ports, boot_id):
        try:
            return firmware_run(board, ports, boot_id)
        except Exception as exc:
            raise FirmwareDied(f"{type(exc).__name__}: {exc}") from exc

    return run


def provision(state_dir, insecure=False):
    """The keys of the state dir's board, made on its first start: the host key file's
    path, or None for an --insecure board. A state dir of the other kind is refused
    (UsageError), changing nothing; a board keys file that was removed or damaged
    later is left so (the board boots without keys, as a board would)."""
    board_path = os.path.join(state_dir, BOARD_KEYS)
    host_path = os.path.join(state_dir, HOST_KEY)
    board = _board_keys(board_path)
    fresh = board is None and not os.path.exists(host_path)
    if insecure:
        if not fresh and not (board or {}).get("insecure"):
            raise UsageError(
                f"state dir {state_dir} holds a board with keys: --insecure needs a state "
                "dir of its own"
            )
        if fresh:
            board_id = secrets.token_bytes(BOARD_ID_HEX // 2).hex()
            _write_private(board_path, {"board_id": board_id, "insecure": True})
        return None
    if board is not None and board.get("insecure"):
        raise UsageError(
            f"state dir {state_dir} holds a board made with --insecure (no keys): start it "
            "with --insecure, or use another state dir"
        )
    if fresh:
        keyfile = KeyFile.generate()
        _write_private(board_path, keyfile.board_json())
        keyfile.save(host_path)
    return host_path


def _board_keys(path):
    """The board's keys file as JSON (an object), {} when unreadable, None when absent."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path, data):
    # The board's store file, 0600 as the host's: it holds the same keys.
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise KeyFileError(f"cannot write the board's keys {path}: {exc.strerror}") from None


def _lock_store(state_dir):
    """An exclusive lock on the state dir, held while the returned file stays open."""
    import fcntl  # POSIX only, as the emulator is (PTYs): `import pumpguard` needs none

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


class _Board:
    """The emulated board from power-on to power loss: its hardware models, the control
    commands acting on them, and the firmware booted on them after every reset."""

    def __init__(self, spec, time_scale, tcp, state_dir, run, out, runtime="cpython", library=None):
        self.spec = spec
        self.state_dir = state_dir
        self.library = library  # --library's bytes, checked (None: the bundle's built-in)
        self.runtime = runtime
        self.clock = hardware.VirtualClock(time_scale, start=_START_MS)
        self.link = hardware.PtyLink() if tcp is None else hardware.TcpLink(tcp)
        self.pumps = self._syringes()
        self.control = Control(self.clock, self.link, self.pumps, out)
        self.watchdog = None  # None while no firmware runs that could feed it
        self._run = run
        self._probe = None  # while the firmware has not answered since power-on or reset
        self._announce = None  # what to do once it has
        self._deadline = 0.0
        self.clock.idle = self.idle

    def _syringes(self):
        return [
            hardware.SyringePump(self.clock, self.spec.SYRINGES_ML)
            for _ in range(self.spec.CHANNELS)
        ]

    def await_ready(self, announce):
        """Call ``announce()`` once the firmware answers on the link (or the board sits
        at its REPL, where nothing ever will); an EmulatorError out of idle() when it
        has not within READY_TIMEOUT_S."""
        self._probe = Probe(self.link.url)
        self._announce = announce
        self._deadline = time.monotonic() + READY_TIMEOUT_S

    def _check_ready(self):
        probe = self._probe
        if probe is None:
            return
        if probe.answered.is_set():
            self._ready()
        elif time.monotonic() > self._deadline:
            raise EmulatorError(
                f"the firmware on the {self.runtime} runtime did not answer on "
                f"{self.link.url} within {READY_TIMEOUT_S} s "
                f"(last link error: {probe.last_error or 'none, only silence'}); what it "
                "printed is on the emulator's stderr"
            )

    def _ready(self):
        probe, announce = self._probe, self._announce
        self._probe = self._announce = None
        if probe is not None:
            probe.stop()
        if announce is not None:
            announce()

    def close(self):
        if self._probe is not None:
            self._probe.stop()
        self.link.close()

    def idle(self, timeout):
        """Wait up to timeout s for the link or a control command (the firmware's
        sleep): whether either came; raises _Quit on quit, WatchdogReset once the
        watchdog starved, and _EmulatorFault for an error of the emulator's own."""
        control = self.control
        try:
            fd = control.fd if control.listening() else None
            ready = hardware.wait_readable([self.link] if fd is None else [self.link, fd], timeout)
            if fd is not None and fd in ready:
                control.read(fd)
            self._check_ready()
            control.poll()
        except Exception as exc:  # the emulator's, never the firmware's: end the run
            raise _EmulatorFault(exc) from exc
        if control.quit:
            raise _Quit
        if control.resetting and self._probe is None:
            raise _FactoryReset
        if self.watchdog:
            self.watchdog.check()
        return bool(ready)

    def _ports(self):
        try:
            store = FileStore(self.state_dir)
        except OSError as exc:
            # A board opens its store as it boots (make_ports()): one it cannot open
            # stops the firmware there, and the watchdog resets the board.
            raise FirmwareDied(f"the store cannot be opened: {exc}") from exc
        return {
            "link": self.link,
            "motors": self.pumps,
            "clock": self.clock,
            "store": store,
            "alarm": hardware.AlarmOutput(),
            "watchdog": self.watchdog,
            "entropy": hardware.Entropy(),
        }

    def boot(self):
        """Power on (or come out of a reset) and run the firmware; returns when the
        watchdog or a factory reset has reset the board. A safe boot returns only so."""
        self.watchdog = hardware.Watchdog(self.clock, self.spec.WATCHDOG_MS)
        try:
            self._boot()
        except hardware.WatchdogReset as exc:
            self._reset(exc)
        except _FactoryReset:
            self._factory_reset()

    def _boot(self):
        try:
            # What the firmware prints (a board's REPL output) goes to the log, as
            # on the micropython runtime: stdout carries the control replies only.
            with contextlib.redirect_stdout(sys.stderr):
                self._run(self.spec, self._ports(), int.from_bytes(os.urandom(4), "little"))
        except FirmwareDied as exc:
            # The firmware stopped: a port failed under it (a store it cannot write),
            # or it raised. On a board the loop stops, nothing feeds the watchdog,
            # and after WATCHDOG_MS it resets the board, which restores every
            # channel from the store (firmware/shell.py, step 7):
            # the emulator waits for that too, instead of dying (a pump that never
            # powers up again) or hiding what the reset does.
            traceback.print_exception(exc, file=sys.stderr)
            print("emulator: firmware died: waiting for the watchdog", file=sys.stderr)
            self._run_clock()
        # The firmware returned: a safe boot. The board sits at its REPL with no
        # watchdog running and nothing served on the link: it is as ready as it gets.
        print("emulator: pump loop not started (safe boot)", file=sys.stderr, flush=True)
        self.watchdog = None
        self._ready()
        self._run_clock()

    def _run_clock(self):  # never returns: a reset, a factory reset or quit ends it
        # No firmware turns the loop: the clock runs on (a fast-forward completes, at
        # its second per turn without waiting) and control commands are served, until
        # the watchdog or quit raises.
        while True:
            self.clock.ticks_ms()
            self.idle(0 if self.clock.fast_forwarding() else 0.1)

    def _reset(self, why):
        """A board reset: pins fall back to their reset state, the motors stop until the
        restarted firmware restores them from the store."""
        print(f"emulator: {why}: board reset", file=sys.stderr, flush=True)
        for pump in self.pumps:
            pump.set_rate(0)

    def _factory_reset(self):
        """A new board on the same port: the store emptied, full syringes, the clock
        from its start, the line cleared; the reply waits for the new boot's answer."""
        print("emulator: factory reset: empty store, new syringes", file=sys.stderr, flush=True)
        for name in os.listdir(self.state_dir):
            if name not in _KEPT:
                path = os.path.join(self.state_dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                else:
                    os.remove(path)
        _first_start(self.state_dir, self.library)
        self.clock.restart(_START_MS)
        self.pumps[:] = self._syringes()  # in place: the control commands hold this list
        self.link.silent = False
        self.link.drain()
        self.await_ready(self.control.reset_done)


def serve(
    board="emulator",
    time_scale=1,
    state_dir=None,
    tcp=None,
    out=None,
    runtime="cpython",
    insecure=False,
    library=None,
):
    """Run the firmware on emulated ports until ``quit`` (blocking).

    Prints ``key: PATH`` (the host key file's absolute path; ``key: none (insecure)``
    with ``insecure``, ``key: none (...)`` when the state dir has no host key file),
    then the port to open on ``out`` (stdout), once the firmware answers on it (a
    safe boot: once the board sits at its REPL). ``state_dir`` is the store (a fresh
    temporary directory when None); ``tcp`` a TCP port number to serve ``socket://``
    on instead of a PTY (0 picks a free one); ``runtime`` one of ``RUNTIMES``. Raises
    EmulatorError (before printing anything) when the runtime cannot start
    (errors.py), or when its firmware has not answered within READY_TIMEOUT_S.
    ``library``: a drug library file the board boots with, as if pushed (the store's
    ``druglib.json``, firmware/libpush.py), placed on the state dir's first start only
    (see _first_start()); a UsageError listing every problem, before anything starts,
    unless it is valid and sealed.
    """
    pushed = None if library is None else libpush.checked(library)[0]
    out = out or sys.stdout
    # Everything this process creates is its owner's alone: the state dir, the board's
    # store (its "keys" and the "keys.new" a rotation writes through the store port, on
    # either runtime: the micropython one's store writes are this process's too) and the
    # host key file. The keys are the board's secrets; the rest need no other reader.
    os.umask(0o077)
    spec = boards.get(board)
    run = _runner(runtime, spec)
    made_dir = state_dir is None
    state_dir = state_dir or tempfile.mkdtemp(prefix="pumpguard-emulator-")
    # One board per store: a second emulator on the same state dir would resume the
    # first one's infusions as its own and the two would overwrite each other's record
    # (a stop on one undone by the other's next save). The lock dies with the process,
    # so a power cycle (SIGKILL, then start again) finds it free.
    lock = _lock_store(state_dir)
    emulated = None
    try:
        key_path = provision(state_dir, insecure)
        if not _first_start(state_dir, pushed) and pushed is not None:
            print(
                f"emulator: --library {library} not placed: the board of {state_dir} has "
                "started before and keeps the library in its store (a factory reset or a "
                "new state dir takes it)",
                file=sys.stderr,
                flush=True,
            )
        emulated = _Board(spec, time_scale, tcp, state_dir, run, out, runtime, pushed)
        _handle_signals(emulated.control)
        print(
            f"emulator: board {spec.NAME}, {spec.CHANNELS} channels, time x{time_scale}, "
            f"{runtime} runtime, state in {state_dir}",
            file=sys.stderr,
            flush=True,
        )
        key_line = f"key: {_key_line(state_dir, key_path)}"

        def announce():
            print(key_line, file=out, flush=True)
            emulated.control.ready(emulated.link.url)

        emulated.await_ready(announce)
        while True:
            emulated.boot()
    except _Quit:
        pass
    except _EmulatorFault as fault:
        raise fault.error from None
    finally:
        if emulated is not None:
            emulated.close()
        lock.close()
        if made_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


def _first_start(state_dir, library):
    """Whether this is the first start of the state dir's board (a new one, or one a
    factory reset emptied): then library (bytes, or None: the built-in) is placed in its
    store as if pushed, and the start marked so that no later one places it again."""
    if os.path.exists(os.path.join(state_dir, _STARTED)):
        return False
    store = FileStore(state_dir)
    if library is not None:
        store.write(ACTIVE, library)
    store.write(_STARTED, b"")
    return True


def _key_line(state_dir, key_path):
    """What follows "key: ": the host key file's absolute path when it exists."""
    if key_path is None:
        return "none (insecure)"
    if not os.path.exists(key_path):
        return f"none (state dir {os.path.abspath(state_dir)} has no host key file {HOST_KEY})"
    return os.path.abspath(key_path)


def _handle_signals(control):
    def terminate(_signum, _frame):
        control.quit = True  # handled at the next idle(), outside the firmware's code

    signal.signal(signal.SIGTERM, terminate)
    # The terminal it runs in went away (its owner, for a person): quit as on SIGTERM,
    # cleaning up, unless started to outlive it (nohup: SIGHUP ignored, and kept so).
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, terminate)
    # A background job using its terminal is stopped by SIGTTIN (reading it) or, with
    # `stty tostop`, SIGTTOU (writing the port line): never stop for either.
    signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
