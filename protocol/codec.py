"""The host's side of messages.py: a payload encoded from a dict (or tuple) of every field
and decoded into a dict by name, a whole frame's wire bytes (to_wire), and the text of a
record that is not its fields. The device encodes in place (messages.wire) and decodes
into a reused list (messages.decode_into): its firmware never imports this module, whose
code would only take its heap. messages.encode, decode and to_wire are these functions
(messages.__getattr__), so every caller keeps its names.
"""

import struct

from micropython import const

from protocol import auth, catalog, cobs, frame
from protocol.auth import HOST
from protocol.crc import crc32
from protocol.messages import _at, _get, _k, _put, _skip, _w

# catalog.TYPES' numbers, as in messages.py (a const is not a board module's attribute)
_LIST = const(13)
_RAW = const(10)
_SIZE = b"\x01\x02\x04\x08\x01\x04\x04\x08\x08\x04"


def encode(msg, fields):
    """The payload of message `msg` (name or id) with `fields` (a dict of every field)."""
    k = _k(msg)
    room = _room(_at(k))[0]
    buf = bytearray(room)
    end = _put(_at(k), fields, buf, 0, room, k)
    if end > catalog._HI[k]:  # a packed answer given more than fits
        raise ValueError("%s: %d bytes, at most %d" % (_w(k), end, frame.MAX_PAYLOAD))
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
        return frame_encode(msg_id, seq, payload, sid=sid, key=key, ctr=ctr, sender=sender)
    return frame_encode(msg_id, seq, payload, crc, sid, key, ctr, sender)


def decode(msg_id, payload):
    """The fields of a payload as a dict; ValueError if it does not decode exactly."""
    k = catalog.index(msg_id)
    if k < 0:
        raise ValueError("unknown message id 0x%02x" % msg_id)
    out = {}
    end = _get(_at(k), payload, 0, k, out)
    if end != len(payload):
        raise ValueError("%s: %d bytes left over" % (_w(k), len(payload) - end))
    return out


def _names(a):
    lay = catalog._LAY
    out = []
    n = lay[a]
    a += 1
    for _ in range(n):
        out.append(catalog.field_name(lay[a]))
        a += 3
        if lay[a - 2] == _LIST:
            a = _skip(a)
    return out


def mismatch(a, values, where):
    # The error (to raise) of values that are not the fields at _LAY[a]
    names = _names(a)
    where = _w(where)
    if isinstance(values, dict):
        missing = [k for k in names if k not in values]
        unknown = [k for k in values if k not in names]
        return ValueError("%s: missing fields %s, unknown %s" % (where, missing, unknown))
    return ValueError("%s: %d values for %d fields" % (where, len(values), len(names)))


def frame_encode(msg_id, seq, payload, crc=crc32, sid=0, key=None, ctr=0, sender=auth.HOST):
    """The wire bytes of one frame: delimiter, COBS(header, payload, CRC), delimiter.
    sid 0: a frame without a session id (HELLO, events, errors to such frames).
    key (the 32-byte session key): flag A, the sender's counter ctr and the tag, which
    sender (auth.HOST or auth.DEVICE) makes; a tagged frame always has a sid."""
    n = len(payload)
    if n > frame.MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (n, frame.MAX_PAYLOAD))
    if not 0 <= sid <= 0xFFFF:
        raise ValueError("sid %d is not a u16" % sid)
    verfl = frame.VERSION_FLAGS | frame.FLAG_SID if sid else frame.VERSION_FLAGS
    tail = frame.TRAILER
    if key is not None:
        if not sid:
            raise ValueError("a tagged frame needs a sid")
        if not 0 <= ctr <= 0xFFFFFFFF:
            raise ValueError("ctr %d is not a u32" % ctr)
        verfl |= frame.FLAG_AUTH
        tail += frame.AUTH_BYTES
    head = frame.HEADER + frame.SID_BYTES if sid else frame.HEADER
    body = bytearray(head + n + tail)
    struct.pack_into("<BBHB", body, 0, verfl, msg_id, seq & 0xFFFF, n)
    if sid:
        struct.pack_into("<H", body, frame.HEADER, sid)
    body[head : head + n] = payload
    end = head + n
    mv = memoryview(body)
    if key is not None:
        struct.pack_into("<I", body, end, ctr)
        end += frame.CTR_BYTES
        mv[end : end + auth.TAG] = auth.tag(key, sender, mv[:end])
        end += auth.TAG
    struct.pack_into("<I", body, end, crc(mv[:end]))
    return b"\x00" + cobs.encode(body) + b"\x00"
