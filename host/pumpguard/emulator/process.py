"""``pumpguard.Emulator``: the emulator (``server.py``) in a subprocess, for scripts and tests."""

import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import EmulatorError
from .control import MAX_ADVANCE_S
from .server import READY_TIMEOUT_S

# Beyond the emulator's own deadline for its firmware's first answer: the time a loaded
# machine may take to start Python and import the emulator before that deadline runs.
_START_MARGIN_S = 60
_LOG_TAIL = 2000  # characters of the emulator's log quoted when it fails to start


class Emulator:
    """The emulator in a subprocess, as a context manager with the ``.port`` to open.

    >>> with pumpguard.Emulator(time_scale=60) as emu, pumpguard.connect(emu.port) as pump:
    ...     pump.info()

    ``state_dir`` defaults to a temporary directory removed on exit; pass one to keep
    the store across ``power_cycle()`` or between runs. ``.key`` is the host key file
    of the board's keys (``<state_dir>/key.json``, absolute: ``connect(emu.port,
    key=emu.key)``; None when the state dir has none);
    ``insecure=True`` runs a board without keys (``--insecure``; ``.key`` None);
    ``library=PATH`` boots it with that drug library (``--library``: on the state
    dir's first start only, so a power cycle keeps a library pushed since). The
    emulator's stderr goes to the file ``emulator.log`` in the state directory.

    ``start()`` returns once the firmware answers on ``.port`` (a safe boot: once the
    board sits at its REPL), whatever the boot takes; it raises EmulatorError, quoting
    the end of the log, when the emulator exits before or its firmware stays silent.
    The emulator stops by itself when the process that started it dies (its stdin, a
    pipe from this object, reaches its end).
    """

    def __init__(
        self,
        board: str = "emulator",
        time_scale: float = 1,
        state_dir: str | os.PathLike[str] | None = None,
        tcp: int | None = None,
        runtime: str = "cpython",
        insecure: bool = False,
        library: str | os.PathLike[str] | None = None,
    ) -> None:
        self.board = board
        self.insecure = insecure
        self.library = library  # a drug library file to boot with (--library)
        self.runtime = runtime
        self.time_scale = time_scale
        self.tcp = tcp
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pumpguard-emulator-")
            state_dir = self._tmp.name
        self.state_dir: str = os.path.abspath(os.fspath(state_dir))
        self.port: str = ""  # the port to open, once start() returned
        self.key: str | None = None  # the host key file of the board's keys (None: insecure)
        self._proc = None

    def start(self) -> "Emulator":
        argv = [sys.executable, "-m", "pumpguard", "emulate", "--board", self.board]
        argv += ["--time-scale", str(self.time_scale), "--state-dir", self.state_dir]
        argv += ["--runtime", self.runtime]
        if self.tcp is not None:
            argv += ["--tcp", str(self.tcp)]
        if self.insecure:
            argv += ["--insecure"]
        if self.library is not None:
            argv += ["--library", os.path.abspath(os.fspath(self.library))]
        # Private from the start (the emulator's umask is 077: keys live in here).
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
            )
        proc, _stdin, stdout = self._process()
        # The emulator prints its port once its firmware answers, or exits saying why
        # within its own deadline; this one is for an emulator that does neither.
        ready, _, _ = select.select([stdout], [], [], READY_TIMEOUT_S + _START_MARGIN_S)
        key = stdout.readline().strip() if ready else ""
        # "key: PATH" (or "key: none (insecure)"), then the port on the next line.
        self.port = stdout.readline().strip() if key.startswith("key: ") else ""
        if not self.port:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            raise EmulatorError(
                f"the emulator ({self.runtime} runtime) "
                + (f"exited with {proc.returncode}" if ready else "did not answer and was killed")
                + f" before its firmware answered; {self.log_path} ends:\n{self._log_tail()}"
            )
        path = key[len("key: ") :]
        # An absolute path, or "none (why)": insecure, or a state dir without key.json.
        self.key = path if os.path.isabs(path) else None
        return self

    def register_key(self, store_dir: str) -> str:
        """Put this board's host key file into the key store ``store_dir`` as
        ``<board_id>.json``, as a flash does; returns the board id."""
        from ..api import keys  # the emulator process itself never needs the host's keys

        if self.key is None:
            raise EmulatorError("an --insecure emulator has no keys to register")
        keyfile = keys.KeyFile.load(self.key)
        keyfile.save(os.path.join(store_dir, f"{keyfile.board_id}.json"))
        return keyfile.board_id

    @property
    def log_path(self) -> str:
        return os.path.join(self.state_dir, "emulator.log")

    def _log_tail(self):
        try:
            with open(self.log_path, errors="replace") as log:
                return log.read()[-_LOG_TAIL:]
        except OSError as exc:
            return f"(unreadable: {exc})"

    def _process(self):
        """The emulator's process and its stdin and stdout pipes."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise EmulatorError("the emulator is not started: call start() or use `with`")
        return proc, proc.stdin, proc.stdout

    def command(self, line: str) -> str:
        """Send one control command (see the module docstring); returns its reply."""
        _proc, stdin, stdout = self._process()
        stdin.write(line + "\n")
        stdin.flush()
        reply = stdout.readline().strip()
        if not reply.startswith("ok") and not reply.startswith("["):
            raise EmulatorError(f"emulator: {line!r}: {reply or 'no reply'}")
        return reply

    def inject(self, fault: str, channel: int = 1) -> str:
        """Inject ``fault`` (``"occlusion"``, ``"air"`` or ``"empty"``) on ``channel``."""
        return self.command(f"{fault} {channel}")

    def advance(
        self, seconds: float, keepalive: Callable[[], object] | None = None, step: float = 5
    ) -> None:
        """Fast-forward the virtual clock by ``seconds``; returns once they passed.

        ``keepalive``, when given, is called every ``step`` virtual seconds (for
        example ``pump.uptime_ms``) so the firmware hears its host the whole time, as
        a host polling its pump would; without it the link goes silent and the
        firmware raises its link-loss alarm after the board's timeout. More than the
        emulator's ``MAX_ADVANCE_S`` goes as several commands. Seconds that are not
        a finite number from 0 raise EmulatorError, as the emulator answers them.
        """
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
            self.command(f"advance {seconds}")  # 0 is done; anything else its error
            return
        if keepalive is not None and not step > 0:
            raise EmulatorError(f"advance: step must be a number of seconds above 0, not {step!r}")
        done = 0
        while done < seconds:
            chunk = min(step if keepalive else MAX_ADVANCE_S, seconds - done)
            self.command(f"advance {chunk:.3f}")  # digits only, to the ms, as it takes
            done += chunk
            if keepalive:
                keepalive()

    def factory_reset(self) -> None:
        """A new board on the same port (the control command ``factory-reset``): the
        store emptied, new syringes, the clock from its start, the log begun anew;
        returns once the new boot answers."""
        with open(self.log_path, "r+b") as log:
            log.truncate()  # the emulator appends: its next line starts the file
        self.command("factory-reset")

    def running(self) -> bool:
        """Whether the emulator's process is alive (not powered off, not quit)."""
        return self._proc is not None and self._proc.poll() is None

    def pumps(self) -> list[dict[str, Any]]:
        """The syringe models: rate, volume left and pumped (millionths), fault."""
        return json.loads(self.command("pumps"))

    def power_off(self) -> None:
        """SIGKILL: power lost at once, the store left as the firmware last wrote it.
        ``start()`` powers it on again on the same state dir (a new ``.port``); between
        the two, a test may damage the store as a failing flash would."""
        proc, _stdin, _stdout = self._process()
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def power_cycle(self) -> "Emulator":
        """Power loss and power on again on the same state dir; new ``.port``."""
        self.power_off()
        return self.start()

    def close(self) -> None:
        """Quit the emulator (killed if it does not within 5 s); its temporary state
        directory, when it made one, is removed."""
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

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
