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

from micropython import const

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


def __getattr__(attr):
    # encode, the host's (codec.frame_encode): the device writes its frames in place
    # (messages.wire), and its firmware never loads it.
    if attr == "encode":
        from protocol import codec

        return codec.frame_encode
    raise AttributeError(attr)
