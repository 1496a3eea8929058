"""The host's side of sessions (SPEC §3): the sid on every request, `stale` read as
"may have run", connect() waiting for a device still booting, the keepalive, and every
failure of the port a LinkError that says whether the command may have run."""

import socket
import termios
import time

import pumpguard
import pytest
import serial
from pumpguard import Heartbeat
from pumpguard.api.client import Pump
from pumpguard.api.link import Link
from pumpguard.errors import BadValue, LinkError, ProtocolMismatch
from pumpguard.testing import ANSWER_TIMEOUT_S as T

from protocol import catalog, messages
from tests.test_protocol_link import FakeDevice


@pytest.fixture
def device():
    dev = FakeDevice()
    yield dev
    dev.server.close()


def _wait_for(condition, what):
    deadline = time.monotonic() + 20  # generous: a loaded machine, never a fixed sleep
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_every_request_carries_the_sid_of_hello_r_s_frame(device):
    seen = []
    orig = device._answer

    def record(f):
        seen.append((catalog.NAME[f.msg_id], f.sid))
        return orig(f)

    device._answer = record
    with Link(device.url, timeout=T) as link:
        link.hello()
        assert link.sid == device.sid != 0
        link.request("HEARTBEAT")
        link.request("STOP", {"ch": 1})
    sid = device.sid
    assert seen == [("HELLO", 0), ("AUTH", sid), ("HEARTBEAT", sid), ("STOP", sid)]


def test_an_answer_of_another_session_is_not_taken_for_ours(device):
    with Link(device.url, timeout=T, attempts=1) as link:
        link.hello()
        link.timeout = 0.3  # the handshake was answered; the foreign answer waits this
        fields = {"uptime_ms": 1, "boot_id": 1, "active_alarms": 0}
        device._answer = lambda f: messages.to_wire("HEARTBEAT_R", f.seq, fields, sid=f.sid + 1)
        with pytest.raises(LinkError, match="no answer"):
            link.request("HEARTBEAT")


def test_stale_is_may_have_run_never_did_not_run(device):
    with Link(device.url, timeout=T) as link:
        link.hello()
        device.last = 500  # the session ran a newer request than this host's next one
        with pytest.raises(LinkError, match="MAY HAVE RUN") as exc:
            link.request("STOP", {"ch": 1})
        assert exc.value.may_have_run is True
        assert ("STOP", 3) not in device.runs


def test_supervision_is_declared_once_authenticated_and_hello_says_the_host_s_time(device):
    # HELLO declares no supervision: SUPERVISE, the session's first tagged request after
    # AUTH_R, does (a handshake that dies leaves no supervisor), and close() says
    # goodbye: SUPERVISE 0.
    supervised = []
    answer = device._answer

    def record(f):
        if f.msg_id == catalog.ID["SUPERVISE"]:
            supervised.append(messages.decode(f.msg_id, f.payload)["interval_s"])
        return answer(f)

    device._answer = record
    before = int(time.time() * 1000)
    with Pump(device.url, timeout=T, supervise=5) as pump:
        assert pump.supervise_s == 5
    first = device.hellos[0]
    assert first["supervise_s"] == 0 and first["wall_ms"] >= before
    assert [name for name, _seq in device.runs] == ["HELLO", "SUPERVISE", "SUPERVISE"]
    assert supervised == [5, 0]


def test_a_one_shot_connection_declares_no_supervision_and_sends_no_goodbye(device):
    with pumpguard.connect(device.url, timeout=T) as pump:
        pump.uptime_ms()
    assert device.hellos[0]["supervise_s"] == 0
    assert [name for name, _seq in device.runs] == ["HELLO", "HEARTBEAT"]


def test_connect_waits_for_a_device_still_booting(device):
    device.drop = 4  # the first HELLOs go unanswered, as by a device still booting
    # 0.5 s per HELLO: each dropped one is waited out, so not long; an answered one
    # later than that (a loaded machine) costs one more HELLO, still a connect that
    # waited out the boot.
    with pumpguard.connect(device.url, timeout=0.5, attempts=1, boot_wait=30) as pump:
        assert pump.device["board"] == "test"
    assert len(device.hellos) >= 5


def test_connect_gives_up_after_boot_wait(device):
    device.drop = 1000
    with pytest.raises(LinkError, match="no answer") as exc:
        pumpguard.connect(device.url, timeout=0.1, attempts=1, boot_wait=0)
    assert exc.value.may_have_run is False
    assert len(device.hellos) == 1


def test_connect_never_waits_out_a_mismatch(device):
    device.schema = 0x1234
    with pytest.raises(ProtocolMismatch):
        pumpguard.connect(device.url, timeout=T, boot_wait=30)
    assert len(device.hellos) == 1


def test_keepalive_declares_heartbeats_and_says_goodbye(device):
    with pumpguard.connect(device.url, timeout=T) as pump:
        with pump.keepalive(interval_s=1):
            _wait_for(lambda: "HEARTBEAT" in [n for n, _s in device.runs], "no heartbeat")
            assert pump.uptime_ms() == 5  # the caller's requests take turns with its own
        supervised = [run for run in device.runs if run[0] == "SUPERVISE"]
        assert len(supervised) == 2  # the interval, then the goodbye
    assert pump.keepalive_error is None


def test_keepalive_intervals_are_whole_seconds_checked_before_anything_is_sent(device):
    with pumpguard.connect(device.url, timeout=T) as pump:
        for bad in (0, 70000, 1.5, True):
            with pytest.raises((BadValue, TypeError)), pump.keepalive(interval_s=bad):
                pass
    assert "SUPERVISE" not in [n for n, _s in device.runs]


# --- the port failing under a command -------------------------------------------------


class BrokenPort:
    """A port whose `fail` operation raises `exc` (what pyserial lets through when the
    device end of a PTY or a USB adapter disappears); the rest goes to the real one."""

    def __init__(self, port, fail, exc):
        self._port = port
        self._fail = fail
        self._exc = exc

    def __getattr__(self, name):
        if name == self._fail:
            raise self._exc
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        elif name == self._fail:
            raise self._exc
        else:
            setattr(self._port, name, value)


GONE = [
    termios.error(5, "Input/output error"),
    OSError(5, "Input/output error"),
    serial.SerialException("device reports readiness to read but returned no data"),
]


def _broken(fail, exc):
    link = Link("loop://", timeout=0.2, attempts=2)
    link._port = BrokenPort(link._port, fail, exc)
    return link


@pytest.mark.parametrize("exc", GONE, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("fail", ["read", "in_waiting", "timeout"])
def test_a_port_failing_after_the_request_went_out_may_have_run(fail, exc):
    link = _broken(fail, exc)
    with pytest.raises(LinkError, match="MAY HAVE RUN") as info:
        link.request("STOP", {"ch": 1})
    assert info.value.may_have_run is True
    link.close()


@pytest.mark.parametrize("exc", GONE, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("fail", ["write", "flush"])
def test_a_port_failing_while_writing_may_have_run(fail, exc):
    # Some bytes may have gone: a frame short of its last 0x00 runs once the next
    # frame's leading 0x00 ends it.
    link = _broken(fail, exc)
    with pytest.raises(LinkError, match="MAY HAVE RUN") as info:
        link.request("STOP", {"ch": 1})
    assert info.value.may_have_run is True


def test_a_port_closed_before_the_write_did_not_run():
    link = Link("loop://", timeout=0.2)
    link._port.close()
    with pytest.raises(LinkError, match="did NOT run") as info:
        link.request("STOP", {"ch": 1})
    assert info.value.may_have_run is False


@pytest.mark.parametrize("exc", GONE, ids=lambda e: type(e).__name__)
def test_hello_on_a_failing_port_did_not_run(exc):
    link = _broken("read", exc)
    with pytest.raises(LinkError) as info:
        link.hello()
    assert info.value.may_have_run is False


@pytest.mark.parametrize("exc", GONE, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("fail", ["reset_input_buffer", "close"])
def test_opening_and_closing_a_failing_port_is_no_traceback(fail, exc):
    link = _broken(fail, exc)
    if fail == "close":
        link.close()  # gone already: nothing to close
    else:
        with pytest.raises(LinkError) as info:
            link.discard_input()
        assert info.value.may_have_run is False


def test_a_device_unplugged_mid_command_through_the_api(device):
    # The real thing on a socket: the device end closes while the host waits.
    with pumpguard.connect(device.url, timeout=5, attempts=1) as pump:
        orig = device._answer

        def run_then_vanish(f):
            device.drop = 1  # it runs; its answer never leaves
            device.conn.shutdown(socket.SHUT_RDWR)
            return orig(f)

        device._answer = run_then_vanish
        with pytest.raises(LinkError, match="MAY HAVE RUN") as info:
            pump.stop(1)
        assert info.value.may_have_run is True


class _Ticking:
    """A pump whose clock runs `rate` times the host's (an emulator's --time-scale):
    the host's clock is the waits the keepalive asked for, added up."""

    def __init__(self, rate):
        self.rate = rate
        self.host_s = 0.0
        self.keepalive_error = None

    def heartbeat(self):
        return Heartbeat(int(self.host_s * self.rate * 1000), boot_id=1, active_alarms=0)


class _Waits:
    """stop.wait() that passes the time asked for on the fake clock and records it."""

    def __init__(self, pump, beats):
        self.pump = pump
        self.beats = beats
        self.asked = []

    def wait(self, seconds):
        self.asked.append(seconds)
        self.pump.host_s += seconds
        return len(self.asked) > self.beats


@pytest.mark.parametrize("rate", [1, 10, 60])
def test_keepalive_beats_by_the_devices_clock_so_a_fast_emulator_never_goes_silent(rate):
    # The device counts its silence timeout in its own seconds: with --time-scale 10 a
    # beat every 2 s of ours is 20 s to it, past its 10 s timeout (link_lost over and
    # over under `pumpguard monitor`). Measured from the uptimes it answers with.
    from pumpguard.api import keepalive

    pump = _Ticking(rate)
    stop = _Waits(pump, beats=6)
    keepalive._beat(pump, 2, stop, clock=lambda: pump.host_s)
    device_gaps = [wait * rate for wait in stop.asked]
    assert max(device_gaps) <= 5  # the first beats probe: never near the 10 s timeout
    assert device_gaps[-1] == pytest.approx(2, rel=0.01)  # then every 2 s of the device's clock
