"""The state record written in place (firmware/recordtext.py, issue 14) reads back as the
core's state: for any state a core can hold (every channel's state, drug and figures,
times negative and past 2**30, any alarm list with any text), the record save_core()
writes is the text json.dumps makes of the same snapshot, load() returns that snapshot,
the record is byte for byte the one the whole-buffer writer made before it was written
in chunks (the reference below: the format on the store is unchanged), every piece
handed to the store is 512 B at most, and the largest record a board makes goes through
the same small buffer.
"""

import json
from binascii import crc32

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import persist, recordtext, resume
from firmware.alarms import Alarm
from firmware.core import SafetyCore
from protocol import reasons
from protocol.text import TEXT_MAX
from tests.budgets import budget
from tests.portable import coreview
from tests.portable.corekit import library
from tests.portable.shellkit import Store

LIB = library()
DRUGS = sorted(LIB.drugs)
_BIG = (1 << 48) - 1
_STATES = ("idle", "running", "tapering", "stopped")

counts = st.integers(0, _BIG)
times = st.integers(-_BIG, _BIG)
quantities = st.integers(0, 0x7FFFFFFF)
# any text: quotes, backslashes, control characters, past ASCII (no lone surrogates:
# text that no str of MicroPython holds, and that UTF-8 cannot carry)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=TEXT_MAX)

channel = st.fixed_dictionaries(
    {
        "state": st.sampled_from(_STATES),
        "drug": st.none() | st.sampled_from(DRUGS),
        "dose": quantities,
        "weight": st.none() | quantities,
        "conc": quantities,
        "volume": st.none() | quantities,
        "volume_left": counts,
        "volume_infused": counts,
        "rate": quantities,
        "override": st.booleans(),
        "last_up_ms": st.none() | times,
        "last_down_ms": st.none() | times,
        "taper_next_ms": times,
        "near_empty_raised": st.booleans(),
    }
)
alarm = st.fixed_dictionaries(
    {
        "id": st.integers(0, 0xFFFF),
        "ch": st.integers(0, 4),
        "code": st.sampled_from(sorted(reasons.NUMBER)),
        "priority": st.sampled_from(("high", "medium", "low")),
        "message": texts,
        "at_ms": counts,
        "acked": st.booleans(),
        "active": st.booleans(),
    }
)


def _states(alarms):
    """A test over cores in any state the record holds, with up to `alarms` alarms, saved
    1-3 times at any uptime."""
    return lambda test: settings(max_examples=budget(100, 1000), deadline=None)(
        given(
            channels=st.integers(1, 4),
            saved=st.lists(channel, min_size=4, max_size=4),
            alarms=st.lists(alarm, max_size=alarms),
            next_id=st.integers(0, 0xFFFF),
            at_ms=counts,
            uptime=counts,
            saves=st.integers(1, 3),
        )(test)
    )


def _core(channels, saved, alarms, next_id, at_ms):
    core = SafetyCore(LIB, channels=channels)
    for c, fields in zip(core._channels, saved[:channels], strict=True):
        for key, value in fields.items():
            setattr(c, key, LIB.drugs[value] if key == "drug" and value else value)
    for a in alarms:
        item = Alarm(a["id"], a["ch"], a["code"], a["priority"], a["message"], a["at_ms"], 0)
        item.acked, item.active = a["acked"], a["active"]
        core._alarms.items.append(item)
    core._alarms.next_id = next_id
    core._now = at_ms
    return core


def _saved(store):
    raw = bytes(store.files["state.json"])
    loaded = persist.Record(_copy(store)).load()
    assert loaded is not None
    return raw, loaded


def _copy(store):
    copied = Store()
    copied.files = {k: bytes(v) for k, v in store.files.items() if v is not None}
    return copied


@_states(alarms=12)
def test_the_record_written_in_place_reads_back_as_the_core_state(
    channels, saved, alarms, next_id, at_ms, uptime, saves
):
    core = _core(channels, saved, alarms, next_id, at_ms)
    store = Store()
    record = persist.Record(store)
    for _ in range(saves):
        record.save_core(core, uptime)
    raw, (snapshot, loaded_uptime) = _saved(store)
    expected = json.loads(json.dumps(coreview.snapshot(core)))
    assert snapshot == expected and loaded_uptime == uptime
    assert record.gen == saves and int(store.files["state.gen"]) == saves
    # the very text json.dumps makes of it (then JSON's spaces), the CRC over the body
    body = raw[recordtext.HEAD :]
    made = {"uptime_ms": uptime, "gen": saves, "core": coreview.snapshot(core)}
    text = json.dumps(made, separators=(",", ":"), ensure_ascii=False).encode()
    if not any(ord(ch) < 0x20 for a in alarms for ch in a["message"]):
        assert body.rstrip(b" ") == text  # CPython writes \n as \n, this as \u000a
    assert raw[:18] == b"pumpguard-state 1 " and raw[26:27] == b"\n"
    assert int(raw[18:26], 16) == persist.crc32(body)
    assert len(body) % 64 == 0 and body.strip(b" ").endswith(b"}")


def _text(value):
    # JSON as the firmware writes it: separators "," and ":", a string's quote and
    # backslash escaped, control characters as \u00XX, any other character as itself
    if isinstance(value, dict):
        return "{" + ",".join(_text(k) + ":" + _text(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, str):
        out = []
        for ch in value:
            if ord(ch) < 0x20:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append("\\" + ch if ch in '"\\' else ch)
        return '"' + "".join(out) + '"'
    return json.dumps(value)  # None, a bool, an int


def _reference(core, uptime, gen):
    # the record the whole-buffer writer (before the chunks) made of core's state: the
    # header with the CRC-32 of the body, the body padded with spaces to 64 bytes' steps
    made = {"uptime_ms": uptime, "gen": gen, "core": coreview.snapshot(core)}
    body = _text(made).encode()
    body += b" " * (-len(body) % 64)
    return b"pumpguard-state 1 " + b"%08x\n" % crc32(body) + body


class _Pieces(Store):
    # a store that logs the length of each piece of the record it is handed in state.tmp
    # (the record counter goes through state.tmp too: its write starts no record)
    def __init__(self):
        Store.__init__(self)
        self.pieces = []

    def write(self, name, data):
        if name == "state.tmp" and data[: len(recordtext.MAGIC)] == recordtext.MAGIC:
            self.pieces = [len(data)]
        Store.write(self, name, data)

    def append(self, name, data):
        if name == "state.tmp":
            self.pieces.append(len(data))
        Store.append(self, name, data)


@_states(alarms=29)
def test_the_record_written_in_chunks_is_the_whole_buffer_s_byte_for_byte(
    channels, saved, alarms, next_id, at_ms, uptime, saves
):
    core = _core(channels, saved, alarms, next_id, at_ms)
    store = _Pieces()
    record = persist.Record(store)
    for _ in range(saves):
        record.save_core(core, uptime)
    assert store.files["state.json"] == _reference(core, uptime, saves)
    assert store.files["state.gen"] == b"%16d" % saves  # the counter as before
    assert max(store.pieces) <= 512 and sum(store.pieces) == len(store.files["state.json"])


@settings(max_examples=50, deadline=None)
@given(channels=st.integers(1, 4), message=st.characters(codec="ascii", min_codepoint=0x20))
def test_the_largest_record_of_a_board_goes_through_the_small_buffer(channels, message):
    # every channel at its longest figures; every alarm the core can list at once, one
    # per device code and per channel code, each message TEXT_MAX of printable ASCII
    saved = [
        {
            "state": "tapering",
            "drug": max(DRUGS, key=len),
            "dose": 0x7FFFFFFF,
            "weight": 0x7FFFFFFF,
            "conc": 0x7FFFFFFF,
            "volume": 0x7FFFFFFF,
            "volume_left": _BIG,
            "volume_infused": _BIG,
            "rate": 0x7FFFFFFF,
            "override": False,
            "last_up_ms": -_BIG,
            "last_down_ms": -_BIG,
            "taper_next_ms": -_BIG,
            "near_empty_raised": False,
        }
    ] * channels
    longest = max(reasons.NUMBER, key=len)
    count = 9 + 10 * channels
    alarms = [
        {
            "id": 0xFFFF,
            "ch": channels,
            "code": longest,
            "priority": "medium",
            "message": (message if message not in '"\\' else "x") * TEXT_MAX,
            "at_ms": _BIG,
            "acked": False,
            "active": False,
        }
    ] * count
    core = _core(channels, saved, alarms, 0xFFFF, _BIG)
    store = Store()
    record = persist.Record(store)
    record.save_core(core, _BIG)
    buf = record._text.buf
    record.save_core(core, _BIG)
    assert record._text.buf is buf and len(buf) <= 512  # never grown
    raw, (snapshot, _) = _saved(store)
    assert snapshot == json.loads(json.dumps(coreview.snapshot(core)))
    assert raw == _reference(core, _BIG, 2) and len(raw) > 4 * 512 * channels
    resume.check(LIB, snapshot, channels)  # a record this firmware writes
