# The reference jsonparts.census() is checked against: the scans it replaced, a full
# pass over the text each (firmware/jsonparts.py and jsontext.py before census(), kept
# here as they were), and what census() tells put beside what they tell.
from firmware import jsonparts
from firmware.jsontext import _string_end

_QUOTE = 0x22
_NEWLINE = 0x0A
_COMMA = 0x2C
_OPEN = (0x7B, 0x5B)
_CLOSE = (0x7D, 0x5D)
_DEPTH_MAX = 16  # jsonparts._DEPTH_MAX (a const: no attribute of the module on MicroPython)


def depth(data):
    level = deepest = 0
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == _QUOTE:
            i = _string_end(data, i)
        elif b in _OPEN:
            level += 1
            if level > deepest:
                deepest = level
        elif b in _CLOSE:
            level -= 1
        i += 1
    return deepest


def strings(data):
    count = 0
    i = 0
    n = len(data)
    while i < n:
        if data[i] == _QUOTE:
            i = _string_end(data, i)
            count += 1
        i += 1
    return count


def duplicates(data):
    """(the duplicates, how many containers were open at most: past _DEPTH_MAX, census()
    keeps no more, and the text is refused, for its depth or as no JSON)."""
    found = []
    most = 0
    stack = []
    expect_key = False
    line = 1
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == _QUOTE:
            start = i + 1
            i = _string_end(data, i)
            if i >= n:  # left open: no JSON, refused (census() reads no key of it)
                break
            keys = stack[-1] if expect_key else None
            if keys is not None:
                try:
                    key = jsonparts._key(bytes(data[start:i]))
                except ValueError:  # the parse refuses the text (census() skips it too)
                    key = None
                if key is not None:
                    if key in keys:
                        found.append((line, key))
                    keys.add(key)
                expect_key = False
        elif b == 0x7B:
            stack.append(set())
            expect_key = True
            most = max(most, len(stack))
        elif b == 0x5B:
            stack.append(None)
            most = max(most, len(stack))
        elif b in _CLOSE:
            if stack:
                stack.pop()
            expect_key = False
        elif b == _COMMA:
            expect_key = bool(stack) and stack[-1] is not None
        elif b == _NEWLINE:
            line += 1
        i += 1
    return found, most


def parts(data, ends):
    """(top, drugs) of jsonparts.Parts(data, ends), or the exception's type and text."""
    try:
        p = jsonparts.Parts(data, ends)
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, str(exc)
    return p.top, p.drugs


def differences(data, source=None):
    """What census() of data (and of source, a Source over the same bytes) tells that
    the reference scans don't: [] when all agree (its duplicates, for a text it keeps
    every open container of). Its ends are the answers the old scan gives: Parts with
    them splits the text as Parts with none (each value scanned)."""
    twice, most = duplicates(data)
    want = (depth(data), strings(data), twice if most <= _DEPTH_MAX else None)
    scanned = parts(data, {})
    out = []
    for given in (data, source) if source is not None else (data,):
        deep, count, twice, ends = jsonparts.census(given)
        got = (deep, count, twice if want[2] is not None else None)
        if got != want:
            out.append(("census", got, want))
        split = parts(given, ends)
        if split != scanned:
            out.append(("parts", split, scanned))
    return out
