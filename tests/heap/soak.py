# The simulated day(s) of the whole firmware on a bounded heap (MicroPython only; the
# MicroPython side of tests/heap/run.py, which reads what this prints).
#
#   micropython -X heapsize=N -m tests.heap.soak STATE_DIR HOURS [setup | FROM_S TO_S]
#
# run from the tree tests/heap/tree.py builds (the bundle's .mpy files and the harness
# compiled too). firmware.main.start() boots the board's full library on the emulator
# board's data with ports made here: the board's own FileStore over STATE_DIR (the
# store's bytes live on the filesystem, never in the heap), a link that copies each
# frame into a buffer of its own made once (tests/mp/reflink.py), motors that deliver
# at their rate, the virtual Clock of shellkit. One loop turn per simulated second; a
# host's commands between turns: heartbeats, status polls, titrations, starts, tapers,
# alarms and their acks, LOG and ALARMS pages, a motor fault, link silence, new
# HELLO/AUTH sessions; the power cut halfway is the host's: this process ends, a new
# one boots from the state record in the same STATE_DIR.
#
# Measured (printed as lines the host parses, see tests/heap/figures.py):
#   CMD name: every command's bytes allocated (micropython.mem_current() delta: bytes
#     requested minus those the code freed itself, not rounded to blocks; a collection
#     in the window does not change it) and, for one command of each
#     kind per simulated hour, its 16/32-byte-block figure (gc.mem_alloc() delta after a
#     gc.collect(), the figure tests/mp/firmware_memory.* print);
#   MEMERR: every MemoryError, where (import, boot, the command or the idle turn the
#     shell's safety net caught it in, the harness itself) and its traceback;
#   SAMPLE: every SAMPLE_S simulated seconds, after a gc.collect(): gc.mem_free() and
#     micropython.mem_info() (its "max free sz": the largest free block, in blocks).
# Everything the harness itself does (making wires, reading answers) happens outside
# the windows it measures.
import gc
import sys

import micropython

print("SOAK begin")
micropython.mem_info()  # the empty heap: the host reads the block size from it
gc.collect()
print("ALLOC start", gc.mem_alloc())

# Bytes the heap holds more (requested, before rounding to blocks): allocations minus
# what the code freed itself; a collection in between changes nothing of it.
_mem_current = micropython.mem_current
_mem_alloc = gc.mem_alloc
MIN_S = 60
HOUR_S = 3600
SAMPLE_S = 600
NAMES = (
    "HELLO",
    "AUTH",
    "SUPERVISE",
    "HEARTBEAT",
    "STATUS",
    "START",
    "TITRATE",
    "STOP",
    "TAPER",
    "HANDOVER",
    "ESTOP",
    "ACK",
    "ALARMS",
    "LOG",
    "idle",
)
_stats = {}  # name -> [count, max requested, max blocks, answers not *_R]
for _n in NAMES:
    _stats[_n] = [0, 0, 0, 0]
_errors = [0]
_where = ["import"]


def memory_error(kind, exc):
    _errors[0] += 1
    print("MEMERR", kind, _where[0], _now[0])
    sys.print_exception(exc)


_now = [0]  # simulated seconds
try:
    from boards import emulator as board
    from boards.drivers.filestore import FileStore
    from firmware import main as firmware_main
    from protocol import catalog, messages
    from protocol.decoder import Decoder
except MemoryError as exc:
    memory_error("import", exc)
    print("END import")
    raise SystemExit(3) from None
gc.collect()
print("ALLOC firmware", gc.mem_alloc())

try:  # the harness's own (shellkit: the host's side of the session, the Clock)
    from tests.mp.reflink import RefLink
    from tests.portable import shellkit
except MemoryError as exc:
    memory_error("import", exc)
    print("END import")
    raise SystemExit(3) from None

NOREPI = shellkit.NOREPI
VASO = shellkit.VASO
Clock = shellkit.Clock
Session = shellkit.Session
hello_fields = shellkit.hello_fields
_MAX_FRAMES = 24
NOREPI_50 = dict(NOREPI, volume=50000000)  # the 50 mL syringe: about 1.9 h at 0.1 mcg/kg/min
# channel 1's norepinephrine moved to a new syringe on channel 2, and back
_LABEL = {
    "drug": "norepinephrine",
    "conc": NOREPI["conc"],
    "conc_unit": "mcg/mL",
    "volume": 50000000,
}
HANDOVER_2 = dict(_LABEL, ch=1, to=2)
HANDOVER_1 = dict(_LABEL, ch=2, to=1)


class Motor:
    # Delivers at the rate it was set to (mL/h, micro-scaled) on the virtual clock: the
    # core sees its syringe empty as a board's would. Small ints only (64-bit).
    def __init__(self, clock):
        self.clock = clock
        self.rate = 0
        self.at = clock.t
        self.rest = 0
        self.fault_kind = None

    def set_rate(self, rate):
        self.delivered_since()
        self.rate = rate

    def delivered_since(self):
        t = self.clock.t
        dt = self.clock.ticks_diff(t, self.at)
        self.at = t
        total = self.rate * dt + self.rest
        self.rest = total % 3600000
        return total // 3600000

    def delivered(self):
        return self.delivered_since()

    def fault(self):
        return self.fault_kind

    def syringe(self):  # a 50 mL one; the count from the volume programmed ends it
        return 50000000

    def load(self, volume):
        pass

    def left(self):
        return None


class Null:
    def set(self, level):
        pass

    def feed(self):
        pass


_state_dir = sys.argv[1]
_hours = int(sys.argv[2])
_setup_only = len(sys.argv) > 3 and sys.argv[3] == "setup"
# A power cut is a new process (a board's heap starts empty at every boot): the host
# runs the seconds from _from to _stop here, the store's directory kept between them.
_from = int(sys.argv[3]) if len(sys.argv) > 4 else 0
_end = _hours * HOUR_S
_stop = int(sys.argv[4]) if len(sys.argv) > 4 else _end
_store = FileStore(_state_dir)
_store.write("keys", shellkit.keys_file())
_link = RefLink(1024, _MAX_FRAMES, keep=True)  # every event read as written
_entropy = shellkit.Entropy(7)
_null = Null()
_boot = [0]
_shell = [None]
_ports = {}
_host = [Session(), 0]  # the session, its last seq
_decoder = Decoder()
_pending = []  # (at_s, name, fields): what the host does next, once due
_supervised = [False]
_log_first = [0]
_blocks_hour = {}  # name -> the simulated hour its block figure was last taken in
for _n in NAMES:
    _blocks_hour[_n] = -1


gc.collect()
print("ALLOC harness", gc.mem_alloc())


def power_on():
    """A board's boot: fresh ports (its clock restarts at 0) on the same store."""
    clock = Clock(0)
    _ports.clear()
    _ports["link"] = _link
    _ports["motors"] = [Motor(clock) for _ in range(board.CHANNELS)]
    _ports["clock"] = clock
    _ports["store"] = _store
    _ports["alarm"] = _null
    _ports["watchdog"] = _null
    _ports["entropy"] = _entropy
    _boot[0] += 1
    _where[0] = "boot"
    _shell[0] = None
    gc.collect()
    try:
        sh = firmware_main.start(board, _ports, boot_id=_boot[0], bundle="")
    except MemoryError as exc:
        memory_error("boot", exc)
        return False
    original = sh._fault

    def fault(exc):  # the shell's safety net: a MemoryError it caught is counted
        if isinstance(exc, MemoryError):
            memory_error("firmware", exc)
        original(exc)

    sh._fault = fault
    _shell[0] = sh
    _host[0] = Session()
    _supervised[0] = False
    return True


def feed(wire):
    """The shell's turns until the wire is read; its allocation (requested bytes)."""
    _link.load(wire)
    _link.sent = 0
    sh = _shell[0]
    clock = _ports["clock"]
    t0 = _mem_current()
    while _link.rx_pos < _link.rx_len:
        clock.advance(1)
        sh.step()
    return _mem_current() - t0


def answers(name=None, keep=False):
    """The frames the firmware wrote in the last window, read after it in place: each
    through the decoder's view() (its one Frame, reused for the next), events handled
    as they come. Returns (the first other frame's msg_id, that frame copied out, or
    None): copied (take()) when keep, when it is not name's answer (a refusal, printed)
    or for HELLO_R (the session it opens). A copy of every frame (a bytes, a Frame, its
    payload and signed bytes: some 600 B an answer) made the harness's own MemoryErrors
    in the firmware's heap at 190k; a host decodes on the host, never in a board's heap.
    (Nothing kept for it either: a table of the answers' ids and names, 1.3 KB, was the
    firmware's heap too.)"""
    got = None
    frame = None
    for i in range(min(_link.sent, _MAX_FRAMES)):
        data = _link.frames[i]
        end = _link.sizes[i]
        pos = 0
        while pos < end:
            pos = _decoder.feed(data, pos, end)
            if not _decoder.ready:
                continue
            f = _decoder.view()
            if catalog.is_event(f.msg_id):
                event(f)
            elif got is None:
                got = f.msg_id
                if keep or name is None or name == "HELLO" or got != _answer_id(name):
                    frame = _decoder.take()
    _link.sent = 0
    return got, frame


def _answer_id(name):
    # a request's answer's id (SPEC: its own | 0x80), made of small ints only
    return catalog.msg_id(name) | catalog.RESPONSE_BIT


def wire(name, fields):
    host = _host[0]
    _host[1] += 1
    seq = _host[1]
    if name == "HELLO":
        return host.hello(seq, fields)
    if name == "AUTH":
        return host.auth_wire(seq)
    return host.wire(name, seq, fields)


def command(name, fields, decoded=False):
    """One request measured: (its answer's name, its fields when decoded, else None: a
    host decodes on the host, and this heap is the board's; a dict per answer decoded
    here made the harness's own MemoryErrors at 190k)."""
    if _shell[0] is None:
        return None, None
    w = wire(name, fields)
    stat = _stats[name]
    hour = _now[0] // HOUR_S
    blocks = -1
    _where[0] = name
    if _blocks_hour[name] != hour:  # this hour's block figure of this kind
        _blocks_hour[name] = hour
        gc.collect()
        a0 = _mem_alloc()
        used = feed(w)
        blocks = _mem_alloc() - a0
    else:
        used = feed(w)
    _where[0] = "harness"
    stat[0] += 1
    if used > stat[1]:
        stat[1] = used
    if blocks > stat[2]:
        stat[2] = blocks
    msg_id, answer = answers(name, decoded)
    if msg_id is None:
        stat[3] += 1
        return None, None
    got = catalog.name(msg_id)
    if msg_id != _answer_id(name):  # refused (a rule, an interval) or an error: counted
        stat[3] += 1
        said = messages.decode(answer.msg_id, answer.payload).get("message", "")
        print("ANSWER", name, _now[0], got, said)
        return got, None
    if got == "HELLO_R":
        _host[0].opened(answer)
    return got, messages.decode(answer.msg_id, answer.payload) if decoded else None


_NEAR_EMPTY = 41
_EMPTY = 42


def event(f):
    if f.msg_id != catalog.msg_id("EV_ALARM"):
        return
    fields = messages.decode(f.msg_id, f.payload)
    if fields["acked"]:
        return
    at = _now[0]
    _pending.append((at + MIN_S, "ACK", {"alarm_id": fields["id"]}))
    if fields["code"] == _EMPTY:  # a new syringe, started again
        ch = fields["ch"]
        _pending.append((at + 3 * MIN_S, "START", NOREPI_50 if ch == 1 else VASO))


def session():
    name, _ = command("HELLO", hello_fields(host="soak"))
    if name == "HELLO_R" and command("AUTH", {})[0] == "AUTH_R":
        _supervised[0] = command("SUPERVISE", {"interval_s": 5})[0] == "SUPERVISE_R"


def idle_turn():
    sh = _shell[0]
    if sh is None:
        return
    _ports["clock"].advance(1000)
    _where[0] = "idle"
    t0 = _mem_current()
    sh.step()
    used = _mem_current() - t0
    _where[0] = "harness"
    stat = _stats["idle"]
    stat[0] += 1
    if used > stat[1]:
        stat[1] = used
    if _link.sent:
        answers()  # events only: no request was made


def sample():
    gc.collect()
    print("SAMPLE", _now[0], gc.mem_free(), gc.mem_alloc())
    micropython.mem_info()


def at(fraction):
    """The simulated second a scripted event falls on: a fraction of the run, so a
    short run meets every one of them too."""
    return int(_end * fraction) // 60 * 60 + 7


_SCRIPT = (
    (at(0.02), "START", VASO),
    (at(0.17), "silence", None),
    (at(0.28), "STOP", {"ch": 2}),
    (at(0.29), "TAPER", {"ch": 2, "first": 0}),
    # channel 2 freed (vasopressin restarted when its syringe ran dry), a fresh syringe
    # on channel 1 (refused if one runs), then its program moved to channel 2 and back
    (at(0.39), "ESTOP", {"ch": 2, "reason": "clinician"}),
    (at(0.395), "START", NOREPI_50),
    (at(0.40), "HANDOVER", HANDOVER_2),
    (at(0.41), "HANDOVER", HANDOVER_1),
    (at(0.42), "START", VASO),
    (at(0.55), "fault", None),
    (at(0.56), "unfault", None),
    (at(0.6), "START", NOREPI_50),
    (at(0.67), "silence", None),
    (at(0.7), "STOP", {"ch": 1}),
    (at(0.71), "TAPER", {"ch": 1, "first": 0}),
    (at(0.8), "START", NOREPI_50),
)


def scripted(name, fields):
    if name == "silence":
        _silent[0] = _now[0] + 3 * MIN_S
    elif name == "fault":
        _ports["motors"][0].fault_kind = "occlusion"
    elif name == "unfault":
        _ports["motors"][0].fault_kind = None
    else:
        command(name, fields)


_silent = [0]
_NOREPI_DOSES = (100000, 110000, 120000, 110000)
_VASO_DOSES = (30000, 35000)


def host_turn(s):
    """What the host sends in second s."""
    if s < _silent[0]:
        return
    if s % (8 * HOUR_S) == 0:
        session()  # a new host session every 8 h
    if s % 5 == 0:
        command("HEARTBEAT", {})
    if s % 30 == 0:
        command("STATUS", {"ch": 1 + (s // 30) % 2})
    if s % 360 == 180:
        dose = _NOREPI_DOSES[(s // 360) % 4]
        command("TITRATE", {"ch": 1, "dose": dose, "unit": "mcg/kg/min", "override": False})
    if s % 3600 == 1200:
        dose = _VASO_DOSES[(s // 3600) % 2]
        command("TITRATE", {"ch": 2, "dose": dose, "unit": "units/min", "override": False})
    if s % 900 == 450:
        name, fields = command("LOG", {"first": _log_first[0]}, decoded=True)
        if fields is not None:
            _log_first[0] = fields["next"]
    if s % 1800 == 1500:
        command("ALARMS", {"first": 0})


def main():
    if not power_on():
        return
    gc.collect()
    print("ALLOC booted", gc.mem_alloc())
    if _setup_only:
        return
    _now[0] = _from
    session()
    if _from == 0:
        command("START", NOREPI_50)
    sample()
    script = 0
    while script < len(_SCRIPT) and _SCRIPT[script][0] <= _from:
        script += 1
    looped = 0
    while _now[0] < _stop:
        _now[0] += 1
        s = _now[0]
        try:
            if _shell[0] is None:  # a boot that failed: the watchdog boots again
                if power_on():
                    session()
                    looped = 0
                else:
                    looped += 1
                    if looped >= 3:  # a boot loop: the board serves nothing again
                        print("BOOTLOOP", s)
                        break
                continue
            idle_turn()
            host_turn(s)
            while script < len(_SCRIPT) and _SCRIPT[script][0] <= s:
                scripted(_SCRIPT[script][1], _SCRIPT[script][2])
                script += 1
            if _pending:
                due = [p for p in _pending if p[0] <= s]
                for p in due:
                    _pending.remove(p)
                    command(p[1], p[2])
        except MemoryError as exc:  # out of the firmware's net, or the harness's own
            memory_error("loop" if _where[0] != "harness" else "harness", exc)
            if _where[0] != "harness":  # the loop died: the watchdog resets the board
                power_on()
        if s % SAMPLE_S == 0:
            sample()
    sample()


def report():
    # in a function: a new module global made here would grow the module's dict (1,552 B
    # at once), the harness's own MemoryError on a tight heap at the run's very end
    for name in NAMES:
        st = _stats[name]
        print("CMD", name, st[0], st[1], st[2], st[3])


main()
report()
print("END", _now[0], _errors[0], _boot[0])
