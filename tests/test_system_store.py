"""Long service of the store, through the real emulator (issue 10, findings 1, 3, 4, 8):
records edited in the state directory between boots, as a hand, a bug or a copy would."""

import binascii
import json
import os
import shutil
from decimal import Decimal

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

pytestmark = pytest.mark.system

VASOPRESSIN = {"concentration": "1 units/mL", "volume_ml": "20"}


def _edit(emu, change):
    """Power off, change the record's JSON body (change(data) edits it in place), re-seal
    its CRC as the firmware would, power on."""
    emu.power_off()
    path = emu.state_dir + "/state.json"
    with open(path, "rb") as f:
        head, body = f.read().split(b"\n", 1)
    data = json.loads(body)
    change(data)
    body = json.dumps(data).encode()
    with open(path, "wb") as f:
        f.write(head[:-8] + b"%08x\n" % binascii.crc32(body) + body)
    emu.start()


def _alarm(pump, code):
    found = [a for a in pump.alarms() if a.code == code]
    return found[0] if found else None


def test_a_resealed_overdose_and_a_null_drug_boot_stopped_with_an_alarm(emulator):
    # base: vasopressin resumed at 0.5 units/min (12.5x its hard max), and "drug": null
    # on a running channel raised at boot, every boot (the firmware never came up)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        pump.start(2, "vasopressin", "0.03", "units/min", **VASOPRESSIN)

    def overdose(data):
        c = data["core"]["channels"][1]
        c["dose"], c["rate"] = 500000, c["rate"] * 500000 // c["dose"]

    _edit(emulator, overdose)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert (pump.status(2).state, pump.status(2).rate_ml_h) == ("stopped", 0)
        refused = _alarm(pump, "restore_refused")
        assert (refused.priority, refused.channel) == ("high", 2)
        assert "hard limits" in refused.message
        assert pump.status(1).state == "running"  # the channel that passes resumes
    assert emulator.pumps()[1]["rate"] == 0 and emulator.pumps()[0]["rate"] > 0

    _edit(emulator, lambda data: data["core"]["channels"][0].update(drug=None))
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "stopped" and pump.status(1).rate_ml_h == 0
        refused = [a for a in pump.alarms() if a.code == "restore_refused"]
        assert [a.channel for a in refused] == [2, 1]  # the last boot's still listed
    assert emulator.pumps()[0]["rate"] == 0


def test_a_record_not_of_this_firmware_is_a_lost_store_not_a_boot_loop(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)

    def hidden_channel(data):
        data["core"]["channels"].append(dict(data["core"]["channels"][0], ch=3))

    _edit(emulator, hidden_channel)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert [pump.status(ch).state for ch in (1, 2)] == ["idle", "idle"]
        assert "channels" in _alarm(pump, "store_lost").message
    assert emulator.pumps()[0]["rate"] == 0


def test_alarm_ids_out_of_the_wire_range_boot_and_are_served(emulator):
    # base: an alarm id above 65535 in the record could not be sent: every boot died
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        pump.emergency_stop(1, "clinician")

    def big_ids(data):
        data["core"]["alarms"][0]["id"] = 70000
        data["core"]["next_alarm_id"] = 2**40

    _edit(emulator, big_ids)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        ids = [a.id for a in pump.alarms()]
        assert ids and all(1 <= i <= 0xFFFF for i in ids), ids
        pump.ack(ids[0])
        start_norepinephrine(pump)
        assert pump.status(1).state == "running"


def test_a_genuine_older_record_put_back_does_not_restart_a_stopped_vasopressin(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        pump.start(2, "vasopressin", "0.03", "units/min", **VASOPRESSIN)
    older = emulator.state_dir + "/older.json"
    shutil.copy(emulator.state_dir + "/state.json", older)  # a genuine record, CRC and all
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        pump.emergency_stop(2, "extravasation")
    emulator.power_off()
    os.replace(older, emulator.state_dir + "/state.json")  # put back
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(2).state == "idle" and pump.status(2).rate_ml_h == 0
        rolled = _alarm(pump, "record_rolled_back")
        assert rolled.priority == "high" and "older" in rolled.message
    assert emulator.pumps()[1]["rate"] == 0


def test_a_store_that_lost_its_record_and_its_used_mark_alarms(emulator):
    # base: both files gone was a silent first boot, while norepinephrine had been running
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
    emulator.power_off()
    os.remove(emulator.state_dir + "/state.json")
    os.remove(emulator.state_dir + "/state.used")
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"
        lost = _alarm(pump, "store_lost")
        assert lost.priority == "high" and "missing" in lost.message


def test_a_failing_store_never_undoes_an_emergency_stop(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        os.mkdir(emulator.state_dir + "/state.tmp")  # no save can write its record now
        pump.emergency_stop(1, "extravasation")  # answered: degraded, not dead
        assert pump.status(1).state == "stopped"
        failed = _alarm(pump, "store_failed")
        assert failed.priority == "high" and failed.channel == 0
        emulator.advance(30, keepalive=pump.uptime_ms)  # retries, no watchdog reset
        assert [a.code for a in pump.alarms()].count("store_failed") == 1
        assert pump.status(1).state == "stopped"
        pump.ack(failed.id)  # silenced; listed while the store still fails
        assert _alarm(pump, "store_failed") is not None
        os.rmdir(emulator.state_dir + "/state.tmp")
        emulator.advance(90, keepalive=pump.uptime_ms)  # the next retry saves
        assert _alarm(pump, "store_failed") is None  # over, and acknowledged: gone
    assert emulator.pumps()[0]["rate"] == 0
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        s = pump.status(1)
        assert (s.state, s.dose) == ("stopped", Decimal(0))
        assert "resumed_after_reset" not in [a.code for a in pump.alarms()]
    assert emulator.pumps()[0]["rate"] == 0


def test_a_record_the_store_cannot_read_is_no_first_boot(emulator):
    # base: every read error was "no file": a silent first boot, an idle record saved
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
    emulator.power_off()
    record = emulator.state_dir + "/state.json"
    os.replace(record, emulator.state_dir + "/kept.json")
    os.mkdir(record)  # reading it fails (EISDIR), and not as a missing file
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"
        lost = _alarm(pump, "store_lost")
        assert lost.priority == "high" and "unreadable" in lost.message
    assert os.path.isdir(record)
