# How the safety core words a command in its log, and an accepted decision's answer.
#
# Every text here stays within the wire's TEXT_MAX: a command's arguments are clipped as
# they are said, and an accepted message names the advisory only while it fits
# (tests/test_core_messages.py drives every path with the longest inputs a command has).
from firmware import rules, units
from firmware.result import Result
from protocol.text import TEXT_MAX, clip, shown


def said(value, room=11):
    """A command's argument as the log shows it: a quantity as its decimal, a text as
    itself, anything else as its repr; clipped (the longest quantity is 11 characters)."""
    if rules.is_quantity(value):
        return units.fmt(value)
    return clip(value, room) if isinstance(value, str) else shown(value, room)


def start_command(drug, dose, unit, weight, conc, conc_unit, volume, override):
    # An argument the command left out (a weight a drug dosed per minute does not
    # need) is left out of the log too, never shown as "None".
    text = "start %s %s %s" % (said(drug, 16), said(dose), said(unit, 14))
    if weight is not None:
        text += ", %s kg" % (said(weight),)
    if conc is not None or conc_unit is not None:
        text += ", " + " ".join(
            said(v, room) for v, room in ((conc, 11), (conc_unit, 14)) if v is not None
        )
    if volume is not None:
        text += ", %s mL" % (said(volume),)
    if override:
        text += ", override"
    return text


def titrate_command(dose, unit, override):
    return "titrate %s %s%s" % (said(dose), said(unit, 14), ", override" if override else "")


def accepted(c, message, notes, advisory):
    """The Result of a start or titration of channel c: message, then what an override
    passed (notes) and the second-line advisory the start raised, if any."""
    code = "ok"
    if notes:
        code = "ok_override"
        message += "; override: " + ", ".join(notes)
    if advisory:
        code = "ok_advisory" if code == "ok" else code
        # the advisory's text is its alarm's; repeated here when the message has room
        more = "; advisory: " + advisory
        message += more if len(message) + len(more) <= TEXT_MAX else "; advisory alarm"
    return Result(True, code, message, dose=c.dose, rate=c.rate, unit=c.drug.dose_unit)
