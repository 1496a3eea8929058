# The shell's long service (issue 10, findings 1, 3 and 8; the turn's safety net):
# alarm ids that wrap for the wire, a failing store that undoes nothing, an exception in
# a turn that stops nothing, an uptime past 2**30 ms. Dummy ports, both interpreters.
import gc
import json
import sys
from binascii import crc32

from firmware import handlers, persist, recordtext, resume
from firmware.alarms import HIGH, Alarm
from protocol import catalog
from protocol.text import TEXT_MAX
from tests.portable import coreview
from tests.portable.coreview import status_of
from tests.portable.shellkit import NOREPI, Host, Store, ports, shell

_ESTOP = {"ch": 1, "reason": "extravasation"}
_MIN = 60000


def _running(store=None, start=0):
    p = ports(store, start)
    sh = shell(p)
    sh.begin()
    host = Host(sh, p)
    host.hello(supervise_s=1)  # a supervising host: its link's deadline is a tick due
    name, fields = host.request("START", NOREPI)
    assert name == "START_R", fields
    return sh, p, host


def _listed(sh, code):
    return [a for a in sh.core.alarms() if a.code == code]


def _idle(sh, p, ms, step=1000):
    for _ in range(ms // step):
        p["clock"].advance(step)
        sh.step()


# -- alarm ids stay on the wire's 16 bits ---------------------------------------------


def test_after_65536_alarms_the_shell_still_encodes_and_serves():
    sh, p, host = _running()
    alarms = sh.core._alarms
    for i in range(0x10000 + 5):  # each replaces the last: a new id every time
        alarms.raise_(0, "clinician", HIGH, "drill %d" % (i & 1), 0, False)
    assert all(1 <= a.id <= 0xFFFF for a in alarms.items)
    name, fields = host.request("ESTOP", _ESTOP)  # raises one more, sent as an event
    assert name == "ESTOP_R", fields
    name, fields = host.request("ALARMS", {"first": 0})
    assert name == "ALARMS_R"
    ids = [a["id"] for a in fields["alarms"]]
    assert all(1 <= i <= 0xFFFF for i in ids) and len(set(ids)) == len(ids), ids
    name, fields = host.request("ACK", {"alarm_id": ids[-1]})
    assert name == "ACK_R", fields
    sh.step()
    assert not _listed(sh, "internal_fault")


def test_alarm_ids_wrap_past_the_top_skipping_those_still_listed():
    sh, p, host = _running()
    alarms = sh.core._alarms
    alarms.next_id = 0xFFFF
    first = alarms.raise_(1, "near_empty", HIGH, "a", 0)
    assert first.id == 0xFFFF
    listed = alarms.raise_(2, "near_empty", HIGH, "b", 0)
    assert listed.id == 1
    alarms.next_id = 0xFFFF  # a full turn of ids later: 65535 and 1 are still listed
    assert alarms.raise_(0, "clinician", HIGH, "c", 0).id == 2


# -- the safety net: an exception in a turn stops nothing -----------------------------


def test_a_handler_that_raises_is_answered_error_internal_with_nothing_applied():
    sh, p, host = _running()
    before = coreview.status_dict(status_of(sh.core, 1))
    estop = handlers.SERVED[catalog.ID["ESTOP"]]

    def half_then_raise(shell, fields, now):
        estop(shell, fields, now)  # applied to the core, then a bug
        raise AttributeError("simulated bug")

    handlers.SERVED[catalog.ID["ESTOP"]] = half_then_raise
    try:
        name, fields = host.request("ESTOP", _ESTOP)
    finally:
        handlers.SERVED[catalog.ID["ESTOP"]] = estop
    assert name == "ERROR" and fields["code"] == catalog.ERR_INTERNAL == 5, fields
    assert "not run" in fields["message"] and "AttributeError" in fields["message"]
    assert coreview.status_dict(status_of(sh.core, 1)) == before  # nothing half-applied
    assert p["motors"][0].rate == 26250000
    (fault,) = _listed(sh, "internal_fault")
    assert fault.priority == "high" and "simulated bug" in fault.message
    # the link is still served, and the same stop works once the bug is gone
    assert host.request("ESTOP", _ESTOP)[0] == "ESTOP_R"
    assert p["motors"][0].rate == 0


def test_a_handler_that_raises_after_an_ack_and_a_fault_puts_back_every_field():
    # The net's undo puts back every channel field and every alarm (acked, active,
    # the next id) as they were before the request, the same Alarm objects listed.
    sh, p, host = _running()
    sh.core.fault(2, "occlusion", sh.uptime_ms())  # listed, active: an ack keeps it
    before = json.dumps(coreview.snapshot(sh.core))
    listed = list(sh.core.listed())
    ack = handlers.SERVED[catalog.ID["ACK"]]
    estop = handlers.SERVED[catalog.ID["ESTOP"]]

    def ack_stop_then_raise(shell, fields, now):
        ack(shell, fields, now)
        estop(shell, _ESTOP, now)
        shell.core.fault(1, "air_in_line", now)
        raise AttributeError("simulated bug")

    handlers.SERVED[catalog.ID["ACK"]] = ack_stop_then_raise
    try:
        name, fields = host.request("ACK", {"alarm_id": listed[0].id})
    finally:
        handlers.SERVED[catalog.ID["ACK"]] = ack
    assert name == "ERROR" and "not run" in fields["message"], fields
    internal = _listed(sh, "internal_fault")
    assert [a for a in sh.core.listed() if a not in internal] == listed
    snapshot = coreview.snapshot(sh.core)
    snapshot["alarms"] = [a for a in snapshot["alarms"] if a["code"] != "internal_fault"]
    was = json.loads(before)
    was["next_alarm_id"] = snapshot["next_alarm_id"]  # the internal_fault's id was taken
    assert json.loads(json.dumps(snapshot)) == was
    assert p["motors"][0].rate == 26250000


def test_the_undo_kept_before_each_request_allocates_nothing():
    # before issue 14's round 2: coreview.snapshot(core)'s dicts, 1 KB per request (64-bit)
    sh, p, host = _running()
    sh.core.fault(2, "occlusion", sh.uptime_ms())  # an alarm listed
    sh._guard(None)
    gc.collect()
    before = _allocated()
    sh._guard(None)
    allocated = _allocated() - before
    sh._serving = sh._undo = None
    if _MP:
        assert allocated == 0, allocated


def test_an_exception_in_the_core_or_a_port_holds_the_rates_and_feeds_the_watchdog():
    sh, p, host = _running()
    core = sh.core
    motor = p["motors"][0]

    def boom(*args):
        raise RuntimeError("simulated fault")

    for where in ("tick", "port"):
        if where == "tick":
            core.tick = boom  # the instance's: the class is untouched
        else:
            motor.delivered = boom
        fed = p["watchdog"].fed
        _idle(sh, p, 5000)
        assert p["watchdog"].fed == fed + 5  # the loop is alive: fed every turn
        assert motor.rate == 26250000  # held at the verified rate, never cut off
        assert host.request("HEARTBEAT", {})[0] == "HEARTBEAT_R"  # still served
        if where == "tick":
            del core.tick
        else:
            del motor.delivered
    faults = _listed(sh, "internal_fault")
    assert faults and faults[-1].priority == "high" and "simulated fault" in faults[-1].message
    _idle(sh, p, 2000)
    assert status_of(core, 1).state == "running"


def test_the_same_fault_every_turn_alarms_once():
    sh, p, host = _running()

    def boom(*args):
        raise RuntimeError("the same every turn")

    sh.core.tick = boom
    _idle(sh, p, 15000)  # the first tick due: the supervised link's deadline
    first = _listed(sh, "internal_fault")
    _idle(sh, p, 3000)  # and every turn since
    assert _listed(sh, "internal_fault")[0].id == first[0].id
    del sh.core.tick


# -- a failing store: degraded mode, nothing undone -----------------------------------


class FailingStore(Store):
    def __init__(self):
        Store.__init__(self)
        self.failing = False
        self.writes = 0

    def write(self, name, data):
        self.writes += 1
        if self.failing:
            raise OSError(28, "no space left on device")
        Store.write(self, name, data)


def test_a_failing_store_never_undoes_an_emergency_stop():
    store = FailingStore()
    sh, p, host = _running(store)
    store.failing = True
    name, fields = host.request("ESTOP", _ESTOP)
    assert name == "ESTOP_R", fields  # answered: degraded, not dead
    assert p["motors"][0].rate == 0  # on the motor first, whatever the store does
    (failed,) = _listed(sh, "store_failed")
    assert failed.priority == "high" and failed.active and not _listed(sh, "internal_fault")
    fed = p["watchdog"].fed
    _idle(sh, p, 10 * _MIN)  # retries with a backoff: no reset, no second alarm
    assert p["watchdog"].fed == fed + 600
    assert _listed(sh, "store_failed")[0].id == failed.id
    assert p["motors"][0].rate == 0 and status_of(sh.core, 1).state == "stopped"
    assert host.request("STATUS", {"ch": 1})[1]["state"] == "stopped"
    store.failing = False
    _idle(sh, p, 2 * _MIN)
    assert not _listed(sh, "store_failed")[0].active  # the condition is over
    # what the store holds now is the stop: a reset keeps it stopped
    sh2 = shell(ports(store))
    assert status_of(sh2.core, 1).state == "stopped" and sh2.core.rate(1) == 0


def test_while_the_store_fails_the_retries_back_off():
    store = FailingStore()
    sh, p, host = _running(store)
    store.failing = True
    host.request("ESTOP", _ESTOP)
    writes = store.writes
    _idle(sh, p, 10 * _MIN, step=100)
    # 1, 2, 4, ... 60 s between retries: about 15 in ten minutes, not one per turn
    assert 5 <= store.writes - writes <= 20, store.writes - writes


def test_the_answer_goes_after_the_save_it_needs():
    store = FailingStore()
    sh, p, host = _running(store)
    order = []
    write = store.write
    link_write = p["link"].write

    def logged_write(name, data):
        order.append("save " + name)
        write(name, data)

    def logged_send(data):
        order.append("send")
        link_write(data)

    store.write = logged_write
    p["link"].write = logged_send
    host.request("ESTOP", _ESTOP)
    assert order.index("save state.tmp") < order.index("send"), order


# -- time past 2**30 ms of uptime ----------------------------------------------------


def _seal(store, snapshot, uptime):
    # the firmware's record (header, CRC-32), here to give a board a long service behind it
    body = json.dumps({"uptime_ms": uptime, "gen": 1, "core": snapshot}).encode()
    store.files["state.used"] = b""
    store.files["state.json"] = b"pumpguard-state 1 " + ("%08x\n" % crc32(body)).encode() + body


def test_uptime_past_2_to_the_30_keeps_counting_and_tapers_on_time():
    # 24.8 days of service before this boot, and this boot runs 6.2 days more: the
    # loop's clock re-bases (2**29 ms into a boot) while a taper runs
    sh, p, host = _running()
    start = (1 << 31) - 3000
    store = Store()
    _seal(store, coreview.snapshot(sh.core), start)
    p = ports(store)
    sh = shell(p)  # booted from it: norepinephrine resumed
    sh.begin()
    host = Host(sh, p)
    host.hello()
    assert status_of(sh.core, 1).state == "running"
    clock = p["clock"]
    elapsed = 0
    step = 1 << 27
    while step >= 1000:
        while elapsed + step < (1 << 29) - 3000:
            clock.advance(step)
            elapsed += step
            sh.step()
            host.request("HEARTBEAT", {})
        step //= 4
    assert host.request("STOP", {"ch": 1})[0] == "STOP_R"  # norepinephrine: a taper
    due = status_of(sh.core, 1).taper_next_ms
    dose = status_of(sh.core, 1).dose
    for _ in range(10):  # across the re-base, 1 s a turn
        clock.advance(1000)
        elapsed += 1000
        sh.step()
    info = host.request("INFO", {})[1]
    assert info["uptime_ms"] == start + elapsed > (1 << 31) + (1 << 29), info
    while start + elapsed + _MIN < due - 1000:
        clock.advance(_MIN)
        elapsed += _MIN
        sh.step()
    _idle(sh, p, due - 1000 - start - elapsed, step=100)
    assert status_of(sh.core, 1).dose == dose  # not before its time
    _idle(sh, p, 2000)
    assert status_of(sh.core, 1).dose < dose  # and then on time
    status = host.request("STATUS", {"ch": 1})[1]
    assert status["taper_next_ms"] == status_of(sh.core, 1).taper_next_ms > due


# -- the state record written in place (issue 14): nothing allocated per save ----------

_MP = sys.implementation.name == "micropython"


# A save on a 32-bit port (WebAssembly, a Pico) allocates binascii.crc32's result when it
# is 2**30 or more (a heap int), once per chunk of the record (firmware/recordtext.py:
# CHUNK bytes of body each); on the 64-bit unix port nothing at all.
_CRC_INT = 0 if sys.maxsize > 1 << 32 else 32


def _crc_ints(store):
    # what binascii.crc32 may allocate for the record store holds (see _CRC_INT)
    body = len(store.read("state.json")) - recordtext.HEAD
    return _CRC_INT * -(-body // recordtext.CHUNK)


def _allocated():
    return gc.mem_alloc() if _MP else 0  # pyright: ignore[reportAttributeAccessIssue]


class RefStore(Store):
    # A store that allocates nothing of its own, so what a save allocates is the
    # firmware's: the record's chunks (write, then append) and its counter copied byte by
    # byte into three buffers made here once (state.tmp's, state.json's and state.gen's,
    # swapped by a rename), the other files kept by reference.
    ROOM = 12288  # the largest record a board of 2 channels makes is under 9 KB

    def __init__(self):
        Store.__init__(self)
        self.files = dict(self.files)  # type: dict[str, object]
        names = ("state.tmp", "state.json", "state.gen")
        self.bufs = {name: bytearray(self.ROOM) for name in names}
        self.sizes = {name: None for name in names}  # type: dict[str, object]
        self.saves = 0
        self.appends = 0

    def read(self, name):
        if name in self.bufs:  # a copy, as a board's read() makes
            size = self.sizes[name]
            return None if size is None else bytes(self.bufs[name][:size])
        return self.files.get(name)

    def write(self, name, data):
        self.saves += 1
        if name in self.bufs:
            self.sizes[name] = 0
            self._copy(name, data)
        else:
            self.files[name] = data

    def append(self, name, data):
        if name not in self.bufs:  # the journal's
            return Store.append(self, name, data)
        self.appends += 1
        self._copy(name, data)

    def _copy(self, name, data):
        buf = self.bufs[name]
        at = self.sizes[name] or 0
        for i in range(len(data)):
            buf[at + i] = data[i]
        self.sizes[name] = at + len(data)

    def rename(self, src, dst):
        bufs = self.bufs
        if src in bufs and dst in bufs:
            bufs[src], bufs[dst] = bufs[dst], bufs[src]
            self.sizes[dst] = self.sizes[src]
            self.sizes[src] = None
        else:
            self.files[dst] = self.read(src)
            self.remove(src)

    def remove(self, name):
        if name in self.bufs:
            self.sizes[name] = None
        else:
            self.files[name] = None


def _loaded(store):
    # (snapshot, uptime) a boot reads from store, the record and its counter copied first
    copied = Store()
    for name in ("state.json", "state.gen", "state.used"):
        if store.read(name) is not None:
            copied.files[name] = bytes(store.read(name))
    loaded = persist.Record(copied).load()
    assert loaded is not None
    return loaded


def _same(a, b):
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def test_the_periodic_save_allocates_nothing():
    # before issue 14: 4,048 B on the 64-bit unix port (snapshot dicts, json.dumps,
    # the header's formatting, the concatenation, the counter's str)
    store = RefStore()
    sh, p, host = _running(store)
    _idle(sh, p, 130_000)  # periodic saves made: the record's view of this length kept
    clock = p["clock"]
    gc.collect()
    saves = store.saves
    start = sh.uptime_ms()
    before = _allocated()
    for _ in range(61):  # 61 s of idle turns, one of them the periodic save
        clock.advance(1000)
        sh.step()
    allocated = _allocated() - before
    assert store.saves == saves + 2, store.saves  # the record and its counter
    snapshot, uptime = _loaded(store)
    assert _same(snapshot, coreview.snapshot(sh.core)) and start < uptime <= sh.uptime_ms()
    if _MP:
        assert allocated <= _crc_ints(store), allocated


def test_a_save_of_a_change_allocates_nothing():
    # the save each command's change makes, with alarms listed (before: 2.2-2.8 KB)
    store = RefStore()
    sh, p, host = _running(store)
    name, fields = host.request("ESTOP", _ESTOP)  # a HIGH alarm listed, a channel stopped
    assert name == "ESTOP_R", fields
    now = sh.uptime_ms()
    sh._save(now)
    gc.collect()
    before = _allocated()
    sh._save(now)
    allocated = _allocated() - before
    snapshot, uptime = _loaded(store)
    assert _same(snapshot, coreview.snapshot(sh.core)) and uptime == now
    assert len(snapshot["alarms"]) >= 1
    if _MP:
        assert allocated <= _crc_ints(store), allocated


_QUANTITY_MAX = 0x7FFFFFFF  # firmware/rules/inputs.py's (a const there)


def _largest(core):
    # Every channel delivering with its longest figures, and every alarm the core can
    # list at once (one per device code and per channel code), each message TEXT_MAX long.
    lib = core.library
    drug = lib.drugs[sorted(lib.drugs)[0]]
    big = (1 << 48) - 1
    for c in core._channels:
        c.state = "tapering"
        c.drug = drug
        c.dose = c.weight = c.conc = c.volume = c.rate = _QUANTITY_MAX
        c.volume_left = c.volume_infused = big
        c.last_up_ms = c.last_down_ms = -big
        c.taper_next_ms = big
        c.override = c.near_empty_raised = True
    device = (
        "link_lost",
        "store_lost",
        "store_failed",
        "internal_fault",
        "library_refused",
        "keys_missing",
        "insecure_link",
        "record_rolled_back",
        "record_set_aside",
    )
    per_channel = (
        "near_empty",
        "second_line_alone",
        "resumed_after_reset",
        "restore_refused",
        "occlusion",
        "air_in_line",
        "syringe_empty",
        "motor_fault",
        "extravasation",
        "clinician",
    )
    items = core._alarms.items
    at = 0
    for ch in range(core.channels + 1):
        for code in per_channel if ch else device:
            at += 1
            text = ("%d %s " % (ch, code)) * 20
            alarm = Alarm(0xFFFF - at, ch, code, "medium", text[:TEXT_MAX], big - at, True)
            alarm.acked = True
            items.append(alarm)
    core._alarms.next_id = 0xFFFF
    return len(items)


def test_the_largest_record_goes_through_the_record_s_small_buffer_and_reads_back():
    # before: a buffer of the largest record's size (9,024 B for 2 channels), held for
    # the pump's life; now 512 B, the record handed to the store in chunks
    store = RefStore()
    sh, p, host = _running(store)
    n = _largest(sh.core)
    assert n == 9 + 10 * sh.core.channels
    record = sh._record
    record.save_core(sh.core, 1 << 40)
    text = record._text
    buf = text.buf
    assert len(buf) <= 512
    gc.collect()
    appends = store.appends
    before = _allocated()
    record.save_core(sh.core, 1 << 40)
    allocated = _allocated() - before
    assert record._text is text and text.buf is buf and len(buf) <= 512
    snapshot, uptime = _loaded(store)
    assert _same(snapshot, coreview.snapshot(sh.core)) and uptime == 1 << 40
    size = len(store.read("state.json"))  # type: ignore[arg-type]
    assert size > 8 * len(buf) and store.appends - appends >= size // len(buf)
    # a record this firmware writes (the figures break the rules: a boot would keep
    # the channels stopped, each alarmed)
    resume.check(sh.core.library, snapshot, sh.core.channels)
    if _MP and not _CRC_INT:
        # 64-bit: nothing. On 32 bits its figures past 2**30 are heap ints, each
        # formatted with str() (recordtext.py): about 1.7 KB for this one's 70
        assert allocated == 0, allocated


def test_a_record_of_text_with_escapes_goes_through_the_same_buffer_and_reads_back():
    # text that needs escapes (quotes, backslashes, control characters, past ASCII: up
    # to 6 bytes a character) across the chunks' ends: the record whole, the buffer kept
    sh, p, host = _running()
    items = sh.core._alarms.items
    for ch in range(3):
        text = ('"\\\x01\n\u00e9\u20ac\U0001f489 %d' % ch) * 12
        items.append(Alarm(ch + 7, ch, "clinician", "high", text[:TEXT_MAX], ch, False))
    record = sh._record
    buf = record._text.buf
    for uptime in range(5, 5 + recordtext.CHUNK // 8):  # the record's ends at each place
        record.save_core(sh.core, uptime)
        snapshot, loaded = _loaded(p["store"])
        assert _same(snapshot, coreview.snapshot(sh.core)) and loaded == uptime
        assert [a["message"] for a in snapshot["alarms"]][-3:] == [a.message for a in items[-3:]]
        items[-1].message = items[-1].message[1:] + items[-1].message[:1]
        items[-2].message = items[-2].message[:-1]  # a byte shorter each time
    assert record._text.buf is buf and len(buf) <= 512
