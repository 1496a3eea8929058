# Decoder fuzz with tagged (flag A) and untagged frames, on both interpreters (the
# device's decoder runs on MicroPython, whose small ints and buffers differ from
# CPython's): no exception escapes, no frame that was not sent comes out, and frames
# forged with a correct CRC are judged exactly as SPEC §1's table says.
#
# The random numbers come from SHA-256 in counter mode (the random module differs
# between the interpreters): a seed means the same inputs on both.
import hashlib
import struct

from protocol import auth, catalog, cobs, messages
from protocol.crc import crc32
from protocol.decoder import Decoder
from protocol.frame import MAX_FRAME
from tests.budgets import budget

# make test's figures against make fuzz's (tests/budgets.py). Mutated streams of 1 to 6
# frames: make test's 600 come out as some 1,100 intact frames, and as every refusal the
# decoder counts for a broken one (bad CRC, COBS, length, oversize), each at least 13
# times.
STREAMS = budget(600, 20000)
# Frames with arbitrary headers and a correct CRC: make test's 3000 reach each of SPEC
# §1's checks (each return of _judge) at least 25 times, so each outcome more than 20
# (the test's own check of its reach).
FORGED = budget(3000, 100000)


class _Rng:
    def __init__(self, seed):
        self._seed = b"pumpguard fuzz %d " % seed
        self._n = 0
        self._pool = b""
        self._at = 0

    def byte(self):
        if self._at == len(self._pool):
            self._pool = hashlib.sha256(self._seed + struct.pack("<I", self._n)).digest()
            self._n += 1
            self._at = 0
        self._at += 1
        return self._pool[self._at - 1]

    def below(self, n):
        # n <= 65536 here: two bytes, the bias is immaterial for a fuzz
        return (self.byte() | self.byte() << 8) % n

    def bytes(self, n):
        return bytes([self.byte() for _ in range(n)])


KS = bytes(range(0x80, 0xA0))
SID = 0x5A3C
_HELLO = {
    "protocol": catalog.PROTOCOL_VERSION,
    "schema": catalog.SCHEMA_HASH,
    "host": "fuzz",
    "supervise_s": 0,
    "wall_ms": 0,
    "role": 2,
    "nonce": bytes(range(16)),
}
_START = {
    "ch": 1,
    "drug": "norepinephrine",
    "dose": 8000000,
    "unit": "mcg/min",
    "weight": None,
    "conc": 16000000,
    "conc_unit": "mcg/mL",
    "volume": 50000000,
    "override": False,
}
_PLAN = [{"at_ms": 0xFFFFFFFFFFFFFFFE, "dose": 0x7FFFFFFF}] * catalog.TAPER_PAGE
_TAPER_R = {"ch": 1, "unit": "u" * 16, "total": 0xFFFF, "plan": _PLAN}
# (message, fields, sid, sender or None: untagged)
_SENT = (
    ("HELLO", _HELLO, 0, None),
    ("AUTH", {"proof": bytes(range(16, 32))}, SID, None),
    ("AUTH_R", {"proof": bytes(range(32, 48))}, SID, auth.DEVICE),
    ("START", _START, SID, auth.HOST),
    ("STOP", {"ch": 2}, SID, auth.HOST),
    ("KEY", {"role": 2, "key": bytes(range(48, 80))}, SID, auth.HOST),
    ("TAPER_R", _TAPER_R, SID, auth.DEVICE),  # the longest frame: MAX_FRAME - 3 bytes
    ("ERROR", {"code": 7, "message": "frame without a tag refused: AUTH first"}, SID, None),
    ("HEARTBEAT", {}, SID, auth.HOST),
)


def _sent():
    out = []
    for i in range(len(_SENT)):
        msg, fields, sid, sender = _SENT[i]
        key = KS if sender else None
        wire = messages.to_wire(msg, i, fields, None, sid, key, 100 + i, sender or auth.HOST)
        out.append(wire)
    return out


SENT = _sent()


def _same_as_sent(f):
    """f is the frame SENT[f.seq], intact: every attribute, and its tag verifies."""
    assert f.seq < len(SENT), f
    msg, fields, sid, sender = _SENT[f.seq]
    assert f.msg_id == catalog.ID[msg] and f.sid == sid, f
    assert messages.decode(f.msg_id, f.payload) == fields, f
    if sender is None:
        assert (f.ctr, f.tag, f.signed) == (0, None, None), f
    else:
        assert f.ctr == 100 + f.seq, f
        assert auth.equal(f.tag, auth.tag(KS, sender, f.signed)), f


def _mutate(rng, stream):
    # New bytes objects throughout: MicroPython's bytearray cannot grow or shrink by
    # slice assignment or del.
    for _ in range(rng.below(7)):
        at = rng.below(len(stream) + 1)
        kind = rng.below(5)
        if kind in (0, 3) and at < len(stream):
            b = bytearray(stream)
            b[at] = b[at] ^ 1 << rng.below(8) if kind == 0 else 0
            stream = bytes(b)
        elif kind == 1:
            stream = stream[:at] + rng.bytes(1 + rng.below(8)) + stream[at:]
        elif kind == 2:
            stream = stream[:at] + stream[at + 1 + rng.below(8) :]
        elif kind == 4:  # a repeated stretch
            stream = stream[:at] + stream[at : at + 1 + rng.below(40)] + stream[at:]
    return stream


def test_mutated_streams_give_only_frames_that_were_sent():
    rng = _Rng(1)
    dec = Decoder()
    accepted = 0
    for _ in range(STREAMS):
        stream = b"".join([SENT[rng.below(len(SENT))] for _ in range(1 + rng.below(6))])
        stream = _mutate(rng, stream)
        chunk = 1 + rng.below(300)
        for i in range(0, len(stream), chunk):
            for f in dec.decode(stream[i : i + chunk]):
                _same_as_sent(f)
                accepted += 1
        # Whatever came before, the next frame sent decodes (an intact frame whose
        # closing 0x00 was lost may come out first: its delimiter is the next one's).
        got = dec.decode(SENT[3])
        assert got and got[-1].seq == 3
        _same_as_sent(got[-1])
    # The mutations leave many frames intact: the fuzz did not only see refusals.
    assert accepted > STREAMS // 2


def _judge(body):
    """SPEC §1's checks in their order, for a correctly stuffed frame with a correct
    CRC: the counter it fails, or "frames". The oracle is written from the table, not
    from the decoder."""
    n = len(body)
    if n > MAX_FRAME:
        return "oversize"
    if n < 9:
        return "bad_length"
    verfl = body[0]
    head = 7 if verfl & 0x01 else 5
    tail = 16 if verfl & 0x02 else 4
    if n < head + tail or body[4] != n - head - tail:
        return "bad_length"
    if verfl not in (0x10, 0x11, 0x13) or body[1] not in catalog.BOUNDS:
        return "unknown"
    if verfl & 0x01 and body[5] == 0 and body[6] == 0:
        return "unknown"
    lo, hi = catalog.BOUNDS[body[1]]
    if not lo <= body[4] <= hi:
        return "bad_length"
    return "frames"


_VERFL = (0x10, 0x11, 0x13, 0x13, 0x13, 0x12, 0x01, 0x33, 0x17)
_IDS = (0x01, 0x03, 0x04, 0x0B, 0x0E, 0x0F, 0x8E, 0x8C, 0xFF, 0x3F, 0x80, 0xFD)


def _forge(rng):
    verfl = _VERFL[rng.below(len(_VERFL))] if rng.below(8) else rng.byte()
    msg_id = _IDS[rng.below(len(_IDS))] if rng.below(8) else rng.byte()
    # A length that fits the layout the flags give, and the message's bounds (k 1); a
    # payload of any u8 length in that layout (k 2); or any length at all (k 0).
    head = 7 if verfl & 0x01 else 5
    tail = 12 if verfl & 0x02 else 0
    k = rng.below(3)
    if k == 0:
        n = rng.below(MAX_FRAME + 8)  # any length at all
        payload = None
    else:
        lo, hi = catalog.BOUNDS.get(msg_id, (0, 240))
        payload = lo + rng.below(hi - lo + 1) if k == 1 else rng.below(256)
        n = head + payload + tail + 4
    n = max(n, 4)  # the CRC at least
    body = bytearray(rng.bytes(n - 4))
    header = (verfl, msg_id, rng.byte(), rng.byte(), payload if payload is not None else rng.byte())
    for i in range(min(5, len(body))):
        body[i] = header[i]
    if rng.below(16) == 0 and len(body) > 6:
        body[5] = body[6] = 0  # sid 0
    return bytes(body) + struct.pack("<I", crc32(body))


def test_forged_frames_with_a_correct_crc_are_judged_as_the_spec_says():
    rng = _Rng(2)
    dec = Decoder()
    tally = {}
    for _ in range(FORGED):
        body = _forge(rng)
        want = _judge(body)
        before = dec.counters()
        got = dec.decode(b"\x00" + cobs.encode(body) + b"\x00")
        after = dec.counters()
        moved = [k for k in after if after[k] != before[k]]
        assert moved == [want], (want, moved, body)
        tally[want] = tally.get(want, 0) + 1
        if want == "frames" and body[0] == 0x13:
            tally["tagged"] = tally.get("tagged", 0) + 1
        if want != "frames":
            assert got == []
            continue
        (f,) = got
        assert (f.msg_id, f.seq) == (body[1], body[2] | body[3] << 8)
        tagged = body[0] == 0x13
        head = 7 if body[0] & 0x01 else 5
        end = len(body) - 4 - (12 if tagged else 0)
        assert f.payload == body[head:end]
        assert f.sid == (body[5] | body[6] << 8 if head == 7 else 0)
        if tagged:
            assert f.ctr == struct.unpack("<I", body[end : end + 4])[0]
            assert f.tag == body[end + 4 : end + 12] and f.signed == body[: end + 4]
        else:
            assert (f.ctr, f.tag, f.signed) == (0, None, None)
    # Every outcome was reached, tagged frames accepted among them.
    for k in ("frames", "tagged", "unknown", "bad_length", "oversize"):
        assert tally.get(k, 0) > 20, tally
