"""Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999), encode side.

COBS rewrites a frame so it holds no 0x00 byte; 0x00 then marks frame ends on the
wire, and a receiver that lost sync resumes at the next one. Overhead is one byte per
254 (two at most for the frames this protocol allows, up to 263 bytes), where SLIP and
HDLC double the size of a frame of 0xC0 or 0x7E bytes. The streaming decode is in
decoder.py.
"""


def encode_into(data, n, out, o):
    """encode(data[:n]) written into out from index o; the index after it. out must
    hold n + n // 254 + 1 bytes from o."""
    code_at = o
    o += 1
    code = 1
    for i in range(n):
        b = data[i]
        if b:
            out[o] = b
            o += 1
            code += 1
        if not b or code == 0xFF:
            out[code_at] = code
            code_at = o
            o += 1
            code = 1
    out[code_at] = code
    return o


def encode(data):
    """COBS of `data`, without delimiters: each block is a code byte n (1-255)
    followed by n-1 non-zero bytes, and stands for them plus a 0x00, except that a
    255 block carries no 0x00 and the 0x00 of the last block is not part of the data.
    """
    out = bytearray(len(data) + len(data) // 254 + 1)
    return bytes(memoryview(out)[: encode_into(data, len(data), out, 0)])
