"""Frame layout and encoding.

A frame before stuffing (all integers little-endian)::

    offset  0        1        2    3    4        [5   6]   ...            last 4
          +--------+--------+---------+--------+---------+-------------+---------------+
          | verfl  | msg_id |   seq   |  len=n |  [sid]  |  payload    |  CRC-32/IEEE  |
          +--------+--------+---------+--------+---------+-------------+---------------+
    verfl:  high nibble frame version (1), low nibble flags: S (0x01) = a sid follows len
    seq:    u16, request sequence number (events: the device's event counter)
    len:    u8, payload bytes, 0..MAX_PAYLOAD (the sid is not counted)
    sid:    u16, only with S: the session the request belongs to (never 0)
    CRC:    crc-32 of every byte before it

On the wire::   0x00  COBS(frame)  0x00

The leading 0x00 ends whatever noise came before, so a frame never fuses with it.
"""

import struct

from micropython import const

from protocol import cobs
from protocol.crc import crc32

VERSION_FLAGS = const(0x10)
FLAG_SID = const(0x01)
HEADER = const(5)  # without the sid
SID_BYTES = const(2)
TRAILER = const(4)
# 7 + 240 + 4 = 251 bytes, 1976 bits under the CRC: CRC-32/IEEE has HD=5 there (it
# keeps HD=5 up to 2974 data bits), so every 1- to 4-bit error is detected.
MAX_PAYLOAD = const(240)
MAX_FRAME = const(251)
# COBS adds one byte (one block per 254), plus the two delimiters.
MAX_WIRE = const(254)


def encode(msg_id, seq, payload, crc=crc32, sid=0):
    """The wire bytes of one frame: delimiter, COBS(header, payload, CRC), delimiter.
    sid 0: a frame without a session id (HELLO, events, errors to such frames)."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (n, MAX_PAYLOAD))
    if not 0 <= sid <= 0xFFFF:
        raise ValueError("sid %d is not a u16" % sid)
    head = HEADER + SID_BYTES if sid else HEADER
    body = bytearray(head + n + TRAILER)
    verfl = VERSION_FLAGS | FLAG_SID if sid else VERSION_FLAGS
    struct.pack_into("<BBHB", body, 0, verfl, msg_id, seq & 0xFFFF, n)
    if sid:
        struct.pack_into("<H", body, HEADER, sid)
    body[head : head + n] = payload
    struct.pack_into("<I", body, head + n, crc(memoryview(body)[: head + n]))
    return b"\x00" + cobs.encode(body) + b"\x00"
