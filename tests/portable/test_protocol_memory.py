# Allocation of the device's encode and decode path (issue 14), asserted on MicroPython
# only (gc.mem_alloc deltas; CPython checks the bytes alone): an answer or an event
# is written in place (messages.wire into a buffer the shell holds), a frame's tag is
# checked without copying it (auth.verify), a reason's number found without a dict
# (reasons.number), and each writes the same bytes as the host's to_wire().
import gc
import sys

from protocol import auth, catalog, frame, messages, reasons
from protocol.decoder import Decoder
from tests.portable.coreview import status_of
from tests.portable.shellkit import hello_fields

_MP = sys.implementation.name == "micropython"
_W64 = sys.maxsize > 1 << 32  # the 64-bit unix port (WebAssembly and a board: 32-bit)
KS = bytes(range(32))
OUT = memoryview(bytearray(frame.MAX_WIRE))
STATE = (1, "running", "norepinephrine", 50000, "mcg/kg/min", 5250000, 123456)
HEART = (123456, 77, 0)
TITRATE_R = (1, 60000, "mcg/kg/min", 6300000)
REFUSED = (24, "dose 2 mcg/kg/min above the hard max 1", 0, 1000000, "mcg/kg/min", None, 9)


def _alloc(fn):
    fn()
    gc.collect()
    before = gc.mem_alloc()
    fn()
    return gc.mem_alloc() - before


def _bound(label, fn, limit):
    if _MP:
        used = _alloc(fn)
        assert used <= limit, (label, used, limit)


def test_wire_is_to_wire():
    for name, values in (("EV_STATE", STATE), ("HEARTBEAT_R", HEART), ("REFUSED", REFUSED)):
        got = bytes(messages.wire(OUT, name, 3, values))
        assert got == messages.to_wire(name, 3, values), name
        got = bytes(messages.wire(OUT, name, 9, values, 0x5A3C, KS, 7, auth.DEVICE))
        want = messages.to_wire(name, 9, values, sid=0x5A3C, key=KS, ctr=7, sender=auth.DEVICE)
        assert got == want, name


def test_event_encodes_in_place():
    # Untagged EV_STATE: 3 strings encoded and the wire's memoryview (was 1536 B).
    _bound("EV_STATE", lambda: messages.wire(OUT, "EV_STATE", 3, STATE), 320)
    _bound("HEARTBEAT_R", lambda: messages.wire(OUT, "HEARTBEAT_R", 3, HEART), 256)


def test_tagged_answer_encodes_in_place():
    # The HMAC's two sha256 objects and two digests are most of it (was 1664-1792 B).
    def answer():
        messages.wire(OUT, "TITRATE_R", 9, TITRATE_R, 0x5A3C, KS, 7, auth.DEVICE)

    # One view of the signed bytes for both the tag and the CRC (round 3: 576 -> 512 B on
    # the 64-bit unix port, 480 -> 448 on WebAssembly): the HMAC's 448 (384) and the wire's.
    _bound("TITRATE_R tagged", answer, 512 if _W64 else 448)


def test_tag_checked_without_copies():
    wire = messages.to_wire("TITRATE", 7, (1, 60000, "mcg/kg/min", False), sid=9, key=KS, ctr=5)
    f = Decoder().decode(wire)[0]
    assert auth.verify(KS, auth.HOST, f.signed, f.tag)
    assert not auth.verify(KS, auth.DEVICE, f.signed, f.tag)
    _bound("tag check", lambda: auth.verify(KS, auth.HOST, f.signed, f.tag), 480)


def test_reason_number_allocates_nothing():
    assert reasons.number("above_hard_max") == 24
    assert reasons.number("library_refused") == 80
    assert reasons.number("hard_max") == reasons.UNKNOWN
    _bound("reasons.number", lambda: reasons.number("library_refused"), 0)


def test_catalog_compact_lookups():
    assert catalog.msg_id("LOG_R") == 0x8A and catalog.name(0x8A) == "LOG_R"
    assert catalog.index(0x42) == -1
    assert catalog.may(catalog.msg_id("START"), 2) and not catalog.may(catalog.msg_id("START"), 1)
    _bound("catalog.may", lambda: catalog.may(0x04, 2), 0)


def test_request_decoded_without_a_dict():
    # STOP's and TITRATE's fields into one reused list (was a dict each: 224, 704 B)
    fields = [None] * 9
    stop = messages.encode("STOP", (1,))
    messages.decode_into(0x06, stop, fields)
    assert fields[0] == 1
    titrate = messages.encode("TITRATE", (2, -5, "mL/h", True))
    messages.decode_into(0x05, titrate, fields)
    assert fields[:4] == [2, -5, "mL/h", True]
    _bound("STOP", lambda: messages.decode_into(0x06, stop, fields), 0)
    _bound("TITRATE", lambda: messages.decode_into(0x05, titrate, fields), 128)


def test_frame_viewed_in_place():
    # The decoder's view(): one Frame, memoryviews of its buffer (take(): 480 B)
    wire = messages.to_wire("TITRATE", 7, (1, 60000, "mcg/kg/min", False), sid=9, key=KS, ctr=5)
    dec = Decoder()

    def view():
        dec.feed(wire)
        return dec.view()

    f = view()
    assert (f.msg_id, f.seq, f.sid, f.ctr) == (0x05, 7, 9, 5)
    assert bytes(f.payload) == messages.encode("TITRATE", (1, 60000, "mcg/kg/min", False))
    assert auth.verify(KS, auth.HOST, f.signed, f.tag)
    # its tag copied into the decoder's bytearray, not a view (round 3: 128 -> 96 B on
    # the 64-bit unix port, 160 -> 144 on WebAssembly, whose CRC and ctr are heap ints)
    _bound("view", view, 96 if _W64 else 144)


def _import_cost(name):
    # The heap a fresh import of module name holds (its qstrs already interned).
    old = sys.modules.pop(name)
    try:
        gc.collect()
        before = gc.mem_alloc()
        __import__(name)
        gc.collect()
        return gc.mem_alloc() - before
    finally:
        sys.modules[name] = old


def test_catalog_and_reasons_are_compact():
    # The catalog was a nested tuple table and its dicts (23 KB held, re-imported),
    # reasons a table of pairs and two dicts (8 KB): now packed bytes and one str each.
    if _MP:
        assert _import_cost("protocol.catalog") <= 10_000
        assert _import_cost("protocol.reasons") <= 2_500


# -- the shell's answers and events (issue 14, round 3) ---------------------------------


class _Null:
    # A link that keeps nothing, a record that saves nothing: what is left is the
    # change detection's and the event's (the save is test_store_shell's)
    def write(self, data):
        pass

    def save_core(self, core, now):
        pass


def _running():
    from tests.portable.shellkit import NOREPI, Host, ports, shell

    p = ports()
    sh = shell(p)
    sh.begin()
    host = Host(sh, p)
    host.hello()
    name, fields = host.request("START", NOREPI)
    assert name == "START_R", fields
    sh.core.device_alarm("internal_fault", "drill", sh.uptime_ms())  # one alarm listed
    return sh, host


def test_status_reads_the_channel_in_place():
    # STATUS built a ChannelStatus (17 attributes) and a list of (id,) tuples per
    # request (736 B more than now on the 64-bit unix port): now the answer's tuple alone.
    from firmware import handlers

    sh, host = _running()
    sh.core.device_alarm("internal_fault", "drill", sh.uptime_ms())
    name, got = host.request("STATUS", {"ch": 1})
    assert name == "STATUS_R", got
    st = status_of(sh.core, 1)
    assert got["alarms"] == [{"id": a.id} for a in sh.core.alarms() if a.ch == 1]
    for key in ("state", "drug", "dose", "rate", "volume_left", "conc", "weight", "volume"):
        assert got[key] == getattr(st, key), key
    # the bare ids encode as the records of one field would
    name, reply = handlers.status(sh, [1], sh.uptime_ms())
    records = list(reply)
    records[9] = [(i,) for i in reply[9]]
    assert messages.encode(name, reply) == messages.encode(name, tuple(records))
    now = sh.uptime_ms()
    _bound("STATUS", lambda: handlers.status(sh, [1], now), 256)
    _bound("HEARTBEAT", lambda: handlers.heartbeat(sh, None, now), 192)


def test_state_event_fields_written_in_place():
    # EV_STATE's fields were a dict per change (384 B on the 64-bit unix port)
    sh, host = _running()
    sh._link = sh._record = _Null()
    now = sh.uptime_ms()

    def change():
        sh._sent[0] = None  # channel 1's state taken as not yet sent
        sh._changed(now)

    _bound("EV_STATE change", change, 160)


def test_the_wire_modules_hold_the_device_code_alone():
    # The host's encode, decode, to_wire and frame.encode (codec.py, read through
    # messages' and frame's __getattr__) were in the board's modules: they held 7.3 and
    # 1.3 KB on WebAssembly (7.6, 1.4 compiled from source on the unix port).
    assert messages.encode("STOP", (1,)) == b"\x01" and callable(frame.encode)
    if _MP:
        held = (_import_cost("protocol.messages"), _import_cost("protocol.frame"))
        assert held[0] <= 7_000 and held[1] <= 700, held


def test_strings_packed_without_bytes():
    # Each STR or TEXT field was str.encode()d into a bytes first (48 B each on the
    # 64-bit unix port); on MicroPython an ASCII one is packed from the str itself.
    for values in (STATE, (1, "tapering", "µ-drug", 5, "µg/min", 0, 1), (2, "", "", 0, "", 0, 2)):
        got = bytes(messages.wire(OUT, "EV_STATE", 3, values))
        assert got == messages.to_wire("EV_STATE", 3, values), values
    cut = (24, "é" * 150, None, None, "", None, 9)  # a TEXT cut at a character
    assert bytes(messages.wire(OUT, "REFUSED", 3, cut)) == messages.to_wire("REFUSED", 3, cut)
    # 3 strings: only the CRC's and the wire's memoryviews are left
    _bound("EV_STATE", lambda: messages.wire(OUT, "EV_STATE", 3, STATE), 64)


def test_a_hello_of_this_protocol_and_schema_is_told_without_a_tuple():
    # before: its (protocol, schema) and the device's were two tuples, the schema a heap
    # int on a 32-bit board (64 B of each HELLO on the 64-bit unix port)
    ours = messages.encode("HELLO", hello_fields())
    assert messages.hello_version(ours) is None
    other = bytes([catalog.PROTOCOL_VERSION + 1]) + ours[1:]
    assert messages.hello_version(other) == (catalog.PROTOCOL_VERSION + 1, catalog.SCHEMA_HASH)
    _bound("hello_version", lambda: messages.hello_version(ours), 0)
