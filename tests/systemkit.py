"""Shared helpers of the system tests: the doses they use and a raw-frame client."""

import os

import serial
from pumpguard.api import keys

# The tests' own connections wait as long per attempt as the plugin's fixtures do. The
# retry and timeout behaviour itself is tested with short timeouts on purpose
# (tests/test_protocol_link.py, tests/test_system_link.py).
from pumpguard.testing import ANSWER_TIMEOUT_S as ANSWER_TIMEOUT_S

from protocol import auth, catalog, messages
from protocol.decoder import Decoder

NOREPI = {"weight_kg": "70", "concentration": "16 mcg/mL", "volume_ml": "50"}
VASO = {"concentration": "1 units/mL", "volume_ml": "20"}


def start_norepinephrine(pump, dose="0.1", channel=1, **extra):
    return pump.start(channel, "norepinephrine", dose, "mcg/kg/min", **{**NOREPI, **extra})


def alarm_codes(pump):
    return [a.code for a in pump.alarms()]


def hello_fields(supervise_s=0, host="t", schema=None, role="clinician", nonce=None):
    return {
        "protocol": catalog.PROTOCOL_VERSION,
        "schema": catalog.SCHEMA_HASH if schema is None else schema,
        "host": host,
        "supervise_s": supervise_s,
        "wall_ms": 0,
        "role": catalog.ROLES[role],
        "nonce": os.urandom(auth.NONCE) if nonce is None else nonce,
    }


class RawPort:
    """Frames by hand on a port: for what the API never does (retries, garbage).
    `sid` is the session the last HELLO opened; send() uses it unless told another.

    hello() authenticates the session it opens (AUTH, with the key file `key`, else the
    key store's for the board): HELLO at seq - 1, AUTH at seq, so the session has run
    up to `seq` and the test's own requests go on from seq + 1, as before AUTH was.
    send() tags a request of a session this port authenticated, with a counter per
    (sid, seq): sent again, a request is byte for byte the same (a retry)."""

    def __init__(self, port, key=None):
        self.serial = serial.serial_for_url(port, timeout=3 * ANSWER_TIMEOUT_S)
        self.serial.reset_input_buffer()
        self.decoder = Decoder()
        self.key = key
        self.sid = 0
        self.answer_sid = None  # the sid of the last answer's frame
        self.frame = None  # the last answer's frame (its tag and ctr)
        self.keys = {}  # sid -> the session key, once authenticated
        self._ctrs = {}  # (sid, seq) -> the counter that request carries
        self._last_ctr = {}  # sid -> the last counter this port used

    def send(self, name, seq, fields, sid=None):
        if sid is None:
            sid = 0 if name == "HELLO" else self.sid
        key = self.keys.get(sid) if name not in ("HELLO", "AUTH") else None
        ctr = 0
        if key is not None:
            if (sid, seq) not in self._ctrs:
                self._last_ctr[sid] = self._last_ctr.get(sid, 0) + 1
                self._ctrs[sid, seq] = self._last_ctr[sid]
            ctr = self._ctrs[sid, seq]
        wire = messages.to_wire(name, seq, fields, sid=sid, key=key, ctr=ctr)
        self.serial.write(wire)
        return wire

    def answer(self, seq):
        """Fields of the next response (not event) with this seq."""
        while True:
            data = self.serial.read(self.serial.in_waiting or 1)
            assert data, "no answer from the device"
            for frame in self.decoder.decode(data):
                if not catalog.is_event(frame.msg_id) and frame.seq == seq:
                    self.answer_sid = frame.sid
                    self.frame = frame
                    return catalog.NAME[frame.msg_id], messages.decode(frame.msg_id, frame.payload)

    def hello(self, seq=1, **fields):
        """HELLO then AUTH (see the class); HELLO's answer. AUTH's must be AUTH_R."""
        hello = hello_fields(**fields)
        payload = messages.encode("HELLO", hello)
        self.send("HELLO", (seq - 1) & 0xFFFF, hello)
        name, reply = self.answer((seq - 1) & 0xFFFF)
        if name != "HELLO_R":
            return name, reply
        sid = self.answer_sid
        role = catalog.ROLE_NAMES[hello["role"]]
        if reply["auth"] == 0:
            role_key = bytes(auth.KEY)
        else:
            keyfile = keys.given(self.key) or keys.lookup(reply["board_id"])
            role_key = keyfile.key(role)
        th = auth.transcript(payload, sid, self.frame.payload)
        ks = auth.session_key(role_key, th)
        self.send("AUTH", seq, {"proof": auth.proof(ks, th, auth.HOST)}, sid=sid)
        auth_name, auth_reply = self.answer(seq)
        assert auth_name == "AUTH_R", auth_reply
        self.keys[sid] = ks
        self.sid = sid
        return name, reply

    def close(self):
        self.serial.close()
