# The slip refusals (issue 9, finding 9) swept on both interpreters: every drug, every
# unit of its family, doses drawn over the whole wire range (up to 0x7FFFFFFF, where a
# 32-bit board's small ints end long before) and weights, with none too. Whatever the
# dose, nothing raises, every text fits the wire, nothing up to twice the hard max is
# called a slip, and a suggestion ("meant X UNIT?") is itself a usual dose of the drug
# for this patient. tests/test_slip_properties.py checks more (that the suggestion is
# the one usual reading) with hypothesis, on CPython.
from firmware import units
from firmware.core import SafetyCore
from protocol.text import TEXT_MAX
from tests.budgets import budget
from tests.portable.corekit import M, library
from tests.portable.dispatchfuzz import Rng

CASES = budget(400, 20000)
_QUANTITY_MAX = 0x7FFFFFFF


def _dose(rng):
    # spread over the orders of magnitude, not bunched near the top of the range
    return 1 + rng.below(10 ** (1 + rng.below(9))) if rng.below(8) else _QUANTITY_MAX


def _suggested(message):
    # (figure, unit) of "...; meant X UNIT?", or None; a start's may say after it that
    # it is past its start max: "...? (past its start max[ X UNIT]: override)"
    at = message.find("; meant ")
    if at < 0:
        return None
    end = message.find("?", at)
    figure, unit = message[at + 8 : end].split(" ")
    note = message[end + 1 :]
    assert note in ("", " (past its start max)") or note.startswith(" (past its start max "), note
    return units.parse_decimal(figure), unit


def test_no_slip_refusal_raises_misleads_or_overflows_whatever_the_dose():
    lib = library()
    names = sorted(lib.drugs)
    rng = Rng(41)
    slips = 0
    for _ in range(CASES):
        drug = lib.drugs[rng.pick(names)]
        unit = rng.pick(units.dose_units_of(units.DOSE_UNITS[drug.dose_unit][0]))
        weight = None
        if rng.below(4) or drug.weight_based or units.needs_weight(unit, drug.dose_unit):
            weight = lib.weight_min + rng.below(lib.weight_max - lib.weight_min + 1)
        value = _dose(rng)
        core = SafetyCore(lib)
        result = core.start(1, drug.name, value, unit, 0, weight=weight, conc=drug.concs[0],
                            conc_unit=drug.conc_unit, volume=50 * M, override=True)  # fmt: skip
        assert len(result.message) <= TEXT_MAX, result.message
        if result.code != "likely_unit_slip":
            continue
        slips += 1
        num, den = units.convert_dose(value, unit, drug.dose_unit, weight)
        assert num > 2 * drug.hard_max * den, result.message
        meant = _suggested(result.message)
        if meant is not None:
            n, d = units.convert_dose(meant[0], meant[1], drug.dose_unit, weight)
            assert drug.soft_min * d <= n <= drug.soft_max * d, result.message
    assert slips * 10 > CASES  # the sweep reaches the slips, not only plain refusals
