"""The line between host and pump: garbage, retries, exactly once."""

import os

import pumpguard
import pytest

from protocol import catalog
from tests.systemkit import ANSWER_TIMEOUT_S, RawPort, start_norepinephrine

pytestmark = pytest.mark.system


def test_garbage_between_commands_is_skipped_and_counted(pump):
    start_norepinephrine(pump)
    # On the session's own connection: a network port (a farm's, an emulator's --tcp)
    # serves one connection at a time, and a second one would replace this session's.
    line = pump._link._port
    line.write(os.urandom(300) + b"\x00\x01\x02\x03\x00" + bytes(range(1, 255)))
    line.write(b"\x00")  # ends a half frame the garbage may have begun
    assert pump.status(1).state == "running"
    counters = pump.info().counters
    assert counters["bad_crc"] + counters["bad_length"] + counters["bad_cobs"] > 0


def test_a_retried_request_is_answered_twice_but_runs_once(pump, pump_port):
    start_norepinephrine(pump, "0.1")
    first_entry = pump.log()[-1].seq + 1
    pump.close()  # the raw client takes the line
    raw = RawPort(pump_port)
    try:
        assert raw.hello()[0] == "HELLO_R"
        fields = {"ch": 1}
        first = raw.send("STOP", 2, fields)
        answer1 = raw.answer(2)
        again = raw.send("STOP", 2, fields)  # the same bytes: a retry
        answer2 = raw.answer(2)
        assert first == again
        assert answer1 == answer2
        assert answer1[0] == "STOP_R" and answer1[1]["plan"]
    finally:
        raw.close()
    with pumpguard.connect(pump_port, timeout=ANSWER_TIMEOUT_S) as pump:
        stops = [e for e in pump.log(first_entry) if e.kind == "stop"]
        assert len(stops) == 1
        assert pump.status(1).state == "tapering"


def test_a_new_request_reusing_a_seq_runs_in_a_new_session_only(pump, pump_port):
    pump.close()
    raw = RawPort(pump_port)
    try:
        raw.hello()
        raw.send("STATUS", 2, {"ch": 1})
        assert raw.answer(2)[1]["ch"] == 1
        raw.send("STATUS", 2, {"ch": 2})  # same session and seq, other bytes: stale
        name, fields = raw.answer(2)
        assert name == "ERROR" and catalog.ERROR_NAMES[fields["code"]] == "stale"
        raw.hello()  # a restarted host: a new session, its seqs from the start again
        raw.send("STATUS", 2, {"ch": 2})
        assert raw.answer(2)[1]["ch"] == 2
    finally:
        raw.close()


def test_requests_before_hello_are_refused(emulator):
    raw = RawPort(emulator.port)  # a fresh boot: a board keeps its session from earlier tests
    try:
        raw.send("STATUS", 7, {"ch": 1})
        name, fields = raw.answer(7)
        assert name == "ERROR" and "HELLO" in fields["message"]
    finally:
        raw.close()


def test_a_port_nobody_answers_on_is_a_link_error(tmp_path):
    master, slave = os.openpty()
    try:
        with pytest.raises(pumpguard.LinkError) as info:
            pumpguard.connect(os.ttyname(slave), timeout=0.05, attempts=2, boot_wait=0)
        assert not isinstance(info.value, pumpguard.RefusedError)
    finally:
        os.close(master)
        os.close(slave)
