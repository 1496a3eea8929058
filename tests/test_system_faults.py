"""Hardware faults and host-link loss, injected into the emulator while it runs."""

from decimal import Decimal

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, alarm_codes, start_norepinephrine

pytestmark = pytest.mark.system


@pytest.mark.parametrize("fault, code", [("occlusion", "occlusion"), ("air", "air_in_line")])
def test_occlusion_and_air_stop_flow_with_a_high_alarm(emulator, pump, fault, code):
    start_norepinephrine(pump)
    emulator.inject(fault, 1)
    emulator.advance(1, keepalive=pump.uptime_ms)
    s = pump.status(1)
    assert (s.state, s.rate_ml_h) == ("stopped", 0)
    alarm = next(a for a in pump.alarms() if a.code == code)
    assert (alarm.channel, alarm.priority) == (1, "high")
    assert emulator.pumps()[0]["rate"] == 0


def test_host_silence_holds_the_rate_and_alarms(emulator):
    # A supervising host (every 2 s) that goes silent: link_lost (SPEC §3).
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S, supervise=2) as pump:
        start_norepinephrine(pump)
        emulator.advance(15)  # no keepalive: the host says nothing for 15 s
        s = pump.status(1)
        assert (s.state, s.rate_ml_h) == ("running", Decimal("26.25"))
        alarm = next(a for a in pump.alarms() if a.code == "link_lost")
        assert alarm.priority == "high"  # a vasopressor is running
        assert emulator.pumps()[0]["rate"] == 26_250000


def test_a_silent_line_is_a_link_error_that_says_whether_it_ran(emulator, pump, pump_port):
    start_norepinephrine(pump)
    # One attempt: on a dead line the retries only repeat the wait (tests of the
    # retries themselves: test_protocol_link.py).
    with pumpguard.connect(pump_port, timeout=ANSWER_TIMEOUT_S, attempts=1) as once:
        # The HELLO above waited as long as any answer may take; the request below is
        # meant to meet silence, so its wait is short (it cannot end early wrongly).
        once._link.timeout = 1.0
        emulator.command("silence on")
        with pytest.raises(pumpguard.LinkError) as info:
            once.titrate(1, "0.15", "mcg/kg/min")
    assert info.value.may_have_run
    assert "MAY HAVE RUN" in str(info.value)
    emulator.command("silence off")
    assert pump.status(1).dose == Decimal("0.1")  # the line was dead: nothing arrived


def test_near_empty_alarms_well_before_empty_then_empty_stops(emulator, pump):
    # 5 mL at 26.25 mL/h lasts about 11 min: under the 15 min near-empty threshold
    start_norepinephrine(pump, volume_ml="5")
    emulator.advance(1, keepalive=pump.uptime_ms)
    near = next(a for a in pump.alarms() if a.code == "near_empty")
    assert near.priority == "high"  # a taper drug: a syringe swap is a risk
    assert 0 < pump.status(1).time_to_empty_s <= 15 * 60
    emulator.advance(12 * 60, keepalive=pump.uptime_ms)
    s = pump.status(1)
    assert (s.state, s.rate_ml_h) == ("stopped", 0)
    assert "syringe_empty" in alarm_codes(pump)


def test_syringe_pushed_to_its_end_is_a_fault(emulator, pump):
    start_norepinephrine(pump)
    emulator.inject("empty", 1)
    emulator.advance(1, keepalive=pump.uptime_ms)
    assert pump.status(1).rate_ml_h == 0
    assert "syringe_empty" in alarm_codes(pump)
