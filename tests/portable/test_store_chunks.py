# The state record written in chunks (issue 14): no buffer of the record's size held for
# the pump's life (it was 9,024 B for 2 channels), the record handed to the store through
# a buffer of 512 B at most (write, then append), still atomic (state.tmp renamed over
# state.json), and a store that fails at any chunk handled as a failed write is.
# Dummy ports, both interpreters.
import gc
import sys

from firmware import persist, recordtext
from firmware.alarms import HIGH, Alarm
from protocol.text import TEXT_MAX
from tests.portable import coreview
from tests.portable.coreview import status_of
from tests.portable.shellkit import Store, ports, shell
from tests.portable.test_store_shell import _ESTOP, RefStore, _listed, _running, _same

_MP = sys.implementation.name == "micropython"
_WIDE = sys.maxsize > 1 << 32


def _long(core, n=6):
    # n alarms of TEXT_MAX characters listed: a record of several chunks
    items = core._alarms.items
    for i in range(n):
        text = ("drill %d " % i) * 20
        items.append(Alarm(100 + i, 0, "clinician", "low", text[:TEXT_MAX], i, True))


class ChunkStore(Store):
    """A store that logs the record's pieces and fails (OSError, as a full flash does)
    at the fail-th append of state.tmp once failing is set, and on each one after."""

    def __init__(self):
        Store.__init__(self)
        self.pieces = []
        self.failing = False
        self.fail = 3
        self.appends = 0
        self.cut = None  # the files as they were when the fail-th append came

    def write(self, name, data):
        # a record's first piece (the record counter goes through state.tmp too)
        if name == "state.tmp" and data[: len(recordtext.MAGIC)] == recordtext.MAGIC:
            self.pieces = [len(data)]
            self.appends = 0
        Store.write(self, name, data)

    def append(self, name, data):
        if name == "state.tmp":
            self.pieces.append(len(data))
            self.appends += 1
            if self.failing and self.appends >= self.fail:
                if self.cut is None:
                    self.cut = dict(self.files)
                raise OSError(28, "no space left on device")
        Store.append(self, name, data)


def test_the_store_is_handed_the_record_in_pieces_of_512_bytes_at_most():
    # before: the whole record in one write (923 B for this one)
    store = ChunkStore()
    sh, p, host = _running(store)
    host.request("ESTOP", _ESTOP)
    _long(sh.core, 12)
    sh._save(sh.uptime_ms())
    record = store.files["state.json"]
    assert len(record) > 4 * 512 and len(store.pieces) >= 5, store.pieces
    assert max(store.pieces) <= 512 and sum(store.pieces) == len(record), store.pieces
    assert record[: len(recordtext.MAGIC)] == recordtext.MAGIC
    copied = Store()  # a board's boot on a copy of this store
    copied.files = dict(store.files)
    snapshot, uptime = persist.Record(copied).load()  # type: ignore[misc]
    assert _same(snapshot, coreview.snapshot(sh.core))
    assert uptime == sh.uptime_ms()


def test_a_store_that_fails_at_the_third_append_keeps_the_record_before_it():
    # handled as a failed write() is (shell._save_failed): degraded, store_failed raised,
    # the stop on the motor, retries; state.json the record from before the stop
    store = ChunkStore()
    sh, p, host = _running(store)
    _long(sh.core)
    sh._save(sh.uptime_ms())
    before = dict(store.files)
    running = coreview.snapshot(sh.core)
    assert running["channels"][0]["state"] == "running"
    store.failing = True
    name, fields = host.request("ESTOP", _ESTOP)
    assert name == "ESTOP_R", fields  # answered: degraded, not dead
    assert p["motors"][0].rate == 0
    (failed,) = _listed(sh, "store_failed")
    assert failed.priority == HIGH and failed.active and not _listed(sh, "internal_fault")
    assert store.appends >= 3 and store.cut is not None
    assert store.files["state.json"] == before["state.json"]  # never renamed over
    assert store.files["state.gen"] == before["state.gen"]
    # a reset now boots the record from before the stop, whole
    copied = Store()
    copied.files = dict(store.files)
    snapshot, _ = persist.Record(copied).load()  # type: ignore[misc]
    assert _same(snapshot, running)
    # the store heals: the retry saves the stop, the condition is over
    store.failing = False
    for _ in range(5):
        p["clock"].advance(1000)
        sh.step()
    assert not _listed(sh, "store_failed")[0].active
    sh = host = p = None  # a reset: this board's heap for the next boot
    gc.collect()
    sh2 = shell(ports(store))
    assert status_of(sh2.core, 1).state == "stopped" and sh2.core.rate(1) == 0


def test_a_power_cut_between_the_chunks_boots_the_record_before_them():
    # the store as it was when the third append came (a cut there): the previous record
    # whole, no store_lost, the channel resumed as it was
    store = ChunkStore()
    sh, p, host = _running(store)
    _long(sh.core)
    sh._save(sh.uptime_ms())
    store.failing = True
    host.request("ESTOP", _ESTOP)
    assert store.cut is not None
    cut = Store()
    cut.files = store.cut
    assert len(cut.files["state.tmp"]) < len(cut.files["state.json"])  # part written
    sh2 = shell(ports(cut))
    assert status_of(sh2.core, 1).state == "running"
    assert not [a for a in sh2.core.alarms() if a.code in ("store_lost", "store_failed")]


def test_a_record_holds_512_bytes_of_buffer_and_a_save_allocates_none():
    # before: 9,024 B made at boot for 2 channels (the largest record's text), or made at
    # the first save; on MicroPython the Record and its saves' views held, measured
    store = RefStore()
    sh, p, host = _running(store)
    _long(sh.core, 20)
    assert len(sh._record._text.buf) <= 512
    texts = ["x" * (TEXT_MAX - n) for n in range(40)]
    last = sh.core._alarms.items[-1]
    gc.collect()
    start = gc.mem_alloc() if _MP else 0  # pyright: ignore[reportAttributeAccessIssue]
    record = persist.Record(store)
    record.gen = sh._record.gen
    for uptime in range(40):  # records of every length: each chunk's view made
        record.save_core(sh.core, uptime)
        last.message = texts[uptime]
    gc.collect()
    held = (gc.mem_alloc() - start) if _MP else 0  # pyright: ignore[reportAttributeAccessIssue]
    assert len(record._text.buf) <= 512
    _, uptime = persist.Record(_copy(store)).load()  # type: ignore[misc]
    assert uptime == 39
    if _MP and _WIDE:
        # the buffer, the counter's, the views of the chunks' lengths, the object and
        # its attributes (1,568 B measured on the 64-bit unix port). Not on WebAssembly:
        # its gc.collect() inside a call collects nothing (the CRC's heap ints there)
        assert held <= 2048, held


def _copy(store):
    copied = Store()
    for name in ("state.json", "state.gen", "state.used"):
        if store.read(name) is not None:
            copied.files[name] = bytes(store.read(name))
    return copied


def test_an_int_of_any_size_is_written_as_its_decimal_text():
    # either side of the port's small ints (2**30 on 32 bits, 2**62 on 64), and past both
    for n in (
        0,
        7,
        -7,
        (1 << 30) - 1,
        1 << 30,
        -(1 << 30) - 1,
        (1 << 62) - 1,
        1 << 62,
        -(1 << 62) - 5,
        10**30,
        -(10**30),
    ):
        text = recordtext.Text()
        start = text.pos
        text.num(n)
        assert bytes(text.buf[start : text.pos]) == str(n).encode(), n
