"""Exactly once across a device reset, on the real firmware (SPEC §3).

A request whose answer was lost may have run. If the device resets before the host
retries, the replay cache (RAM) is gone, so the device cannot recognise the retry:
it must answer ERROR hello_required and not run it; the host must look before
repeating it. Every command the device runs is logged as received (kind: the
command's name), so the log counts runs. The log is RAM too (a reset starts a new
one, which opens with the restore); the safety core's state is what survives. So:
one run in the log before the reset, none after it, and the titrated dose restored.
"""

from decimal import Decimal

import pumpguard
import pytest

from protocol import catalog
from tests.systemkit import ANSWER_TIMEOUT_S, RawPort, start_norepinephrine

pytestmark = pytest.mark.system

# 0.1 -> 0.12 right after the start: sooner than the rise interval, hence override.
TITRATE = {"ch": 1, "dose": 120_000, "unit": "mcg/kg/min", "override": True}


def _titrations(entries):
    return [e for e in entries if e.kind == "titrate" and e.code == "received"]


def _log_after_reset(port):
    # The new boot's entries (the log itself is persistent, every boot's)
    with pumpguard.connect(port, timeout=ANSWER_TIMEOUT_S) as pump:
        boot = pump.info().boot_id
        log = [e for e in pump.log() if e.boot_id == boot]
        assert any(e.code == "restored" for e in log)  # the new boot's log, from its start
        return log, pump.status(1)


def test_a_retry_across_a_reset_is_refused_not_run_again(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        since = pump.log()[-1].seq + 1

    raw = RawPort(emulator.port)
    try:
        assert raw.hello()[0] == "HELLO_R"
        sent = raw.send("TITRATE", 2, TITRATE)
        # Its answer is lost: never read. A host that gave up on seq 2 sends its next
        # request; the device serves requests in order and saves its state before it
        # answers, so once LOG is answered the titration has run and is in the store.
        # answer(3) skips the unread answer to seq 2.
        raw.send("LOG", 3, {"first": since})
        name, log = raw.answer(3)
        assert name == "LOG_R"
        runs = [e for e in log["entries"] if e["kind"] == "titrate"]
        assert len(runs) == 1 and runs[0]["text"].startswith("titrate 0.12")
    finally:
        raw.close()

    emulator.power_cycle()

    raw = RawPort(emulator.port)
    try:
        raw.serial.write(sent)  # the retry: same sid, seq, counter, tag, bytes
        name, fields = raw.answer(2)
        assert name == "ERROR"
        assert catalog.ERROR_NAMES[fields["code"]] == "hello_required"
        assert raw.hello()[0] == "HELLO_R"
    finally:
        raw.close()

    log, status = _log_after_reset(emulator.port)
    assert _titrations(log) == []  # not run again
    assert (status.state, status.dose) == ("running", Decimal("0.12"))  # the one run
    assert emulator.pumps()[0]["rate"] == 31_500000

    # Control: the log does show a second run. The same request in a new session is
    # a new request and runs: had the firmware served the retry across the reset, the
    # check above would have found this entry.
    raw = RawPort(emulator.port)
    try:
        raw.hello()
        assert raw.send("TITRATE", 2, TITRATE) != sent  # another session: its sid and tag
        assert raw.answer(2)[0] == "TITRATE_R"
    finally:
        raw.close()
    log, _status = _log_after_reset(emulator.port)
    assert len(_titrations(log)) == 1
