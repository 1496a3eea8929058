"""The monitor's loop driven with a fake pump and scripted keys: acks by key, a refusal
shown, a lost link shown and connected again, a clean goodbye; and Keys on a real PTY."""

import contextlib
import io
import os
import termios

import pytest
from pumpguard.api.answers import Info
from pumpguard.cli.main import main
from pumpguard.errors import AuthError, Forbidden, NoAnswer
from pumpguard.monitor import Keys, run
from pumpguard.monitor.live import NO_KEYS, supervise_interval
from rich.console import Console

from tests.test_monitor_view import DEVICE, alarm, status


class FakePump:
    """What the loop uses of a Pump; `log` records the calls that change something."""

    channels = 1
    device = DEVICE

    def __init__(self, role="clinician", alarms=(), refuse=None):
        self.role = role
        self._alarms = list(alarms)
        self.refuse = refuse  # an exception ack() raises
        self.fail = None  # an exception the next info() raises
        self.library_problems = 0
        self.log = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.log.append("close")

    @contextlib.contextmanager
    def keepalive(self, interval_s):
        self.log.append(("supervise", interval_s))
        try:
            yield self
        finally:
            self.log.append(("supervise", 0))

    def info(self):
        if self.fail is not None:
            raise self.fail
        d = self.device
        return Info(
            d["firmware"],
            d["board"],
            1,
            d["library"],
            d["library_version"],
            d["library_crc"],
            "",
            1,
            60_000,
            {},
            self.library_problems,
        )

    def status(self, channel):
        return status(channel)

    def alarms(self):
        return list(self._alarms)

    def ack(self, alarm_id):
        if self.refuse is not None:
            raise self.refuse
        self.log.append(("ack", alarm_id))
        self._alarms = [a for a in self._alarms if a.id != alarm_id]


class ScriptedKeys:
    """Keys from a script: a key, None (the refresh interval passed), or a callable run
    then (the interval passed); 'q' once the script ends."""

    enabled = True

    def __init__(self, *script):
        self.script = list(script)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def get(self, timeout):
        if not self.script:
            return "q"
        step = self.script.pop(0)
        if callable(step):
            step()
            return None
        return step


def watch(pumps, keys, terminal=True, out=None):
    """Run the loop on these pumps (each connect() takes the next; an exception in the
    list is raised by that connect()); returns what the terminal (or pipe) showed."""
    out = out or io.StringIO()
    console = Console(file=out, force_terminal=terminal, color_system=None, width=120)
    queue = list(pumps)

    def connect():
        pump = queue.pop(0)
        if isinstance(pump, Exception):
            raise pump
        return pump

    run(connect, console, 1.0, keys)
    return out.getvalue()


def test_a_digit_acknowledges_the_alarm_listed_with_that_number():
    pump = FakePump(alarms=[alarm(7, "low"), alarm(9, "high", code="air_in_line")])
    screen = watch([pump], ScriptedKeys("1"))
    assert pump.log == [("supervise", 2), ("ack", 9), ("supervise", 0), "close"]
    assert "alarm 9 (air_in_line) acknowledged" in screen
    assert "keys: 1-9 acknowledge the alarm of that number" in screen


def test_a_digit_without_its_alarm_acknowledges_nothing():
    pump = FakePump(alarms=[alarm(7, "low")])
    screen = watch([pump], ScriptedKeys("2", "x"))
    assert ("ack", 7) not in pump.log
    assert "no alarm 2 listed: nothing acknowledged" in screen


def test_a_refused_ack_is_shown_and_the_monitor_goes_on():
    refusal = Forbidden("role monitor may not send ACK (clinician may)")
    pump = FakePump(role="monitor", alarms=[alarm(3, "high")], refuse=refusal)
    screen = watch([pump], ScriptedKeys("1", None))
    assert "acknowledging alarm 3 (occlusion) refused: role monitor may not send ACK" in screen
    assert "role monitor: polling only, not supervising" in screen
    assert pump.log == ["close"]  # never supervised: only a clinician may


def test_a_lost_link_is_shown_and_the_monitor_connects_again():
    first, second = FakePump(), FakePump(alarms=[alarm(4, "medium", code="near_empty")])

    def unplug():
        first.fail = NoAnswer("no answer from /dev/pts/9 (3 attempts)", may_have_run=False)

    still_gone = NoAnswer("could not open port /dev/pts/9", may_have_run=False)
    screen = watch([first, still_gone, second], ScriptedKeys(unplug, None, None))
    assert "link lost: no answer from /dev/pts/9 (3 attempts)" in screen
    assert "link lost: could not open port /dev/pts/9" in screen
    assert first.log == [("supervise", 2), ("supervise", 0), "close"]
    assert second.log == [("supervise", 2), ("supervise", 0), "close"]
    assert "near_empty: message 4" in screen.rsplit("link lost", 1)[1]


def test_a_key_or_board_that_does_not_fit_at_the_start_is_an_error_not_a_retry():
    with pytest.raises(AuthError):
        watch([AuthError("the board refused the key for role clinician")], ScriptedKeys())


def test_ctrl_c_says_goodbye_and_returns():
    pump = FakePump()

    def interrupt():
        raise KeyboardInterrupt

    watch([pump], ScriptedKeys(interrupt))
    assert pump.log == [("supervise", 2), ("supervise", 0), "close"]


def test_the_heartbeat_interval_covers_the_refresh():
    assert [supervise_interval(s) for s in (0.1, 1.0, 2.5, 30.0)] == [2, 2, 3, 30]


def test_keys_are_off_on_a_stdin_that_is_no_terminal():
    class Unpressed(Keys):
        def get(self, timeout):  # the interval passed, then Ctrl-C
            raise KeyboardInterrupt

    keys = Unpressed(io.StringIO("1q"))
    assert not keys.enabled
    out = io.StringIO()
    run(FakePump, Console(file=out, width=120), 1.0, keys)
    assert NO_KEYS in out.getvalue()  # printed as the last frame: out is no terminal


def test_keys_reads_single_presses_from_a_terminal_without_blocking():
    controller, terminal = os.openpty()
    with os.fdopen(terminal, "r") as stdin:
        keys = Keys(stdin)
        before = termios.tcgetattr(terminal)
        with keys:
            assert keys.get(0) is None  # nothing pressed: back at once
            os.write(controller, b"1")  # no Enter: cbreak mode
            assert keys.get(5) == "1"
        assert termios.tcgetattr(terminal) == before
    os.close(controller)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["monitor", "--once"], "no port: give --port PORT (-p PORT), --port auto, or set"),
        (["--port", "/dev/null", "monitor", "--interval", "0"], "is not a refresh interval"),
    ],
)
def test_usage_errors_exit_2_before_anything_is_opened(monkeypatch, capsys, argv, says):
    monkeypatch.delenv("PUMPGUARD_PORT", raising=False)
    assert main(argv) == 2
    assert says in capsys.readouterr().err


def test_into_a_pipe_each_refresh_is_a_frame_of_its_own_as_it_comes():
    # Off a terminal rich's Live prints only when it stops; a script tailing the
    # monitor must get each refresh as it is made.
    out = io.StringIO()
    seen = []

    def refreshed():
        seen.append(out.getvalue().count("occlusion"))

    watch([FakePump(alarms=[alarm(5, "high")])], ScriptedKeys(refreshed, refreshed), False, out)
    assert seen == [1, 2]  # one frame after the first refresh, two after the second


def test_the_library_shown_is_the_one_info_reports_now():
    # a push since this session's HELLO: the screen shows the active library (INFO's)
    pump = FakePump()
    pump.device = dict(DEVICE, library_version="0.1.0")
    newer = dict(DEVICE, library_version="0.2.0")
    pump.library_problems = 2
    real_info = pump.info

    def info():
        pump.device = newer  # what INFO reports: the library active now
        answer = real_info()
        pump.device = dict(DEVICE, library_version="0.1.0")
        return answer

    pump.info = info
    screen = watch([pump], ScriptedKeys(None))
    assert "pumpguard-adult-icu-vasoactive 0.2.0" in screen
    assert "INVALID: 2 problems, every start refused" in screen
