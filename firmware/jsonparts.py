# A JSON text by parts, and the drug library loader's first pass (first(): imported by
# druglib.load() at a boot and a LIB_COMMIT only, dropped before libload.py, the second
# pass, is imported): the byte ranges of an object's members
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

from firmware.canonical import Crc, write
from firmware.jsontext import _string_end

_TOP = const(("name", "version", "crc32", "weight_kg", "volume_ml", "drugs"))
_DEPTH_MAX = const(16)  # arrays and objects within each other (the library's own: 6)
_SURROGATES = const((b"d8", b"d9", b"da", b"db", b"dc", b"dd", b"de", b"df"))

_QUOTE = const(0x22)
_BACKSLASH = const(0x5C)
_NEWLINE = const(0x0A)
_COMMA = const(0x2C)
_COLON = const(0x3A)
_OPEN_OBJECT = const(0x7B)
_CLOSE_OBJECT = const(0x7D)
_OPEN_ARRAY = const(0x5B)
_CLOSE_ARRAY = const(0x5D)
_SPACE = const(b" \t\n\r")  # JSON's whitespace (RFC 8259), and only it
_VALUE_END = const(b",}] \t\n\r")
_WINDOW = const(256)  # a Source's window
# census(): the levels whose containers' ends it keeps (the document, its members' values,
# "drugs"' members: what Parts splits), for at most so many (a library of 250 drugs; a
# text of more is scanned for the rest, as it was for all)
_TRACKED = const(3)
_ENDS_MAX = const(256)


class Parts:
    """The document by parts: its top-level members {key: (start, end)} in the bytes, the
    "drugs" member's members likewise when it is an object (else None). ends: census()'s
    {start: end} of the containers it found, so that a member's value is not scanned
    again for its end."""

    def __init__(self, data, ends):
        self.data = data
        # MicroPython's json reads any buffer: a value is parsed where it lies, never copied
        # (a Source's value is read out of its file)
        self._view = memoryview(data) if _buffer(data) else data
        at = _space(data, 0)
        if at >= len(data) or data[at] != _OPEN_OBJECT:
            raise TypeError  # no object: load() asks json what it is
        self.top, at = _members(data, at, ends)
        if _space(data, at) != len(data):
            raise ValueError("text after the library's closing brace, line %d" % _line(data, at))
        span = self.top.get("drugs")
        self.drugs = None
        if span is not None and data[span[0]] == _OPEN_OBJECT:
            self.drugs = _members(data, span[0], ends)[0]

    def value(self, at):
        """The value at the span at, parsed on its own; ValueError (json's, with where the value
        begins: json counts its lines and columns from there) when it is no JSON."""
        try:
            return json.loads(self._view[at[0] : at[1]])  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(
                "%s, in the value from line %d" % (exc, _line(self.data, at[0]))
            ) from None


def _buffer(data):
    # True when data is bytes MicroPython's json can read in place (a memoryview of them)
    return sys.implementation.name == "micropython" and isinstance(data, (bytes, bytearray))


class Source:
    """A file's bytes, read as the scans here read bytes (len, an index, a slice, find,
    count, in) through one window of _WINDOW bytes: the drug library's text at a boot,
    never held whole (16 KB; measured, issue 14: with it held beside the loader's first
    pass, 190k did not boot). A slice is read from the file (a value, a key: small)."""

    def __init__(self, f):
        f.seek(0, 2)
        self._n = f.tell()
        self._f = f
        self._win = bytearray(_WINDOW)
        self._at = 0  # the file's offset of the window's first byte
        self._len = 0  # the bytes the window holds

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self._bytes(i.start or 0, self._n if i.stop is None else i.stop)
        o = i - self._at
        if o < 0 or o >= self._len:
            if not 0 <= i < self._n:
                raise IndexError(i)
            self._f.seek(i)
            self._len = self._f.readinto(self._win)
            self._at = i
            o = 0
        return self._win[o]

    def _bytes(self, start, stop):
        # the bytes from start to stop (a slice's), read from the file
        stop = min(stop, self._n)
        if stop <= start:
            return b""
        self._f.seek(start)
        return self._f.read(stop - start)

    def find(self, sub, start=0):
        """As bytes.find(sub, start)."""
        n = len(sub)
        while start < self._n:
            at = self._bytes(start, start + _WINDOW + n - 1).find(sub)
            if at >= 0:
                return start + at
            start += _WINDOW
        return -1

    def count(self, sub, start, end):
        """As bytes.count(sub, start, end), for a sub of one byte."""
        total = 0
        while start < end:
            stop = min(start + _WINDOW, end)
            total += self._bytes(start, stop).count(sub)
            start = stop
        return total

    def __contains__(self, sub):
        return self.find(sub) >= 0


def first_file(f, problems):
    """first() of the JSON text the binary file f holds, read through a Source (none
    kept after it: its methods would hold this module's code, through its globals)."""
    return first(Source(f), problems)


def _space(data, at):
    n = len(data)
    while at < n and data[at] in _SPACE:
        at += 1
    return at


def _line(data, at):
    return data.count(b"\n", 0, at) + 1


def _members(data, at, ends):
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
        end = _value_end(data, at, ends)
        found[key] = (at, end)
        at = _space(data, end)
        if at < n and data[at] == _CLOSE_OBJECT:
            return found, at + 1
        if at >= n or data[at] != _COMMA:
            raise ValueError("expected ',' or '}' after %r, line %d" % (key, _line(data, at)))
        at = _space(data, at + 1)


def _value_end(data, at, ends):
    """The index after the JSON value that begins at data[at] (as far as brackets and
    strings say: json checks the value itself); a container's from ends when census()
    found it there (the same answer: the same scan from the same bracket)."""
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
    end = ends.get(at)
    if end is not None:
        return end
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


def strings_in(value):
    """How many strings (keys and values) a parsed JSON value holds: what strings()
    counts in its text, unless the parser dropped one (a member given twice)."""
    # loops, not sum() of a generator: one made per object and array (30 KB a library)
    if isinstance(value, str):
        return 1
    n = 0
    if isinstance(value, dict):
        for item in value.values():
            n += 1 + strings_in(item)
    elif isinstance(value, list):
        for item in value:
            n += strings_in(item)
    return n


def _key(raw):
    # A key as json reads it ("hard_ma\u0078" is "hard_max", and CPython's json takes
    # bytes str() would refuse): the text parsed whole already, so this string does too.
    # Plain ASCII, without an escape, it is its bytes: no quoted copy parsed (the two
    # concatenations and json's parse were 46 KB of a library's load, 64-bit).
    if b"\\" not in raw and (not raw or max(raw) < 0x80):
        return str(raw, "utf-8")
    return json.loads(b'"' + raw + b'"')


def census(data):
    """What one scan of the JSON bytes data (bytes, or a Source: read a window at a time)
    tells that json.loads() does not: (how deep it nests its arrays and objects, how many
    string literals it holds (keys and values), [(line, key)] of each member whose object
    already had its key (as json reads keys: escapes resolved), {start: end} of the
    containers at the first _TRACKED levels (the document, its members', theirs: the
    values Parts splits; at most _ENDS_MAX, the rest are scanned for). Its memory is bounded
    whatever the text: the key sets of _DEPTH_MAX open objects at most. One pass for all:
    a scan each, through a Source's index, was most of a boot (the shipped library's
    first pass on WebAssembly: 384 ms). Members left without a comma between them
    (MicroPython's json takes that) are not placed: the count of strings tells them.
    Each name a module holds is MicroPython's for good (tests/test_qstr_budget.py): the
    scan is one function."""
    found = []
    ends = {}
    opened = [0] * (_TRACKED + 1)  # where the container at each tracked level began
    stack = []  # type: list[set | None]  # per open container: an object's keys, or None
    expect_key = False  # the next string is a member's key
    in_string = escaped = False
    begun = 0  # where the string being read began (its first byte after the quote)
    level = deepest = count = 0  # level: as _value_end() counts, any bracket for any
    over = 0  # containers open past _DEPTH_MAX deep, given no place on the stack
    line = 1
    n = len(data)
    source = isinstance(data, Source)
    base = 0
    while base < n:
        if source:  # its file read into its window from base on (a method: a name more)
            f = data._f
            f.seek(base)
            win = data._win
            m = data._len = f.readinto(win) or 0
            data._at = base
            if not m:  # the file ended before the length it had (written meanwhile)
                break
        else:
            win, m = data, n
        i = 0
        while i < m:
            b = win[i]
            if in_string:
                if escaped:
                    escaped = False
                elif b == _BACKSLASH:
                    escaped = True
                elif b == _QUOTE:
                    in_string = False
                    keys = stack[-1] if expect_key else None  # expect_key: in an object
                    if keys is not None:
                        try:
                            key = _key(bytes(data[begun : base + i]))
                        except ValueError:  # (UnicodeError too) json refuses the text for it
                            key = None
                        if key is not None:
                            if key in keys:
                                found.append((line, key))
                            keys.add(key)
                        expect_key = False
            elif b == _QUOTE:
                in_string = True
                begun = base + i + 1
                count += 1
            elif b in (_OPEN_OBJECT, _OPEN_ARRAY):
                level += 1
                if level > deepest:
                    deepest = level
                if 0 < level <= _TRACKED:
                    opened[level] = base + i
                if len(stack) >= _DEPTH_MAX:  # refused for its depth: no set per bracket
                    over += 1
                elif b == _OPEN_OBJECT:
                    stack.append(set())
                    expect_key = True
                else:
                    stack.append(None)
            elif b in (_CLOSE_OBJECT, _CLOSE_ARRAY):
                if 0 < level <= _TRACKED and len(ends) < _ENDS_MAX:
                    ends[opened[level]] = base + i + 1
                level -= 1
                if over:
                    over -= 1
                elif stack:
                    stack.pop()
                expect_key = False
            elif b == _COMMA:
                expect_key = bool(stack) and stack[-1] is not None
            elif b == _NEWLINE:
                line += 1
            i += 1
        base += m
    # (a string left open is no JSON: the text is refused, its duplicates never read)
    return deepest, count, found, ends


def first(data, problems):
    """The library loader's first pass over the JSON bytes data (firmware/libload.py
    load() the second): (the document's top-level values, "drugs" None when it is an
    object, the CRC of its canonical form, the ValueError of a value with no canonical
    form or None, {drug: (start, end)} or None when "drugs" is no object), or None when
    the text is no library to check further. Its problems appended to problems, as
    libload's: "<path>: <what is wrong>"."""

    def problem(path, what):
        problems.append("%s: %s" % (path, what))

    if _bytes_problem(problem, data):
        return None
    deep, count_in_text, twice, ends = census(data)
    if _text_problem(problem, data, deep):
        return None
    crc = Crc()
    try:
        parts = Parts(data, ends)
        ends = None
        doc, count, no_form = _first_pass(parts, crc)
    except TypeError:  # not an object: is it JSON at all?
        try:
            json.loads(data[0 : len(data)])  # (a Source's bytes read whole: no library)
        except ValueError as exc:
            problem("library", "not valid JSON (%s)" % (exc,))
        else:
            problem("library", "not a JSON object")
        return None
    except ValueError as exc:
        problem("library", "not valid JSON (%s)" % (exc,))
        return None
    for line, key in twice:
        problem(
            "library",
            "member %r given twice in one object (line %d): a reader sees the first, the "
            "pump would run the last" % (key, line),
        )
    if not twice and count_in_text != count:
        # a member the parse dropped that census() could not place: given twice
        # without a comma between, which MicroPython's json takes and CPython's refuses
        problem("library", "the text holds members its document does not: one given twice")
    for key in parts.top:  # the text's order, as json's dict
        if key not in _TOP and key != "about":
            problem(key, "unknown top-level field")
    return doc, crc.value & 0xFFFFFFFF, no_form, parts.drugs


def _first_pass(p, crc):
    """Parse every value of the document (ValueError: not valid JSON), in the canonical
    form's order, feeding that form (without the top-level "crc32") to crc: (the
    document's top-level values but "drugs", the strings the document holds, the
    ValueError of a value with no canonical form or None)."""
    doc = {}
    count = 0
    no_form = None
    emit = crc.add
    emit(b"{")
    first = True
    for key in sorted(p.top):
        count += 1
        span = p.top[key]
        if key == "drugs" and p.drugs is not None:
            values = [(name, p.drugs[name]) for name in sorted(p.drugs)]
            doc[key] = None
        else:
            values = None
            doc[key] = value = p.value(span)
        if key == "crc32":
            count += strings_in(value)
            continue
        if no_form is None:
            if not first:
                emit(b",")
            first = False
            write(key, emit)
            emit(b":")
        if values is None:
            count += strings_in(value)
            no_form = _form(value, emit, no_form)
            continue
        if no_form is None:
            emit(b"{")
        for i in range(len(values)):
            name, span = values[i]
            drug = p.value(span)
            count += 1 + strings_in(drug)
            if no_form is None:
                if i:
                    emit(b",")
                write(name, emit)
                emit(b":")
            no_form = _form(drug, emit, no_form)
            drug = None
        if no_form is None:
            emit(b"}")
    if no_form is None:
        emit(b"}")
        crc.flush()
    return doc, count, no_form


def _form(value, emit, error):
    # the canonical form of value to emit until one value has none (its ValueError)
    if error is not None:
        return error
    try:
        write(value, emit)
    except ValueError as exc:
        return exc
    return None


def _bytes_problem(problem, data):
    """True when the bytes are no UTF-8 text (a problem is noted)."""
    # CPython's json reads UTF-16 and a byte order mark in bytes, MicroPython's neither.
    if data[:3] == b"\xef\xbb\xbf" or data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in data:
        problem("library", "not UTF-8 text without a byte order mark (saved as UTF-16?)")
        return True
    return False


def _text_problem(problem, data, deep):
    """True when the text, deep levels deep (census()), is none both interpreters read the
    same (a problem is noted): a file a host's check passes must be one a board loads the
    same."""
    # Parsing and the canonical form recurse: MicroPython's stack ends far sooner than
    # CPython's, so one bound for both (a library nests 6 deep; "about" is free text).
    if deep > _DEPTH_MAX:
        problem("library", "nested %d deep: a library nests at most %d" % (deep, _DEPTH_MAX))
        return True
    # CPython's json joins a surrogate pair ("\ud835\udc65") into one character,
    # MicroPython's keeps two: another canonical form, another CRC.
    at = data.find(b"\\u")
    while at >= 0:
        escaped = 1
        while at >= escaped and data[at - escaped] == 0x5C:  # "\\u" is no escape
            escaped += 1
        if escaped % 2 and data[at + 2 : at + 4].lower() in _SURROGATES:
            # quoted up to its first byte past ASCII (half a character would not decode)
            digits = data[at + 2 : at + 6]
            n = 0
            while n < len(digits) and digits[n] < 0x80:
                n += 1
            problem(
                "library",
                "a \\u%s escape (half of a character outside the BMP): write the "
                "character itself, in UTF-8" % (str(digits[:n], "utf-8"),),
            )
            return True
        at = data.find(b"\\u", at + 2)
    return False
