# titrate: limits, step sizes and intervals from the library.
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import since, status_of


def test_titration_within_the_rules_changes_dose_and_rate():
    core = make_core()
    start_norepinephrine(core)
    result = core.titrate(1, 200000, "mcg/kg/min", 2 * MIN)
    assert result.ok and result.dose == 200000 and result.rate == 60 * M
    assert core.rate(1) == 60 * M


def test_titration_in_another_unit_uses_the_weight_given_at_start():
    core = make_core()
    start_norepinephrine(core)
    result = core.titrate(1, 16 * M, "mcg/min", 2 * MIN)  # 16 mcg/min at 80 kg
    assert result.ok and result.dose == 200000


def test_titration_is_refused_above_the_hard_max_even_with_override():
    core = make_core()
    start_vasopressin(core)
    result = core.titrate(2, 45000, "units/min", 20 * MIN, override=True)
    assert result.code == "above_hard_max"
    assert status_of(core, 2).dose == 30000


def test_titration_past_the_soft_max_needs_override():
    core = make_core()
    start_vasopressin(core)
    assert core.titrate(2, 35000, "units/min", 20 * MIN).code == "above_soft_max"
    result = core.titrate(2, 35000, "units/min", 20 * MIN, override=True)
    assert result.code == "ok_override" and status_of(core, 2).dose == 35000


def test_dobutamine_at_most_doubles_every_15_minutes():
    core = make_core()
    start_dobutamine(core)  # 2.5 mcg/kg/min at t=0
    result = core.titrate(1, 5 * M, "mcg/kg/min", 10 * MIN)
    assert result.code == "too_soon" and result.next_at_ms == 15 * MIN
    assert core.titrate(1, 5 * M, "mcg/kg/min", 15 * MIN).ok
    result = core.titrate(1, 12 * M, "mcg/kg/min", 30 * MIN)
    assert result.code == "step_up_too_large" and result.allowed == (5 * M, 10 * M, "mcg/kg/min")
    assert core.titrate(1, 10 * M, "mcg/kg/min", 30 * MIN).ok


def test_step_up_limits_are_soft():
    core = make_core()
    start_dobutamine(core)
    result = core.titrate(1, 10 * M, "mcg/kg/min", MIN, override=True)
    assert result.code == "ok_override" and "override" in result.message


def test_a_taper_drugs_larger_step_down_is_a_soft_limit():
    # issue 9, finding 3: coming down fast (an overshoot) takes an override, logged; it
    # was refused even with one
    core = make_core()
    start_vasopressin(core)
    result = core.titrate(2, 20000, "units/min", MIN)
    assert result.code == "step_down_too_large" and "needs override" in result.message
    assert result.allowed == (25000, 30000, "units/min")
    assert status_of(core, 2).dose == 30000
    result = core.titrate(2, 20000, "units/min", MIN, override=True)
    assert result.code == "ok_override" and "step" in result.message, result.message
    assert status_of(core, 2).dose == 20000 and status_of(core, 2).override


def test_a_taper_drug_steps_down_sooner_than_its_interval_only_by_override():
    core = make_core()
    start_vasopressin(core)
    assert core.titrate(2, 25000, "units/min", MIN).ok
    result = core.titrate(2, 20000, "units/min", 30 * MIN)
    assert result.code == "too_soon" and result.next_at_ms == 61 * MIN
    result = core.titrate(2, 20000, "units/min", 30 * MIN, override=True)
    assert result.code == "ok_override" and "interval" in result.message, result.message


def test_the_overshoots_of_issue_9_come_down_with_an_override():
    # vasopressin 0.04 -> 0.03 (digital ischaemia), norepinephrine 0.5 -> 0.2 (MAP)
    core = make_core()
    start_vasopressin(core, dose=40000, override=True)
    assert core.titrate(2, 30000, "units/min", 2 * MIN).code == "step_down_too_large"
    assert core.titrate(2, 30000, "units/min", 2 * MIN, override=True).ok
    start_norepinephrine(core, dose=500000, override=True)
    assert core.titrate(1, 200000, "mcg/kg/min", 2 * MIN, override=True).ok
    assert core.rate(1) == 60 * M


def test_coming_down_from_past_the_soft_max_needs_no_override_again():
    # norepinephrine at 2 mcg/kg/min (past its soft max 1 by override): 1.95 is lower,
    # the safe side; it was refused "needs override"
    core = make_core()
    start_norepinephrine(core, dose=2 * M, override=True)
    result = core.titrate(1, 1950000, "mcg/kg/min", MIN)
    # no override noted: the command carried none (the log's received entry says so too)
    assert result.ok and result.code == "ok", (result.code, result.message)
    assert status_of(core, 1).override  # the dose is still past the soft max, as overridden
    assert core.titrate(1, 1950000, "mcg/kg/min", 2 * MIN).ok  # a repeat is harmless
    assert core.titrate(1, 2 * M, "mcg/kg/min", 10 * MIN).code == "above_soft_max"  # up: again
    # lower, but past another soft limit (and a step): that still needs an override
    result = core.titrate(1, 10000, "mcg/kg/min", 20 * MIN)
    assert not result.ok and result.code == "below_soft_min", result.code


def test_non_taper_drug_may_come_down_at_once():
    core = make_core()
    start_dobutamine(core)
    core.titrate(1, 5 * M, "mcg/kg/min", 15 * MIN)
    assert core.titrate(1, 2500000, "mcg/kg/min", 16 * MIN).ok


def test_repeating_a_titration_changes_nothing():
    core = make_core()
    start_norepinephrine(core)
    core.titrate(1, 200000, "mcg/kg/min", 2 * MIN)
    before = len(core.log)
    result = core.titrate(1, 200000, "mcg/kg/min", 2 * MIN + 5)
    assert result.ok and result.dose == 200000
    assert not [e for e in since(core.log, before) if e[3] == "rate"]


def test_titration_to_zero_is_not_a_stop():
    core = make_core()
    start_norepinephrine(core)
    assert core.titrate(1, 0, "mcg/kg/min", MIN).code == "below_hard_min"
    assert status_of(core, 1).state == "running"


def test_titration_of_an_idle_channel_is_refused():
    core = make_core()
    assert core.titrate(1, 100000, "mcg/kg/min", 0).code == "invalid_state"
    assert core.titrate(9, 100000, "mcg/kg/min", 0).code == "unknown_channel"


def test_titration_unit_checks_apply():
    core = make_core()
    start_norepinephrine(core)
    assert core.titrate(1, 20000, "mg/kg/min", MIN).code == "likely_unit_slip"
    assert core.titrate(1, 12 * M, "mL/h", MIN).code == "rate_not_dose"
    assert core.titrate(1, 6 * M, "mcg/h", MIN).code == "per_hour_unit"


def test_too_soon_says_when_relative_to_now_not_as_an_uptime():
    core = make_core()
    start_norepinephrine(core, now=10 * MIN)
    result = core.titrate(1, 120000, "mcg/kg/min", 10 * MIN + 2000)
    assert result.code == "too_soon" and result.next_at_ms == 12 * MIN
    assert "again in 1 min 58 s" in result.message and str(12 * MIN) not in result.message


def test_titration_above_the_pumps_max_rate_is_refused_naming_the_dose_it_allows():
    # dobutamine at 300 kg from 1 mg/mL: 18 mL/h per mcg/kg/min, so a 500 mL/h pump
    # delivers at most 27.777777 mcg/kg/min, inside the drug's limits (hard max 40)
    core = make_core(max_rate=500 * M)
    assert start_dobutamine(core, weight=300 * M).ok  # 2.5: 45 mL/h
    for i, dose in enumerate((5 * M, 10 * M, 20 * M)):  # doubling every 15 min
        assert core.titrate(1, dose, "mcg/kg/min", (i + 1) * 15 * MIN).ok
    assert core.rate(1) == 360 * M
    result = core.titrate(1, 40 * M, "mcg/kg/min", 60 * MIN, override=True)  # 720 mL/h
    assert result.code == "above_max_rate", result.message
    assert result.allowed == (2 * M, 27777777, "mcg/kg/min")
    assert "27.777777" in result.message
    assert core.rate(1) == 360 * M and status_of(core, 1).dose == 20 * M
    assert core.titrate(1, 27777777, "mcg/kg/min", 60 * MIN, override=True).ok
    assert core.rate(1) <= 500 * M


def test_a_unit_slip_is_named_in_the_drugs_own_unit_family():
    core = make_core()
    start_vasopressin(core)  # 0.03 units/min
    start_norepinephrine(core, ch=1)  # 0.1 mcg/kg/min
    for ch, dose, unit, says in (
        (2, 30 * M, "units/min", "1000x usual (thousandfold); meant 0.03 units/min?"),
        (2, 300000, "units/min", "tenfold: a misplaced decimal point?"),
        (1, 100000, "mg/kg/min", "thousandfold: mg for mcg?"),
        (1, 9 * M, "mcg/kg/min", "(tenfold or per minute): check the order"),
    ):
        result = core.titrate(ch, dose, unit, 20 * MIN)
        assert result.code == "likely_unit_slip" and says in result.message, result.message
    assert core.rate(1) == 30 * M and core.rate(2) == 18 * M


def test_a_titration_that_takes_a_taper_back_past_the_soft_max_needs_an_override():
    # the stop the clinician chose is undone: a dose past the soft max runs on only by a
    # fresh override, however little below the taper's dose (a millionth was enough)
    core = make_core()
    start_norepinephrine(core, dose=2 * M, override=True)
    core.stop(1, HOUR)
    dose = status_of(core, 1).dose
    assert status_of(core, 1).state == "tapering" and dose > 1 * M
    for new in (dose, dose - 1):
        result = core.titrate(1, new, "mcg/kg/min", HOUR + MIN)
        assert result.code == "above_soft_max", (new, result.code, result.message)
    assert status_of(core, 1).state == "tapering"
    assert core.titrate(1, dose - 1, "mcg/kg/min", HOUR + MIN, override=True).ok


def test_a_taper_below_the_soft_max_no_longer_reads_as_overridden():
    # STATUS's override: a taper's step within the limits is the pump's, no override's
    core = make_core()
    start_vasopressin(core, dose=40000, override=True)
    core.stop(2, 0)
    assert status_of(core, 2).dose == 35000 and status_of(core, 2).override
    core.tick(HOUR)
    assert status_of(core, 2).dose == 30000 and not status_of(core, 2).override
