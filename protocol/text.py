# Human text on the wire: how long it may be, how values and lists are shortened to
# fit, and how a span of time is written.
#
# Every human text either side makes (refusal, alarm and log messages on the device;
# the CLI's and the API's texts on the host) is printable ASCII of at most TEXT_MAX
# bytes, so the wire carries it whole: the sender's cut of a longer TEXT field
# (messages.py, ending in "...") never has to happen. One duration style for the
# device's messages and the host's output alike: "2 h 1 min", "1 min 58 s", "40 s".

TEXT_MAX = 120  # bytes of any human text: every TEXT field of the catalog holds this many


def clip(text, room):
    """text in printable ASCII (others as ?), shortened to room characters with "...",
    so that no input or library text can push a message past TEXT_MAX."""
    for ch in text:  # a text that is printable ASCII already is itself: nothing made
        if not " " <= ch <= "~":
            text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
            break
    return text if len(text) <= room else text[: room - 3] + "..."


def words(text, room):
    """text as clip() makes it, but a text that does not fit is cut after its last
    whole word that does (then "..."), never inside one; a first word longer than the
    room is cut as clip() cuts."""
    text = clip(text, len(text))
    if len(text) <= room:
        return text
    kept = text[: room - 3]
    space = kept.rfind(" ", 0, room - 2)
    if space > 0 and text[room - 3] != " ":
        kept = kept[:space]
    return kept.rstrip(" ,;:") + "..."


def shown(value, room=16):
    """A value taken from a command, for a message: its repr, clipped to room."""
    return clip(repr(value), room)


def listing(items, room):
    """items joined by ", " in at most room characters, the rest counted ("+3 more")."""
    out = ""
    for i, item in enumerate(items):
        more = "+%d more" % (len(items) - i)
        part = (", " if out else "") + item
        # keep room for the "+N more" that may still have to follow
        if len(out) + len(part) > room - (len(more) + 2 if i < len(items) - 1 else 0):
            return out + (", " if out else "") + more
        out += part
    return out


def duration(ms):
    """A span of ms as a person reads it: "40 s", "1 min 58 s", "1 h", "2 h 1 min".

    Rounded up, so a wait is never said to be shorter than it is (a step said to be
    allowed "in 1 min 58 s" is allowed then): to the second below an hour, to the
    minute from an hour on, where seconds would only lengthen the messages that must
    fit TEXT_MAX. A part that is zero is left out; no time at all, or a time already
    past, is "0 s".
    """
    s = max(0, (ms + 999) // 1000)
    if s >= 3600:
        h, m = divmod((s + 59) // 60, 60)
        return "%d h %d min" % (h, m) if m else "%d h" % (h,)
    if s >= 60:
        m, s = divmod(s, 60)
        return "%d min %d s" % (m, s) if s else "%d min" % (m,)
    return "%d s" % (s,)


def is_utf8(b, o, end):
    """b[o:end] is UTF-8 as CPython's strict decoder takes it (the host's): no overlong
    form, surrogate or code point past U+10FFFF. Read in place: nothing made (the
    journal checks each record it reads with it)."""
    while o < end:
        c = b[o]
        o += 1
        if c < 0x80:
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
            if c == 0xE0:
                lo = 0xA0
            elif c == 0xED:
                hi = 0x9F
        elif 0xF0 <= c <= 0xF4:
            n = 3
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F
        else:
            return False
        if o + n > end or not lo <= b[o] <= hi:
            return False
        for i in range(o + 1, o + n):
            if b[i] & 0xC0 != 0x80:
                return False
        o += n
    return True
