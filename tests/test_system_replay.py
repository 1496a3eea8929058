"""Replays and forgeries against the authenticated link (protocol/SPEC.md §12), through
the real host API and CLI, on both emulator runtimes over the emulator's PTY.

1. Every byte a real authenticated session writes (HELLO, AUTH, START, TITRATE, ESTOP,
   STATUS: the link's port teed from its opening) played back: (a) raw, into the same
   port once the session closed; (b) after the replayer's own HELLO, its frames moved
   into the replayer's session (the replayer holds no key: it re-frames them with the
   project's codec, their tags and counters as recorded); (c) after a power cycle, raw
   and as in (b). Nothing runs (the persistent log has no command `received`, the
   channel is as it was) and the device's INFO counters say how each frame was
   refused, exactly as §12's table of checks says.
2. A genuine tagged START with one bit of its tag flipped, for each of the 64 bits,
   re-framed with a correct CRC: refused ERROR auth, not run, bad_tag + 64; the same
   START untouched is then the frame the API itself sends, and it runs.
3. A power cycle mid-session: device and host nonces and session keys never repeat
   (5 sessions either side), boot_id changes, and the old session's next request (a
   genuine frame it never sent) is refused hello_required and not run.

Each fails on BASE (07f2b71, before authentication); the why is at each test. The
refusal counts are printed for the issue's closing note: pytest -s (without -n), or
-rP.
"""

import json
import os
import struct
import subprocess
import sys
import time
from decimal import Decimal

import pumpguard
import pytest
import serial
from pumpguard.api.client import AUTH_COUNTERS  # INFO_R's auth_refused, bad_tag...

from protocol import auth, catalog, cobs, messages
from protocol.crc import crc32
from protocol.decoder import Decoder
from protocol.frame import FLAG_AUTH, FLAG_SID, VERSION_FLAGS
from tests.systemkit import ANSWER_TIMEOUT_S, hello_fields, start_norepinephrine

pytestmark = pytest.mark.system

RECORDED = ["HELLO", "AUTH", "START", "TITRATE", "ESTOP", "STATUS"]
COMMANDS = ("START", "TITRATE", "ESTOP")  # the recorded requests that change delivery
TAGGED = ["START", "TITRATE", "ESTOP", "STATUS"]
# START as Pump.start() encodes start_norepinephrine(pump, "0.1") (tests/systemkit.py)
START = {
    "ch": 1,
    "drug": "norepinephrine",
    "dose": 100_000,
    "unit": "mcg/kg/min",
    "weight": 70_000000,
    "conc": 16_000000,
    "conc_unit": "mcg/mL",
    "volume": 50_000000,
    "override": False,
}


class TeePort:
    """The link's serial port, every write kept (bench/latency_bench.py's
    CountingPort, teeing): a write is one frame's wire bytes (link.py sends each
    attempt of a frame with one write)."""

    def __init__(self, port, writes):
        self._port = port
        self.writes = writes

    def write(self, data):
        self.writes.append(bytes(data))
        return self._port.write(data)

    def __getattr__(self, name):  # read, timeout, in_waiting, flush...: the real port's
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name in ("_port", "writes"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


def _recording_connect(emu, writes, monkeypatch):
    """pumpguard.connect() with its port teed from the moment it opens: its HELLO and
    AUTH are recorded too."""
    real = serial.serial_for_url
    with monkeypatch.context() as m:
        m.setattr(serial, "serial_for_url", lambda *a, **k: TeePort(real(*a, **k), writes))
        return pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S)


def _frame(wire):
    (frame,) = Decoder().decode(wire)
    return frame


def _wire(msg_id, seq, payload, sid=0, ctr=0, tag=None):
    """A frame by hand, with any tag (the replayer cannot compute one): the layout of
    protocol/frame.py, its CRC correct, COBS and delimiters."""
    verfl = VERSION_FLAGS | (FLAG_SID if sid else 0) | (FLAG_AUTH if tag is not None else 0)
    body = struct.pack("<BBHB", verfl, msg_id, seq, len(payload))
    if sid:
        body += struct.pack("<H", sid)
    body += bytes(payload)
    if tag is not None:
        body += struct.pack("<I", ctr) + bytes(tag)
    body += struct.pack("<I", crc32(body))
    return b"\x00" + cobs.encode(body) + b"\x00"


def _moved(frame, sid):
    """A recorded frame in another session: its sid replaced, its payload, counter and
    tag as recorded, its CRC made right."""
    return _wire(frame.msg_id, frame.seq, frame.payload, sid, frame.ctr, frame.tag)


class Answer:
    """The device's answer to one request frame."""

    def __init__(self, frame):
        self.frame = frame
        self.name = catalog.NAME[frame.msg_id]
        self.fields = messages.decode(frame.msg_id, frame.payload)
        self.message = self.fields.get("message")

    @property
    def how(self):
        """In a word: the name, or the ERROR's code (", tagged" when it carries a tag)."""
        if self.name != "ERROR":
            return self.name
        code = catalog.ERROR_NAMES[self.fields["code"]]
        return f"{code}, tagged" if self.frame.tag is not None else code


def _ask(port, wire, timeout=3 * ANSWER_TIMEOUT_S):
    """Write one request frame; its Answer: the next frame that is not an event and
    has the request's seq (and sid, but for HELLO)."""
    request = _frame(wire)
    decoder = Decoder()
    port.write(wire)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port.timeout = max(0.01, deadline - time.monotonic())
        for frame in decoder.decode(port.read(port.in_waiting or 1)):
            if catalog.is_event(frame.msg_id) or frame.seq != request.seq:
                continue
            if request.msg_id != catalog.ID["HELLO"] and frame.sid != request.sid:
                continue
            return Answer(frame)
    raise AssertionError(f"no answer to {catalog.NAME[request.msg_id]} seq {request.seq}")


def _replay(port, wires):
    """Each (name, wire) asked in turn: {name: Answer}."""
    return {name: _ask(port, wire) for name, wire in wires}


def _on_raw_port(emu, talk):
    """What talk(port) returns, on a port of the emulator's opened raw (no key, as a
    replayer's), its input drained first and closed after."""
    port = serial.serial_for_url(emu.port, timeout=ANSWER_TIMEOUT_S)
    try:
        port.reset_input_buffer()
        return talk(port)
    finally:
        port.close()


def _hows(answers):
    return {name: a.how for name, a in answers.items()}


class Recording:
    """A real session's frames and their wire bytes by name, its session key, the boot
    it ran in, the log seq the replays start from and channel 1's status after it."""

    def __init__(self, frames, wires, ks, boot_id, since, status):
        self.frames = frames
        self.wires = wires
        self.ks = ks
        self.boot_id = boot_id
        self.since = since
        self.status = status


def _record_session(emu, monkeypatch):
    """A real session (HELLO, AUTH, START, TITRATE, ESTOP, STATUS), every byte it
    writes recorded."""
    writes = []
    with _recording_connect(emu, writes, monkeypatch) as pump:
        start_norepinephrine(pump, "0.1")
        # 0.1 -> 0.12 right after the start: sooner than the rise interval, hence override
        pump.titrate(1, "0.12", "mcg/kg/min", override=True)
        pump.emergency_stop(1, "clinician")
        status = pump.status(1)
        ks = pump._link._ks
        boot_id = pump.device["boot_id"]
    frames = [_frame(w) for w in writes]
    names = [catalog.NAME[f.msg_id] for f in frames]
    assert names == RECORDED  # every frame written, once (no retry)
    frames = dict(zip(RECORDED, frames, strict=True))
    # the codec by hand gives back every recorded frame byte for byte (so _moved() is
    # only what it says: a sid changed)
    for f, w in zip(frames.values(), writes, strict=True):
        assert _wire(f.msg_id, f.seq, f.payload, f.sid, f.ctr, f.tag) == w
    assert [frames[n].ctr for n in TAGGED] == [1, 2, 3, 4]
    # read in a session of its own: STATUS stays the recorded session's last request
    with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
        log = pump.log()
    ran = [e.kind for e in log if e.code == "received"]
    assert ran == ["start", "titrate", "emergency_stop"], ran  # the control: they ran once
    assert status.state == "stopped" and emu.pumps()[0]["rate"] == 0
    since = max(e.seq for e in log) + 1
    return Recording(frames, dict(zip(RECORDED, writes, strict=True)), ks, boot_id, since, status)


def _next_log_seq(pump):
    return max((e.seq for e in pump.log()), default=-1) + 1


def _observe(emu, since):
    """(the commands run since log seq `since`, channel 1's status, the INFO counters)."""
    with pumpguard.connect(emu.port, key=emu.key, timeout=ANSWER_TIMEOUT_S) as pump:
        ran = [(e.kind, e.text) for e in pump.log(since) if e.code == "received"]
        counters = pump.info().counters
        return ran, pump.status(1), {k: counters[k] for k in AUTH_COUNTERS}


def _delta(after, before):
    return {k: after[k] - before[k] for k in AUTH_COUNTERS}


def _report(runtime, case, answers, counted):
    print(
        f"\n[{runtime}] replay {case}: {len(answers)} frames replayed, 0 executed; "
        f"answers {_hows(answers)}; INFO counters grew {counted}"
    )


def _same_channel(a, b):
    # not the volume: a power cycle restores the last saved one (tests/test_system_power.py)
    return (a.state, a.drug, a.dose, a.dose_unit, a.rate_ml_h) == (
        b.state,
        b.drug,
        b.dose,
        b.dose_unit,
        b.rate_ml_h,
    )


def _cli(emu, *args):
    argv = [sys.executable, "-m", "pumpguard", "--port", emu.port, "--key", emu.key, *args]
    env = dict(os.environ, PUMPGUARD_TIMEOUT=str(ANSWER_TIMEOUT_S), PUMPGUARD_KEY="")
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def _replay_into_own_session(replayer, rec):
    """(b)'s replayer: its own HELLO (a fresh nonce, and no key to go on with), then
    every recorded frame moved into its session: the tagged ones first, so that each
    meets the session open (AUTH refused closes it, SPEC §12), then AUTH, then HELLO
    as it was. Its HELLO takes the recorded HELLO's seq, so every recorded seq is newer
    than its session's last: §3's window lets them all by, only authentication can
    refuse them. (answers by name, the replayer's HELLO_R)."""
    hello = messages.to_wire("HELLO", rec.frames["HELLO"].seq, hello_fields(host="replayer"))
    hello_r = _ask(replayer, hello)
    assert hello_r.name == "HELLO_R"
    sid = hello_r.frame.sid
    moved = [(n, _moved(rec.frames[n], sid)) for n in [*TAGGED, "AUTH"]]
    return _replay(replayer, [*moved, ("HELLO", rec.wires["HELLO"])]), hello_r.fields


# On BASE (07f2b71) there is no AUTH, no tag, no INFO counter of them: the recording
# itself fails there (HELLO_R has no board_id, connect() takes no key). Of the
# replays this one alone BASE refuses too: §3's seq window answers the old session's
# seqs stale, whatever the frame (a BASE run of it: START, TITRATE, ESTOP stale,
# STATUS its cached answer, nothing run). What BASE cannot do is what is asserted
# here: the counter check (step d: stale_ctr + 3, "counter N not newer", an untagged
# ERROR that spends no device counter) and AUTH's once per session.
def test_a_recorded_session_replayed_raw_after_it_closed_runs_nothing(
    emulator, pump_target, monkeypatch
):
    rec = _record_session(emulator, monkeypatch)
    ran, status, counters = _observe(emulator, rec.since)
    assert ran == [] and _same_channel(status, rec.status)
    # byte for byte, in its order
    answers = _on_raw_port(emulator, lambda port: _replay(port, rec.wires.items()))
    # HELLO opens a session the replayer cannot authenticate (a new device nonce: th and
    # Ks another); AUTH in the session it authenticated once is refused, not counted;
    # the commands are authentic, their counters not newer (step d); STATUS is the
    # session's last request: its cached answer again (step a), nothing run.
    assert _hows(answers) == {
        "HELLO": "HELLO_R",
        "AUTH": "auth",
        "START": "stale",
        "TITRATE": "stale",
        "ESTOP": "stale",
        "STATUS": "STATUS_R",
    }
    assert answers["HELLO"].frame.sid != rec.frames["AUTH"].sid
    assert answers["AUTH"].message == "already authenticated: AUTH not run"
    for n in COMMANDS:
        ctr = rec.frames[n].ctr
        assert answers[n].message == (
            f"counter {ctr} not newer than counter 4, the last this session sent: not run"
        )
        # untagged: a replay spends none of the device's counters (SPEC §12, step d)
        assert answers[n].frame.tag is None
    ran, after, counters_after = _observe(emulator, rec.since)
    counted = _delta(counters_after, counters)
    _report(pump_target, "(a) raw, after the session closed", answers, counted)
    assert counted == {"auth_refused": 0, "bad_tag": 0, "stale_ctr": 3, "forbidden": 0}
    assert ran == [] and after == status  # not a field of the channel changed
    assert emulator.pumps()[0]["rate"] == 0
    # the CLI reads the same persistent log: the recorded session's three commands,
    # each received once, before the replay; none after
    r = _cli(emulator, "log", "--jsonl")
    assert r.returncode == 0, r.stderr
    received = [json.loads(line) for line in r.stdout.splitlines()]
    received = [(e["kind"], e["seq"] < rec.since) for e in received if e["code"] == "received"]
    assert received == [("start", True), ("titrate", True), ("emergency_stop", True)]


def _refused_in_own_session(answers):
    """What (b) and (c) expect of _replay_into_own_session's answers."""
    assert _hows(answers) == {**dict.fromkeys([*TAGGED, "AUTH"], "auth"), "HELLO": "HELLO_R"}
    for n in TAGGED:  # step b: the session is pending (untagged: no key to answer with)
        assert answers[n].message == "session not authenticated: AUTH first"
    # AUTH's proof is the recorded session's, over its th: not this session's
    assert answers["AUTH"].message == "the board refused the key for role clinician"


# On BASE the frames moved into the replayer's session run: BASE checks a request's
# CRC and that its seq is newer than its session's last, both true here (the
# replayer's HELLO took the recorded HELLO's seq), so START, TITRATE and ESTOP are
# received and run again. A run of this replay adapted to BASE (no AUTH, no tags)
# was answered START_R, TITRATE_R, ESTOP_R, STATUS_R, and its log gained three
# `received` entries: start, titrate, emergency_stop.
def test_a_recorded_session_replayed_into_the_replayers_own_session_runs_nothing(
    emulator, pump_target, monkeypatch
):
    rec = _record_session(emulator, monkeypatch)
    ran, status, counters = _observe(emulator, rec.since)
    assert ran == [] and _same_channel(status, rec.status)
    answers, _hello_r = _on_raw_port(emulator, lambda port: _replay_into_own_session(port, rec))
    _refused_in_own_session(answers)
    ran, after, counters_after = _observe(emulator, rec.since)
    counted = _delta(counters_after, counters)
    _report(pump_target, "(b) into the replayer's own session", answers, counted)
    assert counted == {"auth_refused": 1, "bad_tag": 4, "stale_ctr": 0, "forbidden": 0}
    assert ran == [] and after == status
    assert emulator.pumps()[0]["rate"] == 0


# On BASE the raw replay after the power cycle is answered hello_required there too
# (sids come from the boot id), but the frames moved into the replayer's session of the
# new boot run, as in the test above: the BASE run of it logged START, TITRATE and
# ESTOP received again after the power cycle.
def test_a_recorded_session_replayed_after_a_power_cycle_runs_nothing(
    emulator, pump_target, monkeypatch
):
    rec = _record_session(emulator, monkeypatch)
    emulator.power_cycle()
    motor = emulator.pumps()[0]

    def raw_then_moved(replayer):
        # Raw, before anything else reaches the new boot: no session of it is open, so
        # the old sid meets none whatever sids the new boot gives (HELLO last: the
        # session it opens could have the old sid, a 2^-16 chance).
        raw = [(n, rec.wires[n]) for n in RECORDED[1:]] + [("HELLO", rec.wires["HELLO"])]
        return _replay(replayer, raw), _replay_into_own_session(replayer, rec)

    raw, (moved, hello_r) = _on_raw_port(emulator, raw_then_moved)
    assert _hows(raw) == {**dict.fromkeys(RECORDED[1:], "hello_required"), "HELLO": "HELLO_R"}
    assert {raw[n].message for n in RECORDED[1:]} == {"send HELLO first"}
    _refused_in_own_session(moved)
    assert hello_r["boot_id"] != rec.boot_id
    ran, after, counters = _observe(emulator, rec.since)  # the new boot's: from 0 at boot
    _report(pump_target, "(c) after a power cycle, raw", raw, "none (hello_required: uncounted)")
    _report(pump_target, "(c) after a power cycle, into its own session", moved, counters)
    assert counters == {"auth_refused": 1, "bad_tag": 4, "stale_ctr": 0, "forbidden": 0}
    assert ran == [] and _same_channel(after, rec.status)
    assert emulator.pumps()[0] == motor and motor["rate"] == 0


# On BASE there is no tag to flip (a START there is 12 bytes shorter, and runs on
# its CRC alone): the frame built here cannot be made, and a START that passes the
# CRC runs.
def test_a_start_with_one_bit_of_its_tag_flipped_is_refused_for_every_bit(emulator, pump_target):
    with pumpguard.connect(emulator.port, key=emulator.key, timeout=ANSWER_TIMEOUT_S) as pump:
        since = _next_log_seq(pump)
        link = pump._link
        # the API's next request, made START: its seq, sid, key and counter
        seq, ctr = (link._seq + 1) & 0xFFFF, link._ctr + 1
        genuine = messages.to_wire("START", seq, START, sid=link.sid, key=link._ks, ctr=ctr)
        f = _frame(genuine)
        assert auth.equal(f.tag, auth.tag(link._ks, auth.HOST, f.signed))
        _ran, _status, before = _observe(emulator, since)  # another session: not this link's
        refusals = []
        for bit in range(8 * auth.TAG):
            tag = bytearray(f.tag)
            tag[bit // 8] ^= 1 << (bit % 8)
            forged = _wire(f.msg_id, f.seq, f.payload, f.sid, f.ctr, tag)
            assert _frame(forged).crc != f.crc  # a correct CRC: only the tag is wrong
            answer = _ask(link._port, forged)
            refusals.append((answer.how, answer.message))
        assert refusals == [("auth", "wrong tag: not run")] * 64  # untagged, each
        ran, status, counters = _observe(emulator, since)
        grew = _delta(counters, before)
        print(
            f"\n[{pump_target}] 64 one-bit tag flips of a genuine START: INFO counters grew {grew}"
        )
        assert grew == {"auth_refused": 0, "bad_tag": 64, "stale_ctr": 0, "forbidden": 0}
        assert ran == [] and status.state == "idle" and emulator.pumps()[0]["rate"] == 0
        # The control: the API's own next request is that frame untouched, and it runs
        # (the flips changed nothing: not the seq window, not the session's counter).
        writes = []
        link._port = TeePort(link._port, writes)
        start_norepinephrine(pump, "0.1")
        assert writes[0] == genuine
        assert pump.status(1).state == "running"
        assert [e.kind for e in pump.log(since) if e.code == "received"] == ["start"]


# On BASE neither HELLO nor HELLO_R carries a nonce and there is no session key: the
# nonce and key checks fail there (there is nothing to collect). Only the boot_id
# change and the old session's hello_required (sids come from the boot id) held
# before authentication.
def test_nonces_and_keys_never_repeat_across_a_power_cycle_and_the_old_session_is_dead(
    emulator, pump_target, monkeypatch
):
    writes = []
    sessions = []  # (HELLO_R's fields, the session key) per session

    def five_sessions(pump):
        sessions.append((pump.device, pump._link._ks))
        pump.heartbeat()  # a tagged request in each session: its ctr 1
        for _ in range(4):
            pump.device = pump._link.hello()  # a new session, as after a DeviceReset
            sessions.append((pump.device, pump._link._ks))
            pump.heartbeat()

    pump = _recording_connect(emulator, writes, monkeypatch)
    try:
        five_sessions(pump)
        start_norepinephrine(pump, "0.1")
        since = _next_log_seq(pump)
        link = pump._link
        # Mid-session: the old session's next request, genuine, never sent (TITRATE
        # 0.12 with override: it would have run, see tests/test_system_exactly_once.py)
        seq, ctr = (link._seq + 1) & 0xFFFF, link._ctr + 1
        titrate = {"ch": 1, "dose": 120_000, "unit": "mcg/kg/min", "override": True}
        pending = messages.to_wire("TITRATE", seq, titrate, sid=link.sid, key=link._ks, ctr=ctr)
        emulator.power_cycle()
    finally:
        pump.close()  # its PTY died with the power
    answer = _on_raw_port(emulator, lambda port: _ask(port, pending))  # the new boot's first frame
    assert (answer.how, answer.message) == ("hello_required", "send HELLO first")  # untagged
    with _recording_connect(emulator, writes, monkeypatch) as pump:
        five_sessions(pump)
        status = pump.status(1)
        ran = [e.kind for e in pump.log(since) if e.code == "received"]
        counters = {k: pump.info().counters[k] for k in AUTH_COUNTERS}
    assert ran == []  # the TITRATE never ran: restored at 0.1
    assert (status.state, status.dose) == ("running", Decimal("0.1"))
    assert emulator.pumps()[0]["rate"] == 26_250000
    assert counters == dict.fromkeys(AUTH_COUNTERS, 0)  # hello_required counts nothing

    boots = [d["boot_id"] for d, _ks in sessions]
    assert len(set(boots[:5])) == 1 and len(set(boots[5:])) == 1 and boots[0] != boots[5]
    device_nonces = [d["nonce"] for d, _ks in sessions]
    assert len(set(device_nonces)) == 10
    hellos = [_frame(w) for w in writes if _frame(w).msg_id == catalog.ID["HELLO"]]
    host_nonces = [messages.decode(f.msg_id, f.payload)["nonce"] for f in hellos]
    assert len(host_nonces) == 10 and len(set(host_nonces)) == 10
    assert not set(host_nonces) & set(device_nonces)
    keys = [ks for _d, ks in sessions]
    assert len(set(keys)) == 10
    # Every tagged frame the host sent, either side of the reset (a HEARTBEAT in each
    # session, and the rest): its tag verifies under exactly one of the ten session
    # keys, and no (session key, counter) pair repeats, though the counters start at 1
    # in every session, the sids of the new boot may be any, and nothing of them
    # survives the reset.
    tagged = [f for f in map(_frame, writes) if f.tag is not None]
    pairs = []
    for f in tagged:
        (ks,) = [k for k in keys if auth.equal(f.tag, auth.tag(k, auth.HOST, f.signed))]
        pairs.append((ks, f.ctr))
    assert len(set(pairs)) == len(pairs) and len({ks for ks, _ in pairs}) == 10
    print(
        f"\n[{pump_target}] power cycle mid-session: boot {boots[0]:08x} -> {boots[5]:08x}; "
        f"10 device nonces, 10 host nonces, 10 session keys, all distinct; "
        f"{len(tagged)} tagged frames, no (key, ctr) twice; the old session's next "
        f"request: ERROR {answer.how}, not run"
    )
