"""Hypothesis round-trips of every message in the catalog, through payload and frame,
with the host's crcmod CRC on one side and the device's binascii.crc32 on the other."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pumpguard.api.link import CRC32

from protocol import auth, catalog, frame, messages
from protocol.catalog import BOOL, LIST, MS, OMS, OQ, OS, RAW, STR, TEXT, U8, U16, U32, U64, Q
from protocol.decoder import Decoder

_INT = {U8: 8, U16: 16, U32: 32, U64: 64}


def _text(max_bytes):
    return st.text(max_size=max_bytes).filter(lambda s: len(s.encode()) <= max_bytes)


def _field(f):
    t = f[1]
    if t in _INT:
        return st.integers(0, 2 ** _INT[t] - 1)
    if t == BOOL:
        return st.booleans()
    if t == Q:
        return st.integers(-(2**31) + 1, 2**31 - 1)
    if t == OQ:
        return st.none() | st.integers(-(2**31) + 1, 2**31 - 1)
    if t == MS:
        return st.integers(0, 2**64 - 2)
    if t == OS:
        return st.none() | st.integers(0, 2**32 - 2)
    if t == OMS:
        return st.none() | st.integers(0, 2**64 - 2)
    if t in (STR, TEXT):
        return _text(f[2])
    if t == RAW:
        return st.binary(min_size=f[2], max_size=f[2])
    assert t == LIST
    return st.lists(_record(f[3]), max_size=f[2])


def _record(fields):
    return st.fixed_dictionaries({f[0]: _field(f) for f in fields})


def _fits(msg_id, fields):
    try:
        messages.encode(msg_id, fields)
    except ValueError:
        return False
    return True


def _message(msg_id):
    # A packed answer (LOG_R) holds only the records that fit: the device packs them.
    fields = _record(catalog.FIELDS[msg_id])
    if msg_id in catalog.PACKED:
        return fields.filter(lambda f: _fits(msg_id, f))
    return fields


@pytest.mark.parametrize("msg_id", sorted(catalog.FIELDS), ids=lambda i: catalog.NAME[i])
def test_every_message_round_trips(msg_id):
    @given(
        fields=_message(msg_id),
        seq=st.integers(0, 0xFFFF),
        sid=st.integers(0, 0xFFFF),
    )
    def check(fields, seq, sid):
        payload = messages.encode(msg_id, fields)
        lo, hi = catalog.BOUNDS[msg_id]
        assert lo <= len(payload) <= hi <= frame.MAX_PAYLOAD
        assert messages.decode(msg_id, payload) == fields
        wire = messages.to_wire(msg_id, seq, fields, crc=CRC32, sid=sid)
        assert wire == messages.to_wire(msg_id, seq, fields, sid=sid)  # crcmod == binascii
        assert len(wire) <= frame.MAX_WIRE
        (got,) = Decoder(crc=CRC32).decode(wire)
        assert (got.msg_id, got.seq, got.sid, got.payload) == (msg_id, seq, sid, payload)
        assert (got.ctr, got.tag, got.signed) == (0, None, None)

    check()


@pytest.mark.parametrize("msg_id", sorted(catalog.FIELDS), ids=lambda i: catalog.NAME[i])
def test_every_message_round_trips_tagged(msg_id):
    @given(
        fields=_message(msg_id),
        seq=st.integers(0, 0xFFFF),
        sid=st.integers(1, 0xFFFF),
        key=st.binary(min_size=32, max_size=32),
        ctr=st.integers(0, 0xFFFFFFFF),
        sender=st.sampled_from((auth.HOST, auth.DEVICE)),
    )
    def check(fields, seq, sid, key, ctr, sender):
        payload = messages.encode(msg_id, fields)
        wire = messages.to_wire(msg_id, seq, fields, CRC32, sid, key, ctr, sender)
        assert wire == messages.to_wire(
            msg_id, seq, fields, sid=sid, key=key, ctr=ctr, sender=sender
        )
        assert len(wire) <= frame.MAX_WIRE
        (got,) = Decoder(crc=CRC32).decode(wire)
        assert (got.msg_id, got.seq, got.sid, got.payload, got.ctr) == (
            msg_id,
            seq,
            sid,
            payload,
            ctr,
        )
        # signed: header, sid, payload and ctr, exactly the frame's bytes before the tag
        assert got.signed[0] == 0x13 and len(got.signed) == 7 + len(payload) + 4
        assert got.signed[7 : 7 + len(payload)] == payload
        assert got.tag == auth.tag(key, sender, got.signed)

    check()


@given(st.data())
def test_any_stream_of_frames_in_any_chunks_decodes_in_order(data):
    ids = data.draw(st.lists(st.sampled_from(sorted(catalog.FIELDS)), min_size=1, max_size=6))
    sent = [(i, data.draw(_message(i)), n) for n, i in enumerate(ids)]
    stream = b"".join(messages.to_wire(i, n, f) for i, f, n in sent)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = Decoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += [
            (f.msg_id, messages.decode(f.msg_id, f.payload), f.seq) for f in dec.decode(stream[a:b])
        ]
    assert got == sent


def test_catalog_is_consistent():
    for msg_id, name, _ in catalog.MESSAGES:
        if catalog.is_request(msg_id):
            assert msg_id | catalog.RESPONSE_BIT in catalog.NAME, name
            assert catalog.NAME[msg_id | catalog.RESPONSE_BIT] == name + "_R"
        assert catalog.BOUNDS[msg_id][1] <= frame.MAX_PAYLOAD, name
    assert len(catalog.ID) == len(catalog.MESSAGES)
    assert __import__("zlib").crc32(catalog.schema_text().encode()) == catalog.SCHEMA_HASH


@pytest.mark.parametrize(
    ("msg", "fields", "error"),
    [
        ("STATUS", {}, "missing fields \\['ch'\\]"),
        ("STATUS", {"ch": 1, "chan": 2}, "unknown \\['chan'\\]"),
        ("STATUS", {"ch": 256}, "out of u8 range"),
        ("STATUS", {"ch": True}, "not a u8"),
        ("STATUS", {"ch": 1.0}, "not a u8"),
        ("ACK_R", {"alarm_id": -1}, "out of u16 range"),
        ("TITRATE", {"ch": 1, "dose": 2**31, "unit": "x", "override": False}, "i32"),
        ("TITRATE", {"ch": 1, "dose": None, "unit": "x", "override": False}, "not a q"),
        ("TITRATE", {"ch": 1, "dose": 1, "unit": "x", "override": 1}, "not a bool"),
        ("TITRATE", {"ch": 1, "dose": 1, "unit": "u" * 17, "override": False}, "at most 16"),
        ("STATUS_R_ALARMS", None, "17 records, at most 16"),
        ("AUTH", {"proof": bytes(15)}, "15 bytes, not 16"),
        ("AUTH", {"proof": bytes(17)}, "17 bytes, not 16"),
        ("AUTH", {"proof": "x" * 16}, "a str, not bytes"),
        ("AUTH", {"proof": None}, "a NoneType, not bytes"),
    ],
)
def test_encode_refuses_what_does_not_fit_and_never_clamps(msg, fields, error):
    if msg == "STATUS_R_ALARMS":
        msg = "STATUS_R"
        fields = {
            "ch": 1,
            "state": "",
            "drug": "",
            "dose": 0,
            "dose_unit": "",
            "rate": 0,
            "volume_infused": 0,
            "volume_left": None,
            "time_to_empty_s": None,
            "alarms": [{"id": i} for i in range(17)],
            "taper_next_ms": None,
            "taper_next_dose": None,
            "override": False,
            "conc": None,
            "conc_unit": "",
            "weight": None,
            "volume": None,
            "patient_weight": None,
        }
    with pytest.raises(ValueError, match=error):
        messages.encode(msg, fields)


def test_hypothesis_enforces_no_deadline():
    # conftest.py's profile: these round-trips once failed with DeadlineExceeded under load.
    assert settings.default.deadline is None


def test_every_text_field_carries_text_max():
    texts = []
    for fields in catalog.FIELDS.values():
        for f in fields:
            texts += [g[2] for g in (f[3] if f[1] == LIST else ()) if g[1] == TEXT]
            if f[1] == TEXT:
                texts.append(f[2])
    assert catalog.TEXT_MAX == 120
    assert texts and set(texts) == {catalog.TEXT_MAX}


def test_a_packed_page_holds_log_page_entries_of_the_shortest_and_no_more():
    # LOG_R is packed (catalog.PACKED): its bound is MAX_PAYLOAD, and LOG_PAGE is as many
    # entries as fit with empty strings.
    msg_id = catalog.ID["LOG_R"]
    assert (msg_id,) == catalog.PACKED and catalog.BOUNDS[msg_id][1] == frame.MAX_PAYLOAD
    entry = {"seq": 1, "boot_id": 2, "at_ms": 3, "wall_ms": None, "ch": 0, "kind": ""}
    entry.update(code=0, text="")
    page = {"oldest": 0, "next": 0, "entries": [entry] * catalog.LOG_PAGE}
    assert len(messages.encode("LOG_R", page)) <= frame.MAX_PAYLOAD
    (rec,) = [f[3] for f in catalog.FIELDS[msg_id] if f[0] == "entries"]
    assert len(messages.encode("LOG_R", page)) + catalog._bounds(rec)[0] > frame.MAX_PAYLOAD


@pytest.mark.parametrize(
    ("msg", "records", "page"),
    [
        ("ALARMS_R", "alarms", catalog.ALARMS_PAGE),
        ("STOP_R", "plan", catalog.TAPER_PAGE),
        ("TAPER_R", "plan", catalog.TAPER_PAGE),
    ],
)
def test_pages_are_as_long_as_max_payload_allows(msg, records, page):
    fields = catalog.FIELDS[catalog.ID[msg]]
    (rec,) = [f[3] for f in fields if f[0] == records]
    largest = catalog.BOUNDS[catalog.ID[msg]][1]
    assert page >= 1 and largest <= frame.MAX_PAYLOAD
    assert largest + catalog._bounds(rec)[1] > frame.MAX_PAYLOAD  # one record more would not fit


def test_a_packed_page_fits_one_record_at_its_longest_and_a_full_page_at_its_shortest():
    # LOG_R is packed (catalog.PACKED), so the page test above excepts it: its bound is
    # MAX_PAYLOAD itself, one record always fits, and LOG_PAGE short ones do.
    (log_r,) = catalog.PACKED
    fields = catalog.FIELDS[log_r]
    (rec,) = [f[3] for f in fields if f[0] == "entries"]
    lo, hi = catalog.BOUNDS[log_r]
    assert hi == frame.MAX_PAYLOAD < catalog.ROOM[log_r]
    assert lo + catalog._bounds(rec)[1] <= frame.MAX_PAYLOAD
    assert lo + catalog.LOG_PAGE * catalog._bounds(rec)[0] <= frame.MAX_PAYLOAD
    too_many = {"oldest": 0, "next": 9, "entries": [_LONG_ENTRY] * 2}
    with pytest.raises(ValueError, match="at most 240"):
        messages.encode("LOG_R", too_many)


_LONG_ENTRY = {
    "seq": 1,
    "boot_id": 2,
    "at_ms": 3,
    "wall_ms": None,
    "ch": 1,
    "kind": "k" * 16,
    "code": 0,
    "text": "t" * catalog.TEXT_MAX,
}


def test_text_fits_whole_up_to_text_max():
    fields = {"code": 1, "message": "x" * catalog.TEXT_MAX}
    assert messages.decode(catalog.ERROR, messages.encode("ERROR", fields)) == fields


def test_longer_text_is_cut_at_a_character_boundary_and_says_so():
    fields = {"code": 1, "message": "é" * 61}  # 122 bytes, 120 allowed
    got = messages.decode(catalog.ERROR, messages.encode("ERROR", fields))["message"]
    assert got == "é" * 58 + "..."  # 116 + 3 bytes: a whole "é" does not fit the last one
    assert len(got.encode()) <= catalog.TEXT_MAX


@pytest.mark.parametrize(
    ("msg_id", "payload", "error"),
    [
        (catalog.ID["STATUS"], b"", "ends inside ch"),
        (catalog.ID["STATUS"], b"\x01\x02", "1 bytes left over"),
        (catalog.ID["ESTOP"], b"\x01\x05ab", "bad string length"),
        (catalog.ID["ESTOP"], b"\x01\x02\xff\xfe", "not UTF-8"),
        (catalog.ID["ESTOP"], b"\x01", "ends before reason"),
        (catalog.ID["TITRATE"], b"\x01\x01\x00\x00\x00\x00\x02", "bool is 2"),
        (catalog.ID["TITRATE"], b"\x01\x00\x00\x00\x80\x00\x00", "absent value"),
        (catalog.ID["STATUS_R"], b"\x01" + b"\x00" * 23 + b"\x11", "17 records"),
        (catalog.ID["AUTH"], bytes(15), "ends inside proof"),
        (catalog.ID["KEY"], bytes(33)[:32], "ends inside key"),
        (0x3F, b"", "unknown message id"),
    ],
)
def test_decode_refuses_malformed_payloads(msg_id, payload, error):
    with pytest.raises(ValueError, match=error):
        messages.decode(msg_id, payload)
