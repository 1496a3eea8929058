"""The canonical form of a JSON document and its CRC: a drug library's identity.

The drug library's ``crc32`` (firmware/druglib.py) is ``"0x%08x"`` of CRC-32
(binascii.crc32, the zlib polynomial) over the UTF-8 bytes of the document's CANONICAL
FORM, defined as:

- the whole document with its top-level ``"crc32"`` member removed;
- objects written as ``{`` members ``}``, members sorted by key (code point order),
  each ``"key":value``, separated by ``,``; arrays as ``[`` items ``]`` separated by
  ``,``; no whitespace anywhere outside strings;
- strings in double quotes, escaping only ``"`` as ``\\"``, ``\\`` as ``\\\\`` and
  characters below U+0020 as ``\\u00xx`` (lower-case hex); everything else literal UTF-8;
- integers in decimal without leading zeros; ``true``, ``false``, ``null``;
- floats are not allowed anywhere (a problem, not a canonical form).

So whitespace, member order and indentation can change without changing the CRC; any
change of a figure, unit, name or source changes it.
"""

import binascii

from micropython import const

_CRC_CHUNK = const(256)  # bytes of canonical form per binascii.crc32() call


def canonical(doc):
    """The canonical form (see module docstring) of a JSON value, as a str."""
    out = []
    write(doc, out.append)
    return b"".join(out).decode()


def crc_of(doc):
    """CRC-32 of the canonical form of doc without its top-level "crc32" member.

    The form is fed to the CRC in chunks as it is written, never built whole: on a board
    the whole form (a list of ~11000 pieces, then their join) would hold ~77 KB at once,
    several times the library itself.
    """
    body = dict(doc)
    body.pop("crc32", None)
    crc = Crc()
    write(body, crc.add)
    crc.flush()
    return crc.value & 0xFFFFFFFF


class Crc:
    """CRC-32 of the pieces given to add(), computed per _CRC_CHUNK bytes: every
    binascii.crc32() call returns a 32-bit value, a long int on MicroPython (one more
    allocation), so it is called a few times per library rather than per piece."""

    def __init__(self):
        self.value = 0
        self._pieces = []
        self._size = 0

    def add(self, data):
        self._pieces.append(data)
        self._size += len(data)
        if self._size >= _CRC_CHUNK:
            self.flush()

    def flush(self):
        self.value = binascii.crc32(b"".join(self._pieces), self.value)
        del self._pieces[:]
        self._size = 0


def write(value, emit):
    """Emit the canonical form of value, as UTF-8 bytes in pieces, to emit(bytes)."""
    if value is None:
        emit(b"null")
    elif value is True:
        emit(b"true")
    elif value is False:
        emit(b"false")
    elif isinstance(value, int):
        emit(b"%d" % value)
    elif isinstance(value, str):
        data = value.encode()
        emit(b'"')
        emit(data if _plain(data) else _escaped(value).encode())
        emit(b'"')
    elif isinstance(value, list):
        emit(b"[")
        first = True  # no enumerate(): an object made per array and object
        for item in value:
            if not first:
                emit(b",")
            first = False
            write(item, emit)
        emit(b"]")
    elif isinstance(value, dict):
        emit(b"{")
        first = True
        for key in sorted(value):
            if not first:
                emit(b",")
            first = False
            write(key, emit)
            emit(b":")
            write(value[key], emit)
        emit(b"}")
    else:
        raise ValueError("%r has no canonical form (floats are not allowed)" % (value,))


def _plain(data):
    """True when UTF-8 data needs no escape (the usual case: one piece, no copy)."""
    # min() and `in` scan the bytes without allocating (a generator would, per string)
    return not data or (min(data) >= 0x20 and b'"' not in data and b"\\" not in data)


def _escaped(text):
    out = []
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)
