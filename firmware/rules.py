# The library's dose rules, as checks that return a refusal (a Result) or None.
#
# Hard rules refuse whatever the command says. Soft rules refuse unless the command
# carries override; an overridden soft rule is appended to notes, which the core puts
# in the decision and the log. Doses arrive as the exact rational num/den of the drug's
# dose_unit (units.convert_dose), and are compared by cross-multiplying.
from firmware import units
from firmware.reasons import refuse

# Entry slips a dose above the hard maximum is checked against, most likely first:
# (factor, what the slip probably was). A thousandfold one is usually mg for mcg.
_SLIPS = ((1000, "a thousandfold unit slip (mg written for mcg?)"), (10, "a tenfold entry error"))


def _dose_text(drug, value):
    return "%s %s" % (units.fmt(value), drug.dose_unit)


def _range(drug, lo, hi):
    return (lo, hi, drug.dose_unit)


def _soft(code, message, allowed, override, notes, next_at_ms=None):
    if override:
        notes.append("override: " + message)
        return None
    return refuse(code, message + "; an override is needed", allowed, next_at_ms)


def check_dose(drug, num, den, given, unit, override, notes):
    """Limits of the dose num/den (drug.dose_unit) that the command gave as given unit."""
    value = units.round_div(num, den)
    said = "%s %s" % (units.fmt(given), unit)
    if unit != drug.dose_unit:
        said += " (= %s)" % _dose_text(drug, value)
    if num > drug.hard_max * den:
        for factor, slip in _SLIPS:
            if drug.soft_min * den * factor <= num <= drug.soft_max * den * factor:
                return refuse(
                    "likely_unit_slip",
                    "%s for %s is %d times its usual %s-%s: %s. Refused; did you mean %s?"
                    % (
                        said,
                        drug.name,
                        factor,
                        units.fmt(drug.soft_min),
                        _dose_text(drug, drug.soft_max),
                        slip,
                        _dose_text(drug, units.round_div(num, den * factor)),
                    ),
                    _range(drug, drug.hard_min, drug.hard_max),
                )
        return refuse(
            "above_hard_max",
            "%s is above the hard maximum %s for %s"
            % (said, _dose_text(drug, drug.hard_max), drug.name),
            _range(drug, drug.hard_min, drug.hard_max),
        )
    if num < drug.hard_min * den:
        return refuse(
            "below_hard_min",
            "%s is below the hard minimum %s for %s (to end the infusion use stop)"
            % (said, _dose_text(drug, drug.hard_min), drug.name),
            _range(drug, drug.hard_min, drug.hard_max),
        )
    if num > drug.soft_max * den:
        return _soft(
            "above_soft_max",
            "%s is above the soft maximum %s for %s"
            % (said, _dose_text(drug, drug.soft_max), drug.name),
            _range(drug, drug.soft_min, drug.soft_max),
            override,
            notes,
        )
    if num < drug.soft_min * den:
        return _soft(
            "below_soft_min",
            "%s is below the soft minimum %s for %s"
            % (said, _dose_text(drug, drug.soft_min), drug.name),
            _range(drug, drug.soft_min, drug.soft_max),
            override,
            notes,
        )
    return None


def check_start(drug, dose, override, notes):
    """The library's usual starting dose (soft)."""
    if drug.start_max is not None and dose > drug.start_max:
        return _soft(
            "above_start_max",
            "%s starts at most at %s; %s asked"
            % (drug.name, _dose_text(drug, drug.start_max), _dose_text(drug, dose)),
            _range(drug, drug.hard_min, drug.start_max),
            override,
            notes,
        )
    return None


def check_step(drug, old, new, last_up_ms, last_down_ms, now_ms, override, notes):
    """Titration from old to new at now_ms: step sizes and intervals.

    Increases are soft (an emergency may need a faster climb, with override).
    Decreases of a taper drug are hard: a titration must never do what the taper
    forbids, so a larger or earlier step down is refused, never shortened silently.
    """
    if new > old:
        hi = old + drug.step_up if drug.step_up is not None else drug.hard_max
        if drug.up_percent is not None:
            hi = min(hi, old * drug.up_percent // 100)
        if new > hi:
            refusal = _soft(
                "step_up_too_large",
                "%s can rise at most to %s from %s in one step"
                % (drug.name, _dose_text(drug, hi), _dose_text(drug, old)),
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
                "%s may rise again %d s after its last increase; next at %d ms"
                % (drug.name, drug.up_interval_ms // 1000, due),
                _range(drug, drug.hard_min, old),
                override,
                notes,
                due,
            )
        return None
    lo = old - drug.step_down if drug.step_down is not None else drug.hard_min
    if new < lo:
        message = "%s can fall at most to %s from %s in one step" % (
            drug.name,
            _dose_text(drug, lo),
            _dose_text(drug, old),
        )
        if drug.taper:
            return refuse(
                "step_down_too_large",
                message + " (a taper drug is never cut short: stop starts its taper)",
                _range(drug, lo, old),
            )
        refusal = _soft("step_down_too_large", message, _range(drug, lo, old), override, notes)
        if refusal:
            return refusal
    if last_down_ms is not None and now_ms < last_down_ms + drug.down_interval_ms:
        due = last_down_ms + drug.down_interval_ms
        message = "%s may fall again %d s after its last decrease; next at %d ms" % (
            drug.name,
            drug.down_interval_ms // 1000,
            due,
        )
        if drug.taper:
            return refuse("too_soon", message, _range(drug, old, drug.hard_max), due)
        return _soft("too_soon", message, _range(drug, old, drug.hard_max), override, notes, due)
    return None
