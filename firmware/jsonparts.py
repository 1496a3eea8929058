# A JSON text by parts, for the drug library's loader (firmware/libload.py, imported at
# a boot and a LIB_COMMIT only, dropped with it): the byte ranges of an object's members
# (Parts), so that each drug is parsed on its own and the whole tree is never held; and
# what json.loads() does not tell of a text: the members an object gives twice, how many
# strings it holds (a figure given twice is reviewed by its first and run by its last).
# Scans of the bytes, never a copy of them, the same on both interpreters: the json
# modules of CPython and MicroPython offer no hooks, and MicroPython's is lenient (a
# missing comma or colon, a trailing comma) where CPython's refuses; Parts is strict, as
# CPython's, at the two levels it reads (the document, its "drugs").
import json
import sys

from micropython import const

from firmware.jsontext import _string_end

_QUOTE = const(0x22)
_NEWLINE = const(0x0A)
_COMMA = const(0x2C)
_COLON = const(0x3A)
_OPEN_OBJECT = const(0x7B)
_CLOSE_OBJECT = const(0x7D)
_OPEN_ARRAY = const(0x5B)
_CLOSE_ARRAY = const(0x5D)
_SPACE = const(b" \t\n\r")  # JSON's whitespace (RFC 8259), and only it
_VALUE_END = const(b",}] \t\n\r")


class Parts:
    """The document by parts: its top-level members {key: (start, end)} in the bytes, the
    "drugs" member's members likewise when it is an object (else None)."""

    def __init__(self, data):
        self.data = data
        # MicroPython's json reads any buffer: a value is parsed where it lies, never copied
        self._view = memoryview(data) if sys.implementation.name == "micropython" else data
        at = _space(data, 0)
        if at >= len(data) or data[at] != _OPEN_OBJECT:
            raise TypeError  # no object: load() asks json what it is
        self.top, at = _members(data, at)
        if _space(data, at) != len(data):
            raise ValueError("text after the library's closing brace, line %d" % _line(data, at))
        span = self.top.get("drugs")
        self.drugs = None
        if span is not None and data[span[0]] == _OPEN_OBJECT:
            self.drugs = _members(data, span[0])[0]

    def value(self, at):
        """The value at the span at, parsed on its own; ValueError (json's, with where the value
        begins: json counts its lines and columns from there) when it is no JSON."""
        try:
            return json.loads(self._view[at[0] : at[1]])  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(
                "%s, in the value from line %d" % (exc, _line(self.data, at[0]))
            ) from None


def _space(data, at):
    n = len(data)
    while at < n and data[at] in _SPACE:
        at += 1
    return at


def _line(data, at):
    return data.count(b"\n", 0, at) + 1


def _members(data, at):
    """({key: (start, end)} of the members of the object at data[at] (its values' byte
    ranges, the last of a key given twice, as json keeps), the index after it). Raises
    ValueError where its members are not `"key": value` separated by commas; the values
    are json's to check."""
    found = {}
    n = len(data)
    at = _space(data, at + 1)
    if at < n and data[at] == _CLOSE_OBJECT:
        return found, at + 1
    while True:
        if at >= n or data[at] != _QUOTE:
            raise ValueError("expected a member name in quotes, line %d" % _line(data, at))
        end = _string_end(data, at)
        key = _key(bytes(data[at + 1 : end]))
        at = _space(data, end + 1)
        if at >= n or data[at] != _COLON:
            raise ValueError("expected ':' after %r, line %d" % (key, _line(data, at)))
        at = _space(data, at + 1)
        end = _value_end(data, at)
        found[key] = (at, end)
        at = _space(data, end)
        if at < n and data[at] == _CLOSE_OBJECT:
            return found, at + 1
        if at >= n or data[at] != _COMMA:
            raise ValueError("expected ',' or '}' after %r, line %d" % (key, _line(data, at)))
        at = _space(data, at + 1)


def _value_end(data, at):
    """The index after the JSON value that begins at data[at] (as far as brackets and
    strings say: json checks the value itself)."""
    n = len(data)
    if at >= n:
        return at
    b = data[at]
    if b == _QUOTE:
        return _string_end(data, at) + 1
    if b != _OPEN_OBJECT and b != _OPEN_ARRAY:
        while at < n and data[at] not in _VALUE_END:
            at += 1
        return at
    level = 0
    while at < n:
        b = data[at]
        if b == _QUOTE:
            at = _string_end(data, at)
        elif b in (_OPEN_OBJECT, _OPEN_ARRAY):
            level += 1
        elif b in (_CLOSE_OBJECT, _CLOSE_ARRAY):
            level -= 1
            if not level:
                return at + 1
        at += 1
    return at


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
