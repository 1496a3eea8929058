# Dispatch and store fuzz of the firmware shell, in the MicroPython subset, so the very
# same inputs reach both interpreters (issue 10: "nothing a record or a message says can
# kill the loop"; MicroPython's small ints overflow where CPython's never do).
#
#   run(seed, count, every, out, dump=None, records=True)
#       out(line) gets one line per `every` inputs:
#       "fuzz <inputs done> <digest as 8 hex digits> <escapes so far>"
#   and at the end "fuzz done ..." (the totals) plus an "escape ..." line for each of
#   the first escapes (interpreter-specific wording: never compared).
#   dump=(lo, hi): also "in <i> <hex>" for every input i in [lo, hi) and "out <i> <k>
#   <hex>" for each frame the device sent in answer ("out <i> - escape <where> <name>"
#   where an exception left the loop): the frame-by-frame comparison.
#   records: one input in a hundred edits the saved record (any value of the snapshot
#   replaced by another of any type, sealed again by persist.Record.save) and reboots on it;
#   False: messages only, so a difference is the dispatch's.
#
# The generator is its own xorshift32 (random differs between the interpreters), drawn
# in a fixed order, so a seed means the same inputs everywhere. The digest is a CRC-32
# running over every byte the device writes to its link, and over the name of each
# exception that escapes a turn: two interpreters that agree print the same digests.
#
# An escape is what would leave the board's loop: the watchdog would reset the board,
# so the fuzz reboots the shell on the same store (its record as the last turn left
# it). A boot that raises is a boot escape; a second on the same record is a boot
# loop (the board would never come up): counted, and the store emptied to go on.
# Frames are built with the real codec (messages.to_wire, frame.encode) and the
# catalog's field tables, never by hand, so they follow the wire as it changes; once
# HELLO_R carries a session id (frame.sid), later requests carry it too.
#
# Authenticated sessions (issue 11): tests/portable/fuzzlink.py holds the fuzz's side
# of the link (the keys, the session, genuine and mutated frames) and judges, after
# every input, that nothing unauthenticated ran; "fuzz auth: ..." counts the genuine
# frames that ran and anything unauthenticated that did.
from binascii import crc32

from protocol import catalog, frame, messages
from tests.portable import shellkit
from tests.portable.fuzzlink import AuthLink, state

_M32 = 0xFFFFFFFF
# Values a request's field takes when the fuzz plays a plausible host, by field name;
# otherwise a field gets any value its type allows (extremes included).
_PLAUSIBLE = {
    "ch": (1, 2, 1, 2, 0, 3),
    "to": (2, 1, 2, 1, 0, 3),  # HANDOVER's: mostly the other channel
    "drug": ("norepinephrine", "vasopressin", "epinephrine", "dopamine", "propofol"),
    "dose": (30000, 40000, 60000, 100000, 120000, 150000, 200000, 5000000),
    "unit": ("mcg/kg/min", "units/min", "mcg/min", "milliunits/min", "mL/h"),
    "weight": (70000000, 2000000, None),
    "conc": (16000000, 1000000, 64000000, None),
    "conc_unit": ("mcg/mL", "units/mL", ""),
    "volume": (50000000, 20000000, None),
    "reason": ("occlusion", "air_in_line", "extravasation", "clinician", "nope"),
    "first": (0, 1, 2, 8, 0x7FFFFFFF, 0x80000000, _M32),
    "alarm_id": (1, 2, 3, 0xFFFF),
    "protocol": (catalog.PROTOCOL_VERSION,),
    "schema": (catalog.SCHEMA_HASH,),
    "host": ("fuzz", "other"),
    "override": (False, True),
    "supervise_s": (0, 1, 5, 60, 0xFFFF),
    "wall_ms": (0, 1764580000000, 0xFFFFFFFFFFFFFFFF),
    "interval_s": (0, 1, 5, 0xFFFF),
    "role": (1, 2, 3, 2, 2, 3, 0, 4, 0xFF),
}
_TITRATIONS = (
    (60000, "mcg/kg/min"),
    (120000, "mcg/kg/min"),
    (150000, "mcg/kg/min"),
    (80000, "mcg/kg/min"),
    (20000, "units/min"),
    (40000, "units/min"),
)
_WORDS = ("", "norepinephrine", "units/mL", "mcg/kg/min", "clinician", "\u00e9\u00e9", "x" * 40)
# Largest value per unsigned type, and the signed i32 range of quantities.
_UMAX = {
    catalog.U8: 0xFF,
    catalog.U16: 0xFFFF,
    catalog.U32: _M32,
    catalog.U64: 0xFFFFFFFFFFFFFFFF,
    catalog.MS: 0xFFFFFFFFFFFFFFFE,
    catalog.OMS: 0xFFFFFFFFFFFFFFFE,
    catalog.OS: 0xFFFFFFFE,
}
_OPTIONAL = (catalog.OQ, catalog.OMS, catalog.OS)
_REQUESTS = [m[1] for m in catalog.MESSAGES if catalog.is_request(m[0])]
_SHOWN_ESCAPES = 20  # escape lines printed (every one is counted)


class Rng:
    # xorshift32 (Marsaglia 2003): the same numbers on every interpreter.
    def __init__(self, seed):
        self.x = (seed * 2654435761 + 1) & _M32 or 1

    def u32(self):
        x = self.x
        x ^= (x << 13) & _M32
        x ^= x >> 17
        x ^= (x << 5) & _M32
        self.x = x
        return x

    def below(self, n):
        if n <= 0x100000000:
            return self.u32() % n
        return ((self.u32() << 32) | self.u32()) % n

    def pick(self, items):
        return items[self.below(len(items))]

    def bytes(self, n):
        return bytes([self.u32() & 0xFF for _ in range(n)])


def _uint(rng, top):
    k = rng.below(6)
    if k == 0:
        return top
    if k == 1:
        return rng.below(4)
    if k == 2:
        return top >> 1 if rng.below(2) else (top >> 1) + 1  # the signed boundary
    return rng.below(top + 1)


def _value(rng, f):
    t = f[1]
    if f[0] in _PLAUSIBLE and rng.below(2):
        v = rng.pick(_PLAUSIBLE[f[0]])
        if v is not None or t in _OPTIONAL:
            return v
    if t in _OPTIONAL and rng.below(4) == 0:
        return None
    if t == catalog.BOOL:
        return rng.below(2) == 1
    if t in (catalog.Q, catalog.OQ):
        k = rng.below(4)
        if k == 0:
            return rng.pick((0x7FFFFFFF, -0x7FFFFFFF, 0, -1))
        return rng.below(0xFFFFFFFF) - 0x7FFFFFFF
    if t in _UMAX:
        return _uint(rng, _UMAX[t])
    if t == catalog.RAW:
        return rng.bytes(f[2])
    if t in (catalog.STR, catalog.TEXT):
        if rng.below(2):
            return rng.pick(_WORDS)
        return "".join([chr(32 + rng.below(95)) for _ in range(rng.below(f[2] + 1))])
    # LIST: records of its own fields
    return [_fields(rng, f[3]) for _ in range(rng.below(f[2] + 1))]


def _fields(rng, fields):
    out = {}
    for f in fields:
        out[f[0]] = _value(rng, f)
    return out


class Fuzz:
    def __init__(self, seed, records=True):
        self.rng = Rng(seed)
        self.records = records  # also edit the saved record now and then (store fuzz)
        self.store = shellkit.Store()
        self.tick = 0
        self.sid = 0  # the session id of the last HELLO_R (0 before protocol 2)
        self.seq = 0
        self.hello = False  # the input being fed is a HELLO: read the session id
        self.dumping = None  # out() while this input's frames are dumped
        self.index = -1
        self.sent = []  # recent wires, for retries and late duplicates
        self.digest = 0
        self.escapes = 0
        self.mutated = False  # a record was edited and sealed again (store fuzz)
        self.escapes_mutated = 0  # escapes since then: the record's, maybe not the message's
        self.boot_escapes = 0
        self.boot_loops = 0
        self.kinds = {}  # escape type name -> count
        self.notes = []
        self.entropy = shellkit.Entropy(seed)  # the board's, across boots: both alike
        self.link = AuthLink()  # the authenticated link, the fuzz's side
        self.unauthenticated = 0  # anything that ran unauthenticated: the finding
        self.inputs = -1  # the index of the input being fed
        self._boot()

    # -- the device ----------------------------------------------------------------------

    def _boot(self):
        for attempt in range(2):
            self.p = shellkit.ports(store=self.store, start=self.tick, entropy=self.entropy)
            try:
                self.sh = shellkit.shell(self.p)
                self.sh.begin()
                return
            except Exception as exc:  # a record that kills the boot: the finding
                self.boot_escapes += 1
                self._escaped("boot", exc)
                if attempt:
                    self.boot_loops += 1
                    self.store = shellkit.Store()
                    self.link.keys = dict(shellkit.KEYS)
                    self.mutated = False
        self.p = shellkit.ports(store=self.store, start=self.tick, entropy=self.entropy)
        self.sh = shellkit.shell(self.p)
        self.sh.begin()

    def _escaped(self, where, exc):
        name = type(exc).__name__
        self.kinds[name] = self.kinds.get(name, 0) + 1
        self.digest = crc32(("escape " + where + " " + name).encode(), self.digest)
        if self.dumping is not None:  # in the frame stream, where the frames stop
            self.dumping("out %d - escape %s %s" % (self.index, where, name))
        if len(self.notes) < _SHOWN_ESCAPES:
            self.notes.append("escape %s %s: %s" % (where, name, exc))

    def _turns(self, n):
        for _ in range(n):
            try:
                self.sh.step()
            except Exception as exc:  # out of the loop: the watchdog resets the board
                self.escapes += 1
                if self.mutated:
                    self.escapes_mutated += 1
                self._escaped("step", exc)
                self.tick = self.p["clock"].t
                self._boot()
                return

    def _drain(self):
        link = self.p["link"]
        out = bytes(link.tx)
        link.tx = bytearray()
        self.digest = crc32(out, self.digest)
        return out

    # -- the inputs ----------------------------------------------------------------------

    def _next_seq(self):
        k = self.rng.below(16)
        if k == 0:
            return self.rng.below(0x10000)  # a far jump: big or stale seqs
        if k == 1:
            return self.seq  # a reused seq
        self.seq = (self.seq + 1) & 0xFFFF
        return self.seq

    def _sid(self):
        if self.sid and self.rng.below(16) == 0:
            return self.rng.pick((0, (self.sid + 1) & 0xFFFF or 1))
        return self.sid

    def _frame(self, msg_id, seq, payload, sid):
        if msg_id == catalog.ID["HELLO"]:
            self.hello = True
            self.link.hello(payload)
        if sid:
            return self.link.tagged(self.rng, msg_id, seq, payload, sid)
        return frame.encode(msg_id, seq, payload)

    def _message(self, name, fields=None):
        msg_id = catalog.ID[name]
        if fields is None:
            fields = _fields(self.rng, catalog.FIELDS[msg_id])
        seq = self._next_seq()
        sid = 0 if name == "HELLO" else self._sid()
        try:
            payload = messages.encode(name, fields)
        except ValueError:  # more than MAX_PAYLOAD: sent empty instead
            payload = b""
        return self._frame(msg_id, seq, payload, sid)

    def _command(self):
        rng = self.rng
        ch = 1 + rng.below(2)
        k = rng.below(8)
        if k < 2:
            start = dict(rng.pick((shellkit.NOREPI, shellkit.VASO)))
            start["ch"] = ch
            return "START", start
        if k < 6:
            dose, unit = rng.pick(_TITRATIONS)
            return "TITRATE", {"ch": ch, "dose": dose, "unit": unit, "override": rng.below(4) == 0}
        if k < 7:
            return "STOP", {"ch": ch}
        return "STATUS", {"ch": ch}

    def _input(self):
        # One input: (wire bytes for the link, or None when the input is an action).
        rng = self.rng
        if self.link.auth_due:
            self.link.auth_due = False
            if rng.below(4):
                return self.link.auth(self._next_seq())
        k = rng.below(100)
        if k < 15:  # a clinician's command, as a host would send it
            return self._message(*self._command())
        if k < 45:
            return self._message(rng.pick(_REQUESTS))
        if k < 55:
            hello = _fields(rng, catalog.FIELDS[catalog.ID["HELLO"]])
            hello["protocol"] = catalog.PROTOCOL_VERSION
            hello["schema"] = catalog.SCHEMA_HASH
            return self._message("HELLO", hello)
        if k < 63:  # any msg id, any payload, a valid CRC
            n = rng.below(frame.MAX_PAYLOAD + 1) if rng.below(4) == 0 else rng.below(24)
            return self._frame(rng.below(256), self._next_seq(), rng.bytes(n), self._sid())
        if k < 71:  # a request's payload cut short or grown, re-framed with a valid CRC
            name = rng.pick(_REQUESTS)
            msg_id = catalog.ID[name]
            try:
                payload = messages.encode(name, _fields(rng, catalog.FIELDS[msg_id]))
            except ValueError:
                payload = b""
            if rng.below(2) and payload:
                payload = payload[: rng.below(len(payload))]
            else:
                payload = payload + rng.bytes(1 + rng.below(8))
            return self._frame(msg_id, self._next_seq(), payload[: frame.MAX_PAYLOAD], self._sid())
        if k < 79:  # damaged wire: cut, flipped or noise
            if not self.sent or rng.below(4) == 0:
                return rng.bytes(1 + rng.below(300))
            wire = bytearray(rng.pick(self.sent))
            if rng.below(2):
                wire = wire[: rng.below(len(wire))]
            else:
                wire[rng.below(len(wire))] ^= 1 << rng.below(8)
            return bytes(wire)
        if k < 87:  # a retry or a late duplicate of an earlier frame
            if self.sent:
                return rng.pick(self.sent)
            return None
        if k < 93:
            self.p["clock"].advance(rng.pick((1, 999, 60000, 900000, 3600000, 1 << 28)))
        elif k < 97:
            motor = self.p["motors"][rng.below(len(self.p["motors"]))]
            if rng.below(2):
                motor.owed = rng.pick((1, 1000, 999999, 50000000))
            else:
                motor.fault_kind = rng.pick((None, "occlusion", "air_in_line", "syringe_empty"))
        elif k < 99 or not self.records:  # a power cut: the shell booted again on its store
            self.tick = self.p["clock"].t
            self._boot()
        else:
            self._mutate_record()
            self.tick = self.p["clock"].t
            self._boot()
        return None

    # -- the store ------------------------------------------------------------------------

    def _mutate_record(self):
        # One value of the saved state changed and the record sealed again by persist's
        # own Record.save (a valid CRC, the next counter): the restore must judge it.
        from firmware import persist

        record = persist.Record(self.store)
        try:
            saved = record.load()
        except persist.StoreError:
            return
        if saved is None:
            return
        snapshot, uptime = saved
        leaves = []
        _leaves(snapshot, leaves)
        if not leaves:
            return
        holder, key = leaves[self.rng.below(len(leaves))]
        holder[key] = self.rng.pick(
            (None, -1, 0, 0x7FFFFFFF, 0x80000000, 1 << 64, 1.5, "x", [], {}, True, [[[[1]]]])
        )
        record.save(snapshot, uptime)  # the next counter: an edit, not a rollback
        self.mutated = True

    # -- the run -------------------------------------------------------------------------

    def one(self, dump_index=-1, out=None):
        self.index = dump_index
        self.dumping = out if dump_index >= 0 else None
        self.link.next_input()
        self.inputs += 1
        wire = self._input()
        sh = self.sh
        before = state(sh)
        logged = sh.core.log.next_seq
        if self.dumping is not None:
            out("in %d %s" % (dump_index, _hex(wire or b"")))
        if wire is None:
            self._turns(1)
        else:
            if wire:
                if len(self.sent) >= 8:
                    self.sent.pop(0)
                self.sent.append(wire)
            self.p["link"].rx += wire
            self._turns(2 + len(wire) // 64)
        if self.sh is sh:  # no reboot: what ran is the input's doing
            for what in self.link.judge(sh, before, logged):
                self._unauthenticated(what)
        answer = self._drain()
        opened = self.link.answered(answer, self.hello)
        if opened is not None:
            self.sid = opened
        self.hello = False
        if self.dumping is not None:
            k = 0
            for part in answer.split(b"\x00"):
                if part:
                    out("out %d %d %s" % (dump_index, k, _hex(part)))
                    k += 1

    def _unauthenticated(self, what):
        self.unauthenticated += 1
        self.digest = crc32(b"unauthenticated", self.digest)
        if len(self.notes) < _SHOWN_ESCAPES:
            self.notes.append("unauthenticated at input %d: %s" % (self.inputs, what))


def _leaves(node, out):
    if isinstance(node, dict):
        for key in sorted(node):
            out.append((node, key))
            _leaves(node[key], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _leaves(node[i], out)


def _hex(data):
    return "".join(["%02x" % b for b in data])


def run(seed, count, every, out, dump=None, records=True):
    """The whole run at once (CPython); returns the Fuzz with its counts."""
    last = None
    for last in phases(seed, count, every, out, dump, records):  # noqa: B007 (the last one)
        pass
    return last


def phases(seed, count, every, out, dump=None, records=True):
    """The run as a generator yielding the Fuzz after every `every` inputs: on the
    WebAssembly MicroPython, garbage is collected only between such steps (run.mjs
    PHASES), so a long run in one call would grow its heap without end."""
    fz = Fuzz(seed, records)
    for i in range(count):
        if dump is not None and dump[0] <= i < dump[1]:
            fz.one(i, out)
        else:
            fz.one()
        if (i + 1) % every == 0 or i + 1 == count:
            out("fuzz %d %08x %d" % (i + 1, fz.digest, fz.escapes))
            if i + 1 < count:
                yield fz
    _totals(fz, count, out)
    yield fz


def _totals(fz, count, out):
    for note in fz.notes:
        out(note)
    out(
        "fuzz auth: %d genuine frames ran, %d unauthenticated ran"
        % (fz.link.genuine_run, fz.unauthenticated)
    )
    kinds = ", ".join(["%s %d" % (k, fz.kinds[k]) for k in sorted(fz.kinds)])
    out(
        "fuzz done: %d inputs, %d escapes (%d after a re-sealed record), %d boot escapes,"
        " %d boot loops (%s)"
        % (
            count,
            fz.escapes,
            fz.escapes_mutated,
            fz.boot_escapes,
            fz.boot_loops,
            kinds or "none",
        )
    )
