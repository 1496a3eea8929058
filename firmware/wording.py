# How the safety core words its log: a command as received, an accepted decision, a
# rate change, a taper's steps, an alarm raised. The core logs each as a form (a number
# below) and its arguments, small ints and references it already holds
# (firmware/eventlog.py); text() words it when the entry is read, so an accepted command
# makes no text at all. An alarm's message is a str the alarm keeps: the forms of the
# core's own messages are worded into one at once (EventLog.worded), no piece of it made.
#
# Every text here stays within the wire's TEXT_MAX: a command's arguments are clipped as
# they are said, and an accepted message names the advisory only while it fits
# (tests/test_core_messages.py drives every path with the longest inputs a command has).
import struct
import sys

from micropython import const

from firmware.rules.inputs import is_quantity
from protocol.text import TEXT_MAX, clip, shown

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
ALARM = const(13)  # priority, id, message, code: an alarm raised
EMERGENCY = const(14)  # reason (as received: one of rules' EMERGENCY_REASONS)
# An emergency stop's alarm message, worded at once (the alarm keeps the str): Drug
# (None when not delivering), dose, ch, state, reason
EMERGENCY_STOPPED = const(15)
HANDOVER = const(16)  # ch, to, drug, conc, conc_unit, volume (as received)
HANDED_OVER = const(17)  # Drug, dose, ch, to, volume, tapering on: the new channel's

# What an override passed, as the accepted message names it, in the order the checks
# pass them (short: it must fit the wire after the dose, the rate and a cancelled taper).
PASSED = ("soft max", "soft min", "start max", "step", "interval")


def notes_mask(notes):
    mask = 0
    for note in notes:
        mask |= 1 << PASSED.index(note)
    return mask


def kept(a, b, c, d, e, f, g):
    """What a command gave can be kept by reference and worded later: a, b, c texts or
    None (a str never changes), d..g numbers or None (ints never change; bools and
    anything else are worded now)."""
    return (
        (a is None or type(a) is str)
        and (b is None or type(b) is str)
        and (c is None or type(c) is str)
        and (d is None or type(d) is int)
        and (e is None or type(e) is int)
        and (f is None or type(f) is int)
        and (g is None or type(g) is int)
    )


def accepted_code(notes, advisory):
    return "ok_override" if notes else "ok_advisory" if advisory else "ok"


# Each logged form's kind and code (None: the code of an accepted start or titration,
# or an alarm's own, code(); EMERGENCY_STOPPED is worded at once, never logged)
KINDS = (None, "start", "start", "titrate", "titrate", "rate") + ("decision",) * 7 + (
    "alarm", "emergency_stop", None, "handover", "decision")  # fmt: skip
_CODES = const((None, "received", "received", "received", "received", "rate_changed", None, None,
          "taper_step", "stopped", "taper_started", "stopped", "ok", None, "received",
          None, "received", "handed_over"))  # fmt: skip


def code(form, d, e, f):
    """The code of an entry of form (d, e, f: its arguments that say it)."""
    if form == STARTED:
        return accepted_code(d, e)
    if form == TITRATED:
        return accepted_code(f, None)
    if form == ALARM:
        return d
    return _CODES[form]


# -- worded into bytes ------------------------------------------------------------------
#
# render() writes an entry's text as UTF-8 into a bytearray, allocating nothing on
# MicroPython: the journal writes it straight into its record, the RAM log decodes it
# when read. struct packs a str's own bytes there ("121s" pads with zeros after it:
# writing on from its end overwrites them, so BUF bytes of room hold any text). A
# string holding a NUL, and anything but a quantity or a str, is worded as text first.

BUF = const(400)  # room render() needs
_MP = sys.implementation.name == "micropython"
_ROOM = const(121)  # bytes of a string packed at once: TEXT_MAX and one to cut after


def _raw(buf, o, s):
    # s's bytes at o (a str, or a bytes literal: bytes are never interned, short str
    # literals are, for ever); returns their end
    if _MP and (type(s) is bytes or "\x00" not in s):
        struct.pack_into("121s", buf, o, s)
        end = o
        stop = o + _ROOM
        while end < stop and buf[end]:
            end += 1
        return end
    b = s if type(s) is bytes else s.encode()  # CPython (or a NUL in s: never so)
    buf[o : o + len(b)] = b
    return o + len(b)


def _int(buf, o, n):
    if n < 0:
        buf[o] = 45  # -
        o += 1
        n = -n
    end = o
    m = n
    while True:
        end += 1
        m //= 10
        if not m:
            break
    i = end
    while True:
        i -= 1
        buf[i] = 48 + n % 10
        n //= 10
        if not n:
            break
    return end


def _fmt(buf, o, value):
    # units.fmt(value)
    frac = value % 1000000  # divmod() would make a tuple
    o = _int(buf, o, value // 1000000)
    if frac:
        buf[o] = 46  # .
        digits = 6
        while frac % 10 == 0:
            frac //= 10
            digits -= 1
        for i in range(digits - 1, -1, -1):
            buf[o + 1 + i] = 48 + frac % 10
            frac //= 10
        o += 1 + digits
    return o


def _dur(buf, o, ms):
    # protocol.text.duration(ms)
    s = max(0, (ms + 999) // 1000)
    if s >= 3600:
        m = (s + 59) // 60
        o = _raw(buf, _int(buf, o, m // 60), b" h")
        m %= 60
        return _raw(buf, _int(buf, _raw(buf, o, b" "), m), b" min") if m else o
    o2 = o
    if s >= 60:
        o2 = _raw(buf, _int(buf, o, s // 60), b" min")
        s %= 60
        if not s:
            return o2
        o2 = _raw(buf, o2, b" ")
    return _raw(buf, _int(buf, o2, s), b" s")


def _clip(buf, o, s, room):
    # clip(s, room): printable ASCII (each other character a ?), "..." past room
    if "\x00" in s:
        return _raw(buf, o, clip(s, room))  # clip() makes a NUL a ?
    end = _raw(buf, o, s)
    r = w = o
    n = 0
    while r < end:
        b = buf[r]
        r += 1
        if b >= 0x80:
            while r < end and buf[r] & 0xC0 == 0x80:
                r += 1
            b = 63  # ?
        elif b < 0x20 or b > 0x7E:
            b = 63
        buf[w] = b
        w += 1
        n += 1
    if r == o + _ROOM or n > room:  # longer than room (a packed string cut is too)
        w = o + room - 3
        for i in range(3):
            buf[w + i] = 46
        w += 3
    return w


def _number(buf, o, value):
    # shown(value, 4): a channel as received (an int of at most 4 characters, unless the
    # command was odd)
    if type(value) is int and -999 <= value <= 9999:
        return _int(buf, o, value)
    return _raw(buf, o, shown(value, 4))


def _text(buf, o, value, room):
    # a text received (a drug's name, a unit), clipped; shown() if it is none (5: "5")
    if isinstance(value, str):
        return _clip(buf, o, value, room)
    return _raw(buf, o, shown(value, room))


def _amount(buf, o, value):
    # a quantity received (micro units); shown(value, 12) if it is none ('16': "'16'")
    if is_quantity(value):
        return _fmt(buf, o, value)
    return _raw(buf, o, shown(value, 12))


def _said(buf, o, value, room=11):
    # said(value, room)
    if is_quantity(value):
        return _fmt(buf, o, value)
    if isinstance(value, str):
        return _clip(buf, o, value, room)
    return _raw(buf, o, shown(value, room))


def _dose(buf, o, drug, dose):
    # dose_text(drug, dose)
    return _raw(buf, _raw(buf, _fmt(buf, o, dose), b" "), drug.dose_unit)


def _channel(buf, o, drug, dose, ch, state):
    # describe(c): drug and dose while delivering (drug None: not), else number and state
    if drug is None:
        return _raw(buf, _raw(buf, _int(buf, _raw(buf, o, b"channel "), ch), b" "), state)
    return _dose(buf, _raw(buf, _raw(buf, o, drug.name), b" "), drug, dose)


def _spaced(buf, o, s):
    # s.replace("_", " ") (a reason's)
    end = _raw(buf, o, s)
    for i in range(o, end):
        if buf[i] == 95:  # _
            buf[i] = 32
    return end


def _accepted_into(buf, o, notes, advisory):
    if notes:
        o = _raw(buf, o, b"; override: ")
        first = True
        for i in range(len(PASSED)):
            if notes & (1 << i):
                if not first:
                    o = _raw(buf, o, b", ")
                o = _raw(buf, o, PASSED[i])
                first = False
    if advisory:
        start = o
        end = _raw(buf, _raw(buf, o, b"; advisory: "), advisory)
        n = 0  # characters: the bytes that start one
        for i in range(end):
            if buf[i] & 0xC0 != 0x80:
                n += 1
        if n > TEXT_MAX:
            end = _raw(buf, start, b"; advisory alarm")
        o = end
    return o


def render(buf, form, a, b, c, d, e, f, g):
    """The text of a log entry of form with its arguments, written into buf (BUF bytes)
    from 0; returns its length in bytes."""
    if form <= START_OVERRIDE:
        o = _said(buf, _raw(buf, 0, b"start "), a, 16)
        o = _said(buf, _raw(buf, o, b" "), b)
        o = _said(buf, _raw(buf, o, b" "), c, 14)
        if d is not None:
            o = _raw(buf, _said(buf, _raw(buf, o, b", "), d), b" kg")
        if e is not None or f is not None:
            o = _raw(buf, o, b", ")
            if e is not None:
                o = _said(buf, o, e)
                if f is not None:
                    o = _raw(buf, o, b" ")
            if f is not None:
                o = _said(buf, o, f, 14)
        if g is not None:
            o = _raw(buf, _said(buf, _raw(buf, o, b", "), g), b" mL")
        return _raw(buf, o, b", override") if form == START_OVERRIDE else o
    if form <= TITRATE_OVERRIDE:
        o = _said(buf, _raw(buf, 0, b"titrate "), a)
        o = _said(buf, _raw(buf, o, b" "), b, 14)
        return _raw(buf, o, b", override") if form == TITRATE_OVERRIDE else o
    if form == RATE:
        o = _raw(buf, _fmt(buf, 0, a), b" mL/h -> ")
        return _raw(buf, _fmt(buf, o, b), b" mL/h")
    if form == STARTED:
        o = _raw(buf, _raw(buf, 0, b"started "), a.name)
        o = _dose(buf, _raw(buf, o, b" at "), a, b)
        o = _raw(buf, _fmt(buf, _raw(buf, o, b" ("), c), b" mL/h)")
        return _accepted_into(buf, o, d, e)
    if form == TITRATED:
        o = _raw(buf, _raw(buf, 0, a.name), b" ")
        o = _dose(buf, _raw(buf, _fmt(buf, o, b), b" -> "), a, c)
        o = _raw(buf, _fmt(buf, _raw(buf, o, b" ("), d), b" mL/h)")
        if e:
            o = _raw(buf, o, b"; taper cancelled")
        return _accepted_into(buf, o, f, None)
    if form == TAPER_STEP:
        o = _raw(buf, _raw(buf, _raw(buf, 0, b"taper: "), a.name), b" now ")
        return _dose(buf, o, a, b)
    if form == TAPER_DONE:
        return _raw(buf, _raw(buf, _raw(buf, 0, b"taper complete: "), a.name), b" stopped")
    if form == TAPER_STARTED:
        o = _raw(buf, _raw(buf, 0, a.name), b" is tapered, never stopped abruptly: ")
        if b > 1:  # one step is the last, from the stop dose: only when it comes says more
            o = _dose(buf, _raw(buf, _int(buf, o, b), b" steps of "), a, a.taper_step)
            o = _raw(buf, _dur(buf, _raw(buf, o, b" every "), a.taper_interval_ms), b", ")
        return _dur(buf, _raw(buf, o, b"off in "), c)
    if form == STOPPED:
        return _raw(buf, _channel(buf, _raw(buf, 0, b"stopped ("), a, b, c, d), b")")
    if form == ALREADY:
        o = _raw(buf, _raw(buf, 0, a.name), b" already at ")
        return _dose(buf, o, a, b)
    if form == ALARM:
        o = _raw(buf, _int(buf, _raw(buf, _raw(buf, 0, a), b" #"), b), b": ")
        return _raw(buf, o, c)
    if form == EMERGENCY:  # shown(reason): a reason's repr is itself in quotes
        return _raw(buf, _raw(buf, _raw(buf, 0, b"emergency stop: '"), a), b"'")
    if form == EMERGENCY_STOPPED:
        o = _raw(buf, _int(buf, _raw(buf, 0, b"EMERGENCY STOP channel "), c), b" (")
        return _spaced(buf, _raw(buf, _channel(buf, o, a, b, c, d), b"): "), e)
    if form == HANDOVER:
        o = _number(buf, _raw(buf, 0, b"handover channel "), a)
        o = _text(buf, _raw(buf, _number(buf, _raw(buf, o, b" to "), b), b": "), c, 26)
        o = _text(buf, _raw(buf, _amount(buf, _raw(buf, o, b" "), d), b" "), e, 12)
        return _raw(buf, _amount(buf, _raw(buf, o, b", "), f), b" mL")
    if form == HANDED_OVER:
        o = _dose(buf, _raw(buf, _raw(buf, 0, a.name), b" "), a, b)
        o = _int(buf, _raw(buf, _int(buf, _raw(buf, o, b": handover channel "), c), b" -> "), d)
        o = _raw(buf, _fmt(buf, _raw(buf, o, b" ("), e), b" mL)")
        if f:
            o = _raw(buf, o, b", tapering on")
        return _raw(buf, _int(buf, _raw(buf, o, b", channel "), c), b" stopped")
    return _raw(buf, 0, b"?")
