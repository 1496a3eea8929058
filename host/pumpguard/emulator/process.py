"""``pumpguard.Emulator``: the emulator (``server.py``) in a subprocess, for scripts and tests."""

import json
import os
import signal
import subprocess
import sys
import tempfile

from ..errors import EmulatorError


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
