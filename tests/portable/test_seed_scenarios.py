# Each seed document's key rule as a named scenario (docs/sources/<file>).
from firmware.handover import move
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    alarm,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)


def test_seed_000_89f263fe6da11cd7_norepinephrine_first_line_and_phenylephrine_salvage_only():
    # "Start at 2-3 mL/min (8-12 mcg/min)": 12 mcg/min at 70 kg, 4 mcg/mL = 3 mL/min. The
    # library's entry is per kg, its start max seed 003's weight-based "0.05 to 0.1
    # mcg/kg/min": 12 mcg/min at 70 kg is above it (a soft limit, an override runs it).
    core = make_core()
    args = {"weight": 70 * M, "conc": 4 * M, "conc_unit": "mcg/mL", "volume": 250 * M}
    result = core.start(1, "norepinephrine", 12 * M, "mcg/min", 0, **args)
    assert result.code == "above_start_max" and "at most at 0.1 mcg/kg/min" in result.message
    result = core.start(1, "norepinephrine", 12 * M, "mcg/min", 0, override=True, **args)
    assert result.ok and result.code == "ok_override"
    # 0.1714285... mcg/kg/min, rounded to the nearest sub-unit and reported as converted:
    # the pump runs (and says it runs) 0.171429 mcg/kg/min, 180.00045 mL/h.
    assert result.dose == 171429 and "0.171429 mcg/kg/min" in result.message
    assert result.rate == 180000450
    # "Do not use phenylephrine as first-line agent - reserve for salvage therapy only"
    solo = make_core()
    args = {"conc": 40 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    result = solo.start(1, "phenylephrine", 30 * M, "mcg/min", 0, **args)
    assert result.code == "ok_advisory" and "salvage" in result.message


def test_seed_001_360da576e83f463a_dobutamine_starts_at_2_5_and_at_most_doubles_every_15_min():
    core = make_core()
    assert start_dobutamine(core, dose=5 * M).code == "above_start_max"
    assert start_dobutamine(core, dose=2500000).ok
    assert core.titrate(1, 5 * M, "mcg/kg/min", 14 * MIN).code == "too_soon"
    assert core.titrate(1, 5 * M, "mcg/kg/min", 15 * MIN).ok
    assert core.titrate(1, 10000001, "mcg/kg/min", 30 * MIN).code == "step_up_too_large"
    assert core.titrate(1, 10 * M, "mcg/kg/min", 30 * MIN).ok


def test_seed_002_2e899deec2a64180_vasopressin_never_above_0_04_and_not_monotherapy():
    core = make_core()
    start_norepinephrine(core, ch=1)
    assert start_vasopressin(core, ch=2, dose=30000).code == "ok"
    # "do not exceed 0.04 units/min": no command or override gets past it
    assert core.titrate(2, 40001, "units/min", HOUR, override=True).code == "above_hard_max"
    assert core.titrate(2, 41 * M, "milliunits/min", HOUR, override=True).code == "above_hard_max"
    assert core.titrate(2, 40000, "units/min", HOUR, override=True).ok
    # "do not use vasopressin as monotherapy": norepinephrine gone, the advisory rises
    core.emergency_stop(1, "clinician", HOUR + MIN)
    assert alarm(core, "second_line_alone").ch == 2
    # 4 mg in 1000 mL (4 mcg/mL) is a standard norepinephrine dilution
    assert start_norepinephrine(core, ch=1, conc=4 * M, now=2 * HOUR).ok


def test_seed_003_1d7e3b770c50f250_norepinephrine_is_weaned_never_stopped_abruptly():
    # "a weight-based initial dose of 0.05 to 0.1 micrograms per kilogram per minute":
    # the library's start max; above it needs an override
    assert start_norepinephrine(make_core(), dose=100001).code == "above_start_max"
    core = make_core()
    assert start_norepinephrine(core, dose=100000).code == "ok"
    assert core.titrate(1, 0, "mcg/kg/min", HOUR).code == "below_hard_min"
    assert core.titrate(1, 20000, "mcg/kg/min", HOUR).code == "step_down_too_large"
    result = core.stop(1, HOUR)
    assert result.code == "taper_started"
    doses = [d for _, d in result.plan]
    assert doses == [80000, 60000, 40000, 20000, 0]
    assert core.rate(1) > 0


def test_seed_003_1d7e3b770c50f250_a_syringe_change_mid_wean_keeps_the_wean():
    # "The infusion is reduced gradually over time, rather than stopped abruptly, to
    # prevent rebound hypotension": a new syringe during the wean (issue 9, finding 2)
    # takes the wean on, step by step, and the old one stops with no taper of its own
    core = make_core()
    assert start_norepinephrine(core, dose=100000).code == "ok"
    assert core.stop(1, HOUR).code == "taper_started"  # 0.08 at once, 0.02 every 15 min
    r = move(core, 1, 2, "norepinephrine", 16 * M, "mcg/mL", 20 * M, None, HOUR + 5 * MIN)
    assert r.code == "handed_over" and core.rate(1) == 0
    doses = []
    for k in range(1, 5):
        core.tick(HOUR + k * 15 * MIN)
        doses.append(core.channel(2).dose)
    assert doses == [60000, 40000, 20000, 0]  # the same plan, on the new syringe
    assert core.rate(1) == 0


def test_seed_004_d16707d6a8fcc8f8_norepinephrine_in_mg_per_kg_min_is_a_1000_fold_slip():
    # "Initial dose: 0.02 mg/kg/min, titrated up to 0.1-0.2 mg/kg/min"
    core = make_core()
    for dose in (20000, 100000, 200000):
        result = start_norepinephrine(core, dose=dose, override=True, unit="mg/kg/min")
        assert not result.ok and result.code == "likely_unit_slip", result.message
        assert "thousandfold" in result.message
        assert core.rate(1) == 0
    result = start_norepinephrine(core, dose=100000, unit="mg/kg/min")
    assert "(thousandfold: mg for mcg?); meant 0.1 mcg/kg/min?" in result.message
    # 0.02 mg/kg/min is usual as 0.02 mcg/kg/min and as 0.02 mg/min (0.29 mcg/kg/min at
    # 70 kg) alike: no reading is suggested, a guess would be one dose someone types
    result = start_norepinephrine(core, dose=20000, unit="mg/kg/min")
    assert "meant" not in result.message and "(thousandfold or per minute)" in result.message
