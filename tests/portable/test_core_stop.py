# stop, taper-not-stop and emergency stop.
from firmware.channel import Channel
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    alarm,
    library,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, status_of


def test_stop_of_a_drug_without_taper_is_immediate():
    core = make_core()
    start_dobutamine(core)
    result = core.stop(1, MIN)
    assert result.ok and result.code == "stopped" and result.rate == 0
    assert status_of(core, 1).state == "stopped" and core.rate(1) == 0


def test_stop_of_vasopressin_starts_the_label_taper():
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2)
    t = 10 * MIN
    result = core.stop(2, t)
    assert result.ok and result.code == "taper_started"
    doses = [25000, 20000, 15000, 10000, 5000, 0]
    assert result.plan == [(t + i * HOUR, d) for i, d in enumerate(doses)]
    # the first step is taken at once; the channel is still delivering
    assert result.dose == 25000 and core.rate(2) == 15 * M
    assert status_of(core, 2).state == "tapering"
    # logged as it happened: the stop, its decision, then the step it took at once (a
    # report of the log reads the clinician's stop before the pump's first step)
    codes = [e[4] for e in entries(core.log) if e[2] == 2][-4:]
    assert codes == ["received", "taper_started", "rate_changed", "taper_step"], codes


def test_taper_runs_on_ticks_step_by_step_then_stops():
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2)
    core.stop(2, 0)
    seen = [status_of(core, 2).dose]
    for minute in range(1, 6 * 60 + 2):
        core.host_seen(minute * MIN)
        core.tick(minute * MIN)
        if status_of(core, 2).dose != seen[-1]:
            seen.append(status_of(core, 2).dose)
    assert seen == [25000, 20000, 15000, 10000, 5000, 0]
    assert status_of(core, 2).state == "stopped" and core.rate(2) == 0


def test_tick_before_the_next_step_changes_nothing():
    core = make_core()
    start_vasopressin(core)
    core.stop(2, 0)
    core.tick(HOUR - 1)
    assert status_of(core, 2).dose == 25000


def test_first_taper_step_waits_for_the_interval_after_a_titration_down():
    core = make_core()
    start_vasopressin(core)
    core.titrate(2, 25000, "units/min", 0)
    result = core.stop(2, 10 * MIN)
    assert result.plan[0] == (HOUR, 20000)
    assert status_of(core, 2).dose == 25000


def test_stop_at_or_below_the_stop_dose_is_immediate():
    core = make_core()
    start_vasopressin(core, dose=5000, override=True)
    result = core.stop(2, MIN)
    assert result.code == "stopped" and core.rate(2) == 0


def test_stop_during_a_taper_is_refused_with_the_plan():
    core = make_core()
    start_vasopressin(core)
    core.stop(2, 0)
    result = core.stop(2, MIN)
    assert not result.ok and result.code == "invalid_state"
    assert result.plan[-1][1] == 0
    assert status_of(core, 2).state == "tapering"


def test_titration_during_a_taper_takes_the_channel_back():
    core = make_core()
    start_vasopressin(core)
    core.stop(2, 0)
    result = core.titrate(2, 30000, "units/min", 20 * MIN)
    assert result.ok and "taper cancelled" in result.message
    assert status_of(core, 2).state == "running"
    core.tick(2 * HOUR)
    assert status_of(core, 2).dose == 30000


def test_emergency_stop_stops_a_taper_drug_at_once_with_reason_alarm_and_log():
    core = make_core()
    start_norepinephrine(core)
    result = core.emergency_stop(1, "extravasation", MIN)
    assert result.ok and result.code == "emergency_stopped" and core.rate(1) == 0
    assert status_of(core, 1).state == "stopped"
    a = alarm(core, "extravasation")
    assert a.priority == "high" and a.ch == 1
    texts = [e[5] for e in entries(core.log)]
    assert [t for t in texts if "EMERGENCY STOP" in t and "extravasation" in t]


def test_emergency_stop_during_a_taper():
    core = make_core()
    start_vasopressin(core)
    core.stop(2, 0)
    assert core.emergency_stop(2, "air_in_line", MIN).ok
    assert core.rate(2) == 0
    core.tick(5 * HOUR)
    assert status_of(core, 2).state == "stopped"


def test_emergency_stop_needs_a_known_reason():
    core = make_core()
    start_norepinephrine(core)
    result = core.emergency_stop(1, "bored", MIN)
    assert result.code == "unknown_reason" and "clinician" in result.message
    assert core.rate(1) == 30 * M


def test_every_emergency_reason_is_accepted():
    for reason in ("occlusion", "air_in_line", "extravasation", "clinician"):
        core = make_core()
        start_norepinephrine(core)
        assert core.emergency_stop(1, reason, MIN).ok
        assert alarm(core, reason).priority == "high"


def test_restart_after_stop():
    core = make_core()
    start_dobutamine(core)
    core.stop(1, MIN)
    assert start_dobutamine(core, now=2 * MIN).ok


def _assert_taper_keeps_its_rules(drug, was, plan):
    doses = [was] + [d for _, d in plan]
    for i in range(1, len(doses)):  # not zip(): MicroPython's has no strict=
        a, b = doses[i - 1], doses[i]
        assert b == 0 or b >= drug.hard_min, (b, doses)
        assert 0 < a - b <= drug.taper_step, (a, b, doses)


def test_a_taper_never_runs_a_dose_below_the_hard_minimum():
    # norepinephrine 0.025 - 0.02 would be 0.005 (hard_min 0.01); vasopressin 0.0075 -
    # 0.005 would be 0.0025 (hard_min 0.005): the step stops at hard_min, then 0
    core = make_core()
    start_norepinephrine(core, ch=1, dose=25000)
    start_vasopressin(core, ch=2, dose=7500, override=True)
    t = 10 * MIN
    nor = core.stop(1, t)
    vaso = core.stop(2, t)
    assert nor.plan == [(t, 10000), (t + 15 * MIN, 0)]
    assert vaso.plan == [(t, 5000), (t + HOUR, 0)]
    lib = library()
    _assert_taper_keeps_its_rules(lib.drugs["norepinephrine"], 25000, nor.plan)
    _assert_taper_keeps_its_rules(lib.drugs["vasopressin"], 7500, vaso.plan)
    # and the running taper takes exactly those steps
    assert status_of(core, 1).dose == 10000 and status_of(core, 2).dose == 5000
    core.host_seen(t + HOUR)
    core.tick(t + HOUR)
    assert status_of(core, 1).state == "stopped" and status_of(core, 2).state == "stopped"


def test_every_taper_from_every_dose_keeps_its_rules():
    lib = library()
    for name in sorted(lib.drugs):
        drug = lib.drugs[name]
        if not drug.taper:
            continue
        for dose in range(drug.taper_stop_at + 1, drug.taper_stop_at + 3 * drug.taper_step, 500):
            c = Channel(1)
            c.begin(drug, 80 * M, drug.concs[0], 50 * M, 0)
            c.set_dose(dose, 900)
            _assert_taper_keeps_its_rules(drug, dose, c.taper_plan(0))


def test_titrating_to_the_current_dose_during_a_taper_holds_it():
    # a hold is neither a rise nor a fall: it cancels the taper at the current dose and
    # waits for no interval
    core = make_core()
    start_vasopressin(core)
    core.stop(2, 0)  # first step at once: 0.025
    result = core.titrate(2, 25000, "units/min", 4 * MIN)
    assert result.ok and "taper cancelled" in result.message, result.message
    assert status_of(core, 2).state == "running" and status_of(core, 2).dose == 25000
    core.tick(2 * HOUR)
    assert status_of(core, 2).dose == 25000


# -- taper-not-stop has no way around it (issue 9, finding 4) --------------------------


def test_a_titration_down_to_the_stop_dose_then_a_stop_still_waits_a_taper_interval():
    # vasopressin's label tapers 0.005 units/min an hour: 0.01 -> 0.005 -> 0 at once was
    # off in a minute; the step to 0 comes an hour after the dose last fell
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, dose=10000, override=True)
    assert core.titrate(2, 5000, "units/min", 2 * HOUR, override=True).ok
    result = core.stop(2, 2 * HOUR + MIN)
    assert result.ok and result.code == "taper_started", (result.code, result.message)
    assert result.plan == [(3 * HOUR, 0)]
    assert result.message.endswith("never stopped abruptly: off in 59 min"), result.message
    assert status_of(core, 2).state == "tapering" and core.rate(2) == 3 * M
    core.tick(3 * HOUR - 1)
    assert core.rate(2) == 3 * M  # still the stop dose a minute before the hour
    core.tick(3 * HOUR)
    assert core.rate(2) == 0 and status_of(core, 2).state == "stopped"


def test_norepinephrine_titrated_to_its_stop_dose_is_not_cut_off_by_a_stop():
    core = make_core()
    start_norepinephrine(core, dose=70000)
    drug = library().drugs["norepinephrine"]
    stop_at = drug.taper_stop_at
    t = 2 * HOUR
    assert core.titrate(1, stop_at, "mcg/kg/min", t, override=True).ok
    result = core.stop(1, t + MIN)
    assert result.code == "taper_started" and core.rate(1) > 0
    assert result.plan == [(t + drug.taper_interval_ms, 0)]


def test_a_stop_a_full_interval_after_the_last_fall_at_the_stop_dose_is_its_last_step():
    core = make_core()
    start_vasopressin(core, dose=10000, override=True)
    core.titrate(2, 5000, "units/min", 2 * HOUR, override=True)
    result = core.stop(2, 3 * HOUR)
    assert result.code == "stopped" and core.rate(2) == 0
