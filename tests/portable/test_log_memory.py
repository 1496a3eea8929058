# LOG and ALARMS answered allocating little (issue 14): a LOG page is encoded from the
# journal's records straight into the wire (no dict per entry, no bytes or str per
# record read), a cursor that does not match costs a rescan's time, never memory in
# proportion to the journal; ALARMS and EV_ALARM write an alarm's fields into a record
# made once. Asserted on MicroPython only (gc.mem_alloc deltas); on CPython the tests
# check the bytes alone: each answer is what the host's to_wire() makes of the same
# entries (journal.page: LOG_R's fields by name).
import sys

from firmware import handlers
from firmware.alarms import Alarms
from firmware.eventlog import EventLog
from firmware.journal import Journal
from protocol import catalog, frame, messages, reasons
from protocol.decoder import Decoder
from tests.portable.test_core_memory import _Store
from tests.portable.test_protocol_memory import _alloc

_MP = sys.implementation.name == "micropython"
OUT = memoryview(bytearray(frame.MAX_WIRE))
# What wire() itself makes besides the payload (the memoryview of the wire it returns)
# and the handler's answer; none of it grows with the entries or the journal.
LOG_MAX = 96
ALARMS_MAX = 128
ALARM_FIELDS_MAX = 0


class _Shell:
    # what handlers.log and handlers.alarms read of the shell
    def __init__(self, journal=None, core=None):
        self.journal = journal
        self.core = core


class _Core:
    def __init__(self, alarms):
        self._alarms = alarms

    def alarms(self):
        return list(self._alarms.items)

    def listed(self):
        return self._alarms.items


_TEXTS = (
    "start norepinephrine 0.1 mcg/kg/min",
    "ok: rate 2.625 mL/h",
    "caf\u00e9 \u00b5g \u2014 a text that is not ASCII",
    "x" * 120,
    "y" * 119 + "\u00e9",  # 121 bytes: cut at the character
)


def _journal(n, segment_bytes=16_384, wall=None):
    store = _Store(segment_bytes + 256)
    j = Journal(store, 7, segment_bytes)
    if wall is not None:
        j.set_wall(wall)
    log = EventLog(8)
    for i in range(n):
        kind = "decision" if i % 3 else "emergency_stop"  # 8 and 14 bytes
        log.add(1000 * i, i % 3, kind, "ok", "%d %s" % (i, _TEXTS[i % len(_TEXTS)]))
        j.drain(log)
    return store, j


F = [0]  # the request's fields, as the shell's reused list


def _log_wire(sh, first):
    F[0] = first
    name, fields = handlers.log(sh, F, 0)
    return messages.wire(OUT, name, 3, fields)


def _cut(text, most):
    # as the journal keeps a text: UTF-8 cut to most bytes at a character
    b = text.encode()
    if len(b) <= most:
        return text
    while b[most] & 0xC0 == 0x80:
        most -= 1
    return str(b[:most], "utf-8")


def _entry(i, wall):
    # entry i as _journal() logged it, as LOG_R's fields
    kind = "decision" if i % 3 else "emergency_stop"
    return (i, 7, 1000 * i, None if wall is None else 1000 * i + wall, i % 3, kind,
            reasons.number("ok"), _cut("%d %s" % (i, _TEXTS[i % len(_TEXTS)]), 120))  # fmt: skip


def _want(j, n, wall, first):
    # LOG_R as the host's encoder makes it of the entries with seq >= first the journal
    # still holds, packed by their bytes on the wire (at least one, at most LOG_PAGE)
    room = frame.MAX_PAYLOAD - 9
    page = []
    nxt = max(first, j.oldest)
    for i in range(max(first, j.oldest), n):
        e = _entry(i, wall)
        cost = 28 + len(e[5].encode()) + len(e[7].encode())
        if page and (len(page) >= catalog.LOG_PAGE or cost > room):
            break
        page.append(e)
        room -= cost
        nxt = i + 1
    return messages.to_wire("LOG_R", 3, (j.oldest, nxt, page))


def test_a_log_page_is_the_bytes_the_host_encoder_makes_of_its_entries():
    for wall in (None, 1_700_000_000_000):
        store, j = _journal(40, segment_bytes=2048, wall=wall)
        sh = _Shell(j)
        first = 0
        pages = 0
        while True:
            got = bytes(_log_wire(sh, first))
            assert got == _want(j, 40, wall, first), (wall, first)
            d = messages.decode(catalog.ID["LOG_R"], Decoder().decode(got)[0].payload)
            if not d["entries"]:
                break
            first = d["next"]
            pages += 1
        assert pages > 10, pages
        # every first, out of order, and any u32: a page packed by its bytes (its texts'
        # characters counted instead let a page of non-ASCII texts pass MAX_PAYLOAD)
        for first in list(range(40, -1, -1)) + [1000, 0xFFFFFFFF]:
            assert bytes(_log_wire(sh, first)) == _want(j, 40, wall, first), first


def test_a_log_page_allocates_no_more_than_its_wire_view():
    if not _MP:
        return
    store, j = _journal(30)
    sh = _Shell(j)
    used = _alloc(lambda: _log_wire(sh, 0))
    assert used <= LOG_MAX, used
    used = _alloc(lambda: _log_wire(sh, 5))
    assert used <= LOG_MAX, used


def test_a_cursor_that_does_not_match_rescans_without_allocating_per_record():
    # A page whose first is not where the last page ended reads the journal again from
    # a segment's start: 52 KB allocated once on a board for it (a dict, two bytes and
    # two strs, tuples per record passed over). Both segments full here.
    if not _MP:
        return
    store, j = _journal(400, segment_bytes=4096)
    assert store.sizes["journal.0"] and store.sizes["journal.1"]
    sh = _Shell(j)
    late = j.next_seq - 3
    _log_wire(sh, late)  # the cursor after the newest entries
    # then the oldest the journal holds, and one in the middle: no cursor matches
    for first in (j.oldest, j.oldest + 60, late - 1):
        used = _alloc(lambda: _log_wire(sh, first))  # noqa: B023 (called at once)
        assert used <= LOG_MAX, (first, used)


def _alarms(n):
    a = Alarms()
    for i in range(n):
        a.raise_(i % 3, "internal_fault" if i % 2 else "near_empty", "high", "drill %d" % i, i)
    return a


def test_an_alarms_page_is_the_bytes_of_its_alarm():
    a = _alarms(4)
    sh = _Shell(core=_Core(a))
    for first in (0, 1, 3, 4, 200):
        name, fields = handlers.alarms(sh, [first], 0)
        got = bytes(messages.wire(OUT, name, 3, fields))
        page = [
            (x.id, x.ch, reasons.number(x.code), catalog.PRIORITY[x.priority], x.acked,
             x.at_ms, x.message)
            for x in a.items[first : first + catalog.ALARMS_PAGE]
        ]  # fmt: skip
        assert got == messages.to_wire("ALARMS_R", 3, (4, page)), first


def test_alarms_and_an_alarm_event_allocate_little():
    if not _MP:
        return
    a = _alarms(4)
    sh = _Shell(core=_Core(a))

    def page():
        F[0] = 2
        name, fields = handlers.alarms(sh, F, 0)
        messages.wire(OUT, name, 3, fields)

    used = _alloc(page)
    assert used <= ALARMS_MAX, used
    alarm = a.items[1]
    used = _alloc(lambda: handlers.alarm_fields(alarm))
    assert used <= ALARM_FIELDS_MAX, used


class _Counting(_Store):
    # a board's store allocates per read (FileStore: a file opened, about 230 B on the
    # 64-bit unix port): reads counted
    reads = 0

    def readinto(self, name, offset, buf):
        self.reads += 1
        return _Store.readinto(self, name, offset, buf)


def test_a_page_reads_the_store_a_window_at_a_time_not_a_record_at_a_time():
    store, _ = _journal(200, segment_bytes=4096)
    counting = _Counting(4096 + 256)
    counting.data, counting.sizes = store.data, store.sizes
    j = Journal(counting, 7, 4096)
    sh = _Shell(j)
    first = j.oldest
    for _ in range(10):  # pages in order: each where the last ended
        counting.reads = 0
        wire = bytes(_log_wire(sh, first))
        d = messages.decode(catalog.ID["LOG_R"], Decoder().decode(wire)[0].payload)
        assert len(d["entries"]) >= 1 and counting.reads <= 2, (first, counting.reads)
        first = d["next"]
    counting.reads = 0  # a rescan, both segments: a read per window of 512 B
    _log_wire(sh, j.next_seq - 1)
    held = (store.sizes["journal.0"] or 0) + (store.sizes["journal.1"] or 0)
    assert counting.reads <= held // (512 - 170) + 2, (counting.reads, held)


def test_the_journal_s_page_bound_is_the_catalog_s():
    if _MP:
        return  # a const(): no name on MicroPython
    from firmware import journal

    assert journal._LOG_PAGE == catalog.LOG_PAGE  # a literal there: no name interned
