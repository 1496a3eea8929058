# The limits of a dose. The library's of one dose, as the command gives it: an entry slip
# (a dose a thousand or ten times usual), the hard limits, the soft limits, the usual
# starting dose; and the override that a soft rule needs (soft(), which steps.py uses
# too). The patient's across channels: a drug's hard max holds for the patient, not for
# one channel. The pump's: its mechanical maximum rate. (One module, not three: each
# module costs its own object, dict and names in a board's heap. Conventions:
# firmware/rules/__init__.py.)
from micropython import const

from firmware import units
from firmware.channel import dose_text
from firmware.result import refuse
from protocol.text import TEXT_MAX, clip

# Entry slips a dose above the hard maximum is checked against, per dose-unit family:
# (factor, what the slip probably was). A thousandfold one is usually the family's unit
# a thousand times larger written for the one meant; a tenfold one has no unit between,
# so it is a decimal point in the wrong place. A per-kg dose typed for a per-minute one
# (or the other way round) is the third, read against the patient's weight.
_SLIPS = {
    units.MASS: ((1000, "thousandfold: mg for mcg?"), (10, "tenfold: a misplaced decimal point?")),
    units.UNITS: (
        (1000, "thousandfold: units for milliunits?"),
        (10, "tenfold: a misplaced decimal point?"),
    ),
}
# A dose up to _OVER times the hard max is a dose above it, never a slip: a slip's
# factor is 10 or 1000, and naming "3.1 mcg/kg/min" a tenfold 0.31 would mislead.
_OVER = const(2)


def dose_range(drug, low, high):
    """An allowed range of doses in the drug's own unit, as a refusal carries it."""
    return (low, high, drug.dose_unit)


# What an override passed, as the accepted message names it (short: it must fit the wire
# after the dose, the rate and a cancelled taper).
_PASSED = {
    "above_soft_max": "soft max",
    "below_soft_min": "soft min",
    "above_start_max": "start max",
    "step_up_too_large": "step",
    "step_down_too_large": "step",
    "too_soon": "interval",
}


def soft(code, message, allowed, override, notes, next_at_ms=None):
    """A soft rule broken: passed by an override (and noted), else refused."""
    if override:
        notes.append(_PASSED[code])
        return None
    return refuse(code, message + "; needs override", allowed, next_at_ms)


def check_dose(drug, num, den, value, unit, override, notes, above=False, weight=None, start=False):
    """Limits of the dose num/den (drug.dose_unit) that the command gave as value unit
    (weight: the patient's, for the per-kg reading of a slip; start: a start's, whose
    slip suggestion past the drug's start_max says so, as the start would refuse it:
    phenylephrine's "2 mg/min" is 0.2 mg/min, its hard max). above: a hold or a fall
    of a running dose (never one tapering: a titration takes it back) past the soft max,
    which only an override set: still past it, it needs no override again, lower being
    the safe side (2 to 1.95 mcg/kg/min of norepinephrine); none is noted, the command
    carried none (core._titrate keeps the channel's override)."""
    if num > drug.hard_max * den * _OVER:
        found = _slips(drug, num, den, value, unit, weight)
        if found:
            given = "%s %s for %s" % (units.fmt(value), unit, drug.name)
            if len(found) == 1:  # the one reading a clinician may type next, never cut
                meant, why, _, figure, said = found[0]
                n, d = units.convert_dose(figure, said, drug.dose_unit, weight)
                limit = None  # a start's suggestion past its limit says so:
                if start and drug.start_max is not None and n > drug.start_max * d:
                    limit = " (past its start max %s: override)" % dose_text(drug, drug.start_max)
                # the slip's name kept first (thousandfold: mg for mcg?): where the text
                # would not fit, the limit's figure left out, then the name
                for i in range(4):
                    note = "" if limit is None else limit if i % 2 == 0 else " (past its start max)"
                    reason = why if i < 2 else "a likely slip"
                    message = "%s is %s; meant %s%s" % (given, reason, meant, note)
                    if len(message) <= TEXT_MAX:
                        break
            else:  # none suggested: each would be a guess
                message = "%s is usual only as a slip (%s): check the order" % (
                    given,
                    " or ".join([f[2] for f in found]),
                )
                if len(message) > TEXT_MAX:
                    message = "%s is usual only as a slip: check the order" % (given,)
            return refuse(
                "likely_unit_slip",
                clip(message, TEXT_MAX),
                dose_range(drug, drug.hard_min, drug.hard_max),
            )
    # the hard limits first: they refuse whatever the override says (one by one: a
    # table of them would be made for every command)
    if num > drug.hard_max * den:
        return _limit(drug, num, den, value, unit, "above_hard_max", True, drug.hard_max, 0, 0)
    if num < drug.hard_min * den:
        return _limit(drug, num, den, value, unit, "below_hard_min", False, drug.hard_min, 0, 0)
    if num > drug.soft_max * den:
        if above:
            return None  # past the soft max, no lower (soft_min) limit applies
        return _limit(
            drug, num, den, value, unit, "above_soft_max", True, drug.soft_max, override, notes
        )
    if num < drug.soft_min * den:
        return _limit(
            drug, num, den, value, unit, "below_soft_min", False, drug.soft_min, override, notes
        )
    return None


def _limit(drug, num, den, value, unit, code, above, limit, override, notes):
    # the refusal (or the override's note) of the dose num/den past limit
    said = "%s %s" % (units.fmt(value), unit)
    if unit != drug.dose_unit:
        said += " (%s)" % dose_text(drug, units.round_div(num, den))
    hard = code.endswith("hard_max") or code.endswith("hard_min")
    message = "%s for %s is %s its %s %s %s" % (
        said,
        drug.name,
        "above" if above else "below",
        "hard" if hard else "soft",
        "max" if above else "min",
        dose_text(drug, limit),
    )
    if hard:
        return refuse(code, message, dose_range(drug, drug.hard_min, drug.hard_max))
    return soft(code, message, dose_range(drug, drug.soft_min, drug.soft_max), override, notes)


def _usual(drug, num, den):
    return drug.soft_min * den <= num <= drug.soft_max * den


def _sibling(unit, size, per_kg):
    # the dose unit of unit's family of that size and per-kg-ness, or None
    family = units.DOSE_UNITS[unit][0]
    for name in units.DOSE_UNITS:
        if units.DOSE_UNITS[name] == (family, size, per_kg):
            return name
    return None


def _shown(drug, low, unit, weight):
    """low or low + 1 (micro-scaled in unit: a shifted figure rounded down, or up) that
    is in the drug's usual range, or None: a suggestion is a usual dose, exactly."""
    for figure in (low, low + 1):
        n, d = units.convert_dose(figure, unit, drug.dose_unit, weight)
        if _usual(drug, n, d):
            return figure
    return None


def _slips(drug, num, den, value, unit, weight):
    """The readings of value unit, each a slip undone, that land in the drug's usual
    range (soft_min to soft_max): [(the dose as the clinician would type it and "?",
    why, the slip's name, its figure, its unit), ...]. Made only for a dose refused
    above the hard max."""
    found = []
    _, size, per_kg = units.DOSE_UNITS[unit]
    for factor, slip in _SLIPS[drug.family]:
        short = slip[: slip.index(":")]
        if not _usual(drug, num, den * factor):
            continue
        # typed in a unit a thousand times the drug's (mg for mcg): the same figure in
        # the unit meant; else the figure shifted, in the unit typed, and a thousandfold
        # slip named by its size alone (a clinician who typed mcg wrote no mg)
        smaller = None
        if factor > 10 and size > units.DOSE_UNITS[drug.dose_unit][1]:
            smaller = _sibling(unit, size // factor, per_kg)
        if smaller is not None:
            figure, said = value, smaller
        else:
            figure = _shown(drug, value // factor, unit, weight)
            if figure is None:
                continue  # no figure of six decimals is usual: nothing to suggest
            said = unit
            if factor > 10:
                slip = short
        meant = "%s %s?" % (units.fmt(figure), said)
        found.append((meant, "%dx usual (%s)" % (factor, slip), short, figure, said))
    other = _sibling(unit, size, not per_kg)
    if other is not None and (weight is not None or not units.needs_weight(other, drug.dose_unit)):
        n, d = units.convert_dose(value, other, drug.dose_unit, weight)
        if _usual(drug, n, d):
            short = "per minute" if per_kg else "per kg"
            found.append(
                ("%s %s?" % (units.fmt(value), other), "usual " + short, short, value, other)
            )
    return found


def check_start(drug, dose, override, notes):
    """The library's usual starting dose (soft)."""
    if drug.start_max is not None and dose > drug.start_max:
        return soft(
            "above_start_max",
            "%s starts at most at %s, not %s"
            % (drug.name, dose_text(drug, drug.start_max), units.fmt(dose)),
            dose_range(drug, drug.hard_min, drug.start_max),
            override,
            notes,
        )
    return None


# -- the patient's limits across channels ---------------------------------------------
def check_combined(c, drug, dose, channels):
    """The hard max is the patient's, not a channel's: the same drug delivering on
    other channels counts too, so two channels at 0.03 units/min of vasopressin are
    refused (0.06 > 0.04). Clinical judgement, the safe side: a syringe changeover
    that runs old and new together must fit under the hard max (else let the old one
    run out: near empty warns well before). Doses add in the drug's dose_unit. A
    titration that does not rise never needs it: it only lowers the patient's total."""
    if c.delivering and dose <= c.dose:
        return None
    others = 0
    for o in channels:
        if o is not c and o.delivering and o.started_drug().name == drug.name:
            others += o.dose
    if not others or dose + others <= drug.hard_max:
        return None
    room = drug.hard_max - others
    return refuse(
        "above_hard_max",
        "%s + %s on other channels is above the hard max %s %s for %s"
        % (
            units.fmt(dose),
            units.fmt(others),
            units.fmt(drug.hard_max),
            drug.dose_unit,
            drug.name,
        ),
        (drug.hard_min, room, drug.dose_unit) if room >= drug.hard_min else None,
    )


# -- the pump's limits: its maximum rate ------------------------------------------------
def check_rate(drug, weight, conc, dose, max_rate):
    """The pump's mechanical maximum, as a refusal naming the dose it allows."""
    rate = units.rate_for(dose, drug.dose_unit, weight, conc, drug.conc_unit)
    if rate > max_rate:
        top = units.dose_for(max_rate, drug.dose_unit, weight, conc, drug.conc_unit)
        return refuse(
            "above_max_rate",
            "%s %s needs %s mL/h, above this pump's max %s mL/h (%s at most)"
            % (
                units.fmt(dose),
                drug.dose_unit,
                units.fmt(rate),
                units.fmt(max_rate),
                units.fmt(min(top, drug.hard_max)),
            ),
            (drug.hard_min, min(top, drug.hard_max), drug.dose_unit),
        )
    return None
