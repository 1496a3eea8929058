# The firmware shell with dummy ports, on CPython and on MicroPython alike.
from firmware import persist
from protocol import messages
from tests.portable.shellkit import NOREPI, PERIOD, Host, ports, shell


def _running():
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    name, fields = host.request("START", NOREPI)
    assert name == "START_R", fields
    return sh, p, host


def test_uptime_does_not_wrap_with_ticks():
    p = ports(start=PERIOD - 1500)
    sh = shell(p)
    for _ in range(10):
        p["clock"].advance(1000)
        sh.step()
    assert sh.uptime == 10000


def test_requests_before_hello_get_an_error():
    p = ports()
    host = Host(shell(p), p)
    name, fields = host.request("STATUS", {"ch": 1})
    assert name == "ERROR" and fields["code"] == 3


def test_start_over_the_link_sets_the_motor_and_saves_the_state():
    sh, p, host = _running()
    assert p["motors"][0].rate == 26250000  # 0.1 mcg/kg/min x 70 kg / 16 mcg/mL
    snapshot, uptime = persist.load(p["store"])
    assert snapshot["channels"][0]["drug"] == "norepinephrine"
    name, status = host.request("STATUS", {"ch": 1})
    assert status["state"] == "running" and status["rate"] == 26250000


def test_state_changes_are_sent_as_events():
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    host.seq += 1
    host.send_wire(messages.to_wire("START", host.seq, NOREPI))
    names = [f[0] for f in host.frames()]
    assert "EV_STATE" in names and "START_R" in names


def test_a_retry_is_answered_from_the_cache_and_runs_once():
    sh, p, host = _running()
    host.seq += 1
    wire = messages.to_wire("STOP", host.seq, {"ch": 1})
    host.send_wire(wire)
    first = [f for f in host.frames() if f[0] == "STOP_R"]
    host.send_wire(wire)
    second = [f for f in host.frames() if f[0] == "STOP_R"]
    assert first == second and len(first) == 1
    stops = [e for e in sh.core.log.entries() if e[3] == "command" and e[4] == "stop"]
    assert len(stops) == 1


def test_delivered_volume_and_faults_reach_the_core():
    sh, p, host = _running()
    p["motors"][0].owed = 1000000
    sh.step()
    assert sh.core.status(1).volume_infused == 1000000
    p["motors"][0].fault_kind = "occlusion"
    sh.step()
    assert p["motors"][0].rate == 0
    assert p["alarm"].level == 3


def test_the_watchdog_is_fed_once_per_complete_turn():
    p = ports()
    sh = shell(p)
    for _ in range(5):
        sh.step()
    assert p["watchdog"].fed == 5


def test_a_reset_resumes_the_channel_at_its_rate_with_an_alarm():
    sh, p, host = _running()
    p["clock"].advance(5000)
    sh.step()
    saved_uptime = sh.uptime
    again = ports(store=p["store"])
    sh2 = shell(again)
    assert sh2.uptime >= saved_uptime - 5000
    assert sh2.core.rate(1) == 26250000
    assert "resumed_after_reset" in [a.code for a in sh2.core.alarms()]
    sh2.step()
    assert again["motors"][0].rate == 26250000


def test_a_corrupt_store_starts_nothing():
    sh, p, host = _running()
    record = bytearray(p["store"].files["state.json"])
    record[-3] ^= 1
    p["store"].files["state.json"] = bytes(record)
    again = ports(store=p["store"])
    sh2 = shell(again)
    sh2.step()
    assert sh2.core.rate(1) == 0 and again["motors"][0].rate == 0
    assert "not restored" in sh2.core.log.entries()[-1][5]
