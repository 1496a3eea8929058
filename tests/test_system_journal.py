"""The persistent event log on both emulator runtimes: power cuts (SIGKILL), a torn
last record, and LOG / ``pumpguard log`` reading across boots."""

import json
import os
import subprocess
import sys

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

pytestmark = pytest.mark.system


def _boot_runs(entries):
    ids = [e.boot_id for e in entries]
    return [b for i, b in enumerate(ids) if i == 0 or ids[i - 1] != b]


def test_entries_survive_power_cuts_and_seq_continues_across_boots(emulator):
    boots = []
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        boots.append(pump.info().boot_id)
        start_norepinephrine(pump, "0.1")
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        boots.append(pump.info().boot_id)
        pump.titrate(1, "0.08", "mcg/kg/min")
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        boots.append(pump.info().boot_id)
        entries = pump.log()
    assert [e.seq for e in entries] == list(range(len(entries)))  # nothing lost, in order
    assert _boot_runs(entries) == boots
    decisions = [(e.boot_id, e.text) for e in entries if e.kind == "decision"]
    assert decisions[0][0] == boots[0] and decisions[0][1].startswith("started norepinephrine")
    assert any(b == boots[1] and "0.08" in t for b, t in decisions)
    # the CLI reads the same, every boot, as JSON Lines
    # (a power cycle gives the emulator a new PTY: pump_cli's port is gone)
    argv = [sys.executable, "-m", "pumpguard", "--port", emulator.port, "log", "--jsonl"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["seq"] for row in rows][: len(entries)] == [e.seq for e in entries]
    assert [row["boot_id"] for row in rows][: len(entries)] == [e.boot_id for e in entries]


def test_a_torn_last_record_is_dropped_and_the_log_goes_on(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        before = pump.log()
    emulator.power_off()
    segment = os.path.join(emulator.state_dir, "journal.0")
    with open(segment, "r+b") as f:  # a power cut in the middle of the last append
        f.truncate(os.path.getsize(segment) - 3)
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        after = pump.log()
    assert after[: len(before) - 1] == before[:-1]  # only the torn one is gone
    assert after[len(before) - 1].seq == before[-1].seq  # its seq is given again
    assert [e.seq for e in after] == list(range(len(after)))
