"""Every 1-, 2- and 3-bit flip of the golden vectors' wire bytes is rejected.

The flips hit the wire, COBS code bytes and delimiters included, so a flip may move
or create a 0x00 and cut the frame in two: each piece must be rejected too. The
CRC's HD=5 covers flips of the unstuffed frame; a flipped COBS code byte instead
moves 0x00 bytes around, which the length checks and the CRC's 2^-32 catch.

`make test` runs exhaustively: every 1-bit flip of every vector, every 2-bit flip
of every vector up to 64 wire bytes and every 3-bit flip of every vector up to 24
wire bytes (about 30 s of CPU). PUMPGUARD_EXHAUSTIVE=1 runs every 2- and 3-bit flip
of every vector (the 3-bit flips of the 252-byte vector alone are 1.4e9 frames:
hours; run it with -n auto).
"""

import itertools
import json
import os
import pathlib
import random

import pytest

from protocol import cobs
from protocol.decoder import Decoder

VECTORS = json.loads(
    (pathlib.Path(__file__).resolve().parent.parent / "protocol" / "vectors.json").read_text()
)["vectors"]
FULL = os.environ.get("PUMPGUARD_EXHAUSTIVE") == "1"


def _wire(v):
    return bytes.fromhex(v["wire"])


def _all_rejected(wire, flips):
    """Apply each combination of bit positions in `flips`; assert none decodes."""
    dec = Decoder()
    buf = bytearray(wire)
    n = len(buf)
    for bits in flips:
        for b in bits:
            buf[b >> 3] ^= 1 << (b & 7)
        pos = 0
        # The trailing delimiter may be flipped away: a following 0x00 still ends it.
        while pos < n:
            pos = dec.feed(buf, pos, n)
            assert not dec.ready, bits
        dec.feed(b"\x00")
        assert not dec.ready, bits
        for b in bits:
            buf[b >> 3] ^= 1 << (b & 7)
    return dec


def _ids(v):
    return f"{v['name']}-{len(_wire(v))}B"


@pytest.mark.parametrize("v", VECTORS, ids=_ids)
def test_every_1_bit_flip(v):
    wire = _wire(v)
    dec = _all_rejected(wire, itertools.combinations(range(len(wire) * 8), 1))
    assert len(dec.decode(wire)) == 1


@pytest.mark.parametrize("v", [v for v in VECTORS if FULL or len(_wire(v)) <= 64], ids=_ids)
def test_every_2_bit_flip(v):
    wire = _wire(v)
    _all_rejected(wire, itertools.combinations(range(len(wire) * 8), 2))


@pytest.mark.parametrize("v", [v for v in VECTORS if FULL or len(_wire(v)) <= 24], ids=_ids)
def test_every_3_bit_flip(v):
    wire = _wire(v)
    _all_rejected(wire, itertools.combinations(range(len(wire) * 8), 3))


def _unstuffed(v):
    """Header + payload + CRC: COBS-decode the vector (COBS here is the reference
    definition, written independently of the streaming decoder)."""
    data = _wire(v)[1:-1]
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def test_cobs_reference_agrees():
    for v in VECTORS:
        assert b"\x00" + cobs.encode(_unstuffed(v)) + b"\x00" == _wire(v)


def test_bursts_up_to_32_bits_inside_the_frame_are_rejected():
    """CRC-32 detects every burst error no longer than 32 bits. Sampled: every vector,
    every start bit, four random lengths 1-32 at each (first and last bit of the burst
    flipped, random bits between), re-stuffed so only the frame bytes change."""
    rng = random.Random(32)
    dec = Decoder()
    for v in VECTORS:
        body = _unstuffed(v)
        value = int.from_bytes(body, "little")
        nbits = len(body) * 8
        for start in range(nbits):
            for _ in range(4):
                length = rng.randint(1, min(32, nbits - start))
                pattern = (1 | 1 << (length - 1) | rng.getrandbits(length)) & ((1 << length) - 1)
                bad = (value ^ pattern << start).to_bytes(len(body), "little")
                assert dec.decode(b"\x00" + cobs.encode(bad) + b"\x00") == [], (v["name"], start)


def test_random_wire_bursts_are_rejected_at_the_crc_rate():
    """Longer random bursts on the wire: CRC-32 promises an undetected rate of 2^-32
    (2.3e-10); 200,000 bursts should let none through (expected 4.7e-5)."""
    rng = random.Random(2974)
    dec = Decoder()
    accepted = 0
    for _ in range(200_000):
        wire = bytearray(_wire(rng.choice(VECTORS)))
        nbits = len(wire) * 8
        length = rng.randint(33, min(256, nbits))
        start = rng.randrange(nbits - length + 1)
        value = int.from_bytes(wire, "little") ^ (
            (1 | (1 << (length - 1)) | rng.getrandbits(length)) << start
        )
        mutated = value.to_bytes(len(wire), "little")
        accepted += len(dec.decode(mutated + b"\x00"))
    assert accepted == 0
