"""Payload encoding and decoding, driven by the compact field tables in catalog.py.

    payload = encode("START", {"ch": 1, "drug": "norepinephrine", ...})   # codec.py's
    fields = decode(msg_id, payload)        # dict; ValueError if it does not fit
    out = wire(buf, msg_id, seq, fields, sid, key, ctr, sender)   # the device's
    decode_into(msg_id, payload, fields)    # the device's: into a reused list

encode, decode and to_wire are the host's (codec.py, read through this module's
__getattr__): the device's firmware never imports them.

Records in a LIST decode to dicts and encode from dicts or from tuples in field order
(the core's taper plan is a list of (at_ms, dose) tuples); a record of one number
field also from the bare number (STATUS_R's alarm ids). A RAW field is bytes of its
exact length both ways. wire() is the device's to_wire(): the frame is built in one
buffer allocated at import, tagged, its CRC and COBS written in place into `buf` (a
bytearray of frame.MAX_WIRE bytes the caller holds), and it returns a memoryview of
the wire bytes there, so an answer costs no bytes object, list or concatenation.
"""

import struct
import sys

from micropython import const

from protocol import catalog, frame
from protocol.auth import HOST, TAG, tag_into
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
_TAG = bytearray(TAG)  # the tag of the frame being written
_MP = sys.implementation.name == "micropython"
# While wire() writes _BODY, its caller's buffer (MAX_WIRE bytes, written last): the
# scratch a str's bytes are packed into (_put_str, MicroPython only); None otherwise.
_SCRATCH = None


def _k(msg):
    k = catalog.find(msg) if isinstance(msg, str) else catalog.index(msg)
    if k < 0:
        raise KeyError(msg)
    return k


def _at(k):
    return catalog._OFF[2 * k] | catalog._OFF[2 * k + 1] << 8


def wire(buf, msg, seq, fields, sid=0, key=None, ctr=0, sender=HOST):
    """to_wire()'s bytes, written into buf (a memoryview of MAX_WIRE bytes: what it
    returns, buf[:n], is then a view of them, no copy). fields may also be an object
    that writes its payload itself: put(buf, o, lim) writes it from o, never past lim,
    and returns its end."""
    k = _k(msg)
    body = _BODY
    head = frame.HEADER + frame.SID_BYTES if sid else frame.HEADER
    global _SCRATCH
    _SCRATCH = buf if _MP else None
    try:
        t = type(fields)
        if t is tuple or t is list or t is dict or not hasattr(fields, "put"):
            end = _put(_at(k), fields, body, head, head + frame.MAX_PAYLOAD, k)
        else:  # a payload that writes itself (LOG_R's page, from the journal's records)
            end = fields.put(body, head, head + frame.MAX_PAYLOAD)
    finally:
        _SCRATCH = None
    n = end - head
    if n > catalog._HI[k]:
        raise ValueError("%s: %d bytes, at most %d" % (_w(k), n, frame.MAX_PAYLOAD))
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
        # One view of the signed bytes for the tag and the CRC, which goes on over the
        # tag from the module's own copy of it
        signed = _MV[:end]
        tag_into(key, sender, signed, _TAG, 0)
        body[end : end + TAG] = _TAG
        end += TAG
        crc = crc32(_TAG, crc32(signed))
    else:
        crc = crc32(_MV[:end])
    struct.pack_into("<I", body, end, crc)
    end += frame.TRAILER
    buf[0] = 0
    o = encode_into(body, end, buf, 1)
    buf[o] = 0
    return buf[: o + 1]


def sent_payload():
    """The payload of the frame wire() wrote last (a memoryview of its buffer, valid
    until the next wire()): HELLO_R's, which the handshake's transcript hashes."""
    head = frame.HEADER + frame.SID_BYTES if _BODY[0] & frame.FLAG_SID else frame.HEADER
    return _MV[head : head + _BODY[4]]


# This catalog's protocol and schema as a HELLO's first bytes carry them
_SPOKEN = struct.pack("<BI", catalog.PROTOCOL_VERSION, catalog.SCHEMA_HASH)


def hello_version(payload):
    """(protocol, schema) from a HELLO payload of any protocol version (its first two
    fields sit at fixed offsets in every version) when they are not this catalog's,
    else None: its bytes compared with theirs, no tuple and no int of the schema made
    (a heap int on a 32-bit board). The decoder's bound for HELLO (catalog.HELLO_PREFIX
    bytes at least) guarantees the payload holds them."""
    for i in range(len(_SPOKEN)):
        if payload[i] != _SPOKEN[i]:
            return payload[0], struct.unpack_from("<I", payload, 1)[0]
    return None


def decode_into(msg_id, payload, out):
    """decode() for the device: the fields in their order into the list out (as long as
    the message's fields at least; a LIST field, which no request has, as a list of
    dicts), no dict made. msg_id must be in the catalog (the decoder's bounds)."""
    k = catalog.index(msg_id)
    end = _get(_at(k), payload, 0, k, out)
    if end != len(payload):
        raise ValueError("%s: %d bytes left over" % (_w(k), len(payload) - end))


def _put(a, values, buf, o, lim, where):
    # Writes the record of the fields at _LAY[a] from values into buf at o (never
    # past lim); the end of what it wrote.
    lay = catalog._LAY
    start = a
    count = lay[a]
    a += 1
    by_name = isinstance(values, dict)
    # A record of one field may be given as its bare value (STATUS_R's alarm ids: the
    # device's list of ints, no record made per id); a bool for a bool field too.
    kind = type(values)  # no tuple of types made
    bare = count == 1 and (kind is int or kind is bool)
    if not bare and len(values) != count:
        raise _mismatch(start, values, where)
    for i in range(count):
        name = lay[a]  # the field's name number: catalog.field_name(name) for a text
        t = lay[a + 1]
        arg = lay[a + 2]
        a += 3
        v = values if bare else _by_name(values, name, start, where) if by_name else values[i]
        if t in (_STR, _TEXT):
            o = _put_str(t, arg, name, v, buf, o, lim, where)
        elif t == _RAW:
            # bytes or bytearray (a str is text, never taken for its encoding); the
            # error never shows the value: a RAW field may be a key or a proof.
            if not isinstance(v, (bytes, bytearray)):
                raise ValueError("%s: a %s, not bytes" % (_f(where, name), type(v).__name__))
            if len(v) != arg:
                raise ValueError("%s: %d bytes, not %d" % (_f(where, name), len(v), arg))
            _room_for(o + arg, lim, where)
            buf[o : o + arg] = v
            o += arg
        elif t == _LIST:
            if len(v) > arg:
                raise ValueError("%s: %d records, at most %d" % (_f(where, name), len(v), arg))
            _room_for(o + 1, lim, where)
            buf[o] = len(v)
            o += 1
            sub = a
            a = _skip(sub)
            if v:
                inner = (where, name)
                for rec in v:
                    o = _put(sub, rec, buf, o, lim, inner)
        else:
            # bool is an int subclass on CPython, not on MicroPython: each is checked
            # as itself, so a bool is never taken for a number nor the reverse.
            if v is None and (t in (_OQ, _OMS, _OS)):
                v = NONE_Q if t == _OQ else NONE_MS if t == _OMS else NONE_S
            elif t == _BOOL:
                if not isinstance(v, bool):
                    raise ValueError("%s: %r is not a %s" % (_f(where, name), v, catalog.TYPES[t]))
                v = 1 if v else 0
            elif not isinstance(v, int) or isinstance(v, bool):
                raise ValueError("%s: %r is not a %s" % (_f(where, name), v, catalog.TYPES[t]))
            elif t in (_Q, _OQ):
                if not NONE_Q < v <= 0x7FFFFFFF:
                    raise ValueError("%s: %d out of i32 range" % (_f(where, name), v))
            elif not 0 <= v <= _max(t):
                raise ValueError("%s: %d out of %s range" % (_f(where, name), v, catalog.TYPES[t]))
            size = _SIZE[t]
            _room_for(o + size, lim, where)
            struct.pack_into(_FMT[t], buf, o, v)
            o += size
    return o


def _by_name(values, name, start, where):
    # values[the name of field name number name], found without making that name
    for key in values:
        if catalog.field_is(name, key):
            return values[key]
    raise _mismatch(start, values, where)


def _mismatch(a, values, where):
    # The error (to raise) of values that are not the fields at _LAY[a]: a programming
    # error on a board, worded by the host's module (codec.py), imported only for it.
    from protocol import codec

    return codec.mismatch(a, values, where)


def __getattr__(attr):
    # The host's encode, decode and to_wire (codec.py): a board's firmware calls none.
    if attr in ("encode", "decode", "to_wire"):
        from protocol import codec

        return getattr(codec, attr)
    raise AttributeError(attr)


def _w(where):
    # A message is named by its k, a record inside a LIST by (where, the list field's
    # name number): the text is made only for an error.
    if isinstance(where, tuple):
        return _w(where[0]) + "." + catalog.field_name(where[1])
    return catalog._name(catalog._MN, catalog._MNO, where)


def _f(where, name):
    # "where.field" of an error
    return _w(where) + "." + catalog.field_name(name)


def _room_for(end, lim, where):
    if end > lim:
        raise ValueError("%s: more than %d bytes" % (_w(where), frame.MAX_PAYLOAD))


_MAX_MS = NONE_MS - 1  # made once: a large int is a heap object on a board
_MAX_S = NONE_S - 1


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
        return _MAX_MS
    return _MAX_S  # _OS


def _skip(a):
    # The index after the fields at _LAY[a] (a LIST's record's with them).
    lay = catalog._LAY
    n = lay[a]
    a += 1
    for _ in range(n):
        a += 3
        if lay[a - 2] == _LIST:
            a = _skip(a)
    return a


def _put_str(t, most, name, v, buf, o, lim, where):
    if not isinstance(v, str):
        raise ValueError("%s: %r is not a str" % (_f(where, name), v))
    n = len(v)
    s = _SCRATCH
    if s is not None and n <= most:
        # MicroPython: struct packs a str from its own UTF-8 bytes, so no bytes is made
        # (48 B a string on a 64-bit port). Its len is in characters: taken as bytes
        # when the first n bytes are ASCII, which makes them the whole string.
        _room_for(o + 1 + n, lim, where)
        struct.pack_into("255s", s, 0, v)
        for i in range(n):
            c = s[i]
            if c & 0x80:
                break  # not ASCII: encoded below
            buf[o + 1 + i] = c
        else:
            buf[o] = n
            return o + 1 + n
    b = v.encode()
    n = len(b)
    if n > most:
        if t == _STR:
            raise ValueError("%s: %d bytes, at most %d" % (_f(where, name), n, most))
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


def _get(a, p, o, where, out):
    # The record of the fields at _LAY[a] from p at o into out, a dict by name or a
    # list in field order; the end of what it read.
    lay = catalog._LAY
    by_index = isinstance(out, list)
    count = lay[a]
    a += 1
    for i in range(count):
        name = lay[a]
        key = i if by_index else catalog.field_name(name)
        t = lay[a + 1]
        arg = lay[a + 2]
        a += 3
        if t >= _STR and o >= len(p):
            raise ValueError("%s: payload ends before %s" % (_w(where), catalog.field_name(name)))
        if t in (_STR, _TEXT):
            n = p[o]
            if n > arg or o + 1 + n > len(p):
                raise ValueError("%s: bad string length %d" % (_f(where, name), n))
            try:
                out[key] = str(p[o + 1 : o + 1 + n], "utf-8")
            except UnicodeError:
                raise ValueError("%s: not UTF-8" % (_f(where, name))) from None
            o += 1 + n
        elif t == _RAW:
            if o + arg > len(p):
                raise ValueError(
                    "%s: payload ends inside %s" % (_w(where), catalog.field_name(name))
                )
            out[key] = bytes(p[o : o + arg])
            o += arg
        elif t == _LIST:
            n = p[o]
            if n > arg:
                raise ValueError("%s: %d records, at most %d" % (_f(where, name), n, arg))
            o += 1
            recs = []
            sub = a
            a = _skip(sub)
            for _ in range(n):
                rec = {}
                o = _get(sub, p, o, (where, name), rec)
                recs.append(rec)
            out[key] = recs
        else:
            size = _SIZE[t]
            if o + size > len(p):
                raise ValueError(
                    "%s: payload ends inside %s" % (_w(where), catalog.field_name(name))
                )
            if size == 1:
                v = p[o]
            elif size == 2:
                v = p[o] | p[o + 1] << 8
            elif size == 4:  # no tuple made: a small int unless it is large
                v = p[o] | p[o + 1] << 8 | p[o + 2] << 16
                if (t in (_Q, _OQ)) and p[o + 3] & 0x80:
                    v -= (0x100 - p[o + 3]) << 24
                else:
                    v |= p[o + 3] << 24
            else:
                v = struct.unpack_from(_FMT[t], p, o)[0]
            o += size
            if t == _BOOL:
                if v > 1:
                    raise ValueError("%s: bool is %d" % (_f(where, name), v))
                v = v == 1
            elif (
                (t == _OQ and v == NONE_Q)
                or (t == _OMS and v == NONE_MS)
                or t == _OS
                and v == NONE_S
            ):
                v = None
            elif (t == _Q and v == NONE_Q) or (t == _MS and v == NONE_MS):
                raise ValueError("%s: absent value in a required field" % (_f(where, name)))
            out[key] = v
    return o
