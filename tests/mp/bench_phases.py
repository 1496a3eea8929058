# Where a command's bytes go, on MicroPython (bench/memory_bench.py prints it): the
# firmware of tests/mp/firmware_memory.py (the heap engineer's harness: its dummy ports
# allocate nothing) serves each request of the catalog through the shell's own loop,
# while the firmware's pieces are wrapped so that every byte allocated is charged to
# the innermost piece running when it was allocated:
#
#   decode    Decoder.feed/take, messages.decode: request bytes -> fields
#   dispatch  shell._respond less what it calls below: gate, sessions, handler glue
#   rules     the SafetyCore's decision methods (start, titrate, stop, tick, ...)
#   log       log entries made (core.log.add) and kept (journal.drain)
#   persist   the state record: shell._save (snapshot + Record.save)
#   encode    replies, refusals and events to wire (gate.answer/refuse, to_wire)
#   changes   shell._changed less the above: alarm output, change detection, events
#   hmac      protocol.auth's HMAC-SHA256 (auth._hmac): a tag checked, a tag made, a
#             session key, proofs; charged here wherever it runs (MicroPython's
#             hashlib can neither copy nor reset a sha256: ~900 B a tagged command)
#   other     the loop itself (shell.step outside all of the above)
#
# The wrappers' own allocation (the *args tuple and **kw dict each call makes, measured
# by calibrate()) is taken out of the phase that paid it, so the phases add up to what
# the loop allocated without them. The figure is gc.mem_alloc() deltas with no
# collection inside a command (WebAssembly: never inside a call; unix port: a heap
# large enough, collected before each command).
#
# The firmware's pieces are being rewritten: PIECES below is the one table naming them.
#
#   node tests/mp/run.mjs --heap 8388608 tests/mp/bench_phases.py [IDLE_MS_PER_TURN]
#   micropython -X heapsize=2m -c "import sys; sys.path[:] = [BUNDLE, ROOT];
#       import tests.mp.bench_phases as b; b.main([IDLE_MS_PER_TURN])"
import gc
import sys

import tests.mp.firmware_memory as m
from firmware import gate, handlers
from protocol import auth, catalog, messages
from tests.portable.shellkit import NOREPI, Session, hello_fields

NAMES = (
    "other", "decode", "dispatch", "rules", "log", "persist", "encode", "changes", "hmac", "own"
)  # fmt: skip
OTHER, DECODE, DISPATCH, RULES, LOG, PERSIST, ENCODE, CHANGES, HMAC, OWN = range(10)
ACC = [0] * 10  # bytes charged to each phase
CALLS = [0] * 10
_S = [OTHER, 0]  # the phase running, and gc.mem_alloc() when it last changed
_T = [0] * 12  # the wrapper's own cost: its *args tuple by length, ...
_D = [0] * 8  # ... its **kw dict by length
_mem = gc.mem_alloc
# The SafetyCore's methods that decide (read accessors such as status() or alarms() are
# charged to whoever reads them; snapshot() to the save or the safety net's undo).
_DECIDE = (
    "start",
    "titrate",
    "stop",
    "emergency_stop",
    "ack",
    "tick",
    "host_seen",
    "supervise",
    "delivered",
    "fault",
    "store_lost",
    "device_alarm",
    "condition_over",
)


def _wrap(phase, f):
    def w(*a, **k):
        t = _mem()
        own = _T[len(a)] + _D[len(k)]
        s = _S
        prev = s[0]
        ACC[prev] += t - s[1] - own
        ACC[OWN] += own
        CALLS[phase] += 1
        s[0] = phase
        s[1] = t
        try:
            if k:
                return f(*a, **k)
            return f(*a)
        finally:
            t = _mem()
            ACC[s[0]] += t - s[1]
            s[0] = prev
            s[1] = t

    return w


# (phase, owner, names): the pieces wrapped, the one table to adjust when a piece is
# renamed or moved; a name its owner lacks is skipped (its bytes go to the phase that
# calls it), and a phase with no piece at all is reported (MISSING).
PIECES = (
    (DECODE, "decoder", ("feed", "take", "view")),
    (DECODE, "messages", ("decode", "decode_into")),
    (DISPATCH, "shell", ("_respond",)),
    (RULES, "core", _DECIDE),
    (RULES, "handlers", ("move",)),  # the handover's decision (firmware/handover.py)
    (LOG, "log", ("add", "put")),
    (LOG, "journal", ("drain",)),
    (PERSIST, "shell", ("_save",)),
    (ENCODE, "gate", ("answer", "refuse", "tagged")),
    (ENCODE, "messages", ("to_wire", "wire")),
    (ENCODE, "shell", ("error", "_event")),
    (CHANGES, "shell", ("_changed",)),
    (HMAC, "auth", ("_hmac",)),
)


def install(shell):
    """Wrap the pieces of PIECES; the phases none of whose pieces exist."""
    owners = {
        "decoder": shell.decoder,
        "messages": messages,
        "shell": shell,
        "core": shell.core,
        "log": shell.core.log,
        "journal": shell.journal,
        "gate": gate,
        "auth": auth,
        "handlers": handlers,
    }
    found = [False] * 10
    for phase, owner, names in PIECES:
        obj = owners[owner]
        for name in names:
            if hasattr(obj, name):
                setattr(obj, name, _wrap(phase, getattr(obj, name)))
                found[phase] = True
    return [NAMES[p] for p in range(DECODE, OWN) if not found[p]]


_probed = [0]


def _probe(*a, **k):
    _probed[0] = _mem()


def calibrate():
    """The wrapper's own allocation at entry, by argument count (literal calls, as the
    firmware makes them); True when the two parts add up for a mixed call."""
    calls = (
        lambda: _probe(),
        lambda: _probe(1),
        lambda: _probe(1, 2),
        lambda: _probe(1, 2, 3),
        lambda: _probe(1, 2, 3, 4),
        lambda: _probe(1, 2, 3, 4, 5),
        lambda: _probe(1, 2, 3, 4, 5, 6),
        lambda: _probe(1, 2, 3, 4, 5, 6, 7),
        lambda: _probe(1, 2, 3, 4, 5, 6, 7, 8),
        lambda: _probe(1, 2, 3, 4, 5, 6, 7, 8, 9),
        lambda: _probe(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        lambda: _probe(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11),
    )
    kwcalls = (
        lambda: _probe(),
        lambda: _probe(a=1),
        lambda: _probe(a=1, b=2),
        lambda: _probe(a=1, b=2, c=3),
        lambda: _probe(a=1, b=2, c=3, d=4),
        lambda: _probe(a=1, b=2, c=3, d=4, e=5),
        lambda: _probe(a=1, b=2, c=3, d=4, e=5, f=6),
        lambda: _probe(a=1, b=2, c=3, d=4, e=5, f=6, g=7),
    )
    for i in range(len(calls)):
        t = _mem()
        calls[i]()
        _T[i] = _probed[0] - t
    base = _T[0]
    for i in range(len(kwcalls)):
        t = _mem()
        kwcalls[i]()
        _D[i] = _probed[0] - t - base
    t = _mem()
    _probe(1, 2, 3, 4, 5, a=1, b=2, c=3, d=4, e=5)
    return _probed[0] - t == _T[5] + _D[5]


def _reset():
    for i in range(10):
        ACC[i] = 0
        CALLS[i] = 0


_seq = [1000]


def _next_seq():
    _seq[0] += 1
    return _seq[0]


def serve(wire):
    """(bytes by phase, total) of the firmware serving one request's wire, and the
    name of its answer."""
    link = m._link
    clock = m._clock
    shell = m._shell
    link.load(wire)
    link.sent = 0
    gc.collect()
    _reset()
    t0 = _mem()
    _S[0] = OTHER
    _S[1] = t0
    while link.rx_pos < link.rx_len:
        clock.advance(1)
        shell.step()
    t1 = _mem()
    ACC[_S[0]] += t1 - _S[1]
    kept = list(ACC)
    answer = m._answer_name()  # the host's side (HELLO_R's session key: an HMAC) ...
    for i in range(10):
        ACC[i] = kept[i]  # ... is not the firmware's
    return t1 - t0, answer


def _row(label, total, answer):
    # total less the wrappers' own: what the loop allocates without them
    parts = " ".join([str(ACC[i]) for i in range(10)])
    print("PHASES %s %s %d %s" % (label, answer or "none", total - ACC[OWN], parts))


def command(name, fields, label=None):
    wire = m._session.wire(name, _next_seq(), fields)
    total, answer = serve(wire)
    _row(label or name, total, answer)
    return answer


def _library():
    for path in ("/firmware/druglib.json", "firmware/druglib.json"):
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            pass
    raise OSError("druglib.json not found")


class _PushStore:
    # The harness's store (firmware_memory._Store) holds no library file: this one adds
    # the push's two, in buffers made here once (appending copies byte by byte, as the
    # harness's journal segments do); read() makes the file's bytes, as a board's does.
    def __init__(self, store, room):
        self.store = store
        self.bufs = {}
        self.sizes = {}
        for name in ("druglib.new", "druglib.json"):
            self.bufs[name] = bytearray(room)
            self.sizes[name] = None

    def __getattr__(self, name):
        return getattr(self.store, name)

    def write(self, name, data):
        if name not in self.bufs:
            return self.store.write(name, data)
        self.sizes[name] = 0
        self.append(name, data)

    def append(self, name, data):
        if name not in self.bufs:
            return self.store.append(name, data)
        buf = self.bufs[name]
        size = self.sizes[name] or 0
        for i in range(len(data)):
            buf[size + i] = data[i]
        self.sizes[name] = size + len(data)

    def read(self, name):
        if name not in self.bufs:
            return self.store.read(name)
        size = self.sizes[name]
        return None if size is None else bytes(memoryview(self.bufs[name])[:size])

    def size(self, name):
        if name not in self.bufs:
            return self.store.size(name)
        return self.sizes[name]

    def readinto(self, name, offset, buf):
        if name not in self.bufs:
            return self.store.readinto(name, offset, buf)
        size = self.sizes[name]
        if size is None:
            return None
        n = min(len(buf), size - offset)
        src = self.bufs[name]
        for i in range(max(n, 0)):
            buf[i] = src[offset + i]
        return max(n, 0)

    def rename(self, src, dst):
        if src not in self.bufs:
            return self.store.rename(src, dst)
        self.bufs[src], self.bufs[dst] = self.bufs[dst], self.bufs[src]
        self.sizes[dst] = self.sizes[src]
        self.sizes[src] = None

    def remove(self, name):
        if name not in self.bufs:
            return self.store.remove(name)
        self.sizes[name] = None


def _crc(data):
    from binascii import crc32

    return crc32(data) & 0xFFFFFFFF


def _unmeasured(name, fields):
    m._feed(m._session.wire(name, _next_seq(), fields))
    return m._answer_name()


PHENYL = {
    "ch": 2,
    "drug": "phenylephrine",
    "dose": 30000000,  # within the start limit (35 mcg/min)
    "unit": "mcg/min",
    "weight": None,
    "conc": 20000000,
    "conc_unit": "mcg/mL",
    "volume": 50000000,
    "override": False,
}


def commands():
    """Every request of the catalog, each in a state where it does what it is for."""
    shell = m._shell
    command("HEARTBEAT", {})
    command("INFO", {})
    command("STATUS", {"ch": 1})
    command("START", dict(NOREPI, ch=2), "START")
    m._clock.advance(16 * 60 * 1000)  # past the titration interval
    shell.step()
    command("TITRATE", {"ch": 2, "dose": 110000, "unit": "mcg/kg/min", "override": False})
    command("PATIENT", {"weight": NOREPI["weight"]})  # the patient's already: the same
    command("SUPERVISE", {"interval_s": 30})
    command("SUPERVISE", {"interval_s": 0}, "SUPERVISE(0)")
    command("ALARMS", {"first": 0})
    command("STOP", {"ch": 2}, "STOP(taper)")
    command("TAPER", {"ch": 2, "first": 0})
    command("ESTOP", {"ch": 2, "reason": "clinician"})
    alarms = shell.core.alarms()
    command("ACK", {"alarm_id": alarms[-1].id if alarms else 1})
    _unmeasured("START", PHENYL)
    command("STOP", {"ch": 2}, "STOP(now)")
    # channel 1's norepinephrine to a new syringe on channel 2, and back
    label = {
        "drug": NOREPI["drug"],
        "conc": NOREPI["conc"],
        "conc_unit": "mcg/mL",
        "volume": 50000000,
    }
    command("HANDOVER", dict(label, ch=1, to=2), "HANDOVER(to2)")
    command("HANDOVER", dict(label, ch=2, to=1), "HANDOVER(to1)")
    command("LOG", {"first": 0})
    # A new session: HELLO and AUTH, as a host opening one.
    wire = m._session.hello(_next_seq(), hello_fields(host="b"))
    _row("HELLO", *serve(wire))
    wire = m._session.auth_wire(_next_seq())
    _row("AUTH", *serve(wire))
    # A service session for KEY and the library push: nothing may be delivering.
    _unmeasured("ESTOP", {"ch": 1, "reason": "clinician"})
    m._session = Session("service")
    m.request("HELLO", hello_fields(host="s", role="service"))
    m.request("AUTH", {})
    session = m._session
    ctr = session.ctr + 1
    new_key = bytes(range(100, 132))
    fields = {"role": catalog.ROLES["monitor"], "key": auth.wrap(session.ks, ctr, new_key)}
    session.ctr = ctr
    total, answer = serve(session.wire("KEY", _next_seq(), fields, ctr=ctr))
    _row("KEY", total, answer)
    lib = _library()
    shell.push._store = _PushStore(shell.push._store, len(lib) + 64)
    command("LIB_BEGIN", {"size": len(lib), "crc": _crc(lib)})
    chunk = catalog.LIB_CHUNK
    offset = 0
    while offset < len(lib):
        n = min(chunk, len(lib) - offset)
        data = lib[offset : offset + n] + bytes(chunk - n)
        fields = {"offset": offset, "n": n, "data": data}
        if offset == 0:
            command("LIB_DATA", fields)
        else:
            _unmeasured("LIB_DATA", fields)
        offset += n
    command("LIB_COMMIT", {})


def idle(ms_per_turn):
    """Idle turns over 61 s of uptime, one periodic save (60 s) inside the window; run
    before install(), the save alone wrapped (once a minute): a wrapper's own bytes
    in each of 61,000 turns (its *args tuple) would fill the unix port's heap, and the
    collections that follow make the deltas meaningless (-11 MB measured so). No
    collection runs inside the window (gc.disable()): a loop that allocates runs out of
    heap (MemoryError, no figure) rather than print a delta across a collection."""
    shell = m._shell
    clock = m._clock
    save = shell._save
    shell._save = _wrap(PERSIST, save)
    turns = 61000 // ms_per_turn
    gc.collect()
    _reset()
    gc.disable()
    try:
        t0 = _mem()
        _S[0] = OTHER
        _S[1] = t0
        for _ in range(turns):
            clock.advance(ms_per_turn)
            shell.step()
        t1 = _mem()
    finally:
        gc.enable()
        shell._save = save
    ACC[_S[0]] += t1 - _S[1]
    total = t1 - t0 - ACC[OWN]
    print(
        "IDLE %d %d %d %d %d %d"
        % (turns, ms_per_turn, CALLS[PERSIST], ACC[PERSIST], total - ACC[PERSIST], total)
    )


def main(args):
    ms_per_turn = int(args[0]) if args else 1
    print("CAL %d" % (1 if calibrate() else 0))
    m.boot()
    if m.hello() != "HELLO_R" or m.request("START", NOREPI) != "START_R":
        raise RuntimeError("setup: no session or no infusion")
    for _ in range(3):
        m.idle_turns()  # settle: the first saves, events
    # The same request served 4 times before the wrapping and 4 after: what "the
    # wrappers' own taken out" claims, checked on every run (a repeat may differ from
    # the one before: WebAssembly's HEARTBEAT varies by 128 B).
    bare = [serve(m._session.wire("HEARTBEAT", _next_seq(), {}))[0] for _ in range(4)]
    idle(ms_per_turn)
    missing = install(m._shell)
    wrapped = []
    for _ in range(4):
        total, _ = serve(m._session.wire("HEARTBEAT", _next_seq(), {}))
        wrapped.append(total - ACC[OWN])
    print("CHECK %d %d %d %d" % (min(bare), max(bare), min(wrapped), max(wrapped)))
    if missing:
        print("MISSING %s" % " ".join(missing))
    gc.collect()
    print("LIVE %d" % _mem())
    commands()


if __name__ == "__main__":
    main(sys.argv[1:])
