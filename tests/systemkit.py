"""Shared helpers of the system tests: the doses they use and a raw-frame client."""

import serial

from protocol import catalog, messages
from protocol.decoder import Decoder

NOREPI = {"weight_kg": "70", "concentration": "16 mcg/mL", "volume_ml": "50"}
VASO = {"concentration": "1 units/mL", "volume_ml": "20"}

# Per-attempt answer timeout of the tests' own connections: generous, so a loaded CI
# machine (two xdist workers, emulators, Node) never turns a slow answer into a
# failure. The retry and timeout behaviour itself is tested with short timeouts on
# purpose (tests/test_protocol_link.py, tests/test_system_link.py).
ANSWER_TIMEOUT_S = 2.0


def start_norepinephrine(pump, dose="0.1", channel=1, **extra):
    return pump.start(channel, "norepinephrine", dose, "mcg/kg/min", **{**NOREPI, **extra})


def alarm_codes(pump):
    return [a.code for a in pump.alarms()]


def hello_fields(supervise_s=0, host="t", schema=None):
    return {
        "protocol": catalog.PROTOCOL_VERSION,
        "schema": catalog.SCHEMA_HASH if schema is None else schema,
        "host": host,
        "supervise_s": supervise_s,
        "wall_ms": 0,
    }


class RawPort:
    """Frames by hand on a port: for what the API never does (retries, garbage).
    `sid` is the session the last HELLO opened; send() uses it unless told another."""

    def __init__(self, port):
        self.serial = serial.serial_for_url(port, timeout=10)
        self.serial.reset_input_buffer()
        self.decoder = Decoder()
        self.sid = 0
        self.answer_sid = None  # the sid of the last answer's frame

    def send(self, name, seq, fields, sid=None):
        if sid is None:
            sid = 0 if name == "HELLO" else self.sid
        wire = messages.to_wire(name, seq, fields, sid=sid)
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
                    return catalog.NAME[frame.msg_id], messages.decode(frame.msg_id, frame.payload)

    def hello(self, seq=1, **fields):
        self.send("HELLO", seq, hello_fields(**fields))
        name, reply = self.answer(seq)
        if name == "HELLO_R":
            self.sid = self.answer_sid
        return name, reply

    def close(self):
        self.serial.close()
