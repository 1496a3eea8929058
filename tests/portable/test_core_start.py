# start: every check a new infusion passes (units, weight, concentration, volume, limits).
from tests.portable.corekit import (
    M,
    library,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, last, status_of


def test_start_returns_the_verified_dose_and_rate():
    core = make_core()
    result = start_norepinephrine(core)
    assert result.ok and result.code == "ok"
    assert (result.dose, result.unit, result.rate) == (100000, "mcg/kg/min", 30 * M)
    assert core.rate(1) == 30 * M
    status = status_of(core, 1)
    assert (status.state, status.drug, status.dose, status.volume_left) == (
        "running",
        "norepinephrine",
        100000,
        50 * M,
    )


def test_start_is_logged_as_command_decision_and_rate_change():
    core = make_core()
    start_norepinephrine(core, now=5000)
    kinds = [(e[3], e[4]) for e in entries(core.log)]
    assert kinds == [("start", "received"), ("rate", "rate_changed"), ("decision", "ok")]
    assert all(e[1] == 5000 and e[2] == 1 for e in entries(core.log))


def test_hard_max_is_refused_even_with_override():
    core = make_core()
    for override in (False, True):
        result = start_vasopressin(core, dose=50000, override=override)
        assert not result.ok and result.code == "above_hard_max"
        assert result.allowed == (5000, 40000, "units/min")
    assert core.rate(2) == 0


def test_soft_max_needs_override_and_the_override_is_logged():
    core = make_core()
    result = start_vasopressin(core, dose=40000)
    assert not result.ok and result.code == "above_soft_max"
    assert result.allowed == (10000, 30000, "units/min")
    result = start_vasopressin(core, dose=40000, override=True)
    assert result.ok and result.code == "ok_override" and "override" in result.message
    assert "override" in last(core.log)[5]


def test_below_hard_min_refused_below_soft_min_needs_override():
    core = make_core()
    assert start_vasopressin(core, dose=4000, override=True).code == "below_hard_min"
    assert start_vasopressin(core, dose=6000).code == "below_soft_min"
    assert start_vasopressin(core, dose=6000, override=True).code == "ok_override"


def test_dopamine_renal_dose_needs_override():
    core = make_core()
    args = {"weight": 70 * M, "conc": 1600000, "conc_unit": "mg/mL", "volume": 50 * M}
    result = core.start(1, "dopamine", 3 * M, "mcg/kg/min", 0, **args)
    assert result.code == "below_soft_min"


def test_tenfold_entry_error_is_named():
    core = make_core()
    result = start_vasopressin(core, dose=300000)  # 0.3 units/min for 0.03
    assert result.code == "likely_unit_slip"
    assert "tenfold" in result.message and "0.03 units/min" in result.message
    assert core.rate(2) == 0


def test_above_hard_max_without_a_plausible_slip_is_plain_above_hard_max():
    core = make_core()
    assert start_vasopressin(core, dose=60000).code == "above_hard_max"


def test_doses_convert_exactly_between_units():
    core = make_core()
    # 8 mcg/min at 80 kg is 0.1 mcg/kg/min
    args = {"weight": 80 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    result = core.start(1, "norepinephrine", 8 * M, "mcg/min", 0, **args)
    assert result.ok and result.dose == 100000 and result.rate == 30 * M
    # 30 milliunits/min is 0.03 units/min
    result = core.start(
        2,
        "vasopressin",
        30 * M,
        "milliunits/min",
        0,
        conc=100000,
        conc_unit="units/mL",
        volume=50 * M,
    )
    assert result.ok and result.dose == 30000 and result.rate == 18 * M


def test_wrong_unit_family_is_refused_naming_the_allowed_units():
    core = make_core()
    args = {"weight": 80 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    result = core.start(1, "norepinephrine", 30000, "units/min", 0, **args)
    assert result.code == "wrong_unit_family" and "mcg/kg/min" in result.message
    result = core.start(
        1, "vasopressin", 30000, "mcg/min", 0, conc=100000, conc_unit="units/mL", volume=50 * M
    )
    assert result.code == "wrong_unit_family" and "units/min" in result.message


def test_per_hour_and_rate_units_are_not_doses():
    core = make_core()
    args = {"weight": 80 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    assert core.start(1, "norepinephrine", 6 * M, "mcg/kg/h", 0, **args).code == "per_hour_unit"
    assert core.start(1, "norepinephrine", 30 * M, "mL/h", 0, **args).code == "rate_not_dose"
    assert core.start(1, "norepinephrine", 1, "mcg/fortnight", 0, **args).code == "unknown_unit"
    assert core.rate(1) == 0


def test_weight_is_required_and_range_checked():
    core = make_core()
    assert start_norepinephrine(core, weight=None).code == "weight_required"
    assert start_norepinephrine(core, weight=10 * M).code == "weight_out_of_range"
    assert start_norepinephrine(core, weight=400 * M).code == "weight_out_of_range"
    # a per-minute drug given per kg needs the weight to convert
    args = {"conc": 40 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    assert core.start(1, "phenylephrine", M, "mcg/kg/min", 0, **args).code == "weight_required"
    result = core.start(1, "phenylephrine", M // 2, "mcg/kg/min", 0, weight=70 * M, **args)
    assert result.dose == 35 * M and result.unit == "mcg/min"


def test_concentration_must_be_one_the_library_allows():
    core = make_core()
    assert start_norepinephrine(core, conc=None).code == "conc_required"
    result = start_norepinephrine(core, conc=8 * M)
    assert result.code == "conc_not_allowed" and "4, 16 mcg/mL" in result.message
    assert start_norepinephrine(core, conc=16, conc_unit="units/mL").code == "conc_not_allowed"
    assert start_norepinephrine(core, conc=16, conc_unit="grams").code == "unknown_unit"
    # 0.016 mg/mL is exactly 16 mcg/mL
    result = start_norepinephrine(core, conc=16000, conc_unit="mg/mL")
    assert result.ok and result.rate == 30 * M


def test_volume_is_required_and_range_checked():
    core = make_core()
    assert start_norepinephrine(core, volume=None).code == "volume_required"
    assert start_norepinephrine(core, volume=2000 * M).code == "volume_out_of_range"


def test_pump_max_rate_is_respected_and_the_allowed_dose_named():
    core = make_core(max_rate=100 * M)
    # 0.1 mcg/kg/min x 80 kg at 4 mcg/mL = 2 mL/min = 120 mL/h > 100
    result = start_norepinephrine(core, conc=4 * M)
    assert result.code == "above_max_rate"
    lo, hi, unit = result.allowed
    assert unit == "mcg/kg/min" and hi == 83333  # 100 mL/h is 0.083333 mcg/kg/min
    assert start_norepinephrine(core, dose=hi, conc=4 * M).rate <= 100 * M


def test_start_max_is_a_soft_limit():
    core = make_core()
    assert start_dobutamine(core, dose=5 * M).code == "above_start_max"
    assert start_dobutamine(core, dose=5 * M, override=True).code == "ok_override"


def test_unknown_drug_channel_state_and_values_are_refused():
    core = make_core()
    result = core.start(1, "propofol", M, "mcg/min", 0, conc=M, conc_unit="mcg/mL", volume=M)
    assert result.code == "unknown_drug" and "norepinephrine" in result.message
    # a typo is answered with every drug the library has, none left out as "+N more"
    typo = core.start(1, "norepinephrin", M, "mcg/min", 0, conc=M, conc_unit="mcg/mL", volume=M)
    known = ", ".join(sorted(core.library.drugs))
    assert typo.message == "unknown drug 'norepinephrin'; known: " + known, typo.message
    assert start_norepinephrine(core, ch=3).code == "unknown_channel"
    assert start_norepinephrine(core, ch=0).code == "unknown_channel"
    assert start_norepinephrine(core, dose=-1).code == "bad_value"
    assert start_norepinephrine(core, dose=0.1).code == "bad_value"
    assert start_norepinephrine(core).ok
    assert start_norepinephrine(core).code == "invalid_state"


def test_every_decision_carries_a_wire_number():
    from protocol.reasons import NAME, NUMBER

    core = make_core()
    for result in (start_norepinephrine(core, weight=None), start_norepinephrine(core)):
        assert NAME[NUMBER[result.code]] == result.code
    assert len(NAME) == len(NUMBER)
    assert library().ok


def test_the_logged_command_leaves_out_what_was_not_given():
    # vasopressin needs no weight: the log says nothing about one, never "None kg"
    core = make_core()
    start_vasopressin(core, now=5000)
    text = entries(core.log)[0][5]
    assert text == "start vasopressin 0.03 units/min, 0.1 units/mL, 50 mL", text


# -- slips that never mislead (issue 9, finding 9) -------------------------------------

_NE = {"weight": 70 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}


def test_a_dose_just_over_the_hard_max_is_above_it_not_a_slip():
    # "3.1 mcg/kg/min ... meant 0.31?" named a tenfold slip of a dose one step too high
    core = make_core()
    result = core.start(1, "norepinephrine", 3100000, "mcg/kg/min", 0, **_NE)
    assert result.code == "above_hard_max" and "meant" not in result.message, result.message


def test_a_per_kg_dose_that_is_usual_per_minute_too_suggests_no_reading():
    # "8 mcg/kg/min" typed for 8 mcg/min was "meant 0.8 mcg/kg/min?": seven times the
    # dose intended (8 mcg/min is 0.114 mcg/kg/min at 70 kg): two readings, none suggested
    core = make_core()
    result = core.start(1, "norepinephrine", 8 * M, "mcg/kg/min", 0, **_NE)
    assert result.code == "likely_unit_slip", result.message
    assert "meant" not in result.message and "tenfold or per minute" in result.message


def test_the_one_reading_is_suggested_in_the_unit_the_clinician_typed():
    # phenylephrine 2 mg/min was "meant 200 mcg/min?"
    core = make_core()
    args = {"conc": 40 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    result = core.start(2, "phenylephrine", 2 * M, "mg/min", 0, **args)
    assert result.code == "likely_unit_slip"
    assert "; meant 0.2 mg/min? (past its start max" in result.message, result.message


def test_a_per_minute_dose_typed_per_kg_is_suggested_when_it_is_the_one_reading():
    # 15 mcg/kg/min of norepinephrine: neither tenfold (1.5) nor thousandfold (0.015)
    # usual, 15 mcg/min is (0.21 mcg/kg/min at 70 kg)
    core = make_core()
    result = core.start(1, "norepinephrine", 15 * M, "mcg/kg/min", 0, **_NE)
    assert result.code == "likely_unit_slip"
    said = "is usual per minute; meant 15 mcg/min? (past its start max 0.1 mcg/kg/min: override)"
    assert result.message.endswith(said), result.message


def test_every_drug_has_a_start_limit_a_first_dose_past_it_needs_an_override():
    # issue 9, finding 9: epinephrine had none (1 mcg/kg/min typed for 1 mcg/min ran as
    # a plain ok), nor had phenylephrine, dopamine or vasopressin
    lib = library()
    for name in lib.drugs:
        drug = lib.drugs[name]
        assert drug.start_max is not None, name
        order = {"weight": 70 * M, "conc": drug.concs[-1], "conc_unit": drug.conc_unit}
        order["volume"] = 50 * M
        core = make_core()
        past = core.start(1, name, drug.start_max + 1, drug.dose_unit, 0, **order)
        # (vasopressin's is its soft max, 0.03 units/min: past both, the soft max says so)
        soft = "above_soft_max" if drug.start_max >= drug.soft_max else "above_start_max"
        assert past.code == soft and core.rate(1) == 0, (name, past.code)
        at = core.start(1, name, drug.start_max, drug.dose_unit, 0, **order)
        assert at.ok and at.code != "ok_override", (name, at.code, at.message)
        core = make_core()
        over = core.start(1, name, drug.start_max + 1, drug.dose_unit, 0, override=True, **order)
        assert over.code == "ok_override" and core.rate(1) > 0, (name, over.code)


def test_a_slip_s_one_suggestion_past_the_start_limit_says_so():
    # found by review: phenylephrine's "2 mg/min" suggested 0.2 mg/min (its hard max),
    # which the start then refused above its start limit; a titration's says nothing
    core = make_core()
    order = {"conc": 40 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    r = core.start(1, "phenylephrine", 2 * M, "mg/min", 0, **order)
    assert r.code == "likely_unit_slip", (r.code, r.message)
    assert r.message.endswith("; meant 0.2 mg/min? (past its start max)"), r.message  # TEXT_MAX
    r = core.start(1, "dopamine", 100 * M, "mcg/kg/min", 0, weight=70 * M, conc=1600000,
                   conc_unit="mg/mL", volume=50 * M)  # fmt: skip
    said = "; meant 10 mcg/kg/min? (past its start max 5 mcg/kg/min: override)"
    assert r.message.endswith(said), r.message
    r = core.start(1, "phenylephrine", 20 * M, "mg/min", 0, **order)  # 20 mcg/min: no note
    assert r.message.endswith("meant 20 mcg/min?"), r.message
    assert core.start(1, "phenylephrine", 30 * M, "mcg/min", 0, **order).ok
    r = core.titrate(1, 2 * M, "mg/min", 0)
    assert r.code == "likely_unit_slip" and r.message.endswith("meant 0.2 mg/min?"), r.message
