# The persistent event log (firmware/journal.py) and LOG served from it: power cuts
# (a journal opened again on the same store), torn and damaged records, rotation,
# link-noise coalescing, packed pages across boots, any u32 as LOG's first.
# Portable: the same tests run on MicroPython (tests/mp/runner.py).
from boards import emulator as board
from firmware import main as firmware_main
from firmware.eventlog import EventLog
from firmware.journal import SEGMENTS, Journal
from protocol import catalog, reasons
from protocol.frame import MAX_PAYLOAD
from tests.portable.coreview import page as log_page
from tests.portable.coreview import since
from tests.portable.shellkit import NOREPI, Host, Store, ports


def _journal(store, boot_id=7, segment_bytes=16_384):
    return Journal(store, boot_id, segment_bytes)


def _fill(journal, n, start=0, log=None):
    # the core's RAM log feeding the journal; pass one along to feed it again later
    if log is None:
        log = EventLog(8)
    for i in range(start, start + n):
        log.add(1000 * i, 1, "decision", "ok", "entry %d" % i)
        journal.drain(log)


def _all(journal, first=0):
    out = []
    while True:
        page, nxt = log_page(journal, first, MAX_PAYLOAD, catalog.LOG_PAGE)
        out += page
        if not page:
            return out
        first = nxt


def _texts(entries):
    return [e["text"] for e in entries]


def test_entries_survive_a_power_cut_and_seq_continues():
    store = Store()
    _fill(_journal(store, 1), 5)
    again = _journal(store, 2)  # the next boot: a new journal on the same store
    assert again.next_seq == 5
    _fill(again, 2, start=5)
    got = _all(_journal(store, 3))
    assert [e["seq"] for e in got] == list(range(7))
    assert [e["boot_id"] for e in got] == [1] * 5 + [2] * 2
    assert got[6] == {
        "seq": 6,
        "boot_id": 2,
        "at_ms": 6000,
        "wall_ms": None,
        "ch": 1,
        "kind": "decision",
        "code": reasons.number("ok"),
        "text": "entry 6",
    }


def test_a_torn_last_record_drops_only_that_record():
    store = Store()
    _fill(_journal(store), 3)
    whole = store.files[SEGMENTS[0]]
    last = len(whole) - _record_start(whole, 2)
    for k in range(1, last + 1):
        torn = Store()
        torn.files[SEGMENTS[0]] = whole[: len(whole) - k]
        j = _journal(torn)
        assert _texts(_all(j)) == ["entry 0", "entry 1"], k
        assert (j.next_seq, j.damaged) == (2, 0), k
        # the next boot writes after the torn bytes: they become a damaged stretch
        _fill(j, 1, start=9)
        j = _journal(torn)
        assert _texts(_all(j)) == ["entry 0", "entry 1", "entry 9"], k
        assert j.damaged == (1 if k < last else 0), k  # k == last: no torn bytes left


def _record_start(segment, index):
    pos = 0
    for _ in range(index):
        pos += segment[pos + 1] + 6  # magic, len, the len bytes, CRC
    return pos


def test_a_damaged_record_in_the_middle_is_skipped_and_counted():
    store = Store()
    _fill(_journal(store), 4)
    data = bytearray(store.files[SEGMENTS[0]])
    data[_record_start(data, 1) + 20] ^= 0x10
    store.files[SEGMENTS[0]] = bytes(data)
    j = _journal(store)
    assert _texts(_all(j)) == ["entry 0", "entry 2", "entry 3"]
    assert j.damaged == 1 and j.next_seq == 4
    data[_record_start(data, 2) + 1] = 0xFF  # a length past any record: resync
    store.files[SEGMENTS[0]] = bytes(data)
    assert _texts(_all(_journal(store))) == ["entry 0", "entry 3"]


def test_rotation_keeps_the_bound_and_the_newest_entries():
    store = Store()
    j = _journal(store, segment_bytes=400)
    log = EventLog(8)
    for n in range(1, 120):
        _fill(j, 1, start=n - 1, log=log)
        sizes = [store.size(name) or 0 for name in SEGMENTS]
        assert max(sizes) <= 400, (n, sizes)
        got = _all(j)
        assert got[-1]["seq"] == n - 1 and got[0]["seq"] == j.oldest
        assert [e["seq"] for e in got] == list(range(j.oldest, n))  # nothing between lost
    assert j.oldest > 100  # the oldest went
    assert len(got) >= 400 // 60  # at least a whole segment of ~60-byte records kept
    again = _journal(store)  # and a boot after rotations reads the same
    assert (again.oldest, again.next_seq, _all(again)) == (j.oldest, j.next_seq, got)


def test_link_noise_is_coalesced_and_never_pushes_out_a_decision():
    store = Store()
    j = _journal(store, segment_bytes=2048)
    log = EventLog(128)
    log.add(5, 1, "start", "received", "start norepinephrine 0.1 mcg/kg/min")
    log.add(5, 1, "decision", "ok", "START accepted")
    j.drain(log)
    for i in range(80):
        log.add(10_000 * i, 0, "alarm", "link_lost", "high #%d: host link silent" % i)
        log.add(10_000 * i + 5, 0, "input", "link_back", "host link back")
        j.drain(log)
    log.add(900_000, 1, "rate", "rate_changed", "26.25 mL/h -> 0 mL/h")
    j.drain(log)
    got = _all(j)
    assert [e["kind"] for e in got] == ["start", "decision", "alarm", "input", "input", "rate"]
    assert got[1]["text"] == "START accepted"
    # the run's last entry (a link_back), saying how many were left out
    held = got[4]
    assert (held["code"], held["at_ms"]) == (reasons.number("link_back"), 790_005)
    assert "158 more" in held["text"]
    # the next run starts afresh: its first pair is kept again
    log.add(1_000_000, 0, "alarm", "link_lost", "high #99: host link silent")
    j.drain(log)
    assert _all(j)[-1]["code"] == reasons.number("link_lost")


def test_seventy_link_drops_leave_the_start_decision_in_the_log():
    # Through the shell: a host that polls only now and then, 70 times over.
    p = ports()
    sh = firmware_main.build(board, p, 0x51)
    sh.begin()
    host = Host(sh, p)
    host.hello()
    assert host.request("START", NOREPI)[0] == "START_R"
    for _ in range(70):
        p["clock"].advance(board.LINK_TIMEOUT_MS + 1000)
        sh.step()
        host.request("HEARTBEAT", {})
    first = 0
    decisions = []
    while True:
        name, r = host.request("LOG", {"first": first})
        assert name == "LOG_R"
        decisions += [e["text"] for e in r["entries"] if e["kind"] == "decision"]
        if r["next"] == first:
            break
        first = r["next"]
    assert decisions and decisions[0].startswith("started norepinephrine"), decisions
    assert sh.journal.oldest == 0


def test_log_pages_are_packed_and_read_across_boots_in_order():
    store = Store()
    boots = (0x1111, 0x2222, 0x3333)
    for boot_id in boots:  # each boot: power on, a command or two, power cut
        p = ports(store)
        sh = firmware_main.build(board, p, boot_id)
        sh.begin()
        host = Host(sh, p)
        host.hello()
        host.request("START", NOREPI)
        host.request("TITRATE", {"ch": 1, "dose": 110000, "unit": "mcg/kg/min", "override": True})
    first = 0
    seen = []
    pages = 0
    while True:
        name, r = host.request("LOG", {"first": first})
        assert name == "LOG_R" and r["oldest"] == 0
        if r["next"] == first:
            assert r["entries"] == []
            break
        assert 1 <= len(r["entries"]) <= catalog.LOG_PAGE
        seen += r["entries"]
        pages += 1
        first = r["next"]
    assert [e["seq"] for e in seen] == list(range(len(seen)))
    assert len(seen) > 2 * pages  # many entries per page, not one
    ids = [e["boot_id"] for e in seen]
    assert [b for i, b in enumerate(ids) if i == 0 or ids[i - 1] != b] == list(boots)
    assert [e["kind"] for e in seen].count("titrate") == 3


def test_a_page_fits_max_payload_with_entries_of_the_longest_text():
    store = Store()
    j = _journal(store)
    log = EventLog(4)
    for i in range(3):
        log.add(i, 2, "emergency_stop", "received", "x" * 120)
        j.drain(log)
    page, nxt = log_page(j, 0, MAX_PAYLOAD - 9, catalog.LOG_PAGE)
    assert len(page) == 1 and nxt == 1  # one full entry is 162 bytes, two do not fit
    assert page[0]["text"] == "x" * 120


def test_any_u32_first_is_served_without_an_exception():
    # Finding 2: 2**31 raised OverflowError on MicroPython (range() past a small int).
    p = ports()
    sh = firmware_main.build(board, p, 5)
    sh.begin()
    host = Host(sh, p)
    host.hello()
    host.request("START", NOREPI)
    held = sh.core.log.next_seq
    for first in (2**30 - 1, 2**30, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1):
        assert host.request("LOG", {"first": first}) == (
            "LOG_R",
            {"oldest": 0, "next": first, "entries": []},
        ), first
    assert since(sh.core.log, 2**31) == [] and since(sh.core.log, 2**32 - 1) == []
    assert len(since(sh.core.log, 0)) == held


def test_wall_time_is_uptime_plus_the_offset_a_host_gave():
    store = Store()
    j = _journal(store)
    log = EventLog(8)
    log.add(1000, 0, "input", "restored", "before any host")
    j.drain(log)
    j.set_wall(1_764_580_000_000 - 2000)  # a HELLO at uptime 2000 said this wall time
    log.add(3000, 1, "decision", "ok", "after")
    j.drain(log)
    got = _all(j)
    assert [e["wall_ms"] for e in got] == [None, 1_764_580_001_000]


class _CountingStore(Store):
    # appends counted; `failing` of them (counting down) raise as a full flash would
    def __init__(self):
        Store.__init__(self)
        self.appends = 0
        self.failing = 0

    def append(self, name, data):
        if self.failing:
            self.failing -= 1
            raise OSError(28, "no space left on device")
        self.appends += 1
        Store.append(self, name, data)


def test_one_drain_is_one_append_however_many_entries():
    # One commit of the medium per change: a board's flash programmed once, the
    # emulator's file fsynced once, not once per entry.
    store = _CountingStore()
    j = _journal(store)
    log = EventLog(16)
    for i in range(5):
        log.add(i, 1, "decision", "ok", "entry %d" % i)
    j.drain(log)
    assert store.appends == 1
    assert _texts(_all(j)) == ["entry %d" % i for i in range(5)]


def test_a_failed_append_keeps_every_entry_for_the_next_drain_once():
    store = _CountingStore()
    j = _journal(store, segment_bytes=600)  # rotations inside one drain too
    log = EventLog(64)
    n = 0
    for attempt in range(12):
        for _ in range(3):
            log.add(n, 1, "decision", "ok", "entry %d with some words of text" % n)
            n += 1
        store.failing = attempt % 3  # none, one, or two appends fail in this drain
        j.drain(log)
    store.failing = 0
    j.drain(log)
    got = _all(_journal(store))  # what a boot reads back
    seqs = [e["seq"] for e in got]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no duplicate
    texts = _texts(got)
    assert texts == ["entry %d with some words of text" % i for i in range(n - len(texts), n)]
    assert j.write_errors > 0


def test_the_core_s_ring_keeps_every_entry_of_a_store_outage_of_20_commands():
    # While the store fails, the core's RAM log (its default size: firmware/eventlog.py
    # says why) is all that holds the decisions: twenty commands' entries all reach the
    # journal once an append succeeds again, in order, none lost.
    from tests.portable.corekit import MIN, make_core, start_norepinephrine

    store = _CountingStore()
    j = _journal(store)
    core = make_core()
    start_norepinephrine(core)
    j.drain(core.log)
    store.failing = 1_000_000  # every append fails
    for i in range(20):
        core.titrate(1, 100000 + 10000 * (i % 2), "mcg/kg/min", (i + 1) * 10 * MIN)
        j.drain(core.log)
    assert core.log.next_seq >= 60 and j.write_errors == 20
    store.failing = 0
    j.drain(core.log)
    got = _all(_journal(store))
    assert [e["seq"] for e in got] == list(range(core.log.next_seq))
    assert _texts(got)[-3:] == [
        core.log.text(s) for s in range(core.log.next_seq - 3, core.log.next_seq)
    ]
