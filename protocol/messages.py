"""Payload encoding and decoding, driven by the field tables in catalog.py.

    payload = encode("START", {"ch": 1, "drug": "norepinephrine", ...})
    fields = decode(msg_id, payload)        # dict; ValueError if it does not fit

Records in a LIST decode to dicts and encode from dicts or from tuples in field order
(the core's taper plan is a list of (at_ms, dose) tuples). A RAW field is bytes of its
exact length both ways.
"""

import struct

from protocol import catalog, frame
from protocol.auth import HOST
from protocol.catalog import BOOL, LIST, MS, OMS, OQ, OS, RAW, STR, TEXT, U8, U16, U32, U64, Q

# The absent value of an optional quantity or time: a value no real one can take.
NONE_Q = -0x80000000
NONE_MS = 0xFFFFFFFFFFFFFFFF
NONE_S = 0xFFFFFFFF
_NONE = {OQ: NONE_Q, OMS: NONE_MS, OS: NONE_S}

_FMT = {U8: "<B", BOOL: "<B", U16: "<H", U32: "<I", U64: "<Q", Q: "<i", OQ: "<i", OS: "<I"}
_FMT[MS] = _FMT[OMS] = "<Q"
_MAX = {U8: 0xFF, BOOL: 1, U16: 0xFFFF, U32: 0xFFFFFFFF, U64: NONE_MS, MS: NONE_MS - 1}
_MAX[OMS] = _MAX[MS]
_MAX[OS] = NONE_S - 1
_CUT = b"..."  # the end of a TEXT the sender had to cut


def encode(msg, fields):
    """The payload of message `msg` (name or id) with `fields` (a dict of every field)."""
    msg_id = catalog.ID[msg] if isinstance(msg, str) else msg
    buf = bytearray(catalog.ROOM[msg_id])
    end = _put(catalog.FIELDS[msg_id], fields, buf, 0, catalog.NAME[msg_id])
    if end > catalog.BOUNDS[msg_id][1]:  # a packed answer given more than fits
        raise ValueError(
            "%s: %d bytes, at most %d" % (catalog.NAME[msg_id], end, frame.MAX_PAYLOAD)
        )
    return bytes(memoryview(buf)[:end])


def to_wire(msg, seq, fields, crc=None, sid=0, key=None, ctr=0, sender=HOST):
    """One frame's wire bytes: encode() then frame.encode(); sid 0: no session id; key
    (the session key): tagged by `sender` with its counter ctr (frame.encode)."""
    msg_id = catalog.ID[msg] if isinstance(msg, str) else msg
    payload = encode(msg_id, fields)
    if crc is None:
        return frame.encode(msg_id, seq, payload, sid=sid, key=key, ctr=ctr, sender=sender)
    return frame.encode(msg_id, seq, payload, crc, sid, key, ctr, sender)


def hello_version(payload):
    """(protocol, schema) from a HELLO payload of any protocol version: its first two
    fields sit at fixed offsets in every version. The decoder's bound for HELLO
    (catalog.HELLO_PREFIX bytes at least) guarantees the payload holds them."""
    return payload[0], struct.unpack_from("<I", payload, 1)[0]


def decode(msg_id, payload):
    """The fields of a payload as a dict; ValueError if it does not decode exactly."""
    if msg_id not in catalog.FIELDS:
        raise ValueError("unknown message id 0x%02x" % msg_id)
    out, end = _get(catalog.FIELDS[msg_id], payload, 0, catalog.NAME[msg_id])
    if end != len(payload):
        raise ValueError("%s: %d bytes left over" % (catalog.NAME[msg_id], len(payload) - end))
    return out


def _put(fields, values, buf, o, where):
    by_name = isinstance(values, dict)
    if len(values) != len(fields):
        _mismatch(fields, values, where)
    for k in range(len(fields)):
        f = fields[k]
        if by_name:
            if f[0] not in values:
                _mismatch(fields, values, where)
            v = values[f[0]]
        else:
            v = values[k]
        t = f[1]
        if t in (STR, TEXT):
            o = _put_str(f, v, buf, o, where)
        elif t == RAW:
            # bytes or bytearray (a str is text, never taken for its encoding); the
            # error never shows the value: a RAW field may be a key or a proof.
            if not isinstance(v, (bytes, bytearray)):
                raise ValueError("%s.%s: a %s, not bytes" % (where, f[0], type(v).__name__))
            if len(v) != f[2]:
                raise ValueError("%s.%s: %d bytes, not %d" % (where, f[0], len(v), f[2]))
            buf[o : o + f[2]] = v
            o += f[2]
        elif t == LIST:
            if len(v) > f[2]:
                raise ValueError("%s.%s: %d records, at most %d" % (where, f[0], len(v), f[2]))
            buf[o] = len(v)
            o += 1
            for rec in v:
                o = _put(f[3], rec, buf, o, where + "." + f[0])
        else:
            # bool is an int subclass on CPython, not on MicroPython: each is checked
            # as itself, so a bool is never taken for a number nor the reverse.
            if v is None and t in _NONE:
                v = _NONE[t]
            elif t == BOOL:
                if not isinstance(v, bool):
                    raise ValueError("%s.%s: %r is not a %s" % (where, f[0], v, t))
            elif not isinstance(v, int) or isinstance(v, bool):
                raise ValueError("%s.%s: %r is not a %s" % (where, f[0], v, t))
            elif t in (Q, OQ):
                if not NONE_Q < v <= 0x7FFFFFFF:
                    raise ValueError("%s.%s: %d out of i32 range" % (where, f[0], v))
            elif not 0 <= v <= _MAX[t]:
                raise ValueError("%s.%s: %d out of %s range" % (where, f[0], v, t))
            struct.pack_into(_FMT[t], buf, o, int(v))
            o += catalog.SIZE[t]
    return o


def _mismatch(fields, values, where):
    names = [f[0] for f in fields]
    if isinstance(values, dict):
        missing = [k for k in names if k not in values]
        unknown = [k for k in values if k not in names]
        raise ValueError("%s: missing fields %s, unknown %s" % (where, missing, unknown))
    raise ValueError("%s: %d values for %d fields" % (where, len(values), len(fields)))


def _put_str(f, v, buf, o, where):
    if not isinstance(v, str):
        raise ValueError("%s.%s: %r is not a str" % (where, f[0], v))
    b = v.encode()
    n = len(b)
    if n > f[2]:
        if f[1] == STR:
            raise ValueError("%s.%s: %d bytes, at most %d" % (where, f[0], n, f[2]))
        # Human text is cut, never refused: a refusal must reach the host even when
        # its message is long. The cut is never silent: the text ends in "...". Back
        # up to the first byte of a UTF-8 character to make room for it.
        n = f[2] - len(_CUT)
        while b[n] & 0xC0 == 0x80:
            n -= 1
        b = b[:n] + _CUT
        n += len(_CUT)
    buf[o] = n
    buf[o + 1 : o + 1 + n] = memoryview(b)[:n]
    return o + 1 + n


def _get(fields, p, o, where):
    out = {}
    for f in fields:
        t = f[1]
        if t in (STR, TEXT, LIST) and o >= len(p):
            raise ValueError("%s: payload ends before %s" % (where, f[0]))
        if t in (STR, TEXT):
            n = p[o]
            if n > f[2] or o + 1 + n > len(p):
                raise ValueError("%s.%s: bad string length %d" % (where, f[0], n))
            try:
                out[f[0]] = str(p[o + 1 : o + 1 + n], "utf-8")
            except UnicodeError:
                raise ValueError("%s.%s: not UTF-8" % (where, f[0])) from None
            o += 1 + n
        elif t == RAW:
            if o + f[2] > len(p):
                raise ValueError("%s: payload ends inside %s" % (where, f[0]))
            out[f[0]] = bytes(p[o : o + f[2]])
            o += f[2]
        elif t == LIST:
            count = p[o]
            if count > f[2]:
                raise ValueError("%s.%s: %d records, at most %d" % (where, f[0], count, f[2]))
            o += 1
            recs = []
            for _ in range(count):
                rec, o = _get(f[3], p, o, where + "." + f[0])
                recs.append(rec)
            out[f[0]] = recs
        else:
            size = catalog.SIZE[t]
            if o + size > len(p):
                raise ValueError("%s: payload ends inside %s" % (where, f[0]))
            v = struct.unpack_from(_FMT[t], p, o)[0]
            o += size
            if t == BOOL:
                if v > 1:
                    raise ValueError("%s.%s: bool is %d" % (where, f[0], v))
                v = v == 1
            elif t in _NONE and v == _NONE[t]:
                v = None
            elif (t == Q and v == NONE_Q) or (t == MS and v == NONE_MS):
                raise ValueError("%s.%s: absent value in a required field" % (where, f[0]))
            out[f[0]] = v
    return out, o
