# Faults are latched (issue 9, finding 5): a fault its sensor still reports is a fact.
# No start on the channel while it lasts, its alarm listed while it lasts (acknowledged
# or not), and every occurrence that begins its own alarm.
from firmware import libsteps
from firmware.core import SafetyCore
from tests.portable.corekit import (
    MIN,
    M,
    alarm,
    codes,
    library,
    make_core,
    start_norepinephrine,
)
from tests.portable.coreview import entries, snapshot, status_of


def _refused_for_the_fault(result, what):
    assert not result.ok and result.code == "fault_active", result.code
    assert what in result.message and "channel 1" in result.message, result.message
    assert "clear it first" in result.message


def _state(core):
    # the channels and alarms, not the time the core last saw
    snap = snapshot(core)
    return snap["channels"], snap["alarms"]


def _emptied_by_the_count(volume=1 * M):
    """A core whose channel 1 delivered its whole programmed volume (norepinephrine):
    the count's own syringe_empty, no sensor's."""
    core = make_core()
    start_norepinephrine(core, volume=volume)
    core.delivered(1, volume)
    core.tick(MIN)
    return core


def test_no_start_while_the_sensor_still_reports_the_fault():
    for kind, said in (("occlusion", "occlusion"), ("air_in_line", "air in line"),
                       ("syringe_empty", "syringe empty"), ("motor", "motor fault")):  # fmt: skip
        core = make_core()
        start_norepinephrine(core)
        core.fault(1, kind, MIN)
        before = _state(core)
        _refused_for_the_fault(start_norepinephrine(core, now=2 * MIN), said)
        assert _state(core) == before and core.rate(1) == 0  # nothing of it applied
        core.fault(1, None, 3 * MIN)
        assert start_norepinephrine(core, now=4 * MIN).ok
        assert core.rate(1) == 30 * M


def test_a_fault_on_an_idle_channel_holds_its_first_start_too():
    core = make_core()
    core.fault(1, "air_in_line", 0)
    assert status_of(core, 1).state == "idle"
    _refused_for_the_fault(start_norepinephrine(core, now=MIN), "air in line")
    assert start_norepinephrine(core, ch=2, now=MIN).ok  # the other channel's sensor is clear


def test_the_fault_alarm_stays_listed_while_the_sensor_reports_it_acknowledged_or_not():
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "occlusion", MIN)
    a = alarm(core, "occlusion")
    assert a.active and a.priority == "high"
    assert core.ack(a.id, 2 * MIN).ok
    assert alarm(core, "occlusion") is a and a.acked  # silenced, still listed
    core.fault(1, None, 3 * MIN)
    assert alarm(core, "occlusion") is None  # seen and over


def test_a_fault_that_clears_unacknowledged_stays_listed_until_seen():
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "occlusion", MIN)
    core.fault(1, None, 2 * MIN)
    a = alarm(core, "occlusion")
    assert a is not None and not a.active and not a.acked
    assert core.ack(a.id, 3 * MIN).ok and alarm(core, "occlusion") is None
    cleared = [e for e in entries(core.log) if e[4] == "fault_cleared"]
    assert len(cleared) == 1 and cleared[0][1:4] == (2 * MIN, 1, "input")


def test_every_occurrence_raises_an_alarm_of_its_own():
    # the same drug at the same dose, so the second alarm reads as the first did: it is
    # still a new occurrence, with a new id, sent and logged again
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "occlusion", MIN)
    first = alarm(core, "occlusion")
    core.fault(1, None, 2 * MIN)
    assert start_norepinephrine(core, now=3 * MIN).ok
    core.fault(1, "occlusion", 4 * MIN)
    second = alarm(core, "occlusion")
    assert second.id != first.id and second.active and not second.acked
    assert second.message == first.message
    raised = [e for e in entries(core.log) if e[3] == "alarm" and e[4] == "occlusion"]
    assert len(raised) == 2
    assert codes(core).count("occlusion") == 1  # one per channel and code, the current


def test_a_fault_the_sensor_reports_instead_of_another_ends_the_first():
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "occlusion", MIN)
    core.fault(1, "air_in_line", 2 * MIN)  # no clear between: the sensor says air now
    assert not alarm(core, "occlusion").active
    assert alarm(core, "air_in_line").active
    _refused_for_the_fault(start_norepinephrine(core, now=3 * MIN), "air in line")


def test_the_programmed_volume_delivered_is_no_latched_fault():
    # no sensor reports it: a start with a new volume (a new syringe) runs again
    core = _emptied_by_the_count(5 * M)
    a = alarm(core, "syringe_empty")
    assert a is not None and not a.active and core.rate(1) == 0
    assert start_norepinephrine(core, now=2 * MIN).ok


def test_a_restore_lists_a_sensor_fault_as_over_until_the_sensor_says_it_again():
    # The record keeps the alarm listed, not the sensor's report: the shell reads the
    # sensors again before any request, and one still reporting raises it anew.
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "occlusion", MIN)
    core.ack(alarm(core, "occlusion").id, 2 * MIN)
    restored = SafetyCore.restore(core.library, snapshot(core), now_ms=0)
    a = alarm(restored, "occlusion")
    assert a is None  # acknowledged and, as far as any sensor yet said, over
    core.fault(2, "air_in_line", 3 * MIN)
    restored = SafetyCore.restore(core.library, snapshot(core), now_ms=0)
    a = alarm(restored, "air_in_line")
    assert a is not None and not a.active and not a.acked
    assert start_norepinephrine(restored, ch=2, now=MIN).ok  # no sensor reported it yet
    restored.fault(2, "air_in_line", 2 * MIN)  # the sensor, read again, still reports it
    assert alarm(restored, "air_in_line").active
    assert start_norepinephrine(restored, ch=2, now=3 * MIN).code == "fault_active"


def test_an_emergency_stop_for_the_fault_the_sensor_reports_keeps_its_alarm_active():
    # one alarm per channel and code: the clinician's air_in_line stop replaces the
    # sensor's alarm, and must not make the air still in the line acknowledgeable away
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "air_in_line", MIN)
    assert core.emergency_stop(1, "air_in_line", 2 * MIN).ok
    a = alarm(core, "air_in_line")
    assert a.active and "EMERGENCY STOP" in a.message
    core.ack(a.id, 3 * MIN)
    assert alarm(core, "air_in_line") is a
    core.fault(1, None, 4 * MIN)
    assert alarm(core, "air_in_line") is None


def test_a_library_switch_keeps_what_the_sensors_report():
    # a push is allowed while no channel delivers, and a faulted one does not: the
    # channels the switch makes anew from their records hold the fault still
    core = make_core()
    start_norepinephrine(core)
    core.fault(1, "occlusion", MIN)
    libsteps.switch(core, library(), libsteps.switched(core, library()))
    _refused_for_the_fault(start_norepinephrine(core, now=2 * MIN), "occlusion")
    core.fault(1, None, 3 * MIN)
    a = alarm(core, "occlusion")
    assert not a.active and core.ack(a.id, 4 * MIN).ok and alarm(core, "occlusion") is None
    assert start_norepinephrine(core, now=5 * MIN).ok


def test_a_rollback_across_a_fault_report_never_refuses_the_stop():
    # the sensors' word is no command's to undo: kept across a rollback, it must not
    # hold a channel the rollback left running from being stopped
    core = make_core()
    start_norepinephrine(core, dose=20000, override=True)
    kept = core.keep()
    core.fault(1, "occlusion", MIN)
    core.rollback(kept)
    assert core.rate(1) > 0
    assert core.emergency_stop(1, "occlusion", 2 * MIN).ok
    start_norepinephrine(core, ch=2, dose=20000, override=True)
    kept = core.keep()
    core.fault(2, "air_in_line", 3 * MIN)
    core.rollback(kept)
    assert core.stop(2, 4 * MIN).ok


# -- the syringe (issue 9, finding 1) ---------------------------------------------------


def test_the_empty_alarm_keeps_the_drug_and_dose_when_the_sensor_reports_it_after_the_count():
    # The count from the volume programmed ends first (the core's own syringe_empty, with
    # the drug and dose), the end-of-travel sensor a turn later: its report made the
    # alarm "flow stopped (channel 1 stopped)", the drug and dose gone from it.
    core = _emptied_by_the_count()
    counted = alarm(core, "syringe_empty")
    assert "norepinephrine 0.1 mcg/kg/min" in counted.message, counted.message
    core.fault(1, "syringe_empty", MIN + 1000)
    sensed = alarm(core, "syringe_empty")
    assert sensed.message == counted.message and sensed.active
    _refused_for_the_fault(start_norepinephrine(core, now=2 * MIN), "syringe empty")


def test_no_volume_larger_than_the_loaded_syringe_is_programmed():
    core = make_core()
    for volume in (250 * M, 20 * M + 1):
        result = start_norepinephrine(core, volume=volume, syringe=20 * M)
        assert result.code == "volume_out_of_range", result.code
        assert "1-20 mL (the syringe loaded)" in result.message, result.message
        assert result.allowed == (1 * M, 20 * M, "mL")
    assert start_norepinephrine(core, volume=20 * M, syringe=20 * M).ok


def test_near_empty_comes_from_the_syringes_measure_when_it_holds_less_than_was_typed():
    # 50 mL typed, 10 loaded: counted from 50 the alarm came 40 mL after the syringe was dry
    core = make_core()
    start_norepinephrine(core, volume=50 * M)  # 30 mL/h: near empty 15 min before, 7.5 mL
    core.delivered(1, 0, 10 * M)
    core.tick(MIN)
    assert alarm(core, "near_empty") is None  # 10 mL: 20 min left
    core.delivered(1, 2 * M + 500000, 7 * M + 500000)
    core.tick(6 * MIN)
    near = alarm(core, "near_empty")
    assert near is not None and "7.5 mL left" in near.message, near
    assert status_of(core, 1).volume_left == 7 * M + 500000
    core.delivered(1, 7 * M + 500000, 0)
    core.tick(21 * MIN)
    assert alarm(core, "syringe_empty") is not None and core.rate(1) == 0


def test_an_earlier_infusions_empty_alarm_lends_no_text_to_a_new_one():
    # the count's syringe_empty of the first syringe, never acknowledged, then another
    # drug started: the sensor's empty names what runs now, not the first one's
    core = _emptied_by_the_count()
    first = alarm(core, "syringe_empty")
    assert start_norepinephrine(core, dose=50000, now=2 * MIN).ok
    core.fault(1, "syringe_empty", 3 * MIN)
    sensed = alarm(core, "syringe_empty")
    assert sensed.id != first.id and sensed.active
    assert "norepinephrine 0.05 mcg/kg/min" in sensed.message, sensed.message
