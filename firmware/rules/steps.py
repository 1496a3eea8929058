# A titration's change of dose: how far one step may rise or fall, and how soon after
# the last rise or fall. (Conventions: firmware/rules/__init__.py.)
from firmware import units
from firmware.channel import dose_text
from firmware.rules.dose import dose_range, soft
from protocol.text import duration


def _too_soon(drug, kind, interval_ms, at_ms, now_ms):
    return "%s may %s again in %s (once every %s)" % (
        drug.name,
        kind,
        duration(at_ms - now_ms),
        duration(interval_ms),
    )


def check_step(drug, dose, new, last_up_ms, last_down_ms, now_ms, override, notes):
    """Titration from dose to new at now_ms: step sizes and intervals.

    Every step is soft: an emergency may need a faster climb, and an overshoot (a
    vasopressor's MAP too high, digital ischaemia) a faster fall, with override, noted
    in the decision. A larger or earlier step is refused without one, never shortened
    silently. What no titration does is taper-not-stop's: below hard_min (to 0) is
    refused by check_dose, and the step to 0 is the taper's, a full interval after the
    dose last fell (core._stop).
    """
    if new == dose:
        # a hold, neither a rise nor a fall: no step and no interval applies (during a
        # taper it is how the clinician keeps the current dose, cancelling the taper)
        return None
    if new > dose:
        hi = dose + drug.step_up if drug.step_up is not None else drug.hard_max
        if drug.up_percent is not None:
            hi = min(hi, dose * drug.up_percent // 100)
        if new > hi:
            refusal = soft(
                "step_up_too_large",
                "%s may rise to at most %s from %s in one step"
                % (drug.name, dose_text(drug, hi), units.fmt(dose)),
                dose_range(drug, dose, hi),
                override,
                notes,
            )
            if refusal:
                return refusal
        due = last_up_ms + drug.up_interval_ms
        if now_ms < due:
            return soft(
                "too_soon",
                _too_soon(drug, "rise", drug.up_interval_ms, due, now_ms),
                dose_range(drug, drug.hard_min, dose),
                override,
                notes,
                due,
            )
        return None
    lo = dose - drug.step_down if drug.step_down is not None else drug.hard_min
    if new < lo:
        message = "%s may fall to at least %s from %s in one step" % (
            drug.name,
            dose_text(drug, lo),
            units.fmt(dose),
        )
        refusal = soft("step_down_too_large", message, dose_range(drug, lo, dose), override, notes)
        if refusal:
            return refusal
    if last_down_ms is not None and now_ms < last_down_ms + drug.down_interval_ms:
        due = last_down_ms + drug.down_interval_ms
        message = _too_soon(drug, "fall", drug.down_interval_ms, due, now_ms)
        return soft(
            "too_soon", message, dose_range(drug, dose, drug.hard_max), override, notes, due
        )
    return None
