"""Payload encoding and decoding, driven by the compact field tables in catalog.py.

    payload = encode("START", {"ch": 1, "drug": "norepinephrine", ...})
    fields = decode(msg_id, payload)        # dict; ValueError if it does not fit
    out = wire(buf, msg_id, seq, fields, sid, key, ctr, sender)   # the device's

Records in a LIST decode to dicts and encode from dicts or from tuples in field order
(the core's taper plan is a list of (at_ms, dose) tuples). A RAW field is bytes of its
exact length both ways. wire() is the device's to_wire(): the frame is built in one
buffer allocated at import, tagged, its CRC and COBS written in place into `buf` (a
bytearray of frame.MAX_WIRE bytes the caller holds), and it returns a memoryview of
the wire bytes there, so an answer costs no bytes object, list or concatenation.
"""

import struct

from micropython import const

from protocol import catalog, frame
from protocol.auth import HOST, TAG, tag_into
from protocol.catalog import FIELD_NAMES, NAMES
from protocol.cobs import encode_into
from protocol.crc import crc32

# The absent value of an optional quantity or time: a value no real one can take.
NONE_Q = -0x80000000
NONE_MS = 0xFFFFFFFFFFFFFFFF
NONE_S = 0xFFFFFFFF

# Type numbers (catalog.TYPES): U8 U16 U32 U64 BOOL Q OQ MS OMS OS RAW STR TEXT LIST
_BOOL = const(4)
_Q = const(5)
_OQ = const(6)
_MS = const(7)
_OMS = const(8)
_OS = const(9)
_RAW = const(10)
_STR = const(11)
_TEXT = const(12)
_LIST = const(13)
# Per type number below _RAW: its struct format and its wire size.
_FMT = ("<B", "<H", "<I", "<Q", "<B", "<i", "<i", "<Q", "<Q", "<I")
_SIZE = b"\x01\x02\x04\x08\x01\x04\x04\x08\x08\x04"
_CUT = b"..."  # the end of a TEXT the sender had to cut

# The device's frame, built here before it is stuffed into the caller's buffer.
_BODY = bytearray(frame.MAX_FRAME)
_MV = memoryview(_BODY)


def _k(msg):
    k = catalog.index(msg) if isinstance(msg, int) else -1
    if isinstance(msg, str) and msg in NAMES:
        k = NAMES.index(msg)
    if k < 0:
        raise KeyError(msg)
    return k


def _at(k):
    return catalog._OFF[2 * k] | catalog._OFF[2 * k + 1] << 8


def encode(msg, fields):
    """The payload of message `msg` (name or id) with `fields` (a dict of every field)."""
    k = _k(msg)
    room = _room(_at(k))[0]
    buf = bytearray(room)
    end = _put(_at(k), fields, buf, 0, room, NAMES[k])[1]
    if end > catalog._HI[k]:  # a packed answer given more than fits
        raise ValueError("%s: %d bytes, at most %d" % (NAMES[k], end, frame.MAX_PAYLOAD))
    return bytes(memoryview(buf)[:end])


def _room(a):
    # (largest size of a record of the fields at _LAY[a], the index after them)
    lay = catalog._LAY
    n = lay[a]
    a += 1
    size = 0
    for _ in range(n):
        t = lay[a + 1]
        arg = lay[a + 2]
        a += 3
        if t == _LIST:
            sub, a = _room(a)
            size += 1 + arg * sub
        elif t == _RAW:
            size += arg
        elif t > _RAW:
            size += 1 + arg
        else:
            size += _SIZE[t]
    return size, a


def to_wire(msg, seq, fields, crc=None, sid=0, key=None, ctr=0, sender=HOST):
    """One frame's wire bytes: encode() then frame.encode(); sid 0: no session id; key
    (the session key): tagged by `sender` with its counter ctr (frame.encode)."""
    msg_id = catalog._IDS[_k(msg)]
    payload = encode(msg_id, fields)
    if crc is None:
        return frame.encode(msg_id, seq, payload, sid=sid, key=key, ctr=ctr, sender=sender)
    return frame.encode(msg_id, seq, payload, crc, sid, key, ctr, sender)


def wire(buf, msg, seq, fields, sid=0, key=None, ctr=0, sender=HOST):
    """to_wire()'s bytes, written into buf (MAX_WIRE bytes): a memoryview of them."""
    k = _k(msg)
    body = _BODY
    head = frame.HEADER + frame.SID_BYTES if sid else frame.HEADER
    end = _put(_at(k), fields, body, head, head + frame.MAX_PAYLOAD, NAMES[k])[1]
    n = end - head
    if n > catalog._HI[k]:
        raise ValueError("%s: %d bytes, at most %d" % (NAMES[k], n, frame.MAX_PAYLOAD))
    verfl = frame.VERSION_FLAGS | frame.FLAG_SID if sid else frame.VERSION_FLAGS
    if key is not None:
        verfl |= frame.FLAG_AUTH
    body[0] = verfl
    body[1] = catalog._IDS[k]
    body[2] = seq & 0xFF
    body[3] = seq >> 8 & 0xFF
    body[4] = n
    if sid:
        body[5] = sid & 0xFF
        body[6] = sid >> 8
    if key is not None:
        struct.pack_into("<I", body, end, ctr)
        end += frame.CTR_BYTES
        tag_into(key, sender, _MV[:end], body, end)
        end += TAG
    struct.pack_into("<I", body, end, crc32(_MV[:end]))
    end += frame.TRAILER
    buf[0] = 0
    o = encode_into(body, end, buf, 1)
    buf[o] = 0
    return memoryview(buf)[: o + 1]


def hello_version(payload):
    """(protocol, schema) from a HELLO payload of any protocol version: its first two
    fields sit at fixed offsets in every version. The decoder's bound for HELLO
    (catalog.HELLO_PREFIX bytes at least) guarantees the payload holds them."""
    return payload[0], struct.unpack_from("<I", payload, 1)[0]


def decode(msg_id, payload):
    """The fields of a payload as a dict; ValueError if it does not decode exactly."""
    k = catalog.index(msg_id)
    if k < 0:
        raise ValueError("unknown message id 0x%02x" % msg_id)
    out, end = _get(_at(k), payload, 0, NAMES[k])
    if end != len(payload):
        raise ValueError("%s: %d bytes left over" % (NAMES[k], len(payload) - end))
    return out


def _put(a, values, buf, o, lim, where):
    # Writes the record of the fields at _LAY[a] from values into buf at o (never
    # past lim); (index after those fields, end of what it wrote).
    lay = catalog._LAY
    start = a
    count = lay[a]
    a += 1
    by_name = isinstance(values, dict)
    if len(values) != count:
        _mismatch(start, values, where)
    for i in range(count):
        name = FIELD_NAMES[lay[a]]
        t = lay[a + 1]
        arg = lay[a + 2]
        a += 3
        if by_name:
            if name not in values:
                _mismatch(start, values, where)
            v = values[name]
        else:
            v = values[i]
        if t in (_STR, _TEXT):
            o = _put_str(t, arg, name, v, buf, o, lim, where)
        elif t == _RAW:
            # bytes or bytearray (a str is text, never taken for its encoding); the
            # error never shows the value: a RAW field may be a key or a proof.
            if not isinstance(v, (bytes, bytearray)):
                raise ValueError("%s.%s: a %s, not bytes" % (_w(where), name, type(v).__name__))
            if len(v) != arg:
                raise ValueError("%s.%s: %d bytes, not %d" % (_w(where), name, len(v), arg))
            _room_for(o + arg, lim, where)
            buf[o : o + arg] = v
            o += arg
        elif t == _LIST:
            if len(v) > arg:
                raise ValueError("%s.%s: %d records, at most %d" % (_w(where), name, len(v), arg))
            _room_for(o + 1, lim, where)
            buf[o] = len(v)
            o += 1
            sub = a
            a = _room(sub)[1]
            if v:
                inner = (where, name)
                for rec in v:
                    o = _put(sub, rec, buf, o, lim, inner)[1]
        else:
            # bool is an int subclass on CPython, not on MicroPython: each is checked
            # as itself, so a bool is never taken for a number nor the reverse.
            if v is None and (t in (_OQ, _OMS, _OS)):
                v = NONE_Q if t == _OQ else NONE_MS if t == _OMS else NONE_S
            elif t == _BOOL:
                if not isinstance(v, bool):
                    raise ValueError(
                        "%s.%s: %r is not a %s" % (_w(where), name, v, catalog.TYPES[t])
                    )
                v = 1 if v else 0
            elif not isinstance(v, int) or isinstance(v, bool):
                raise ValueError("%s.%s: %r is not a %s" % (_w(where), name, v, catalog.TYPES[t]))
            elif t in (_Q, _OQ):
                if not NONE_Q < v <= 0x7FFFFFFF:
                    raise ValueError("%s.%s: %d out of i32 range" % (_w(where), name, v))
            elif not 0 <= v <= _max(t):
                raise ValueError(
                    "%s.%s: %d out of %s range" % (_w(where), name, v, catalog.TYPES[t])
                )
            size = _SIZE[t]
            _room_for(o + size, lim, where)
            struct.pack_into(_FMT[t], buf, o, v)
            o += size
    return a, o


def _w(where):
    # A record inside a LIST is named by (where, list field): made only for an error.
    if isinstance(where, tuple):
        return _w(where[0]) + "." + where[1]
    return where


def _room_for(end, lim, where):
    if end > lim:
        raise ValueError("%s: more than %d bytes" % (_w(where), frame.MAX_PAYLOAD))


def _max(t):
    if t == 0:
        return 0xFF
    if t == 1:
        return 0xFFFF
    if t == 2:
        return 0xFFFFFFFF
    if t == 3:
        return NONE_MS
    if t in (_MS, _OMS):
        return NONE_MS - 1
    return NONE_S - 1  # _OS


def _names(a):
    lay = catalog._LAY
    out = []
    n = lay[a]
    a += 1
    for _ in range(n):
        out.append(FIELD_NAMES[lay[a]])
        if lay[a + 1] == _LIST:
            a = _room(a + 3)[1]
        else:
            a += 3
    return out


def _mismatch(a, values, where):
    names = _names(a)
    where = _w(where)
    if isinstance(values, dict):
        missing = [k for k in names if k not in values]
        unknown = [k for k in values if k not in names]
        raise ValueError("%s: missing fields %s, unknown %s" % (where, missing, unknown))
    raise ValueError("%s: %d values for %d fields" % (where, len(values), len(names)))


def _put_str(t, most, name, v, buf, o, lim, where):
    if not isinstance(v, str):
        raise ValueError("%s.%s: %r is not a str" % (_w(where), name, v))
    b = v.encode()
    n = len(b)
    if n > most:
        if t == _STR:
            raise ValueError("%s.%s: %d bytes, at most %d" % (_w(where), name, n, most))
        # Human text is cut, never refused: a refusal must reach the host even when
        # its message is long. The cut is never silent: the text ends in "...". Back
        # up to the first byte of a UTF-8 character to make room for it.
        n = most - len(_CUT)
        while b[n] & 0xC0 == 0x80:
            n -= 1
        b = b[:n] + _CUT
        n += len(_CUT)
    _room_for(o + 1 + n, lim, where)
    buf[o] = n
    buf[o + 1 : o + 1 + n] = b
    return o + 1 + n


def _get(a, p, o, where):
    # The record of the fields at _LAY[a] from p at o: (dict, end); its fields' names
    # are FIELD_NAMES' (interned: no key is made per request).
    lay = catalog._LAY
    out = {}
    count = lay[a]
    a += 1
    for _ in range(count):
        name = FIELD_NAMES[lay[a]]
        t = lay[a + 1]
        arg = lay[a + 2]
        a += 3
        if t >= _STR and o >= len(p):
            raise ValueError("%s: payload ends before %s" % (where, name))
        if t in (_STR, _TEXT):
            n = p[o]
            if n > arg or o + 1 + n > len(p):
                raise ValueError("%s.%s: bad string length %d" % (where, name, n))
            try:
                out[name] = str(p[o + 1 : o + 1 + n], "utf-8")
            except UnicodeError:
                raise ValueError("%s.%s: not UTF-8" % (where, name)) from None
            o += 1 + n
        elif t == _RAW:
            if o + arg > len(p):
                raise ValueError("%s: payload ends inside %s" % (where, name))
            out[name] = bytes(p[o : o + arg])
            o += arg
        elif t == _LIST:
            n = p[o]
            if n > arg:
                raise ValueError("%s.%s: %d records, at most %d" % (where, name, n, arg))
            o += 1
            recs = []
            sub = a
            a = _room(sub)[1]
            for _ in range(n):
                rec, o = _get(sub, p, o, where + "." + name)
                recs.append(rec)
            out[name] = recs
        else:
            size = _SIZE[t]
            if o + size > len(p):
                raise ValueError("%s: payload ends inside %s" % (where, name))
            v = struct.unpack_from(_FMT[t], p, o)[0]
            o += size
            if t == _BOOL:
                if v > 1:
                    raise ValueError("%s.%s: bool is %d" % (where, name, v))
                v = v == 1
            elif (
                (t == _OQ and v == NONE_Q)
                or (t == _OMS and v == NONE_MS)
                or t == _OS
                and v == NONE_S
            ):
                v = None
            elif (t == _Q and v == NONE_Q) or (t == _MS and v == NONE_MS):
                raise ValueError("%s.%s: absent value in a required field" % (where, name))
            out[name] = v
    return out, o
