# A handover: the program running on one channel moves to a new syringe on another, in
# one decision (issue 9, finding 2). Done by hand, a changeover either runs both
# syringes together for a while (a stop of a vasopressor tapers: the old channel's
# taper on top of the new one's full dose) or cuts the drug off between them, and
# changeovers done so destabilise 12-15% of patients on vasopressors.
#
# The new channel takes the old one's whole program: drug, concentration, the
# patient's weight, the dose, when it last rose and fell (so the titration intervals
# and a taper's last step keep their pace), the override and a running taper. The old
# channel stops without a taper in the same decision, and the shell sets both motors
# from it before it answers, so the patient's total of the drug never changes. The
# new syringe's label is read back at the bedside (drug, concentration, volume): a
# handover to a syringe of anything else is refused.
#
# Imported with the requests' handlers (handlers.py), not on the first HANDOVER: a
# handover is asked for when a syringe runs low, in a heap hours of service have cut
# up, where its module's 5.5 KB of import (64-bit unix port) may find no room.
from firmware import rules, wording
from firmware.channel import HANDOVER, START, TAPER, TAPERING
from firmware.result import Result, refuse
from firmware.units import fmt
from protocol.text import shown


def move(core, frm, to, name, conc, conc_unit, volume, syringe, now_ms):
    """Channel frm's program moved to channel to (syringe: the capacity of the syringe
    to has loaded, micro mL, None: none known); a Result, logged as every command's."""
    core._now = now_ms
    log = core.log
    # kept as received, worded when read (firmware/wording.py): nothing made of it now
    seq = log.put(now_ms, frm, wording.HANDOVER, frm, to, name, conc, conc_unit, volume)
    if not wording.kept(name, conc_unit, None, frm, to, conc, volume):
        log.freeze(seq)  # an odd argument (a list, a float): worded as it is now
    return core._decided(
        now_ms, frm, _decide(core, frm, to, name, conc, conc_unit, volume, syringe, now_ms)
    )


def _decide(core, frm, to, name, conc, conc_unit, volume, syringe, now_ms):
    n = core.channels
    refusal = rules.check_channel(frm, n) or rules.check_channel(to, n)
    if refusal:
        return refusal
    a = core.channel(frm)
    b = core.channel(to)
    if to == frm:
        return refuse(
            "invalid_state", "cannot hand over channel %d to itself: name another channel" % frm
        )
    if not a.delivering:
        return refuse("invalid_state", "cannot hand over: channel %d is %s" % (frm, a.state))
    # the new channel free, its sensors reporting no fault (a start's own check)
    refusal = rules.check_state(b, START, "hand over")
    if refusal:
        return refusal
    drug = a.drug
    if name != drug.name:
        return _mismatch(a, to, shown(name, 26))
    refusal = rules.check_values(a.dose, volume, conc)  # (a.dose, verified, passes)
    if refusal:
        return refusal
    value = rules.check_conc(drug, conc, conc_unit)
    if isinstance(value, Result):
        return value
    if value != a.conc:
        return _mismatch(a, to, "%s %s" % (fmt(conc), shown(conc_unit, 12)))
    refusal = rules.check_volume(core.library, volume, syringe)
    if refusal:
        return refusal
    # No library check: the program was verified when it started and runs now; a
    # refused handover would leave its only way on a stop.
    dose = a.dose
    b.begin(drug, a.weight, a.conc, volume, now_ms)
    b.fire(START)
    if a.state == TAPERING:
        b.fire(TAPER)
        b.taper_next_ms = a.taper_next_ms
    b.last_up_ms = a.last_up_ms
    b.last_down_ms = a.last_down_ms
    b.override = a.override
    alarms = core._alarms
    alarms.clear(to, "near_empty")
    core._set_dose(b, dose, now_ms)
    a.fire(HANDOVER)
    core._set_dose(a, 0, now_ms)
    alarms.clear(frm, "near_empty")  # the old syringe's: it runs no more
    # An advisory is about the patient's drugs, not the syringe: one acknowledged stays
    # so on the new channel, where advisories() raises it anew (no news to alarm)
    was = alarms.find(frm, "second_line_alone")
    acked = was is not None and was.acked
    core._watch.advisories(now_ms)
    now = alarms.find(to, "second_line_alone") if acked else None
    if now is not None:
        alarms.ack(now)
    # worded when read (at most TEXT_MAX: a 16-character drug, a dose and a volume of 10,
    # channels of 3)
    result = Result(True, "handed_over", None, dose=dose, rate=b.rate, unit=drug.dose_unit)
    tapering = b.state == TAPERING
    result.logged(core.log, core.log.put(now_ms, frm, wording.HANDED_OVER, drug, dose, frm,
                                         to, volume, tapering))  # fmt: skip
    return result


def _mismatch(a, to, label):
    # at most TEXT_MAX: the label's 26, the drug's 24, a concentration's two 12
    return refuse(
        "handover_mismatch",
        "channel %d's syringe is %s; channel %d runs %s %s %s"
        % (to, label, a.ch, a.drug.name, fmt(a.conc), a.drug.conc_unit),
    )
