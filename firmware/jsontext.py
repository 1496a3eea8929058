# What a JSON text says that json.loads() does not tell: how deep it nests, the members
# an object gives twice, how many strings it holds. The state record (persist.py) is
# refused past its depth before the parser recurses into it; a drug library
# (druglib.py) is refused when its text shows anything its parsed document drops (a
# figure given twice is reviewed by its first and run by its last). Scans of the bytes,
# never a copy of them (a Pico's heap holds a library once), the same on both
# interpreters: the json modules of CPython and MicroPython offer no hooks, and
# MicroPython's is lenient (a missing comma or colon, a trailing comma) where CPython's
# refuses.
import json

from micropython import const

_QUOTE = const(0x22)
_BACKSLASH = const(0x5C)
_NEWLINE = const(0x0A)
_COMMA = const(0x2C)
_OPEN_OBJECT = const(0x7B)
_CLOSE_OBJECT = const(0x7D)
_OPEN_ARRAY = const(0x5B)
_CLOSE_ARRAY = const(0x5D)


def _string_end(data, i):
    """The index of the quote closing the string whose opening quote is at i."""
    n = len(data)
    i += 1
    while i < n and data[i] != _QUOTE:
        i += 2 if data[i] == _BACKSLASH else 1
    return i


def depth(data):
    """How deep the JSON bytes data nests its arrays and objects (strings skipped)."""
    level = deepest = 0
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == _QUOTE:
            i = _string_end(data, i)
        elif b in (_OPEN_ARRAY, _OPEN_OBJECT):
            level += 1
            if level > deepest:
                deepest = level
        elif b in (_CLOSE_ARRAY, _CLOSE_OBJECT):
            level -= 1
        i += 1
    return deepest


def strings(data):
    """How many string literals (keys and values) the JSON bytes data holds."""
    count = 0
    i = 0
    n = len(data)
    while i < n:
        if data[i] == _QUOTE:
            i = _string_end(data, i)
            count += 1
        i += 1
    return count


def strings_in(value):
    """How many strings (keys and values) a parsed JSON value holds: what strings()
    counts in its text, unless the parser dropped one (a member given twice)."""
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return sum(1 + strings_in(item) for item in value.values())
    if isinstance(value, list):
        return sum(strings_in(item) for item in value)
    return 0


def _key(raw):
    # A key as json reads it ("hard_ma\u0078" is "hard_max", and CPython's json takes
    # bytes str() would refuse): the text parsed whole already, so this string does too.
    return json.loads(b'"' + raw + b'"')


def duplicates(data):
    """[(line, key)] of each member of the JSON bytes data whose object already had its
    key (as json reads keys: escapes resolved), for a message that names them. Members
    left without a comma between them (MicroPython's json takes that) are counted by
    strings() instead."""
    found = []
    stack = []  # type: list[set | None]  # per open container: an object's keys, or None
    expect_key = False  # the next string is a member's key
    line = 1
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b == _QUOTE:
            start = i + 1
            i = _string_end(data, i)
            keys = stack[-1] if expect_key else None  # expect_key: inside an object
            if keys is not None:
                key = _key(bytes(data[start:i]))
                if key in keys:
                    found.append((line, key))
                keys.add(key)
                expect_key = False
        elif b == _OPEN_OBJECT:
            stack.append(set())
            expect_key = True
        elif b == _OPEN_ARRAY:
            stack.append(None)
        elif b in (_CLOSE_OBJECT, _CLOSE_ARRAY):
            if stack:
                stack.pop()
            expect_key = False
        elif b == _COMMA:
            expect_key = bool(stack) and stack[-1] is not None
        elif b == _NEWLINE:
            line += 1
        i += 1
    return found
