# Unit table and exact integer arithmetic for doses, concentrations and rates.
#
# Every quantity is "micro-scaled": an integer count of millionths of its named unit
# (0.04 units/min is 40000 in "units/min", 70 kg is 70000000). Conversions are exact
# rationals (num, den) of the target unit's micro-scaled value; limits are compared by
# cross-multiplying, so no division or float ever takes part in a limit decision.
#
# The sizes of two units of a family are powers of 1000 of its base amount, so one
# divides the other: their ratio enters a product as a whole factor on one side, never
# as both sizes (a dose in its drug's own unit converts to (dose, 1), a concentration
# to (conc, 1)). The same exact values, and fewer heap ints on a 32-bit board (each is
# an allocation): a 16 mcg/mL conversion to its own unit stays a small int where times
# its 1000 ng per mcg it was past 2**30. Not every product fits: a rate's numerator
# (60 x dose x weight) is a heap int there for any real dose.
from micropython import const

from protocol.text import shown

SCALE = const(1000000)  # micro-scaling: 1 unit = SCALE sub-units
_MAX_DECIMALS = const(6)

MASS = "mass"
UNITS = "units"

# Dose units: name -> (family, size in the family's base amount (ng or milliunits), per kg).
DOSE_UNITS = {
    "ng/kg/min": (MASS, 1, True),
    "mcg/min": (MASS, 1000, False),
    "mcg/kg/min": (MASS, 1000, True),
    "mg/min": (MASS, 1000000, False),
    "mg/kg/min": (MASS, 1000000, True),
    "milliunits/min": (UNITS, 1, False),
    "units/min": (UNITS, 1000, False),
}
# Known, but never a dose for the per-minute drugs this library holds: a per-hour figure
# read as per-minute is a sixtyfold error, so it is refused rather than converted.
PER_HOUR_UNITS = ("mcg/h", "mcg/kg/h", "units/h")
RATE = "mL/h"
WEIGHT = "kg"
VOLUME = "mL"

# Concentration units: name -> (family, size in the family's base amount per mL).
CONC_UNITS = {
    "mcg/mL": (MASS, 1000),
    "mg/mL": (MASS, 1000000),
    "milliunits/mL": (UNITS, 1),
    "units/mL": (UNITS, 1000),
}

_MIN_PER_H = const(60)


def dose_units_of(family):
    """The dose units of one family, for messages naming what is allowed."""
    return sorted(u for u in DOSE_UNITS if DOSE_UNITS[u][0] == family)


def unit_problem(unit, dose_unit):
    """Why a dose given in unit cannot be a dose of a drug dosed in dose_unit.

    Returns None when it can (same family, per minute), else (code, message).
    """
    family = DOSE_UNITS[dose_unit][0]
    allowed = ", ".join(dose_units_of(family))
    if unit == RATE:
        return ("rate_not_dose", "mL/h is a pump rate, not a dose; give a dose in: " + allowed)
    if unit in PER_HOUR_UNITS:
        return (
            "per_hour_unit",
            "%s is per hour; this drug is dosed per minute, in: %s" % (unit, allowed),
        )
    if unit not in DOSE_UNITS:
        return (
            "unknown_unit",
            "unknown dose unit %s; this drug is dosed in: %s" % (shown(unit), allowed),
        )
    if DOSE_UNITS[unit][0] != family:
        return (
            "wrong_unit_family",
            "%s is a %s dose; this drug is dosed in: %s" % (unit, DOSE_UNITS[unit][0], allowed),
        )
    return None


def needs_weight(unit, dose_unit):
    """True when converting unit to dose_unit goes through the patient's weight."""
    return DOSE_UNITS[unit][2] != DOSE_UNITS[dose_unit][2]


def convert_dose(value, unit, dose_unit, weight):
    """value (micro-scaled, in unit) as the exact rational (num, den) of dose_unit.

    Both units must be of one family (see unit_problem); weight (micro-scaled kg) is
    used only when exactly one of them is per kg.
    """
    _, size_from, per_kg_from = DOSE_UNITS[unit]
    _, size_to, per_kg_to = DOSE_UNITS[dose_unit]
    num = value
    den = 1
    if size_from > size_to:
        num *= size_from // size_to
    elif size_to > size_from:
        den = size_to // size_from
    if per_kg_from and not per_kg_to:
        num *= weight
        den *= SCALE
    elif per_kg_to and not per_kg_from:
        num *= SCALE
        den *= weight
    return num, den


def convert_conc(value, unit, conc_unit):
    """value (micro-scaled, in unit) as the exact rational (num, den) of conc_unit, or None
    when the two are of different families (units/mL for a mcg drug)."""
    family_from, size_from = CONC_UNITS[unit]
    family_to, size_to = CONC_UNITS[conc_unit]
    if family_from != family_to:
        return None
    if size_from >= size_to:
        return value * (size_from // size_to), 1
    return value, size_to // size_from


def round_div(num, den):
    """num / den rounded to the nearest integer, halves up (num, den >= 0).

    Rounding to nearest keeps every limit decision exact: for an integer limit L,
    num/den <= L implies round_div(num, den) <= L, and likewise for >=.
    """
    return (2 * num + den) // (2 * den)


def _per_kg_factor(dose_unit, weight):
    return weight if DOSE_UNITS[dose_unit][2] else SCALE


def rate_for(dose, dose_unit, weight, conc, conc_unit):
    """The pump rate (micro-scaled mL/h) that delivers dose (micro-scaled, dose_unit) from a
    solution of conc (micro-scaled, conc_unit).

    Rounded down to the sub-unit (1 nL/h), so the delivered dose never exceeds the
    verified dose and never a hard maximum.
    """
    num = _MIN_PER_H * dose
    den = conc
    size_dose = DOSE_UNITS[dose_unit][1]
    size_conc = CONC_UNITS[conc_unit][1]
    if size_dose > size_conc:
        num *= size_dose // size_conc
    elif size_conc > size_dose:
        den *= size_conc // size_dose
    return num * _per_kg_factor(dose_unit, weight) // den


def dose_for(rate, dose_unit, weight, conc, conc_unit):
    """The dose (micro-scaled, dose_unit) that rate (micro-scaled mL/h) delivers, rounded
    down: the inverse of rate_for, for naming the dose a rate ceiling allows."""
    num = rate * conc * CONC_UNITS[conc_unit][1]
    return num // (_MIN_PER_H * DOSE_UNITS[dose_unit][1] * _per_kg_factor(dose_unit, weight))


def parse_decimal(text):
    """Exact micro-scaled integer of a plain decimal text ("0.04" -> 40000).

    Digits with at most one point and at most six decimals, no sign, no exponent: the
    library's figures are typed by a pharmacist and must mean exactly what they say.
    Raises ValueError naming the text otherwise.
    """
    if not isinstance(text, str):
        raise ValueError("%r is not a decimal text" % (text,))
    whole, point, frac = text.partition(".")
    if (
        not (whole.isdigit() if whole else bool(frac))
        or (point and not frac.isdigit())
        or len(frac) > _MAX_DECIMALS
    ):
        raise ValueError("%r is not a plain decimal with at most 6 decimals" % (text,))
    frac = frac + "0" * (_MAX_DECIMALS - len(frac))
    return int(whole or "0") * SCALE + int(frac)


def fmt(value):
    """A micro-scaled integer as the shortest exact decimal text (40000 -> "0.04")."""
    whole, frac = divmod(value, SCALE)
    if not frac:
        return str(whole)
    return "%d.%s" % (whole, ("%06d" % frac).rstrip("0"))
