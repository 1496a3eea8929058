# Exact unit arithmetic (firmware/units.py): no float, no silent rounding of a limit.
from firmware import units
from tests.portable.corekit import M


def _raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_parse_decimal_is_exact():
    assert units.parse_decimal("0.04") == 40000
    assert units.parse_decimal("8") == 8 * M
    assert units.parse_decimal("0.000001") == 1
    assert units.parse_decimal("1000") == 1000 * M


def test_parse_decimal_refuses_what_it_cannot_read_exactly():
    for text in ("0.0000001", "-1", "1e3", "", ".", "1.", "0,04", " 1", "0x10"):
        assert _raises_value_error(units.parse_decimal, text), text
    assert _raises_value_error(units.parse_decimal, 0.04)


def test_fmt_is_the_shortest_exact_text():
    assert units.fmt(40000) == "0.04"
    assert units.fmt(8 * M) == "8"
    assert units.fmt(1) == "0.000001"
    assert units.fmt(units.parse_decimal("12.5")) == "12.5"


def test_mg_to_mcg_is_exact():
    num, den = units.convert_dose(20000, "mg/kg/min", "mcg/kg/min", None)  # 0.02 mg/kg/min
    assert num == 20 * M * den


def test_mcg_per_min_to_per_kg_uses_the_weight_exactly():
    num, den = units.convert_dose(8 * M, "mcg/min", "mcg/kg/min", 80 * M)
    assert num == 100000 * den  # 8 mcg/min at 80 kg is exactly 0.1 mcg/kg/min
    num, den = units.convert_dose(100000, "mcg/kg/min", "mcg/min", 80 * M)
    assert num == 8 * M * den


def test_inexact_conversion_rounds_to_the_nearest_sub_unit():
    num, den = units.convert_dose(12 * M, "mcg/min", "mcg/kg/min", 70 * M)
    assert units.round_div(num, den) == 171429  # 0.1714285... mcg/kg/min


def test_units_and_milliunits_convert_exactly():
    num, den = units.convert_dose(30 * M, "milliunits/min", "units/min", None)
    assert num == 30000 * den
    num, den = units.convert_dose(100, "ng/kg/min", "mcg/kg/min", None)
    assert num * 1000 == 100 * den


def test_the_sizes_enter_a_conversion_as_their_ratio_only():
    # the same exact values with small factors: a dose in its drug's own unit, a
    # concentration in the library's, are themselves over 1 (no heap int on a board)
    assert units.convert_dose(100000, "mcg/kg/min", "mcg/kg/min", None) == (100000, 1)
    assert units.convert_dose(20000, "mg/kg/min", "mcg/kg/min", None) == (20 * M, 1)
    assert units.convert_dose(100, "ng/kg/min", "mcg/kg/min", None) == (100, 1000)
    assert units.convert_conc(16 * M, "mcg/mL", "mcg/mL") == (16 * M, 1)
    assert units.convert_conc(4000, "mg/mL", "mcg/mL") == (4 * M, 1)
    assert units.convert_conc(16 * M, "mcg/mL", "mg/mL") == (16 * M, 1000)


def test_round_div_never_crosses_an_integer_limit_the_exact_value_respects():
    limit = 40000
    for num, den in ((40000 * 3, 3), (79999, 2), (39999 * 7 + 6, 7), (119999, 3)):
        assert num <= limit * den
        assert units.round_div(num, den) <= limit
    # ...but rounding can hide an excess, which is why limits compare num/den exactly
    assert units.round_div(120001, 3) == limit and limit * 3 < 120001
    assert units.round_div(5, 2) == 3  # halves up
    assert units.round_div(4, 3) == 1


def test_rate_for_known_infusions():
    # 0.1 mcg/kg/min x 80 kg = 8 mcg/min; at 16 mcg/mL that is 0.5 mL/min = 30 mL/h.
    assert units.rate_for(100000, "mcg/kg/min", 80 * M, 16 * M, "mcg/mL") == 30 * M
    # 0.03 units/min at 0.1 units/mL = 0.3 mL/min = 18 mL/h.
    assert units.rate_for(30000, "units/min", None, 100000, "units/mL") == 18 * M
    # concentration given in mg/mL: 2.5 mcg/kg/min x 80 kg at 1 mg/mL = 12 mL/h
    assert units.rate_for(2500000, "mcg/kg/min", 80 * M, M, "mg/mL") == 12 * M


def test_rate_rounds_down_so_the_delivered_dose_never_exceeds_the_verified_dose():
    # 1 mcg/min at 3 mcg/mL = 20 mL/h exactly; 1 mcg/min at 7 mcg/mL = 8.571428... mL/h
    rate = units.rate_for(M, "mcg/min", None, 7 * M, "mcg/mL")
    assert rate == 8571428
    assert units.dose_for(rate, "mcg/min", None, 7 * M, "mcg/mL") <= M


def test_dose_for_inverts_rate_for():
    rate = units.rate_for(100000, "mcg/kg/min", 80 * M, 16 * M, "mcg/mL")
    assert units.dose_for(rate, "mcg/kg/min", 80 * M, 16 * M, "mcg/mL") == 100000


def test_unit_problems_name_what_was_wrong_and_what_is_allowed():
    code, message = units.unit_problem("mL/h", "mcg/kg/min")
    assert code == "rate_not_dose" and "mcg/kg/min" in message
    code, message = units.unit_problem("mcg/kg/h", "mcg/kg/min")
    assert code == "per_hour_unit" and "per minute" in message
    code, message = units.unit_problem("units/min", "mcg/kg/min")
    assert code == "wrong_unit_family" and "mcg/min" in message
    code, message = units.unit_problem("mcg/min", "units/min")
    assert code == "wrong_unit_family" and "milliunits/min" in message
    code, message = units.unit_problem("furlongs", "mcg/min")
    assert code == "unknown_unit"
    assert units.unit_problem("mg/kg/min", "mcg/kg/min") is None
    assert units.unit_problem("milliunits/min", "units/min") is None
