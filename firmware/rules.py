# The library's dose rules, as checks that return a refusal (a Result) or None.
#
# Hard rules refuse whatever the command says. Soft rules refuse unless the command
# carries override; what an override passed is appended to notes, which the core names
# in the decision and the log. Doses arrive as the exact rational num/den of the
# drug's dose_unit (units.convert_dose), and are compared by cross-multiplying.
from firmware import units
from firmware.result import refuse
from protocol.text import duration

# Entry slips a dose above the hard maximum is checked against, per dose-unit family,
# most likely first: (factor, what the slip probably was). A thousandfold one is usually
# the family's unit a thousand times larger written for the drug's own; a tenfold one
# has no unit between, so it is a decimal point in the wrong place.
_TENFOLD = (10, "tenfold: a misplaced decimal point?")
_SLIPS = {
    units.MASS: ((1000, "thousandfold: mg for mcg?"), _TENFOLD),
    units.UNITS: ((1000, "thousandfold: units for milliunits?"), _TENFOLD),
}


def _dose_text(drug, value):
    return "%s %s" % (units.fmt(value), drug.dose_unit)


def _range(drug, lo, hi):
    return (lo, hi, drug.dose_unit)


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


def _soft(code, message, allowed, override, notes, next_at_ms=None):
    if override:
        notes.append(_PASSED[code])
        return None
    return refuse(code, message + "; needs override", allowed, next_at_ms)


def check_dose(drug, num, den, given, unit, override, notes):
    """Limits of the dose num/den (drug.dose_unit) that the command gave as given unit."""
    given_text = "%s %s" % (units.fmt(given), unit)
    if num > drug.hard_max * den:
        for factor, slip in _SLIPS[drug.family]:
            if drug.soft_min * den * factor <= num <= drug.soft_max * den * factor:
                return refuse(
                    "likely_unit_slip",
                    "%s for %s is %dx usual (%s); meant %s?"
                    % (
                        given_text,
                        drug.name,
                        factor,
                        slip,
                        _dose_text(drug, units.round_div(num, den * factor)),
                    ),
                    _range(drug, drug.hard_min, drug.hard_max),
                )
    said = given_text
    if unit != drug.dose_unit:
        said += " (%s)" % _dose_text(drug, units.round_div(num, den))
    # the hard limits first: they refuse whatever the override says
    for code, above, limit in (
        ("above_hard_max", True, drug.hard_max),
        ("below_hard_min", False, drug.hard_min),
        ("above_soft_max", True, drug.soft_max),
        ("below_soft_min", False, drug.soft_min),
    ):
        if num > limit * den if above else num < limit * den:
            hard = code.endswith("hard_max") or code.endswith("hard_min")
            message = "%s for %s is %s its %s %s %s" % (
                said,
                drug.name,
                "above" if above else "below",
                "hard" if hard else "soft",
                "max" if above else "min",
                _dose_text(drug, limit),
            )
            if hard:
                return refuse(code, message, _range(drug, drug.hard_min, drug.hard_max))
            return _soft(code, message, _range(drug, drug.soft_min, drug.soft_max), override, notes)
    return None


def check_start(drug, dose, override, notes):
    """The library's usual starting dose (soft)."""
    if drug.start_max is not None and dose > drug.start_max:
        return _soft(
            "above_start_max",
            "%s starts at most at %s, not %s"
            % (drug.name, _dose_text(drug, drug.start_max), units.fmt(dose)),
            _range(drug, drug.hard_min, drug.start_max),
            override,
            notes,
        )
    return None


def _too_soon(drug, way, every_ms, due, now_ms):
    return "%s may %s again in %s (once every %s)" % (
        drug.name,
        way,
        duration(due - now_ms),
        duration(every_ms),
    )


def check_step(drug, old, new, last_up_ms, last_down_ms, now_ms, override, notes):
    """Titration from old to new at now_ms: step sizes and intervals.

    Increases are soft (an emergency may need a faster climb, with override).
    Decreases of a taper drug are hard: a titration must never do what the taper
    forbids, so a larger or earlier step down is refused, never shortened silently.
    """
    if new == old:
        # a hold, neither a rise nor a fall: no step and no interval applies (during a
        # taper it is how the clinician keeps the current dose, cancelling the taper)
        return None
    if new > old:
        hi = old + drug.step_up if drug.step_up is not None else drug.hard_max
        if drug.up_percent is not None:
            hi = min(hi, old * drug.up_percent // 100)
        if new > hi:
            refusal = _soft(
                "step_up_too_large",
                "%s may rise to at most %s from %s in one step"
                % (drug.name, _dose_text(drug, hi), units.fmt(old)),
                _range(drug, old, hi),
                override,
                notes,
            )
            if refusal:
                return refusal
        due = last_up_ms + drug.up_interval_ms
        if now_ms < due:
            return _soft(
                "too_soon",
                _too_soon(drug, "rise", drug.up_interval_ms, due, now_ms),
                _range(drug, drug.hard_min, old),
                override,
                notes,
                due,
            )
        return None
    lo = old - drug.step_down if drug.step_down is not None else drug.hard_min
    if new < lo:
        message = "%s may fall to at least %s from %s in one step" % (
            drug.name,
            _dose_text(drug, lo),
            units.fmt(old),
        )
        if drug.taper:
            return refuse(
                "step_down_too_large",
                message + " (taper drug: stop starts its taper)",
                _range(drug, lo, old),
            )
        refusal = _soft("step_down_too_large", message, _range(drug, lo, old), override, notes)
        if refusal:
            return refusal
    if last_down_ms is not None and now_ms < last_down_ms + drug.down_interval_ms:
        due = last_down_ms + drug.down_interval_ms
        message = _too_soon(drug, "fall", drug.down_interval_ms, due, now_ms)
        if drug.taper:
            return refuse("too_soon", message, _range(drug, old, drug.hard_max), due)
        return _soft("too_soon", message, _range(drug, old, drug.hard_max), override, notes, due)
    return None
