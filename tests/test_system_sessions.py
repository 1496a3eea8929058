"""Sessions on the real firmware, both runtimes (SPEC §3): exactly once however late a
copy arrives, one host never closes or confuses another's session, link_lost only
while someone supervises, and a port that vanishes mid-command is a link error."""

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pumpguard
import pytest

from protocol import catalog, frame
from tests.systemkit import ANSWER_TIMEOUT_S, RawPort, alarm_codes, start_norepinephrine

pytestmark = pytest.mark.system

TITRATE = {"ch": 1, "dose": 120_000, "unit": "mcg/kg/min", "override": True}
NOREPI_CLI = ["--weight", "70", "--concentration", "16", "mcg/mL", "--volume", "50"]


def _titrations(port):
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as pump:
        return [e for e in pump.log() if e.kind == "titrate" and e.code == "received"]


def _error(answer):
    name, fields = answer
    assert name == "ERROR", answer
    return catalog.ERROR_NAMES[fields["code"]]


def test_a_copy_arriving_after_newer_requests_and_a_hello_never_runs_again(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
    raw = RawPort(emulator.port)
    try:
        raw.hello()
        mine = raw.sid
        late = raw.send("TITRATE", 2, TITRATE)
        assert raw.answer(2)[0] == "TITRATE_R"
        for seq in range(3, 9):  # more newer requests than any window of 4
            raw.send("STATUS", seq, {"ch": 1})
            assert raw.answer(seq)[0] == "STATUS_R"
        last = raw.send("STATUS", 8, {"ch": 1})
        cached = raw.answer(8)
        raw.hello(seq=9)  # and a HELLO (a new session) after them
        raw.serial.write(late)  # the delayed copy of seq 2, in its own session
        assert _error(raw.answer(2)) == "stale"
        assert raw.answer_sid == mine
        raw.serial.write(last)  # a copy of that session's last request: its answer
        assert raw.answer(8) == cached
    finally:
        raw.close()
    assert len(_titrations(emulator.port)) == 1


def test_another_host_reusing_my_seqs_does_not_make_my_retry_run_twice(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
    raw = RawPort(emulator.port)  # two hosts on one line (a relay): two sessions
    try:
        raw.hello()
        me = raw.sid
        first = raw.send("TITRATE", 2, TITRATE)
        mine = raw.answer(2)  # (lost, as far as my host knows)
        raw.hello()
        other = raw.sid
        assert other != me
        for seq in range(2, 8):  # the other host's seqs are mine too
            raw.send("STATUS", seq, {"ch": 1}, sid=other)
            assert raw.answer(seq)[0] == "STATUS_R"
        assert raw.send("TITRATE", 2, TITRATE, sid=me) == first  # my retry
        assert raw.answer(2) == mine
        raw.send("TITRATE", 2, TITRATE, sid=other)  # the same seq in the other session
        assert raw.answer(2)[0] == "ERROR"  # stale there: it ran STATUS 2
    finally:
        raw.close()
    assert len(_titrations(emulator.port)) == 1


def test_an_emergency_stop_crowded_out_by_one_shot_sessions_still_runs_once(emulator):
    # A program holding a connection, and four one-shot CLI calls from another terminal
    # in between: the device closed the program's session for theirs. Its emergency
    # stop, answered "unknown session" without running, is sent again in a new
    # session, and runs (once: the channel is stopped, one emergency-stop entry).
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        for _ in range(4):
            with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as other:
                other.status(1)
        pump.emergency_stop(1, "extravasation")
        assert pump.status(1).state == "stopped"
        boot = pump.info().boot_id
        stops = [e for e in pump.log() if e.boot_id == boot and e.kind == "emergency_stop"]
        assert len([e for e in stops if e.code == "received"]) == 1, stops
    assert emulator.pumps()[0]["rate"] == 0


def test_a_hello_of_the_wrong_schema_or_version_closes_no_session(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
    raw = RawPort(emulator.port)
    try:
        raw.hello()
        mine = raw.sid
        assert _error(raw.hello(seq=50, schema=0x1234)) == "mismatch"
        assert raw.answer_sid == 0
        # A version-1 host's HELLO (protocol, schema, host only: 6 bytes here): read by
        # its fixed prefix, answered mismatch, not bad_payload.
        v1 = bytes((1,)) + (0x09EA79B7).to_bytes(4, "little") + b"\x00"
        raw.serial.write(frame.encode(0x01, 51, v1))
        name, fields = raw.answer(51)
        assert (name, fields["code"]) == ("ERROR", catalog.ERR_MISMATCH), fields
        assert f"device speaks protocol {catalog.PROTOCOL_VERSION}" in fields["message"]
        raw.send("ESTOP", 2, {"ch": 1, "reason": "extravasation"}, sid=mine)
        assert raw.answer(2) == ("ESTOP_R", {"ch": 1})
    finally:
        raw.close()
    assert emulator.pumps()[0]["rate"] == 0


def test_one_shot_cli_use_never_raises_link_lost_however_long_the_gaps(emulator, pump_cli):
    r = pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI_CLI)
    assert r.returncode == 0, r.stderr
    for _ in range(3):
        emulator.advance(120)  # a clinician's commands minutes apart, a vasopressor running
        r = pump_cli("alarms")
        assert r.returncode == 0, r.stderr
        assert "link_lost" not in r.stdout, r.stdout
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert "link_lost" not in [e.code for e in pump.log()]
        assert pump.status(1).state == "running"


def test_a_supervising_host_that_goes_silent_raises_link_lost(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S, supervise=2) as pump:
        start_norepinephrine(pump)
        emulator.advance(15)  # past max(10 s link timeout, 3 x 2 s) with nothing said
        (lost,) = [a for a in pump.alarms() if a.code == "link_lost"]
        assert lost.priority == "high" and "norepinephrine" in lost.message
        assert pump.status(1).rate_ml_h == Decimal("26.25")  # held, never stopped


def test_the_allowed_silence_is_three_intervals_when_that_is_longer(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S, supervise=30) as pump:
        start_norepinephrine(pump)
        emulator.advance(60)
        assert "link_lost" not in alarm_codes(pump)
        emulator.advance(91)
        assert "link_lost" in alarm_codes(pump)


def test_supervise_0_is_a_clean_goodbye(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        with pump.keepalive(interval_s=2):
            assert pump.status(1).state == "running"
        # keepalive's exit sent SUPERVISE 0: nobody supervises any more
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S, supervise=2):
        pass  # close() says goodbye too
    emulator.advance(60)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert "link_lost" not in alarm_codes(pump)
        assert "link_lost" not in [e.code for e in pump.log()]


def test_a_link_lost_clears_with_the_goodbye_of_the_last_supervisor(emulator):
    raw = RawPort(emulator.port)
    try:
        raw.hello(supervise_s=2)
        raw.send("HEARTBEAT", 2, {})  # its first request: a supervisor from now on
        assert raw.answer(2)[0] == "HEARTBEAT_R"
        emulator.advance(15)
        raw.send("ALARMS", 3, {"first": 0})
        name, fields = raw.answer(3)
        assert [a["code"] for a in fields["alarms"]] == [40]  # link_lost, cleared: heard
        raw.send("SUPERVISE", 4, {"interval_s": 0})
        assert raw.answer(4) == ("SUPERVISE_R", {"interval_s": 0})
        emulator.advance(60)
        raw.send("ALARMS", 5, {"first": 0})
        name, fields = raw.answer(5)
        assert fields["total"] <= 1  # no new link_lost after the goodbye
    finally:
        raw.close()


def test_the_device_dying_mid_command_is_a_link_error_that_may_have_run(emulator):
    pump = pumpguard.connect(emulator.port, timeout=30, attempts=1)
    try:
        start_norepinephrine(pump)
        emulator.command("silence on")  # the device will never answer
        written = threading.Event()
        port = pump._link._port
        write = port.write

        def write_then_tell(data):
            n = write(data)
            written.set()
            return n

        port.write = write_then_tell
        killer = threading.Thread(target=lambda: written.wait(60) and emulator.power_off())
        killer.start()
        with pytest.raises(pumpguard.LinkError, match="MAY HAVE RUN") as info:
            pump.titrate(1, "0.12", "mcg/kg/min", override=True)
        killer.join()
        assert info.value.may_have_run is True
    finally:
        pump.close()


def _opened(pid, port):
    fds = f"/proc/{pid}/fd"
    try:
        return any(os.path.realpath(os.path.join(fds, fd)) == port for fd in os.listdir(fds))
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_the_cli_on_an_emulator_killed_mid_command_exits_with_a_link_error(emulator):
    emulator.command("silence on")  # the CLI's HELLO goes unanswered: it keeps asking
    argv = [sys.executable, "-m", "pumpguard", "--port", emulator.port, "status"]
    env = dict(os.environ, PUMPGUARD_PORT="")
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as cli:
        deadline = time.monotonic() + 60
        while not _opened(cli.pid, os.path.realpath(emulator.port)):
            assert cli.poll() is None and time.monotonic() < deadline, "the CLI never opened"
            time.sleep(0.01)
        emulator.power_off()
        out, err = cli.communicate(timeout=60)
    assert cli.returncode == pumpguard.errors.EXIT_LINK, err
    assert err.startswith("pumpguard: link failure") and "Traceback" not in err, err
    assert "did NOT run" in err, err  # only its HELLO was out: it says so
