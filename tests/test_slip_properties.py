"""Property tests of the entry-slip refusals (issue 9, finding 9): a refusal's suggestion
is a dose someone may type next, so whatever the drug, unit, dose and weight,

- a suggested reading ("meant X UNIT?") is in the drug's usual range (soft_min to
  soft_max) for this patient, exactly as shown, and it is the only reading that is:
  two usual readings suggest none;
- a start's suggestion says "past its start max" exactly when it is past the drug's
  start limit (the start would refuse it without an override);
- no dose up to twice the hard max is called a slip (it is above the hard max).
"""

import re
from fractions import Fraction

from hypothesis import event, given, settings
from hypothesis import strategies as st

from firmware import units
from firmware.core import SafetyCore
from tests.budgets import budget
from tests.portable.corekit import M, library

LIB = library()
DRUGS = sorted(LIB.drugs)
# the note's figure is left out where the text would not fit TEXT_MAX with it
_MEANT = re.compile(r"; meant (\S+) (\S+)\?( \(past its start max( (\S+) (\S+): override)?\))?$")


def _in_drug_unit(drug, value, unit, weight):
    num, den = units.convert_dose(value, unit, drug.dose_unit, weight)
    return Fraction(num, den)


def _usual(drug, dose):
    return drug.soft_min <= dose <= drug.soft_max


def _readings(drug, value, unit, weight):
    """Every slip undone, as this test reads slips (not as the firmware computes them):
    the figure a tenth or a thousandth, or per kg read per minute and back."""
    out = []
    dose = _in_drug_unit(drug, value, unit, weight)
    out += [dose / 10, dose / 1000]
    family, size, per_kg = units.DOSE_UNITS[unit]
    for other, (f, s, k) in units.DOSE_UNITS.items():
        if (f, s, k) == (family, size, not per_kg) and (
            weight is not None or not units.needs_weight(other, drug.dose_unit)
        ):
            out.append(_in_drug_unit(drug, value, other, weight))
    return [r for r in out if _usual(drug, r)]


@settings(max_examples=budget(300, 5000), deadline=None)
@given(
    name=st.sampled_from(DRUGS),
    data=st.data(),
    weight=st.one_of(st.none(), st.integers(LIB.weight_min, LIB.weight_max)),
)
def test_a_suggested_reading_is_the_one_usual_dose_and_no_dose_just_over_is_a_slip(
    name, data, weight
):
    drug = LIB.drugs[name]
    family = units.DOSE_UNITS[drug.dose_unit][0]
    unit = data.draw(st.sampled_from(units.dose_units_of(family)))
    value = data.draw(
        st.one_of(
            st.integers(1, 10**10),
            st.sampled_from([drug.soft_max * f for f in (10, 1000)] + [drug.hard_max + 1]),
        )
    )
    if weight is None and (drug.weight_based or units.needs_weight(unit, drug.dose_unit)):
        weight = 70 * M  # a start needs one then (check_weight)
    conc = drug.concs[0]
    core = SafetyCore(LIB)
    result = core.start(
        1, name, value, unit, 0, weight=weight, conc=conc, conc_unit=drug.conc_unit,
        volume=50 * M, override=True,
    )  # fmt: skip
    event(result.code)
    if result.code != "likely_unit_slip":
        return
    dose = _in_drug_unit(drug, value, unit, weight)
    assert dose > 2 * drug.hard_max, (value, unit, result.message)
    usual = _readings(drug, value, unit, weight)
    assert usual, result.message  # a slip named is a reading that is usual
    meant = _MEANT.search(result.message)
    if len(usual) > 1:
        event("two or more usual readings: none suggested")
        assert meant is None, result.message
        return
    assert meant is not None, result.message
    shown_unit = meant.group(2)
    said = _in_drug_unit(drug, units.parse_decimal(meant.group(1)), shown_unit, weight)
    # a usual dose itself, exactly (not only near one), and the one usual reading to the
    # six decimals a figure is shown with: within one millionth of its unit
    assert _usual(drug, said), (result.message, usual)
    assert abs(said - usual[0]) <= _in_drug_unit(drug, 1, shown_unit, weight), (
        result.message,
        usual,
    )
    past = drug.start_max is not None and said > drug.start_max
    assert (meant.group(3) is not None) == past, (result.message, drug.start_max)
    if past and meant.group(4):
        assert units.parse_decimal(meant.group(5)) == drug.start_max, result.message
        assert meant.group(6) == drug.dose_unit, result.message
