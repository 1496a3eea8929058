# Alarms: host link silence, near empty, hardware faults, acknowledgement, advisories.
from firmware import startup
from firmware.core import SafetyCore
from tests.portable.corekit import (
    MIN,
    M,
    alarm,
    codes,
    library,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, last, snapshot, status_of


def test_link_silence_holds_the_rate_and_alarms_never_stopping_a_vasopressor():
    core = make_core(link_timeout_ms=10000)
    start_norepinephrine(core)
    start_vasopressin(core)
    core.supervise(2000, 0)  # a host that heartbeats every 2 s
    core.host_seen(1000)
    core.tick(10999)
    assert "link_lost" not in codes(core)
    core.tick(11000)
    a = alarm(core, "link_lost")
    assert a.priority == "high" and a.active and "norepinephrine" in a.message
    for t in range(11000, 24 * 3600 * 1000, 10 * MIN):
        core.tick(t)
    assert core.rate(1) == 30 * M and core.rate(2) == 18 * M
    assert status_of(core, 1).state == "running" and status_of(core, 2).state == "running"


def test_link_alarm_rises_once_and_clears_when_the_host_is_back():
    core = make_core(link_timeout_ms=10000)
    core.supervise(2000, 0)
    start_norepinephrine(core)
    for t in range(10000, 20000, 100):
        core.tick(t)
    assert len([e for e in entries(core.log) if e[4] == "link_lost" and e[3] == "alarm"]) == 1
    core.host_seen(20000)
    a = alarm(core, "link_lost")
    assert not a.active and not a.acked  # stays listed until seen
    assert core.ack(a.id, 21000).code == "acked"
    assert alarm(core, "link_lost") is None


def test_near_empty_alarm_with_time_to_empty_well_before_empty():
    core = make_core(near_empty_s=900)
    start_norepinephrine(core)  # 30 mL/h from 50 mL: threshold 7.5 mL
    core.delivered(1, 42 * M)
    core.tick(MIN)
    assert "near_empty" not in codes(core)
    core.delivered(1, M // 2)
    core.tick(2 * MIN)
    a = alarm(core, "near_empty")
    assert a.priority == "high"  # taper drug: running out is a stop
    assert "empty in about 15 min" in a.message and "7.5 mL left" in a.message
    assert status_of(core, 1).time_to_empty_s == 900


def test_near_empty_threshold_is_configurable_and_medium_for_other_drugs():
    core = make_core(near_empty_s=1800)
    start_dobutamine(core)  # 12 mL/h: 30 min is 6 mL
    core.delivered(1, 44 * M)
    core.tick(MIN)
    a = alarm(core, "near_empty")
    assert a is not None and a.priority == "medium"


def test_running_empty_stops_flow_with_a_high_alarm():
    core = make_core()
    start_norepinephrine(core)
    core.delivered(1, 50 * M)
    assert core.pending  # the shell ticks in the same turn: the tick has the time
    core.tick(MIN)
    assert core.rate(1) == 0 and status_of(core, 1).state == "stopped"
    assert alarm(core, "syringe_empty").priority == "high"


def test_hardware_fault_stops_flow_with_a_high_alarm():
    core = make_core()
    start_norepinephrine(core)
    result = core.fault(1, "occlusion", MIN)
    assert result.code == "occlusion" and core.rate(1) == 0
    assert status_of(core, 1).state == "stopped"
    assert alarm(core, "occlusion").priority == "high"
    core.fault(2, "motor", MIN)
    assert alarm(core, "motor_fault").ch == 2


def test_a_fault_kind_the_core_does_not_know_still_stops_the_flow_as_a_motor_fault():
    # a board whose sensor names a fault this firmware lacks: stopped and alarmed, never
    # an exception that leaves the motor running
    core = make_core()
    start_norepinephrine(core)
    result = core.fault(1, "stall", MIN)
    assert result.code == "motor_fault" and core.rate(1) == 0
    a = alarm(core, "motor_fault")
    assert a.active and "stall on channel 1" in a.message
    assert start_norepinephrine(core, now=2 * MIN).code == "fault_active"


def test_ack_of_an_unknown_alarm_is_refused():
    core = make_core()
    assert core.ack(99, 0).code == "unknown_alarm"


def test_active_alarm_stays_listed_after_ack():
    core = make_core(link_timeout_ms=1000)
    core.supervise(300, 0)
    start_norepinephrine(core)
    core.tick(2000)
    a = alarm(core, "link_lost")
    core.ack(a.id, 2100)
    assert alarm(core, "link_lost").acked
    assert "link_lost" in codes(core)


def test_vasopressin_alone_raises_the_monotherapy_advisory():
    core = make_core()
    result = start_vasopressin(core)
    assert result.ok and result.code == "ok_advisory" and "monotherapy" in result.message
    assert alarm(core, "second_line_alone").ch == 2


def test_vasopressin_with_norepinephrine_running_raises_no_advisory():
    core = make_core()
    start_norepinephrine(core)
    assert start_vasopressin(core).code == "ok"
    assert "second_line_alone" not in codes(core)


def test_advisory_rises_when_the_catecholamine_stops_under_vasopressin():
    core = make_core()
    start_norepinephrine(core)
    start_vasopressin(core)
    core.emergency_stop(1, "occlusion", MIN)
    assert alarm(core, "second_line_alone").ch == 2


def test_dopamine_and_phenylephrine_alone_are_advised_against():
    core = make_core()
    args = {"weight": 70 * M, "conc": 1600000, "conc_unit": "mg/mL", "volume": 50 * M}
    assert core.start(1, "dopamine", 5 * M, "mcg/kg/min", 0, **args).code == "ok_advisory"
    args = {"conc": 40 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    assert core.start(2, "phenylephrine", 30 * M, "mcg/min", 0, **args).code == "ok_advisory"


def test_alarms_are_logged():
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "air_in_line", MIN)
    assert [e for e in entries(core.log) if e[3] == "alarm" and e[4] == "air_in_line"]


def test_advisory_is_reported_again_on_a_restart_while_its_alarm_is_still_listed():
    core = make_core()
    start_vasopressin(core)
    core.emergency_stop(2, "clinician", MIN)
    assert alarm(core, "second_line_alone") is not None  # listed until acknowledged
    assert start_vasopressin(core, now=2 * MIN).code == "ok_advisory"


def test_shell_inputs_for_a_channel_that_does_not_exist_are_errors():
    core = make_core()
    for call in (
        lambda: core.delivered(0, M),
        lambda: core.fault(3, "motor", 0),
        lambda: core.rate(0),
        lambda: status_of(core, 3),
    ):
        try:
            call()
        except ValueError as exc:
            assert "channels 1-2" in str(exc)
        else:
            raise AssertionError("channel accepted")


def test_a_lost_store_raises_a_high_alarm_saying_every_channel_started_idle():
    core = make_core()
    a = startup.store_lost(core, "corrupt: not JSON", 1234)
    assert (a.code, a.priority, a.ch, a.at_ms) == ("store_lost", "high", 0, 1234)
    assert "corrupt: not JSON" in a.message and "every channel started idle" in a.message
    assert alarm(core, "store_lost") is a
    assert last(core.log)[1:5] == (1234, 0, "alarm", "store_lost")
    assert core.ack(a.id, 2000).ok and alarm(core, "store_lost") is None


def test_a_link_loss_after_an_idle_one_alarms_anew_with_what_now_runs():
    # An unacknowledged idle link_lost (medium, "nothing running") must not mask a
    # later loss with a vasopressor running: that one is high and names the drug.
    core = make_core(link_timeout_ms=10000)
    core.supervise(2000, 0)
    core.tick(10000)
    idle = alarm(core, "link_lost")
    assert idle.priority == "medium" and "nothing running" in idle.message
    core.host_seen(11000)
    assert not alarm(core, "link_lost").active
    start_norepinephrine(core, now=12000)
    core.tick(22000)
    a = alarm(core, "link_lost")
    assert a.active and a.priority == "high" and "norepinephrine" in a.message
    assert a.id != idle.id and codes(core).count("link_lost") == 1
    raised = [e for e in entries(core.log) if e[3] == "alarm" and e[4] == "link_lost"]
    assert len(raised) == 2 and "high" in raised[1][5]


def test_a_listed_alarm_raised_again_worse_is_replaced_never_kept_stale():
    # The rule for every code, in Alarms.raise_: an unacked alarm that is the same
    # (priority, text, and still active) is not raised twice; anything new replaces it.
    core = make_core()
    first = core._alarms.raise_(0, "link_lost", "medium", "quiet", 0)
    assert core._alarms.raise_(0, "link_lost", "medium", "quiet", 5) is None
    worse = core._alarms.raise_(0, "link_lost", "high", "quiet, norepinephrine held", 9)
    assert worse is not None and worse.id != first.id
    assert [a.priority for a in core.alarms()] == ["high"]


def test_a_link_alarm_restored_active_clears_when_the_host_is_back():
    core = make_core(link_timeout_ms=10000)
    core.supervise(2000, 0)
    core.tick(10000)
    restored = SafetyCore.restore(library(), snapshot(core), 0, link_timeout_ms=10000)
    assert alarm(restored, "link_lost").active
    restored.host_seen(1000)
    assert not alarm(restored, "link_lost").active
