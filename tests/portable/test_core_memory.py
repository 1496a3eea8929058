# Heap allocated by the safety core per command (issue 14: a command allocates <= 1 KB
# in all, the core's part of it much less): measured on MicroPython with gc.mem_alloc()
# deltas, never with time. On CPython these tests pass without measuring (its heap is
# not the board's). An accepted command keeps its log entries as codes and numbers
# (firmware/eventlog.py): no text, dict, list or tuple is made, the Result and what the
# library's unit conversions return aside; a taper's stop makes its plan (the reply
# carries it).
import gc
import sys

from tests.portable.corekit import MIN, M, library, make_core
from tests.portable.coreview import status_of

_MP = sys.implementation.name == "micropython"
T0 = 2**31 + 5  # an uptime past a small int on a 32-bit board, as the shell's is
# A 64-bit port's small ints hold the uptime and every dose and rate; a 32-bit one's
# (the WebAssembly build, a Pico) end at 2**30, so its uptime and the library's unit
# arithmetic (units.rate_for: dose x weight x 60 / conc) make long ints as they go.
# Measured: start and titrate 224 and 192 B (64-bit), 304 and 352 (WebAssembly; 1072
# and 992 before the units' sizes entered the products as their ratio only)
_WIDE = sys.maxsize > 2**32
START_MAX = 384 if _WIDE else 512
TITRATE_MAX = 384 if _WIDE else 512
STOP_MAX = 384 if _WIDE else 256
TAPER_STOP_MAX = 640 if _WIDE else 768  # its plan: (at_ms, dose) steps for the reply
DRAIN_MAX = 256  # the journal writing a command's three entries
# The Alarm, its message and the Result (480 B and 304 B measured); the Result and the
# two texts of an ack, as received and its decision (416, 256)
ESTOP_MAX = 640 if _WIDE else 384
# A handover, its two log entries kept as codes and numbers: the Result and what the
# new channel's program makes (192 B measured on both; 1312 B while its texts were
# made as it ran)
HANDOVER_MAX = 384 if _WIDE else 512
ACK_MAX = 512 if _WIDE else 320
# The core made at boot, its log ring most of it (64 entries of 10 references: 5 KB on
# a 64-bit port, 2.5 KB on 32 bits; 128 of them made it 12 KB and 6 KB)
CORE_MAX = 8192 if _WIDE else 4096


class _Store:
    # segments in buffers made once (room bytes each), copied into byte by byte: the
    # journal's bytes only
    def __init__(self, room=4096):
        self.data = {"journal.0": bytearray(room), "journal.1": bytearray(room)}
        self.sizes = {"journal.0": None, "journal.1": None}

    def size(self, name):
        return self.sizes[name]

    def readinto(self, name, offset, buf):
        size = self.sizes[name]
        if size is None:
            return None
        n = max(0, min(len(buf), size - offset))
        for i in range(n):
            buf[i] = self.data[name][offset + i]
        return n

    def append(self, name, data):
        at = self.sizes[name] or 0
        segment = self.data[name]
        for i in range(len(data)):
            segment[at + i] = data[i]
        self.sizes[name] = at + len(data)

    def remove(self, name):
        self.sizes[name] = None


def _alloc(fn):
    gc.collect()
    before = gc.mem_alloc()
    result = fn()
    return gc.mem_alloc() - before, result


def _norepi(core, ch, now):
    return core.start(
        ch, "norepinephrine", 100000, "mcg/kg/min", now,
        weight=70 * M, conc=16 * M, conc_unit="mcg/mL", volume=50 * M,
    )  # fmt: skip


def _dobutamine(core, ch, now):
    return core.start(
        ch, "dobutamine", 2500000, "mcg/kg/min", now,
        weight=80 * M, conc=1 * M, conc_unit="mg/mL", volume=50 * M,
    )  # fmt: skip


def _session(core, start, t):
    # start, titrate, stop on channel 2: each (bytes, Result)
    s = _alloc(lambda: start(core, 2, t))
    dose = status_of(core, 2).dose + 10000
    ti = _alloc(lambda: core.titrate(2, dose, "mcg/kg/min", t + 16 * MIN))
    st = _alloc(lambda: core.stop(2, t + 32 * MIN))
    return s, ti, st


def _until_stopped(core, t):
    while status_of(core, 2).state == "tapering":
        t += 10 * MIN
        core.tick(t)
    return t


def test_the_core_made_at_boot_is_small():
    if not _MP:
        return
    lib = library()
    size, core = _alloc(lambda: make_core_of(lib))
    assert core.log.size == 64
    assert size <= CORE_MAX, size


def make_core_of(lib):
    from firmware.core import SafetyCore

    return SafetyCore(lib)


def test_start_titrate_and_stop_allocate_little():
    if not _MP:
        return
    core = make_core()
    t = T0
    for _ in range(3):  # warm, and round the log ring past its first lap
        _session(core, _dobutamine, t)
        t += 2 * 60 * MIN
    (s, rs), (ti, rt), (st, rst) = _session(core, _dobutamine, t)
    assert (rs.code, rt.code, rst.code) == ("ok", "ok", "stopped"), (rs, rt, rst)
    assert s <= START_MAX, s
    assert ti <= TITRATE_MAX, ti
    assert st <= STOP_MAX, st


def test_a_taper_drug_s_start_titrate_and_stop_allocate_little():
    if not _MP:
        return
    core = make_core(log_size=16)
    t = T0
    for _ in range(3):
        _session(core, _norepi, t)
        t = _until_stopped(core, t + 32 * MIN) + MIN
    (s, rs), (ti, rt), (st, rst) = _session(core, _norepi, t)
    assert (rs.code, rt.code, rst.code) == ("ok", "ok", "taper_started"), (rs, rt, rst)
    assert s <= START_MAX, s
    assert ti <= TITRATE_MAX, ti
    assert st <= TAPER_STOP_MAX, st


def _handover(core, frm, to, now):
    from firmware.handover import move

    return move(core, frm, to, "norepinephrine", 16 * M, "mcg/mL", 50 * M, None, now)


def test_a_handover_allocates_little():
    if not _MP:
        return
    core = make_core()
    t = T0
    assert _norepi(core, 1, t).ok
    sizes = []
    frm, to = 1, 2
    for _ in range(4):  # warm, and both ways
        t += MIN
        size, r = _alloc(lambda f=frm, o=to, at=t: _handover(core, f, o, at))
        assert r.ok, r.message
        sizes.append(size)
        frm, to = to, frm
    assert max(sizes[1:]) <= HANDOVER_MAX, sizes


def _estop_and_ack(core, t):
    # an emergency stop of a running norepinephrine, then the ack of its alarm: each
    # (bytes, Result)
    _norepi(core, 2, t)
    es = _alloc(lambda: core.emergency_stop(2, "air_in_line", t + MIN))
    alarm_id = core.alarms()[-1].id
    return es, _alloc(lambda: core.ack(alarm_id, t + MIN))


def test_an_emergency_stop_and_an_ack_allocate_little():
    # before: each made its texts as it went (the command as received, the alarm's
    # message piece by piece, its log entry, the decision): 1,696 and 672 B on the
    # 64-bit port. Now an emergency stop's one str made is the alarm's message (the
    # alarm keeps it), and an ack's texts are made without clipping what needs none
    if not _MP:
        return
    core = make_core()
    for i in range(3):  # warm, and round the log ring past its first lap
        _estop_and_ack(core, T0 + i * 2 * MIN)
    (es, r), (ack, a) = _estop_and_ack(core, T0 + 6 * MIN)
    assert (r.code, a.code) == ("emergency_stopped", "acked"), (r.code, a.code)
    assert es <= ESTOP_MAX, es
    assert ack <= ACK_MAX, ack


def test_the_journal_writes_a_command_s_entries_allocating_little():
    if not _MP:
        return
    from firmware.journal import Journal

    core = make_core()
    journal = Journal(_Store(), 7)
    t = T0
    for _ in range(3):
        _dobutamine(core, 2, t)
        journal.drain(core.log)
        core.stop(2, t + MIN)
        journal.drain(core.log)
        t += 2 * MIN
    _dobutamine(core, 2, t)  # received, rate changed, decided
    n, _ = _alloc(lambda: journal.drain(core.log))
    assert n <= DRAIN_MAX, n
    assert library().ok


def test_the_undo_is_kept_in_place_from_the_start_for_a_dozen_alarms():
    # before: keep()'s list grew at each new most alarms listed, in the running pump's
    # cut-up heap (190k, the soak's 8th hour: 512 B found no stretch; a MemoryError)
    if not _MP:
        return
    core = make_core()
    _norepi(core, 1, T0)
    _dobutamine(core, 2, T0)
    for i in range(12):  # any device alarm: one listed per code
        core.device_alarm("store_failed_%d" % i, "a device alarm", T0)
    used, kept = _alloc(core.keep)
    assert kept is core.keep() and used == 0, used
