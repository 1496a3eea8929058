# The firmware shell with dummy ports, on CPython and on MicroPython alike.
from firmware import handlers, persist
from firmware.handlers import FIRMWARE_VERSION
from firmware.result import refuse
from firmware.sensors import CLEAR_MS
from protocol import catalog, messages
from protocol.decoder import Decoder
from protocol.reasons import NAME, NUMBER, UNKNOWN, number
from tests.portable import coreview
from tests.portable.coreview import entries, status_of
from tests.portable.shellkit import NOREPI, PERIOD, VASO, Host, ports, shell


def _running():
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    name, fields = host.request("START", NOREPI)
    assert name == "START_R", fields
    return sh, p, host


def test_a_running_shell_holds_at_most_46_attributes():
    # MicroPython grows a dict by steps: 47 entries in 752 B, 48 in 944 B, a stretch a
    # restoring boot at 186k found none of (51 then: measured); the bounded-heap soak
    # sets a 47th (tests/heap/soak.py wraps _fault). So STATUS_R's ids are the spare of
    # the alarm ids sent, a motor's rate set is kept in _sent, and a link's failure to
    # write an event is _changed's own (firmware/shell.py).
    sh, p, host = _running()
    p["clock"].advance(1000)
    sh.step()
    assert len(sh.__dict__) <= 46, sorted(sh.__dict__)


def test_uptime_does_not_wrap_with_ticks():
    p = ports(start=PERIOD - 1500)
    sh = shell(p)
    for _ in range(10):
        p["clock"].advance(1000)
        sh.step()
    assert sh.uptime_ms() == 10000


def test_requests_before_hello_get_an_error():
    p = ports()
    host = Host(shell(p), p)
    name, fields = host.request("STATUS", {"ch": 1})
    assert name == "ERROR" and fields["code"] == 3


def test_start_over_the_link_sets_the_motor_and_saves_the_state():
    sh, p, host = _running()
    assert p["motors"][0].rate == 26250000  # 0.1 mcg/kg/min x 70 kg / 16 mcg/mL
    snapshot, uptime = persist.Record(p["store"]).load()
    assert snapshot["channels"][0]["drug"] == "norepinephrine"
    name, status = host.request("STATUS", {"ch": 1})
    assert status["state"] == "running" and status["rate"] == 26250000


def test_state_changes_are_sent_as_events():
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    host.send_wire(host.wire("START", NOREPI))
    names = [f[0] for f in host.frames()]
    assert "EV_STATE" in names and "START_R" in names


def test_a_retry_is_answered_from_the_cache_and_runs_once():
    sh, p, host = _running()
    wire = host.wire("STOP", {"ch": 1})
    host.send_wire(wire)
    first = [f for f in host.frames() if f[0] == "STOP_R"]
    host.send_wire(wire)
    second = [f for f in host.frames() if f[0] == "STOP_R"]
    assert first == second and len(first) == 1
    stops = [e for e in entries(sh.core.log) if e[3] == "stop"]
    assert len(stops) == 1


def test_delivered_volume_and_faults_reach_the_core():
    sh, p, host = _running()
    p["motors"][0].owed = 1000000
    sh.step()
    assert status_of(sh.core, 1).volume_infused == 1000000
    p["motors"][0].fault_kind = "occlusion"
    sh.step()
    assert p["motors"][0].rate == 0
    assert p["alarm"].level == 3


def test_a_start_in_the_turn_a_fault_begins_is_stopped_by_it_with_its_alarm():
    # The link is served before the ports are read (a port that raises leaves it
    # served): a START in the turn an occlusion begins runs, and the same turn's
    # report stops it, alarmed; the next START is refused.
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    wire = host.wire("START", NOREPI)
    host.send_wire(wire[:-1])  # all but the frame's last byte: nothing to serve yet
    p["motors"][0].fault_kind = "occlusion"
    host.send_wire(wire[-1:])  # one turn: the START served, then the sensor read
    assert host.answer(host.seq)[0] == "START_R"
    assert p["motors"][0].rate == 0 and status_of(sh.core, 1).state == "stopped"
    assert [a.code for a in sh.core.alarms() if a.active] == ["occlusion"]
    name, r = host.request("START", NOREPI)
    assert (name, NAME[r["code"]]) == ("REFUSED", "fault_active"), (name, r)
    assert "occlusion" in r["message"] and p["motors"][0].rate == 0


def test_a_sensor_that_clears_lets_the_channel_start_and_ends_the_alarm():
    sh, p, host = _running()
    p["motors"][0].fault_kind = "occlusion"
    sh.step()
    (occlusion,) = [a for a in sh.core.alarms() if a.code == "occlusion"]
    assert host.request("ACK", {"alarm_id": occlusion.id})[0] == "ACK_R"
    assert occlusion in sh.core.alarms()  # acknowledged, listed while it lasts
    assert NAME[host.request("START", NOREPI)[1]["code"]] == "fault_active"
    p["motors"][0].fault_kind = None
    sh.step()  # clear from now: an end counts once it lasted CLEAR_MS
    p["clock"].advance(CLEAR_MS - 1)
    sh.step()
    assert NAME[host.request("START", NOREPI)[1]["code"]] == "fault_active"
    p["clock"].advance(1)
    sh.step()
    assert occlusion not in sh.core.alarms()
    name, r = host.request("START", NOREPI)
    assert name == "START_R" and p["motors"][0].rate == 26250000, (name, r)


def test_a_sensor_that_chatters_is_one_fault_with_one_alarm():
    # on and off every turn for 200 turns: one alarm and its decision and rate change
    # logged once, not an alarm, a log entry and a store write for every edge
    sh, p, host = _running()
    motor = p["motors"][0]
    seq = sh.core.log.next_seq
    for turn in range(200):
        motor.fault_kind = "occlusion" if turn % 2 == 0 else None
        p["clock"].advance(1)
        sh.step()
    assert [a.code for a in sh.core.alarms() if a.code == "occlusion"] == ["occlusion"]
    codes = [e[4] for e in coreview.entries(sh.core.log) if e[0] >= seq]
    assert codes == ["rate_changed", "occlusion", "occlusion"], codes
    assert motor.rate == 0


def test_a_fault_still_reported_after_a_reset_is_raised_again_and_holds_the_channel():
    sh, p, host = _running()
    p["motors"][0].fault_kind = "air_in_line"
    sh.step()
    again = ports(store=p["store"])
    again["motors"][0].fault_kind = "air_in_line"  # the air is still in the line
    sh2 = shell(again)
    sh2.begin()
    host2 = Host(sh2, again)
    host2.hello()
    (air,) = [a for a in sh2.core.alarms() if a.code == "air_in_line"]
    assert air.active
    assert NAME[host2.request("START", NOREPI)[1]["code"]] == "fault_active"


def test_a_fault_that_cleared_while_the_board_was_off_can_be_acknowledged_away():
    sh, p, host = _running()
    p["motors"][0].fault_kind = "occlusion"
    sh.step()
    sh2 = shell(ports(store=p["store"]))  # the new syringe line is clear
    sh2.begin()
    sh2.step()
    (occlusion,) = [a for a in sh2.core.alarms() if a.code == "occlusion"]
    assert not occlusion.active
    assert sh2.core.ack(occlusion.id, sh2.uptime_ms()).ok
    assert occlusion not in sh2.core.alarms()


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
    saved_uptime = sh.uptime_ms()
    again = ports(store=p["store"])
    sh2 = shell(again)
    assert sh2.uptime_ms() >= saved_uptime - 5000
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
    sh2.begin()  # as firmware/main.py start() does
    sh2.step()
    assert sh2.core.rate(1) == 0 and again["motors"][0].rate == 0
    (lost,) = sh2.core.alarms()
    assert (lost.code, lost.priority) == ("store_lost", "high")
    assert "fails its CRC" in lost.message
    assert again["alarm"].level == 3


def test_a_first_boot_with_no_store_raises_no_alarm():
    p = ports()
    sh = shell(p)
    sh.begin()
    sh.step()
    assert sh.core.alarms() == [] and p["alarm"].level == 0


def _at_one_mcg_kg_min():
    # Norepinephrine starts at 0.1 at most and rises by 0.1 every 2 min: 1 mcg/kg/min
    # takes nine steps. Its taper from there is 0.02 every 15 min: 50 steps.
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    start = dict(NOREPI)
    start["dose"] = 100000
    assert host.request("START", start)[0] == "START_R"
    for dose in range(200000, 1000001, 100000):
        p["clock"].advance(120000)
        sh.step()
        name, r = host.request(
            "TITRATE", {"ch": 1, "dose": dose, "unit": "mcg/kg/min", "override": dose > 1000000}
        )
        assert name == "TITRATE_R", r
    return sh, p, host


def test_a_long_taper_is_reachable_whole_page_by_page():
    sh, p, host = _at_one_mcg_kg_min()
    name, stop = host.request("STOP", {"ch": 1})
    assert name == "STOP_R", stop
    total = stop["total"]
    assert total == 50 and len(stop["plan"]) == catalog.TAPER_PAGE
    plan = stop["plan"]
    while len(plan) < total:
        name, page = host.request("TAPER", {"ch": 1, "first": len(plan)})
        assert name == "TAPER_R" and page["total"] == total and page["unit"] == stop["unit"]
        plan += page["plan"]
    assert len(plan) == total
    doses = [s["dose"] for s in plan]
    assert doses[0] == 980000 and doses[-2] == 20000 and doses[-1] == 0
    for i in range(1, total):
        assert plan[i]["at_ms"] == plan[i - 1]["at_ms"] + 900000
    # STATUS tells when the next of those steps is due.
    name, status = host.request("STATUS", {"ch": 1})
    assert status["state"] == "tapering" and status["taper_next_ms"] == plan[1]["at_ms"]


def test_status_gives_the_last_starts_concentration_weight_and_volume():
    sh, p, host = _running()
    name, idle = host.request("STATUS", {"ch": 2})
    assert name == "STATUS_R"
    assert (idle["conc"], idle["conc_unit"], idle["weight"], idle["volume"]) == (
        None,
        "",
        None,
        None,
    )
    host.request("START", VASO)
    sh.core.delivered(1, 5000000)
    name, s = host.request("STATUS", {"ch": 1})
    assert (s["conc"], s["conc_unit"], s["weight"]) == (16000000, "mcg/mL", 70000000)
    # the volume programmed stays what START said while the volume left goes down
    assert (s["volume"], s["volume_left"]) == (50000000, 45000000)
    host.request("ESTOP", {"ch": 2, "reason": "clinician"})
    name, s = host.request("STATUS", {"ch": 2})  # stopped, its order still shown
    assert s["state"] == "stopped"
    # vasopressin's START gave no weight: it ran at the patient's, channel 1's start's
    assert (s["conc"], s["conc_unit"], s["weight"], s["volume"]) == (
        1000000,
        "units/mL",
        70000000,
        20000000,
    )
    assert (idle["patient_weight"], s["patient_weight"]) == (70000000, 70000000)


def test_taper_of_a_channel_not_tapering_is_refused():
    sh, p, host = _running()
    name, r = host.request("TAPER", {"ch": 1, "first": 0})
    assert (name, NAME[r["code"]]) == ("REFUSED", "invalid_state")
    assert "no taper plan" in r["message"]
    name, r = host.request("TAPER", {"ch": 9, "first": 0})
    assert (name, NAME[r["code"]]) == ("REFUSED", "unknown_channel")


def test_a_refusal_about_time_carries_the_device_uptime():
    sh, p, host = _running()
    name, r = host.request(
        "TITRATE", {"ch": 1, "dose": 150000, "unit": "mcg/kg/min", "override": False}
    )
    assert (name, NAME[r["code"]]) == ("REFUSED", "too_soon")
    assert r["uptime_ms"] == sh.uptime_ms() and r["next_at_ms"] > r["uptime_ms"]


def test_hello_names_the_library_whole_and_the_bundle():
    p = ports()
    name, r = Host(shell(p), p).hello()
    assert r["library"] == "pumpguard-adult-icu-vasoactive"
    assert r["bundle"] == ""  # run from source
    assert r["firmware"] == FIRMWARE_VERSION


def test_an_unknown_reason_is_sent_as_such_never_as_another():
    assert number("ok") == 0
    assert number("no_such_reason") == UNKNOWN
    assert UNKNOWN not in NAME
    # a refusal too: the request is answered (REFUSED, code 255), the loop goes on
    name, fields = handlers.refused(refuse("no_such_reason", "x", (1, 2, "mL")), 5)
    # (the handlers' fields are in their catalog order: code, message, lo, ..., uptime_ms)
    assert (name, fields[0], fields[2], fields[6]) == ("REFUSED", UNKNOWN, 1, 5)
    frame = Decoder().decode(messages.to_wire(name, 9, fields))[0]
    assert messages.decode(frame.msg_id, frame.payload)["code"] == UNKNOWN


def test_every_reason_the_core_logs_or_alarms_goes_out_whole():
    # Every command, decision, rate change, taper step, fault, alarm, ack, link loss,
    # restore and lost store, read back over the wire: each code has its own wire
    # number (never reasons.UNKNOWN) and each text arrives uncut.
    sh, p, host = _at_one_mcg_kg_min()
    for dose in (50000, 30000):  # above the hard max, then a dose that runs
        host.request("START", dict(VASO, dose=dose))
    host.request("TITRATE", {"ch": 1, "dose": 5000000, "unit": "mcg/kg/min", "override": False})
    host.request("STOP", {"ch": 1})
    assert host.request("SUPERVISE", {"interval_s": 2}) == ("SUPERVISE_R", {"interval_s": 2})
    p["clock"].advance(1800000)  # two taper steps; the supervising host is silent: link lost
    sh.step()
    p["motors"][1].fault_kind = "occlusion"
    sh.step()
    host.request("ESTOP", {"ch": 1, "reason": "clinician"})
    for alarm in sh.core.alarms():
        host.request("ACK", {"alarm_id": alarm.id})
    host.request("ACK", {"alarm_id": 999})
    codes = set()
    for core_log in (sh.core.log, _after_lost_store(p).core.log):
        for e in coreview.entries(core_log):
            codes.add(e[4])
    assert "store_lost" in codes and "taper_step" in codes and "received" in codes
    assert "link_lost" in codes
    for code in codes:
        assert code in NUMBER, code
    first = 0
    entries = []
    while True:
        name, r = host.request("LOG", {"first": first})
        entries += r["entries"]
        if r["next"] == first:
            break
        first = r["next"]
    held = coreview.entries(sh.core.log)
    assert [(e["seq"], e["code"], e["text"]) for e in entries] == [
        (e[0], NUMBER[e[4]], e[5]) for e in held
    ]
    alarms = []
    while True:
        name, r = host.request("ALARMS", {"first": len(alarms)})
        alarms += r["alarms"]
        if len(alarms) >= r["total"]:
            break
    assert [(a["code"], a["message"]) for a in alarms] == [
        (NUMBER[a.code], a.message) for a in sh.core.alarms()
    ]


def _after_lost_store(p):
    record = bytearray(p["store"].files["state.json"])
    record[-3] ^= 1
    p["store"].files["state.json"] = bytes(record)
    return shell(ports(store=p["store"]))


def test_a_new_session_is_never_answered_from_the_old_one():
    # Every host opens with the same HELLO at seq 1, then asks the same INFO at seq 2:
    # byte-identical frames. The second session must get answers of now, not replays.
    p = ports()
    sh = shell(p)
    answers = []
    for _ in range(2):
        host = Host(sh, p)
        assert host.hello()[0] == "HELLO_R"
        answers.append(host.request("INFO", {})[1]["uptime_ms"])
        p["clock"].advance(2000)
    assert answers[1] >= answers[0] + 2000, answers


def test_a_retried_hello_is_answered_anew_and_runs_nothing_twice():
    # HELLO is never cached: a retry of it opens another session (it runs nothing on
    # the safety core). The request before it still belongs to the first session: a
    # copy of it is answered from that session's cache, never run again; the same
    # request in the new session is a new one.
    sh, p, host = _running()
    wire = host.wire("STOP", {"ch": 1}, seq=9)
    host.send_wire(wire)
    assert [f[0] for f in host.frames() if f[1] == 9] == ["STOP_R"]
    first_sid = host.sid
    host.seq = 0
    host.hello()
    host.seq = 0
    assert host.hello()[0] == "HELLO_R"
    assert host.sid != first_sid
    host.send_wire(wire)
    assert [f[0] for f in host.frames() if f[1] == 9] == ["STOP_R"]
    host.send_wire(host.wire("STOP", {"ch": 1}, seq=9))
    assert [f[0] for f in host.frames() if f[1] == 9] == ["REFUSED"]


def test_status_says_override_only_of_a_running_dose():
    # SPEC §5: "override is true while the running dose is one an override set"; a
    # channel stopped after one said true, and the next order on it read as overridden
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    name, r = host.request("START", dict(NOREPI, dose=300000, override=True))
    assert name == "START_R", r
    assert host.request("STATUS", {"ch": 1})[1]["override"] is True
    host.request("ESTOP", {"ch": 1, "reason": "clinician"})
    assert host.request("STATUS", {"ch": 1})[1]["override"] is False


def test_the_loaded_syringe_bounds_the_volume_and_a_start_loads_it():
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.hello()
    name, r = host.request("START", dict(NOREPI, volume=250000000))
    assert (name, NAME[r["code"]]) == ("REFUSED", "volume_out_of_range"), (name, r)
    assert "1-50 mL (the syringe loaded)" in r["message"], r["message"]
    motor = p["motors"][0]
    assert motor.rate == 0 and motor.loaded is None  # a refused start loads nothing
    name, r = host.request("START", dict(NOREPI, volume=20000000))
    assert name == "START_R" and motor.loaded == 20000000


def test_the_syringes_own_measure_lowers_the_volume_left():
    # a syringe loaded with 5 mL where 50 were typed: the plunger's place says so
    sh, p, host = _running()
    motor = p["motors"][0]
    motor.left = lambda: 5000000
    sh.step()
    _, st = host.request("STATUS", {"ch": 1})
    assert st["volume_left"] == 5000000, st
    assert "near_empty" in [a.code for a in sh.core.alarms()]
