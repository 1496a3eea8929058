# How the safety core words its log: a command as received, an accepted decision, a
# rate change, a taper's steps. The core logs each as a form (a number below) and its
# arguments, small ints and references it already holds (firmware/eventlog.py); text()
# words it when the entry is read, so an accepted command makes no text at all.
#
# Every text here stays within the wire's TEXT_MAX: a command's arguments are clipped as
# they are said, and an accepted message names the advisory only while it fits
# (tests/test_core_messages.py drives every path with the longest inputs a command has).
from micropython import const

from firmware import units
from firmware.channel import dose_text
from firmware.rules.inputs import is_quantity
from protocol.text import TEXT_MAX, clip, duration, shown

# The forms (EventLog.put's form) and their arguments
START = const(1)  # drug, dose, unit, weight, conc, conc_unit, volume (as received)
START_OVERRIDE = const(2)  # the same, with override
TITRATE = const(3)  # dose, unit
TITRATE_OVERRIDE = const(4)
RATE = const(5)  # old rate, new rate
STARTED = const(6)  # Drug, dose, rate, notes (a mask of PASSED), advisory text or None
TITRATED = const(7)  # Drug, old dose, dose, rate, taper cancelled, notes
TAPER_STEP = const(8)  # Drug, dose
TAPER_DONE = const(9)  # Drug
TAPER_STARTED = const(10)  # Drug, steps, ms until off
STOPPED = const(11)  # Drug (None when not delivering), dose, ch, state: as it was
ALREADY = const(12)  # Drug, dose

# What an override passed, as the accepted message names it, in the order the checks
# pass them (short: it must fit the wire after the dose, the rate and a cancelled taper).
PASSED = ("soft max", "soft min", "start max", "step", "interval")


def notes_mask(notes):
    mask = 0
    for note in notes:
        mask |= 1 << PASSED.index(note)
    return mask


def texts(a, b, c):
    # texts a command gave, or None: kept by reference (a str never changes)
    return (
        (a is None or type(a) is str)
        and (b is None or type(b) is str)
        and (c is None or type(c) is str)
    )


def numbers(a, b, c, d):
    # numbers a command gave, or None (ints never change; bools are worded now)
    return (
        (a is None or type(a) is int)
        and (b is None or type(b) is int)
        and (c is None or type(c) is int)
        and (d is None or type(d) is int)
    )


def said(value, room=11):
    """A command's argument as the log shows it: a quantity as its decimal, a text as
    itself, anything else as its repr; clipped (the longest quantity is 11 characters)."""
    if is_quantity(value):
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


def _was(drug, dose, ch, state):
    # channel.describe() of the channel as it was
    if drug is None:
        return "channel %d %s" % (ch, state)
    return "%s %s" % (drug.name, dose_text(drug, dose))


def _accepted(message, notes, advisory):
    if notes:
        message += "; override: " + ", ".join(
            PASSED[i] for i in range(len(PASSED)) if notes & (1 << i)
        )
    if advisory:
        # the advisory's text is its alarm's; repeated here when the message has room
        more = "; advisory: " + advisory
        message += more if len(message) + len(more) <= TEXT_MAX else "; advisory alarm"
    return message


def accepted_code(notes, advisory):
    return "ok_override" if notes else "ok_advisory" if advisory else "ok"


def text(form, a, b, c, d, e, f, g):
    """The text of a log entry of form with its arguments."""
    if form <= START_OVERRIDE:
        return start_command(a, b, c, d, e, f, g, form == START_OVERRIDE)
    if form <= TITRATE_OVERRIDE:
        return titrate_command(a, b, form == TITRATE_OVERRIDE)
    if form == RATE:
        return "%s mL/h -> %s mL/h" % (units.fmt(a), units.fmt(b))
    if form == STARTED:
        message = "started %s at %s (%s mL/h)" % (a.name, dose_text(a, b), units.fmt(c))
        return _accepted(message, d, e)
    if form == TITRATED:
        message = "%s %s -> %s (%s mL/h)%s" % (
            a.name,
            units.fmt(b),
            dose_text(a, c),
            units.fmt(d),
            "; taper cancelled" if e else "",
        )
        return _accepted(message, f, None)
    if form == TAPER_STEP:
        return "taper: %s now %s" % (a.name, dose_text(a, b))
    if form == TAPER_DONE:
        return "taper complete: %s stopped" % (a.name,)
    if form == TAPER_STARTED:
        return "%s is tapered, never stopped abruptly: %d steps of %s every %s, off in %s" % (
            a.name,
            b,
            dose_text(a, a.taper_step),
            duration(a.taper_interval_ms),
            duration(c),
        )
    if form == STOPPED:
        return "stopped (%s)" % (_was(a, b, c, d),)
    if form == ALREADY:
        return "%s already at %s" % (a.name, dose_text(a, b))
    return "?"
