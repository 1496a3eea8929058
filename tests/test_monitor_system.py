"""`pumpguard monitor` through the real command against the emulator, on both runtimes:
one frame (--once) with a channel running and an alarm raised, plain into a pipe and in
colour on a terminal; and the live monitor's session supervising the link."""

import os
import re
import select
import signal
import subprocess
import sys
import threading

import pumpguard
import pytest
from pumpguard.api import keys

from tests.systemkit import ANSWER_TIMEOUT_S, VASO, alarm_codes, start_norepinephrine

pytestmark = pytest.mark.system

ESCAPE = "\x1b["
COLOUR = re.compile(r"\x1b\[[0-9;]*(?<![0-9])(3[0-7]|9[0-7]|38;[0-9;]+)m")
# Set at all (even empty: FORCE_COLOR="" means no terminal), these decide for rich.
RICH_VARS = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")


@pytest.fixture(autouse=True)
def _rich_decides(monkeypatch):
    """The test run's own terminal settings never reach the command."""
    for name in RICH_VARS:
        monkeypatch.delenv(name, raising=False)


def _running_and_alarmed(pump, emu):
    start_norepinephrine(pump)
    pump.start(2, "vasopressin", "0.03", "units/min", **VASO)
    emu.inject("occlusion", 2)  # flow stops on channel 2: a high alarm


def test_once_shows_every_channel_and_the_alarm_plain_into_a_pipe(emulator, pump, pump_cli):
    _running_and_alarmed(pump, emulator)
    r = pump_cli("monitor", "--once")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert ESCAPE not in out
    assert "board emulator" in out and "role clinician" in out
    assert f"(crc {pump.device['library_crc']:08x})" in out
    assert re.search(r"drug +norepinephrine +vasopressin", out), out
    assert re.search(r"dose +0\.1 mcg/kg/min +0(\.03)? units/min", out), out
    assert re.search(r"rate +26\.25 mL/h +0 mL/h", out), out
    assert re.search(r"left +(49\.9\d*|50) mL +(19\.9\d*|20) mL", out), out
    assert re.search(r"1 +\d+ +high +2 +occlusion: ", out), out
    assert "not supervising" in out  # one frame: a one-shot session


def test_once_is_in_colour_on_a_terminal_and_never_with_no_color(emulator, pump, pump_cli):
    _running_and_alarmed(pump, emulator)
    forced = pump_cli("monitor", "--once", env={"FORCE_COLOR": "1"})
    assert forced.returncode == 0, forced.stderr
    assert COLOUR.search(forced.stdout), forced.stdout
    plain = pump_cli("monitor", "--once", env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert plain.returncode == 0, plain.stderr
    assert not COLOUR.search(plain.stdout), plain.stdout
    assert "occlusion" in plain.stdout


class _Monitor:
    """`pumpguard monitor` with its screen on a PTY (drained by a thread, so the
    command never waits on a full terminal) and stdin no terminal (keys off)."""

    FOOTER = b"keys off"  # the last line of every frame

    def __init__(self, emu, interval="0.2"):
        controller, terminal = os.openpty()
        script = os.path.join(os.path.dirname(sys.executable), "pumpguard")
        env = {**os.environ, "PUMPGUARD_KEY": emu.key, "PUMPGUARD_PORT": emu.port}
        env["PUMPGUARD_TIMEOUT"] = str(ANSWER_TIMEOUT_S)
        self.proc = subprocess.Popen(
            [script, "monitor", "--interval", interval],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
            # Ctrl-C reaches it as it would from a terminal, even when this run was
            # started with SIGINT ignored (a non-interactive shell's `make test &`),
            # which a child would otherwise inherit and the goodbye never come
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        os.close(terminal)
        self._controller = controller
        self._screen = b""
        self._shown = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        while True:
            select.select([self._controller], [], [])
            try:
                data = os.read(self._controller, 65536)
            except OSError:  # the command ended: its terminal is gone
                data = b""
            with self._shown:
                self._screen += data
                self._shown.notify_all()
            if not data:
                return

    def frames(self):
        with self._shown:
            return self._screen.count(self.FOOTER)

    def wait_for_frame(self, after=0):
        """Wait until the command has drawn a frame after the first `after`: it has
        asked the device for every figure again since then."""
        with self._shown:
            drawn = self._shown.wait_for(lambda: self.frames() > after, timeout=60)
            assert drawn, self._screen[-2000:]
            return self.frames()

    def end(self, sig):
        self.proc.send_signal(sig)
        try:
            _out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            _out, err = self.proc.communicate()
            pytest.fail(f"the monitor did not end within 60 s of signal {sig}: {err.decode()}")
        os.close(self._controller)
        return self.proc.returncode, err.decode()

    def kill(self):
        # Never left running past its test: a monitor reconnects to its port's path
        # for ever, and once the emulator is gone that PTY is another test's board.
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def monitors():
    """Start ``_Monitor``s; each one still running at the end of the test is killed."""
    started = []

    def start(emu, interval="0.2"):
        started.append(_Monitor(emu, interval))
        return started[-1]

    yield start
    for monitor in started:
        monitor.kill()


def test_the_monitor_supervises_the_link_while_it_runs(emulator, pump, tmp_path, monitors):
    # The device's clock goes forward 2 s at a time, each time only once the monitor has
    # drawn a new frame (so spoken to the device since): past the 10 s link timeout with
    # the monitor heard throughout, whatever the speed of this machine. A monitor key
    # looks on: its requests are never a clinician's sign of life.
    looker = keys.KeyFile.load(emulator.key).only(["monitor"]).save(tmp_path / "m.json")
    start_norepinephrine(pump)
    with pumpguard.connect(emulator.port, key=looker, timeout=ANSWER_TIMEOUT_S) as display:
        monitor = monitors(emulator, interval="0.1")
        frame = monitor.wait_for_frame()
        assert b"supervising the link" in monitor._screen
        for _ in range(8):
            emulator.advance(2)
            frame = monitor.wait_for_frame(frame)
        assert "link_lost" not in alarm_codes(display)
        code, err = monitor.end(signal.SIGINT)  # Ctrl-C: a goodbye, exit 0
        assert code == 0 and "Traceback" not in err, err
        emulator.advance(15)
        assert "link_lost" not in alarm_codes(display)

        dead = monitors(emulator, interval="0.1")
        dead.wait_for_frame()
        dead.end(signal.SIGKILL)  # no goodbye: the device must notice the silence
        emulator.advance(15)
        lost = [a for a in display.alarms() if a.code == "link_lost"]
        assert len(lost) == 1 and lost[0].priority == "high", lost
