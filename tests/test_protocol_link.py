"""host/pumpguard/api/link.py against a scripted device over a real socket:// port."""

import socket
import threading
import time
from decimal import Decimal

import pytest
from pumpguard.api import keys
from pumpguard.api.client import Pump
from pumpguard.api.link import Link
from pumpguard.errors import (
    DeviceError,
    DeviceReset,
    LinkError,
    ProtocolMismatch,
    RefusedError,
)

from protocol import auth, catalog, messages, reasons
from protocol.decoder import Decoder
from protocol.replay import ReplayCache

HELLO_R = {
    "protocol": catalog.PROTOCOL_VERSION,
    "schema": catalog.SCHEMA_HASH,
    "firmware": "0.1.0",
    "board": "test",
    "channels": 2,
    "library": "lib",
    "library_version": "1",
    "library_crc": 0xCAFE,
    "boot_id": 1,
    "replay_window": 4,
    "max_payload": 240,
    "bundle": "",
    "auth": 1,
}
REFUSAL = {
    "code": 24,
    "message": "above the hard maximum",
    "lo": 10000,
    "hi": 40000,
    "unit": "units/min",
    "next_at_ms": None,
    "uptime_ms": 600_000,
}


class FakeDevice:
    """Serves requests the way SPEC.md says a device must: HELLO opens a session (one
    here), AUTH authenticates it, its sid, tag and a newer counter on every request, the
    replay cache, stale seqs refused, one answer per request, tagged. `drop` answers to
    leave unsent, `refuse` the REFUSED fields to answer with (None: serve). Its key file
    is in the tests' key store (tests/conftest.py), where connect() finds it."""

    def __init__(self):
        self.keyfile = keys.KeyFile.generate()
        self.keyfile.save(keys.store_path(self.keyfile.board_id))
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.url = f"socket://127.0.0.1:{self.server.getsockname()[1]}"
        self.runs = []  # (name, seq) of every request executed
        self.hellos = []  # the fields of every HELLO
        self.drop = 0
        self.refuse = None
        self.schema = catalog.SCHEMA_HASH
        self.checks_schema = True  # False: a device that answers HELLO_R regardless
        self.boot_id = 1
        self.events = []  # wire frames to send before the next answer
        self.after = b""  # bytes to send right behind the next answer, in one write
        self.rotated = []  # the new keys KEY carried, unwrapped
        self.reboot()
        threading.Thread(target=self._serve, daemon=True).start()

    def reboot(self):
        self.sid = 0  # the open session, 0: none
        self.last = 0  # the last seq it ran
        self.next_sid = 100 * self.boot_id + 1
        self.cache = ReplayCache()
        self.boot_id += 1
        self.ks = None  # the session key, from HELLO on
        self.th = None
        self.authed = False
        self.host_ctr = 0  # the last host counter accepted
        self.ctr = 0  # the device's last counter sent
        self.refused_tags = 0  # requests refused for a missing or wrong tag

    def wire(self, name, seq, fields, sid=None):
        """An answer of the session, tagged with the device's next counter."""
        self.ctr += 1
        sid = self.sid if sid is None else sid
        return messages.to_wire(
            name, seq, fields, sid=sid, key=self.ks, ctr=self.ctr, sender=auth.DEVICE
        )

    def _serve(self):
        conn, _ = self.server.accept()
        self.conn = conn
        dec = Decoder()
        while data := conn.recv(4096):
            for f in dec.decode(data):
                # Take what the test queued BEFORE sending: once the answer is out, the
                # test thread may already queue bytes for the next request, which a
                # clear after the send would wipe.
                events, self.events = self.events, []
                for ev in events:
                    conn.sendall(ev)
                wire = self._answer(f)
                if self.drop:
                    self.drop -= 1
                    continue
                after, self.after = self.after, b""
                conn.sendall(b"\x00garbage" + wire + after)
        conn.close()

    def _answer(self, f):
        name = catalog.NAME[f.msg_id]
        cached = self.cache.lookup(f.sid, f.seq, f.crc)
        if cached is not None:
            return bytes(cached)
        if name != "HELLO" and (not f.sid or f.sid != self.sid):
            fields = {"code": catalog.ERR_HELLO_REQUIRED, "message": "send HELLO first"}
            return messages.to_wire("ERROR", f.seq, fields, sid=f.sid)
        if name == "AUTH":
            return self._auth(f)
        if name != "HELLO":
            genuine = (
                self.authed
                and f.tag is not None
                and auth.equal(f.tag, auth.tag(self.ks, auth.HOST, f.signed))
            )
            if not genuine:
                self.refused_tags += 1
                fields = {"code": catalog.ERR_AUTH, "message": "frame without a valid tag"}
                return messages.to_wire("ERROR", f.seq, fields, sid=f.sid)
            if f.ctr <= self.host_ctr:
                fields = {"code": catalog.ERR_STALE, "message": f"ctr {f.ctr} not newer"}
                return self.wire("ERROR", f.seq, fields)
        if name != "HELLO" and not 0 < (f.seq - self.last) & 0xFFFF < 0x8000:
            fields = {"code": catalog.ERR_STALE, "message": f"seq {f.seq} not newer"}
            return self.wire("ERROR", f.seq, fields)
        self.runs.append((name, f.seq))
        fields = messages.decode(f.msg_id, f.payload)
        self.last = f.seq
        if name == "HELLO":
            self.hellos.append(fields)
            if self.checks_schema and fields["schema"] != self.schema:
                message = f"device speaks protocol 2 schema {self.schema:08x}"
                return messages.to_wire("ERROR", f.seq, {"code": 4, "message": message})
            self.sid, self.next_sid = self.next_sid, self.next_sid + 1
            reply = dict(
                HELLO_R,
                schema=self.schema,
                boot_id=self.boot_id,
                board_id=self.keyfile.board_id,
                role=fields["role"],
                nonce=bytes(range(16)),
            )
            wire = messages.to_wire("HELLO_R", f.seq, reply, sid=self.sid)
            self.th = auth.transcript(f.payload, self.sid, messages.encode("HELLO_R", reply))
            role_key = self.keyfile.keys[catalog.ROLE_NAMES[fields["role"]]]
            self.ks = auth.session_key(role_key, self.th)
            self.authed = False
            self.host_ctr = self.ctr = 0
            return wire
        self.host_ctr = f.ctr
        if self.refuse:
            reply = ("REFUSED", self.refuse)
        elif name == "SUPERVISE":
            reply = ("SUPERVISE_R", fields)
        elif name == "KEY":
            self.rotated.append(auth.wrap(self.ks, f.ctr, fields["key"]))
            reply = ("KEY_R", {"role": fields["role"], "check": auth.key_check(self.rotated[-1])})
        elif name == "STOP":
            reply = (
                "STOP_R",
                {"ch": fields["ch"], "unit": "mcg/min", "total": 1, "plan": [(60000, 0)]},
            )
        else:
            reply = ("HEARTBEAT_R", {"uptime_ms": 5, "boot_id": self.boot_id, "active_alarms": 0})
        wire = self.wire(reply[0], f.seq, reply[1])
        self.cache.store(f.sid, f.seq, f.crc, wire)
        return wire

    def _auth(self, f):
        proof = messages.decode(f.msg_id, f.payload)["proof"]
        if self.authed or not auth.equal(proof, auth.proof(self.ks, self.th, auth.HOST)):
            self.sid = 0  # the pending session is closed
            fields = {"code": catalog.ERR_AUTH, "message": "the board refused the key"}
            return messages.to_wire("ERROR", f.seq, fields, sid=f.sid)
        self.authed = True
        wire = self.wire("AUTH_R", f.seq, {"proof": auth.proof(self.ks, self.th, auth.DEVICE)})
        self.cache.store(f.sid, f.seq, f.crc, wire)
        return wire


@pytest.fixture
def device():
    dev = FakeDevice()
    yield dev
    dev.server.close()


@pytest.fixture
def link(device):
    # 0.5 s an attempt: long enough that a loaded CI machine never turns a slow answer
    # into a retry a test did not plan for; the drop tests still end within seconds.
    with Link(device.url, timeout=0.5, attempts=3) as lk:
        yield lk


def test_hello_then_request(device, link):
    assert link.hello()["board"] == "test"
    assert link.request("STOP", {"ch": 1}) == {
        "ch": 1,
        "unit": "mcg/min",
        "total": 1,
        "plan": [{"at_ms": 60000, "dose": 0}],
    }
    assert device.runs == [("HELLO", 1), ("STOP", 3)]


def test_lost_answers_are_retried_with_the_same_seq_and_run_once(device, link):
    link.hello()
    device.drop = 2
    assert link.request("STOP", {"ch": 2})["ch"] == 2
    assert device.runs == [("HELLO", 1), ("STOP", 3)]


def test_no_answer_after_the_last_attempt_says_it_may_have_run(device, link):
    link.hello()
    device.drop = 3
    with pytest.raises(LinkError, match="MAY HAVE RUN") as exc:
        link.request("STOP", {"ch": 1})
    assert exc.value.may_have_run is True
    assert device.runs == [("HELLO", 1), ("STOP", 3)]


def test_no_answer_to_hello_says_nothing_ran(device, link):
    # HELLO only opens a session: it runs nothing on the safety core, answered or not.
    device.drop = 3
    with pytest.raises(LinkError, match="did NOT run") as exc:
        link.hello()
    assert exc.value.may_have_run is False


def test_hello_required_on_the_first_attempt_did_not_run(link):
    with pytest.raises(DeviceReset, match="did NOT run") as exc:
        link.request("HEARTBEAT")
    assert exc.value.may_have_run is False


def test_reset_between_attempts_may_have_run_and_hello_counts_it(device, link):
    link.hello()
    device.drop = 1
    orig = device._answer

    def answer_then_reboot(f):
        wire = orig(f)
        if catalog.NAME[f.msg_id] == "STOP":
            device.reboot()
        return wire

    device._answer = answer_then_reboot
    with pytest.raises(DeviceReset, match="MAY HAVE RUN") as exc:
        link.request("STOP", {"ch": 1})
    assert exc.value.may_have_run is True
    link.hello()
    assert link.resets == 1


def test_schema_mismatch_refuses_to_talk_and_says_why(device, link):
    device.schema = 0x1234
    with pytest.raises(ProtocolMismatch, match="host protocol 3 schema 0x.*schema 00001234"):
        link.hello()
    with pytest.raises(DeviceReset):  # and the device will not serve this host either
        link.request("HEARTBEAT")


def test_host_checks_hello_r_too(device, link):
    device.schema = 0x1234
    device.checks_schema = False
    with pytest.raises(ProtocolMismatch, match="schema hash: host 0x.*device 0x00001234"):
        link.hello()


def test_library_mismatch(link):
    with pytest.raises(ProtocolMismatch, match="drug library version: host 2, device 1"):
        link.hello(library=("lib", "2", 0xCAFE))


def test_refusal_carries_code_message_and_range(device, link):
    link.hello()
    device.refuse = REFUSAL
    with pytest.raises(RefusedError) as exc:
        link.request("TITRATE", {"ch": 1, "dose": 50000, "unit": "units/min", "override": True})
    assert (exc.value.code, exc.value.number) == ("above_hard_max", 24)
    assert exc.value.allowed == (Decimal("0.01"), Decimal("0.04"), "units/min")
    assert exc.value.next_at_ms is None and exc.value.wait_ms is None
    assert str(exc.value) == (
        "refused (above_hard_max): above the hard maximum [allowed 0.01 to 0.04 units/min]"
    )


@pytest.mark.parametrize(("number", "code"), [(reasons.UNKNOWN, "unknown"), (200, "reason 200")])
def test_a_refusal_whose_number_is_not_in_the_table_still_has_a_name(device, link, number, code):
    link.hello()
    device.refuse = dict(REFUSAL, code=number, lo=None, hi=None)
    with pytest.raises(RefusedError) as exc:
        link.request("TITRATE", {"ch": 1, "dose": 50000, "unit": "units/min", "override": True})
    assert (exc.value.code, exc.value.number, exc.value.allowed) == (code, number, None)
    assert str(exc.value) == f"refused ({code}): above the hard maximum"


def test_a_refusal_about_time_says_how_long_to_wait_never_the_raw_uptime(device, link):
    link.hello()
    device.refuse = dict(REFUSAL, code=31, lo=None, hi=None, next_at_ms=240_238, uptime_ms=122_000)
    with pytest.raises(RefusedError) as exc:
        link.request("TITRATE", {"ch": 1, "dose": 50000, "unit": "units/min", "override": True})
    assert exc.value.wait_ms == 118_238
    assert str(exc.value).endswith("(next allowed in 1 min 59 s)")  # rounded up, never down
    assert "240238" not in str(exc.value)


def test_events_are_queued_while_waiting(device, link):
    link.hello()
    alarm = {
        "id": 1,
        "ch": 1,
        "code": 43,
        "priority": 3,
        "acked": False,
        "at_ms": 9,
        "message": "occlusion",
    }
    device.events = [messages.to_wire("EV_ALARM", 1, alarm)]
    link.request("HEARTBEAT")
    assert link.poll() == [("EV_ALARM", 1, alarm)]


def test_an_event_behind_the_answer_in_the_same_chunk_is_kept(device, link):
    link.hello()
    state = {
        "ch": 1,
        "state": "running",
        "drug": "norepinephrine",
        "dose": 8000000,
        "unit": "mcg/min",
        "rate": 30000000,
        "at_ms": 100,
    }
    device.after = messages.to_wire("EV_STATE", 7, state)
    link.request("HEARTBEAT")
    # One sendall() can still reach the host as two TCP reads: wait for the event
    # rather than for a fixed time. A link that dropped it fails at the deadline.
    events = []
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        events = link.poll(timeout=0.05)
    assert events == [("EV_STATE", 7, state)]


def test_error_answer_is_a_device_error(device, link):
    link.hello()
    device._answer = lambda f: device.wire("ERROR", f.seq, {"code": 2, "message": "bad"})
    with pytest.raises(DeviceError, match="bad_payload"):
        link.request("HEARTBEAT")


def test_cannot_open_is_a_link_error():
    with pytest.raises(LinkError, match="cannot open") as exc:
        Link("socket://127.0.0.1:1", timeout=0.1)
    assert exc.value.may_have_run is False
    assert "did NOT run" in str(exc.value)  # what the CLI prints says so too


def test_discard_input_drops_what_came_before(device, link):
    link.hello()
    alarm = {"id": 1, "ch": 1, "code": 41, "priority": 2, "acked": False, "at_ms": 1, "message": ""}
    device.conn.sendall(messages.to_wire("EV_ALARM", 1, alarm))
    deadline = time.monotonic() + 5  # wait until the bytes are here, not a fixed time
    while not link._port.in_waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link._port.in_waiting
    link.discard_input()
    assert link.poll(0.1) == []


def test_connect_drops_stale_input_through_the_link_s_public_call(device, monkeypatch):
    # Pump never reaches into the link's port: discard_input() also drops the decoder's
    # partial frame, which resetting the port's buffer alone would leave behind.
    calls = []
    discard = Link.discard_input
    monkeypatch.setattr(Link, "discard_input", lambda self: calls.append(discard(self)))
    with Pump(device.url, timeout=0.2) as pump:
        assert pump.device["board"] == "test"
    assert len(calls) == 1


def test_the_host_says_a_wait_in_the_device_s_one_style():
    # protocol/text.py's duration(), on both sides: "2 h 1 min", never "2 h 0 min 5 s"
    exc = RefusedError("too_soon", 31, "norepinephrine may rise again", None, 7_205_000, 0)
    assert exc.when() == " (next allowed in 2 h 1 min)"
