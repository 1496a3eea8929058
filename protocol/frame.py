"""Frame layout and encoding.

A frame before stuffing (all integers little-endian)::

    offset  0        1        2    3    4        5 ... 5+n-1   5+n ... 5+n+3
          +--------+--------+---------+--------+-------------+---------------+
          | verfl  | msg_id |   seq   |  len=n |  payload    |  CRC-32/IEEE  |
          +--------+--------+---------+--------+-------------+---------------+
    verfl:  high nibble frame version (1), low nibble flags (none defined: 0)
    seq:    u16, request sequence number (events: the device's event counter)
    len:    u8, payload bytes, 0..MAX_PAYLOAD
    CRC:    crc-32 of bytes 0 .. 5+n-1, exactly the bytes before it

On the wire::   0x00  COBS(frame)  0x00

The leading 0x00 ends whatever noise came before, so a frame never fuses with it.
"""

import struct

from micropython import const

from protocol import cobs
from protocol.crc import crc32

VERSION_FLAGS = const(0x10)
HEADER = const(5)
TRAILER = const(4)
# 5 + 240 + 4 = 249 bytes, 1960 bits under the CRC: CRC-32/IEEE has HD=5 there (it
# keeps HD=5 up to 2974 data bits), so every 1- to 4-bit error is detected.
MAX_PAYLOAD = const(240)
MAX_FRAME = const(249)
# COBS adds one byte (one block per 254), plus the two delimiters.
MAX_WIRE = const(252)


def encode(msg_id, seq, payload, crc=crc32):
    """The wire bytes of one frame: delimiter, COBS(header, payload, CRC), delimiter."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("payload of %d bytes exceeds %d" % (n, MAX_PAYLOAD))
    body = bytearray(HEADER + n + TRAILER)
    struct.pack_into("<BBHB", body, 0, VERSION_FLAGS, msg_id, seq & 0xFFFF, n)
    body[HEADER : HEADER + n] = payload
    struct.pack_into("<I", body, HEADER + n, crc(memoryview(body)[: HEADER + n]))
    return b"\x00" + cobs.encode(body) + b"\x00"
