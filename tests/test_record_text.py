"""The state record written in place (firmware/recordtext.py, issue 14) reads back as the
core's state: for any state a core can hold (every channel's state, drug and figures,
times negative and past 2**30, any alarm list with any text), the record save_core()
writes is the text json.dumps makes of the same snapshot, load() returns that snapshot,
and the largest record a board makes fits the buffer made at its first save.
"""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import persist, recordtext, resume
from firmware.alarms import Alarm
from firmware.core import SafetyCore
from protocol import reasons
from protocol.text import TEXT_MAX
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


@settings(max_examples=300, deadline=None)
@given(
    channels=st.integers(1, 4),
    saved=st.lists(channel, min_size=4, max_size=4),
    alarms=st.lists(alarm, max_size=12),
    next_id=st.integers(0, 0xFFFF),
    at_ms=counts,
    uptime=counts,
    saves=st.integers(1, 3),
)
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


@settings(max_examples=50, deadline=None)
@given(channels=st.integers(1, 4), message=st.characters(codec="ascii", min_codepoint=0x20))
def test_the_largest_record_of_a_board_fits_its_buffer(channels, message):
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
    text = record._text
    assert text is not None and text.size == recordtext.Text(channels).size  # never grown
    raw, (snapshot, _) = _saved(store)
    assert snapshot == json.loads(json.dumps(coreview.snapshot(core)))
    assert len(raw) <= text.end
    resume.check(LIB, snapshot, channels)  # a record this firmware writes
