# Adversarial command sequences against the safety core: each once broke a guarantee.
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    codes,
    make_core,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import status_of


def test_a_start_without_a_dose_is_refused_not_raised():
    core = make_core()
    result = start_norepinephrine(core, dose=None)
    assert not result.ok and result.code == "bad_value"
    assert status_of(core, 1).state == "idle" and core.rate(1) == 0


def test_near_empty_rises_before_empty_when_one_delivery_empties_the_syringe():
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2, volume=1 * M)  # 18 mL/h: under 4 min of drug
    core.delivered(2, 2 * M)  # the shell reports more than was left in one report
    core.tick(MIN)
    assert codes(core)[:2] == ["near_empty", "syringe_empty"]
    assert status_of(core, 2).volume_left == 0 and core.rate(2) == 0


def test_the_same_drug_on_two_channels_never_adds_up_past_its_hard_max():
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2)
    # a second vasopressin (channel 1 freed by an emergency stop of norepinephrine)
    core.emergency_stop(1, "clinician", MIN)
    result = start_vasopressin(core, ch=1, now=MIN)  # 0.03 + 0.03 > 0.04 units/min
    assert not result.ok and result.code == "above_hard_max"
    assert "0.04" in result.message and len(result.message) <= 120
    assert status_of(core, 1).state == "stopped" and core.rate(1) == 0
    # within the hard max together: allowed, and a rise past it is refused
    assert start_vasopressin(core, ch=1, dose=10000, now=MIN).ok
    result = core.titrate(1, 15000, "units/min", HOUR)
    assert not result.ok and result.code == "above_hard_max"
    assert status_of(core, 1).dose == 10000
