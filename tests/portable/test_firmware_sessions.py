# Exactly once per session on both interpreters (protocol/SPEC.md §3): the session
# table alone, then play(): hosts and a faulty line driving the real shell, where no
# request ever runs twice whatever the line drops, corrupts, splits, joins, duplicates,
# delays or reorders. tests/test_sessions_property.py feeds play() from hypothesis.
from firmware import handlers
from firmware.sessions import CLINICIAN, HOLD_MS, Sessions
from protocol import catalog
from protocol.decoder import Decoder
from protocol.frame import encode
from tests.budgets import budget
from tests.portable.shellkit import Host, Session, hello_fields, ports, shell

_ACK = catalog.ID["ACK"]


def _authenticate(s, i, role="clinician"):
    # What AUTH leaves in the table when the host proved its role's key.
    s.role[i] = catalog.ROLES[role]
    s.authed[i] = True


def test_newer_is_16_bit_serial_arithmetic():
    s = Sessions(1)
    i, _ = s.open(10, 0xC0, 0)
    assert not s.newer(i, 10) and not s.newer(i, 9) and s.newer(i, 11)
    assert s.newer(i, 10 + 0x7FFF) and not s.newer(i, 10 + 0x8000)
    s.ran(i, 0xFFFF)
    assert s.newer(i, 0) and s.newer(i, 5) and not s.newer(i, 0xFFF0)


def test_sids_count_up_from_the_boot_id_skipping_0():
    s = Sessions(0xFFFE)
    sids = [s.sid[s.open(1, k, 0)[0]] for k in range(3)]  # three HELLOs
    assert sids == [0xFFFE, 0xFFFF, 1]
    assert Sessions(0x10000).sid[0] == 0 and Sessions(0x10000)._next == 1


def test_a_hello_takes_only_a_free_slot_or_a_handshake_that_waited_in_vain():
    # Four hosts proved their keys; a fifth is in its handshake. Another HELLO finds no
    # room (busy) until that handshake has waited HOLD_MS; then it takes its slot. A
    # HELLO never closes an authenticated session (only an AUTH does: make_room()).
    s = Sessions(1)
    slots = [s.open(1, k, 2 if k == 0 else 0, 100)[0] for k in range(5)]
    for i in slots[:4]:
        _authenticate(s, i)
    s.ran(slots[0], 2)  # a supervisor
    assert s.open(1, 9, 0, 100 + HOLD_MS - 1) == (-1, 0)
    assert s.open(1, 9, 0, 100 + HOLD_MS) == (slots[4], 5)
    assert [s.find(sid) for sid in (1, 2, 3, 4)] == slots[:4]
    assert s.supervision_s() == 2


def test_a_clinicians_auth_displaces_one_shot_sessions_first_then_supervisors():
    # Four clinicians' hosts supervise, heard within their window; a fifth proves its
    # key. A monitor's key never displaces a supervisor (-2: busy), a clinician's takes
    # the least recently heard one's place, and a one-shot session goes before any.
    s = Sessions(1)
    slots = [s.open(1, k, 2)[0] for k in range(5)]
    for i in slots[:4]:
        _authenticate(s, i)
        s.ran(i, 2)
    _authenticate(s, slots[4], "monitor")
    assert s.make_room(slots[4], 1_000) == -2
    s.role[slots[4]] = catalog.ROLES["clinician"]
    assert s.make_room(slots[4], 1_000) == slots[0]
    s.interval_s[slots[2]] = 0  # SUPERVISE 0: one-shot from now on
    assert s.make_room(slots[4], 1_000) == slots[2]
    s.close(slots[2])
    assert s.make_room(slots[4], 1_000) == -1  # three others: room without closing one


def test_recency_is_renumbered_before_it_grows_big():
    s = Sessions(1, size=2)
    a = s.open(1, 1, 0)[0]
    b = s.open(1, 2, 0)[0]
    s._clock = (1 << 29) - 1
    s.heard(a)  # renumbered: b stays the least recently heard
    assert s._clock < 8
    assert s.open(1, 3, 0, HOLD_MS) == (b, 2)


def test_a_retried_hello_gets_the_session_its_first_copy_opened():
    # The answer to a HELLO was lost: the host sends it again, byte for byte. One
    # session, not a ghost per copy (a ghost would crowd out other hosts' sessions).
    s = Sessions(1)
    i, _ = s.open(1, 0xAB, 5)
    assert s.open(1, 0xAB, 5) == (i, 0)
    assert [sid for sid in s.sid if sid] == [1]
    s.ran(i, 2)  # once it ran a request, the same bytes are another host's HELLO
    j, _ = s.open(1, 0xAB, 5)
    assert j != i and s.sid[j] == 2


def test_a_session_supervises_only_once_it_ran_a_request():
    # A host whose HELLO (supervise 5) was answered but never heard from again
    # (the answer lost, the host gone) raises no link alarm; one that goes on does.
    s = Sessions(1)
    ghost, _ = s.open(1, 0xA, 5)
    assert s.supervision_s() == 0
    real, _ = s.open(1, 0xB, 3)
    _authenticate(s, real)
    s.ran(real, 2)
    assert s.supervision_s() == 3
    s.interval_s[real] = 0  # SUPERVISE 0: the goodbye
    assert s.supervision_s() == 0  # the ghost still does not count


# --- hosts and a faulty line around the real shell -------------------------------------


class _Line:
    """Hosts (sessions) on one line to one device; `runs` counts each request run."""

    def __init__(self, hosts):
        self.p = ports()
        self.sh = shell(self.p)
        self.host = Host(self.sh, self.p)  # the shell's own loop, frames in and out
        self.seq = [0] * hosts
        self.sid = [0] * hosts
        self.auth = [Session() for _ in range(hosts)]  # each host's authentication
        self.sent = []  # (host, request id, wire) of every request ever sent
        self.runs = {}  # request id -> times run
        self.answered = {}  # request id -> answer names its host saw
        self.key = {}  # (sid, seq) -> request id
        self._next_id = 1

    def hello(self, h, restart):
        if restart:
            self.seq[h] = 0  # a restarted host: its seqs from 1 again, in a new session
        self.seq[h] += 1
        seq = self.seq[h]
        session = self.auth[h]
        self.host.send_wire(session.hello(seq, hello_fields(host="h%d" % h)))
        for f in self.host.raw():
            if f.msg_id == catalog.ID["HELLO_R"] and f.seq == seq:
                session.opened(f)
                self.sid[h] = f.sid
        self.seq[h] += 1  # AUTH, over the line as it is (never faulty)
        self.host.send_wire(session.auth_wire(self.seq[h]))
        names = [catalog.NAME[f.msg_id] for f in self.host.raw() if f.seq == self.seq[h]]
        assert names == ["AUTH_R"], names
        session.authed = True

    def new_request(self, h):
        if not self.sid[h]:
            self.hello(h, False)
        self.seq[h] += 1
        rid = self._next_id
        self._next_id += 1
        wire = self.auth[h].wire("ACK", self.seq[h], {"alarm_id": rid})
        self.sent.append((h, rid, wire))
        self.key[(self.sid[h], self.seq[h])] = rid  # sids are never reused in a boot
        return rid, wire

    def deliver(self, data, pieces=1):
        step = len(data) // pieces + 1
        for k in range(0, len(data), step):
            self.host.send_wire(data[k : k + step])
        sids = []
        frames = self.host.frames(sids)
        for k in range(len(frames)):
            self._seen(frames[k], sids[k])

    def _seen(self, f, sid):
        name, seq, _fields = f
        rid = self.key.get((sid, seq))
        if rid is not None and name != "ERROR" and not catalog.is_event(catalog.ID[name]):
            self.answered.setdefault(rid, []).append(name)


def play(ops, hosts=3):
    """Run ops (ints) on a line of `hosts` hosts; returns the line after checking that
    no request ran twice and that every answer a host took as its own ran once."""
    line = _Line(hosts)
    served = handlers.SERVED[_ACK]

    def counting(sh, f, now):
        line.runs[f[0]] = line.runs.get(f[0], 0) + 1  # ACK's alarm_id
        return served(sh, f, now)

    handlers.SERVED[_ACK] = counting
    try:
        for op in ops:
            _step(line, op % 8, (op >> 3) % hosts, op >> 5)
    finally:
        handlers.SERVED[_ACK] = served
    for rid in line.runs:
        assert line.runs[rid] == 1, (rid, line.runs[rid])
    for rid in line.answered:
        assert line.runs.get(rid) == 1, ("answered but not run", rid)
    return line


def _step(line, kind, h, pick):
    sent = line.sent
    if kind <= 1:  # a new request, delivered
        line.deliver(line.new_request(h)[1])
    elif kind == 2 and sent:  # duplicate, delay, reorder: an earlier copy again
        line.deliver(sent[pick % len(sent)][2])
    elif kind == 3:  # a HELLO: the host reconnects (restarted, or keeping its seqs)
        line.hello(h, pick & 1)
    elif kind == 4 and sent:  # corrupt: one byte of a copy flipped
        wire = bytearray(sent[pick % len(sent)][2])
        at = 1 + (pick >> 1) % (len(wire) - 2)
        wire[at] ^= 1 << (pick & 7)
        line.deliver(bytes(wire))
    elif kind == 5 and sent:  # split: a copy in pieces, a loop turn between them
        line.deliver(sent[pick % len(sent)][2], 2 + pick % 3)
    elif kind == 6 and sent:  # join: two copies in one read
        line.deliver(sent[pick % len(sent)][2] + sent[(pick >> 2) % len(sent)][2])
    elif kind == 7:  # drop: a new request lost on the way (a later copy may arrive)
        line.new_request(h)


def _ops(seed, n):
    # A small LCG: the same interleavings on both interpreters, small ints only.
    out = []
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        out.append(x >> 8)
    return out


# Seeds of 150 operations each: make test's against make fuzz's (tests/budgets.py)
INTERLEAVINGS = budget(6, 60)


def test_random_interleavings_never_run_a_request_twice():
    for seed in range(1, 1 + INTERLEAVINGS):
        line = play(_ops(seed, 150))
        assert line.runs  # requests did run


def test_a_copy_after_many_newer_requests_and_a_hello_is_refused_stale():
    line = play([0] * 6)  # host 0: six requests, each run
    first = line.sent[0][2]
    line.hello(0, False)
    line.host.send_wire(first)
    assert [f[0] for f in line.host.frames()] == ["ERROR"]
    assert len(line.runs) == 6


def test_a_hello_shorter_than_its_fixed_prefix_never_reaches_the_shell():
    # protocol and schema are 5 bytes: the decoder's bound for HELLO starts there.
    dec = Decoder()
    assert dec.decode(encode(0x01, 1, b"\x02\x00\x00\x00")) == []
    assert dec.bad_length == 1
    assert len(dec.decode(encode(0x01, 1, b"\x02\x00\x00\x00\x00"))) == 1


def test_a_retried_hello_leaves_no_ghost_supervisor_behind_a_goodbye():
    # The answer to a HELLO declaring supervision was lost and the host sent it again:
    # its goodbye (SUPERVISE 0) ends supervision; no ghost of the first copy alarms on.
    p = ports()
    sh = shell(p)
    host = Host(sh, p)
    host.seq += 1
    wire = host.session.hello(host.seq, hello_fields(5))
    host.send_wire(wire)
    p["link"].tx = bytearray()  # the answer lost on the line
    host.send_wire(wire)  # the retry, byte for byte
    assert host.answer(host.seq, True)[0] == "HELLO_R"
    assert [sid for sid in sh.sessions.sid if sid] == [host.sid]  # one session
    assert host.request("AUTH", {})[0] == "AUTH_R"
    name, fields = host.request("SUPERVISE", {"interval_s": 0})
    assert name == "SUPERVISE_R", fields
    for _ in range(120):  # two minutes of silence
        p["clock"].advance(1000)
        sh.step()
    assert "link_lost" not in [a.code for a in sh.core.alarms()]


def test_a_hello_flood_evicts_pending_sessions_before_an_authenticated_one():
    # Anyone on the line can say HELLO; only a host holding a key passes AUTH. A flood
    # of HELLOs must not push out the session of the host that did, even a one-shot one
    # heard least recently: it cycles through its own pending sessions.
    s = Sessions(1)
    bedside = s.open(1, 0xB, 0)[0]
    s.authed[bedside] = True
    s.ran(bedside, 2, 1)
    for k in range(20):
        _, evicted = s.open(1, 0x100 + k, 0)
        assert evicted != 1  # the bedside session's sid
    assert s.find(1) == bedside and s.authed[bedside]


def test_the_role_that_supervises_is_the_catalogs_clinician():
    assert catalog.ROLES["clinician"] == CLINICIAN
