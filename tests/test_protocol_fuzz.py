"""Decoder fuzzing: random and mutated streams. No exception escapes the decoder (or
messages.decode on what it accepts), and no frame that was not sent is accepted.
PUMPGUARD_EXHAUSTIVE=1 runs 40 times as many examples."""

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import catalog, messages
from protocol.decoder import Decoder

EXAMPLES = 20_000 if os.environ.get("PUMPGUARD_EXHAUSTIVE") == "1" else 500
_REQUESTS = [
    ("STATUS", {"ch": 1}),
    ("STOP", {"ch": 2}),
    ("ACK", {"alarm_id": 7}),
    ("ESTOP", {"ch": 1, "reason": "occlusion"}),
    ("TITRATE", {"ch": 1, "dose": 12_000000, "unit": "mcg/min", "override": False}),
    ("LOG", {"first": 0}),
    ("HEARTBEAT", {}),
]
SENT = [messages.to_wire(name, seq, f) for seq, (name, f) in enumerate(_REQUESTS)]
SENT_FRAMES = {(catalog.ID[name], seq) for seq, (name, _) in enumerate(_REQUESTS)}


def _check(dec, stream):
    """Feed `stream`; every accepted frame must be one that was sent, intact."""
    for f in dec.decode(stream):
        assert (f.msg_id, f.seq) in SENT_FRAMES
        assert (
            messages.to_wire(f.msg_id, f.seq, messages.decode(f.msg_id, f.payload)) == (SENT[f.seq])
        )


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 8)),
    st.tuples(st.just("zero"), st.integers(0, 10**6), st.just(0)),
)


@settings(max_examples=EXAMPLES)
@given(
    frames=st.lists(st.integers(0, len(SENT) - 1), min_size=1, max_size=8),
    mutations=st.lists(_mutation, max_size=6),
    chunk=st.integers(1, 300),
)
def test_mutated_streams(frames, mutations, chunk):
    stream = bytearray(b"".join(SENT[i] for i in frames))
    for kind, at, arg in mutations:
        at %= len(stream) + 1
        if kind == "flip" and at < len(stream):
            stream[at] ^= 1 << arg
        elif kind == "insert":
            stream[at:at] = arg
        elif kind == "delete":
            del stream[at : at + arg]
        elif kind == "zero" and at < len(stream):
            stream[at] = 0
    dec = Decoder()
    for i in range(0, len(stream), chunk):
        _check(dec, bytes(stream[i : i + chunk]))
    # Whatever came before, the next frame sent decodes (an intact frame whose
    # closing 0x00 was lost may come out first: its delimiter is the next leading one).
    assert [f.seq for f in dec.decode(SENT[3])][-1:] == [3]


@settings(max_examples=EXAMPLES)
@given(st.binary(max_size=2000))
def test_random_bytes(data):
    dec = Decoder()
    _check(dec, data)
    assert [f.seq for f in dec.decode(SENT[0])] == [0]


def test_long_random_streams_accept_nothing():
    # Zero-heavy and zero-free noise: short fragments and oversize runs alike.
    rng = random.Random(1)
    dec = Decoder()
    for density in (0.5, 0.05, 0.004, 0.0):
        noise = bytes(
            0 if rng.random() < density else rng.randrange(1, 256) for _ in range(200_000)
        )
        assert dec.decode(noise) == []
    c = dec.counters()
    assert c["frames"] == 0 and c["oversize"] > 0 and c["bad_length"] > 0 and c["bad_cobs"] > 0
    assert [f.seq for f in dec.decode(SENT[1])] == [1]
