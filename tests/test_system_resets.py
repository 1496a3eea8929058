"""Attacks on the reset and persistence guarantees, through the real emulator."""

import binascii
import json
import os
from decimal import Decimal

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, RawPort, start_norepinephrine

pytestmark = pytest.mark.system


def test_a_second_emulator_on_the_same_store_is_refused(emulator, pump_target):
    # Two boards on one store would both resume the same infusion and overwrite each
    # other's record: a stop on one would be undone by the other's next save.
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
    second = pumpguard.Emulator(state_dir=emulator.state_dir, runtime=pump_target)
    with pytest.raises(pumpguard.EmulatorError):
        second.start()
    second.close()
    with open(emulator.state_dir + "/emulator.log") as f:
        assert "in use by another emulator" in f.read()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "running"
    emulator.power_cycle()  # the lock dies with the killed process
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "running"


def test_a_state_record_deleted_while_running_is_a_lost_store_not_a_first_boot(emulator):
    # The record goes (a hand, a filesystem repair) while norepinephrine runs, and the
    # power fails before the next save: the pump must not come back as a silent idle
    # pump that looks freshly unpacked.

    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
    os.remove(emulator.state_dir + "/state.json")
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"
        (lost,) = [a for a in pump.alarms() if a.code == "store_lost"]
        assert lost.priority == "high" and "missing" in lost.message
    assert emulator.pumps()[0]["rate"] == 0


def test_a_titrate_retried_across_a_power_cycle_is_not_run_again(emulator):
    # The answer is lost to the power failure; the host's retry (the same bytes) meets
    # a board with a new session: refused until HELLO, never run a second time.
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
    emulator.advance(150)  # past the titration interval
    raw = RawPort(emulator.port)
    try:
        raw.hello()
        fields = {"ch": 1, "dose": 120000, "unit": "mcg/kg/min", "override": False}
        raw.send("TITRATE", 2, fields)
        assert raw.answer(2)[0] == "TITRATE_R"
    finally:
        raw.close()
    emulator.power_cycle()
    raw = RawPort(emulator.port)
    try:
        raw.send("TITRATE", 2, fields)
        name, answer = raw.answer(2)
        assert name == "ERROR" and "HELLO" in answer["message"]
    finally:
        raw.close()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).dose == Decimal("0.12")
        # No titrate in this boot's part of the log is the retry not run.
        boot = pump.info().boot_id
        assert "titrate" not in [e.kind for e in pump.log() if e.boot_id == boot]


def test_a_record_from_another_library_starts_nothing_and_says_why(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
    emulator.power_off()
    state = emulator.state_dir + "/state.json"
    with open(state, "rb") as f:
        record = f.read()
    head, body = record.split(b"\n", 1)
    data = json.loads(body)
    data["core"]["library"]["crc32"] ^= 1  # the pharmacist edited the library since
    body = json.dumps(data).encode()
    with open(state, "wb") as f:
        f.write(head[:-8] + b"%08x\n" % binascii.crc32(body) + body)
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"
        (lost,) = [a for a in pump.alarms() if a.code == "store_lost"]
        assert "library" in lost.message
    assert emulator.pumps()[0]["rate"] == 0
