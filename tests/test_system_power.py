"""Power loss (SIGKILL) and restore from the store."""

from decimal import Decimal

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

pytestmark = pytest.mark.system


def test_power_loss_resumes_at_the_last_verified_rate_with_an_alarm(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        pump.start(
            2, "vasopressin", "0.03", "units/min", concentration="1 units/mL", volume_ml="20"
        )
        before = pump.status(1)
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        s = pump.status(1)
        assert (s.state, s.drug, s.dose, s.rate_ml_h) == (
            "running",
            "norepinephrine",
            Decimal("0.1"),
            Decimal("26.25"),
        )
        # Volume is saved with every change and at least once a minute: at most a
        # minute of delivery (26.25 mL/h: 0.4375 mL) can be missing after a power loss.
        assert before.volume_infused_ml - s.volume_infused_ml <= Decimal("0.4375")
        assert pump.status(2).dose == Decimal("0.03")
        resumed = [a for a in pump.alarms() if a.code == "resumed_after_reset"]
        assert sorted(a.channel for a in resumed) == [1, 2]
    assert emulator.pumps()[0]["rate"] == 26_250000


def test_a_taper_survives_power_loss_and_completes(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.06")
        pump.stop(1)
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "tapering"
        emulator.advance(3 * 900, keepalive=pump.uptime_ms)
        assert (pump.status(1).state, pump.status(1).rate_ml_h) == ("stopped", 0)


def test_a_corrupt_store_never_starts_an_infusion(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
    emulator.power_off()
    state = emulator.state_dir + "/state.json"
    with open(state, "rb") as f:
        record = bytearray(f.read())
    record[-5] ^= 0x01  # one flipped bit in the body
    with open(state, "wb") as f:
        f.write(record)
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.status(1).state == "idle"
        assert pump.status(1).rate_ml_h == 0
        # The clinician is told, loudly: what ran before the reset is not running now.
        (lost,) = [a for a in pump.alarms() if a.code == "store_lost"]
        assert (lost.priority, lost.channel, lost.acked) == ("high", 0, False)
        assert "fails its CRC" in lost.message and "every channel started idle" in lost.message
        assert any(e.code == "store_lost" for e in pump.log())
    assert emulator.pumps()[0]["rate"] == 0


def test_a_missing_store_is_a_first_boot(emulator):
    emulator.power_off()
    emulator.start()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert [pump.status(ch).state for ch in (1, 2)] == ["idle", "idle"]
