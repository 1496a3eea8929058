"""Frame layout and encoding.

A frame before stuffing (all integers little-endian)::

    offset  0       1        2   3   4       [5   6]  ...        [ctr    tag]     last 4
          +-------+--------+-------+-------+-------+-----------+-------+--------+--------+
          | verfl | msg_id |  seq  | len=n | [sid] |  payload  | [ctr] | [tag]  | CRC-32 |
          +-------+--------+-------+-------+-------+-----------+-------+--------+--------+
    verfl:  high nibble frame version (1), low nibble flags: S (0x01) = a sid follows len;
            A (0x02, only with S) = ctr and tag follow the payload. 0x10, 0x11 or 0x13.
    seq:    u16, request sequence number (events: the device's event counter)
    len:    u8, payload bytes, 0..MAX_PAYLOAD (neither sid, ctr nor tag is counted)
    sid:    u16, only with S: the session the request belongs to (never 0)
    ctr:    u32, only with A: the sender's frame counter in the session (only grows)
    tag:    8 bytes, only with A: auth.tag(session key, sender, every byte before it)
    CRC:    crc-32 of every byte before it

On the wire::   0x00  COBS(frame)  0x00

The leading 0x00 ends whatever noise came before, so a frame never fuses with it.
"""

import struct

from micropython import const

from protocol import auth, cobs
from protocol.crc import crc32

VERSION_FLAGS = const(0x10)
FLAG_SID = const(0x01)
FLAG_AUTH = const(0x02)
HEADER = const(5)  # without the sid
SID_BYTES = const(2)
CTR_BYTES = const(4)
AUTH_BYTES = const(12)  # ctr + tag
TRAILER = const(4)
# 7 + 240 + 12 + 4 = 263 bytes, 2072 bits under the CRC (259 bytes): CRC-32/IEEE has
# HD=5 there (it keeps HD=5 up to 2974 data bits), so every 1- to 4-bit error is detected.
MAX_PAYLOAD = const(240)
MAX_FRAME = const(263)
# COBS adds one code byte per 254 (two for 263), plus the two delimiters.
MAX_WIRE = const(267)


def encode(msg_id, seq, payload, crc=crc32, sid=0, key=None, ctr=0, sender=auth.HOST):
    """The wire bytes of one frame: delimiter, COBS(header, payload, CRC), delimiter.
    sid 0: a frame without a session id (HELLO, events, errors to such frames).
    key (the 32-byte session key): flag A, the sender's counter ctr and the tag, which
    sender (auth.HOST or auth.DEVICE) makes; a tagged frame always has a sid."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (n, MAX_PAYLOAD))
    if not 0 <= sid <= 0xFFFF:
        raise ValueError("sid %d is not a u16" % sid)
    verfl = VERSION_FLAGS | FLAG_SID if sid else VERSION_FLAGS
    tail = TRAILER
    if key is not None:
        if not sid:
            raise ValueError("a tagged frame needs a sid")
        if not 0 <= ctr <= 0xFFFFFFFF:
            raise ValueError("ctr %d is not a u32" % ctr)
        verfl |= FLAG_AUTH
        tail += AUTH_BYTES
    head = HEADER + SID_BYTES if sid else HEADER
    body = bytearray(head + n + tail)
    struct.pack_into("<BBHB", body, 0, verfl, msg_id, seq & 0xFFFF, n)
    if sid:
        struct.pack_into("<H", body, HEADER, sid)
    body[head : head + n] = payload
    end = head + n
    mv = memoryview(body)
    if key is not None:
        struct.pack_into("<I", body, end, ctr)
        end += CTR_BYTES
        mv[end : end + auth.TAG] = auth.tag(key, sender, mv[:end])
        end += auth.TAG
    struct.pack_into("<I", body, end, crc(mv[:end]))
    return b"\x00" + cobs.encode(body) + b"\x00"
