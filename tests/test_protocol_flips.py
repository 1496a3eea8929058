"""Bit errors are rejected: on the wire through the decoder (sampled), and in the frame
under the CRC (exhaustive, by the CRC's linearity).

Wire level: 1-, 2- and 3-bit flips of the golden vectors' wire bytes, COBS code bytes
and delimiters included, so a flip may move or create a 0x00 and cut the frame in two:
each piece must be rejected too. A flipped COBS code byte moves 0x00 bytes around,
which the length checks and the CRC's 2^-32 catch. `make test` runs every 1-bit flip
of every vector, every 2-bit flip of every vector up to 32 wire bytes and every 3-bit
flip of every vector up to 14 wire bytes, and of every longer vector SAMPLED seeded
random 2- and 3-bit flips; PUMPGUARD_EXHAUSTIVE=1 (`make fuzz`) runs every 2- and 3-bit
flip of every vector (hours; run it with -n auto).

Frame level (the bytes COBS wraps, CRC trailer included): every 1- to 4-bit error over
a MAX_FRAME frame and every 1- to 3-bit error over each vector's frame, exhaustively
from the single-bit syndromes (why that is exact: see the section below), with a
control on a truncated 8-bit check that must fail; and bursts of up to 32 bits in the
frame, re-stuffed and fed to the decoder, again with a weak-check control.
"""

import itertools
import json
import os
import pathlib
import random

import pytest

from protocol import cobs, frame
from protocol.crc import RESIDUE, crc32
from protocol.decoder import Decoder
from tests.test_protocol_vectors import unstuff

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


# make test's limits (wire bytes) of the exhaustive 2- and 3-bit flips (they were 64 and
# 24: 26 s of CPU, now about 4 s), and the sampled flips of each longer vector; the
# bursts per start bit (make fuzz: twice these) and the random wire bursts (make fuzz:
# 200,000).
EVERY_2_BITS = 32
EVERY_3_BITS = 14
SAMPLED = 600
BURSTS_PER_BIT = 4 if FULL else 2
WIRE_BURSTS = 200_000 if FULL else 30_000


@pytest.mark.parametrize(
    "v", [v for v in VECTORS if FULL or len(_wire(v)) <= EVERY_2_BITS], ids=_ids
)
def test_every_2_bit_flip(v):
    wire = _wire(v)
    _all_rejected(wire, itertools.combinations(range(len(wire) * 8), 2))


@pytest.mark.parametrize(
    "v", [v for v in VECTORS if FULL or len(_wire(v)) <= EVERY_3_BITS], ids=_ids
)
def test_every_3_bit_flip(v):
    wire = _wire(v)
    _all_rejected(wire, itertools.combinations(range(len(wire) * 8), 3))


def _sampled_flips(nbits, k, seed):
    rng = random.Random(seed)
    return (sorted(rng.sample(range(nbits), k)) for _ in range(SAMPLED))


@pytest.mark.parametrize("k", [2, 3])
def test_sampled_2_and_3_bit_flips_of_every_longer_vector(k):
    longer = [v for v in VECTORS if len(_wire(v)) > (EVERY_2_BITS if k == 2 else EVERY_3_BITS)]
    if FULL:
        pytest.skip("PUMPGUARD_EXHAUSTIVE: every flip of these runs above")
    assert longer
    for i, v in enumerate(longer):
        wire = _wire(v)
        _all_rejected(wire, _sampled_flips(len(wire) * 8, k, seed=1000 * k + i))


def _unstuffed(v):
    """Header + payload + CRC: COBS-decode the vector (COBS here is the reference
    definition, written independently of the streaming decoder)."""
    return unstuff(_wire(v))


def test_cobs_reference_agrees():
    for v in VECTORS:
        assert b"\x00" + cobs.encode(_unstuffed(v)) + b"\x00" == _wire(v)


def _frame_bursts(check, per_bit=4, seed=32):
    """Bursts of 1-32 bits applied to each vector's decoded frame (first and last bit
    of the burst flipped, random bits between), re-stuffed with COBS so only the frame
    bytes change, fed to the real decoder with `check` as its CRC function. Every vector,
    every start bit, `per_bit` random lengths at each. Returns (accepted, bursts)."""
    rng = random.Random(seed)
    dec = Decoder(crc=check)
    accepted = bursts = 0
    for v in VECTORS:
        body = _unstuffed(v)
        value = int.from_bytes(body, "little")
        nbits = len(body) * 8
        for start in range(nbits):
            for _ in range(per_bit):
                length = rng.randint(1, min(32, nbits - start))
                pattern = (1 | 1 << (length - 1) | rng.getrandbits(length)) & ((1 << length) - 1)
                bad = (value ^ pattern << start).to_bytes(len(body), "little")
                accepted += len(dec.decode(b"\x00" + cobs.encode(bad) + b"\x00"))
                bursts += 1
    return accepted, bursts


def test_bursts_up_to_32_bits_inside_the_frame_are_rejected():
    """CRC-32 detects every burst error no longer than 32 bits (SPEC §2). Frame-level,
    so the CRC is what must catch them: the COBS framing is intact by construction."""
    accepted, bursts = _frame_bursts(crc32, per_bit=BURSTS_PER_BIT)
    assert bursts == BURSTS_PER_BIT * sum(len(_unstuffed(v)) * 8 for v in VECTORS)
    assert accepted == 0


def _weak_check(data):
    """The control's deliberately weak CRC: CRC-32 truncated to its low 8 bits, shaped
    like the real check for the decoder (RESIDUE when the low 8 bits match)."""
    return RESIDUE if (crc32(data) ^ RESIDUE) & 0xFF == 0 else 0


def test_control_the_burst_harness_catches_a_weak_crc():
    """The same harness with the 8-bit check must let bursts through, at about 2^-8 of
    them (fewer: some bursts also hit the length or message id, which the decoder
    checks after the CRC); so the harness has the power to fail the real test."""
    accepted, bursts = _frame_bursts(_weak_check, per_bit=1)
    assert accepted > 0
    assert bursts / 2**8 / 4 < accepted < bursts / 2**8 * 2


def test_random_wire_bursts_are_rejected_at_the_crc_rate():
    """Longer random bursts on the wire: CRC-32 promises an undetected rate of 2^-32
    (2.3e-10); 30,000 bursts (make fuzz: 200,000) should let none through (expected
    7e-6)."""
    rng = random.Random(2974)
    dec = Decoder()
    accepted = 0
    for _ in range(WIRE_BURSTS):
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


# --- The CRC's Hamming distance, exhaustively, by linearity -------------------------
#
# The wire tests above go through COBS and the decoder, so they can only sample the
# 2- and 3-bit flips of the long vectors. The HD claim (SPEC §2: HD=5 up to MAX_FRAME,
# every 1- to 4-bit error in a frame detected) is about the CRC alone, and the CRC is
# linear over GF(2), which makes an exhaustive check cheap:
#
#   crc32 (init and xorout 0xFFFFFFFF) is affine in its input for a fixed length L:
#   crc(f ^ e) = crc(f) ^ lin(e), where lin is the CRC with zero init and zero xorout
#   (lin(e) = crc(e) ^ crc(0^L)). The decoder accepts a frame iff crc(frame) == RESIDUE,
#   and a correct frame f has crc(f) == RESIDUE, so the corrupted f ^ e is accepted
#   iff lin(e) == 0: whether an error pattern escapes depends on e only, never on the
#   frame's content. lin is linear, so lin(e) is the XOR of the single-bit syndromes
#   s_i = lin(bit i) = crc(f ^ bit i) ^ RESIDUE over the bits of e. Hence:
#     every 1-bit error detected  <=>  no s_i is 0
#     every 2-bit error detected  <=>  the s_i are pairwise distinct
#     every 3-bit error detected  <=>  no s_a ^ s_b (a < b) is a single syndrome s_c
#                                      (c is a third bit: c = a or b would need s = 0)
#     every 4-bit error detected  <=>  the s_a ^ s_b (a < b) are pairwise distinct
#                                      (two pairs sharing a bit collide only if two
#                                      single syndromes are equal: the 2-bit case)
# The frame here is the decoded frame: the bytes COBS wraps, CRC trailer included,
# exactly what the decoder hands to crc32 and compares with RESIDUE.
#
# With zero init, leading zero bits do not change lin, so the syndrome of a bit
# depends only on its distance from the frame's end: a shorter frame's errors are the
# MAX_FRAME errors that spare its first bytes. Checking MAX_FRAME covers every
# allowed length; the vectors' own frames are checked too (cheap, and it pins that).


def _frame_of(wire):
    """The decoded frame of one wire frame (header, payload, CRC), by the decoder."""
    dec = Decoder()
    dec.feed(wire)
    assert dec.ready
    return bytes(dec._mv[: dec._end])


def _max_frame():
    """A MAX_FRAME-byte frame (5 + 2 sid + MAX_PAYLOAD + 12 ctr and tag + 4) with a
    correct CRC: the tagged layout, the longest there is."""
    n = frame.HEADER + frame.SID_BYTES + frame.MAX_PAYLOAD + frame.AUTH_BYTES
    body = bytearray(random.Random(263).randbytes(n))
    body[0] = frame.VERSION_FLAGS | frame.FLAG_SID | frame.FLAG_AUTH
    body[4] = frame.MAX_PAYLOAD
    body[frame.HEADER] |= 1  # a sid is never 0
    f = bytes(body) + crc32(body).to_bytes(4, "little")
    assert len(f) == frame.MAX_FRAME and crc32(f) == RESIDUE
    return f


def _syndromes(f, check=crc32, residue=RESIDUE):
    """s_i for every bit i of frame f: check(f ^ bit i) ^ residue, by the real CRC."""
    buf = bytearray(f)
    out = []
    for i in range(len(f) * 8):
        buf[i >> 3] ^= 1 << (i & 7)
        out.append(check(buf) ^ residue)
        buf[i >> 3] ^= 1 << (i & 7)
    return out


def _undetected(s, max_bits):
    """Error weights w (1..max_bits) with at least one undetected w-bit error, given the
    single-bit syndromes s (see above for why each test is exact)."""
    bad = set()
    singles = set(s)
    if 0 in singles:
        bad.add(1)
    if len(singles) < len(s):
        bad.add(2)
    if max_bits >= 3:
        pairs = [a ^ b for i, a in enumerate(s) for b in s[i + 1 :]]
        if any(p in singles for p in pairs):
            bad.add(3)
        if max_bits >= 4 and len(set(pairs)) < len(pairs):
            bad.add(4)
    return bad


def test_syndromes_predict_the_decoder_crc_check():
    """The linearity argument, checked against crc32 itself: for random 2- to 4-bit
    errors in the max frame, crc(f ^ e) ^ RESIDUE is the XOR of the single syndromes."""
    f = _max_frame()
    s = _syndromes(f)
    value = int.from_bytes(f, "little")
    rng = random.Random(5)
    for _ in range(2000):
        bits = rng.sample(range(len(f) * 8), rng.randint(2, 4))
        bad = (value ^ sum(1 << b for b in bits)).to_bytes(len(f), "little")
        x = 0
        for b in bits:
            x ^= s[b]
        assert crc32(bad) ^ RESIDUE == x
    # Content-free: a frame of other bytes, same length, has the same syndromes.
    body = bytes(frame.MAX_FRAME - frame.TRAILER)
    assert _syndromes(body + crc32(body).to_bytes(4, "little")) == s
    # A shorter frame's syndromes are the max frame's last ones (leading zeros).
    f2 = _frame_of(_wire(VECTORS[0]))
    assert _syndromes(f2) == s[-len(f2) * 8 :]


def test_every_1_to_4_bit_error_in_a_max_frame_is_detected():
    """HD >= 5 at MAX_FRAME (263 bytes, 2104 bits with the CRC): all 2104 1-bit, 2.2e6
    2-bit, 1.6e9 3-bit and 8.1e11 4-bit errors, by their syndromes."""
    assert _undetected(_syndromes(_max_frame()), 4) == set()


@pytest.mark.parametrize("v", VECTORS, ids=_ids)
def test_every_1_to_3_bit_error_in_each_vector_frame_is_detected(v):
    f = _frame_of(_wire(v))
    assert crc32(f) == RESIDUE
    assert _undetected(_syndromes(f), 3) == set()


def test_control_the_syndrome_check_finds_a_weak_crcs_escapes():
    """The same check on a truncated 8-bit residue over the max frame: 2104 syndromes
    in 256 values, so 2-bit (and 3-, 4-bit; even some 1-bit) escapes must be found."""
    s = _syndromes(_max_frame(), lambda b: crc32(b) & 0xFF, RESIDUE & 0xFF)
    assert {2, 3, 4} <= _undetected(s, 4)
