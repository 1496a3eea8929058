"""Every rule of the safety core, seen from the host through the real API and PTY."""

from decimal import Decimal

import pumpguard
import pytest

from protocol.reasons import NUMBER
from tests.systemkit import NOREPI, VASO, RawPort, alarm_codes, start_norepinephrine

pytestmark = pytest.mark.system


def refused(call, code):
    with pytest.raises(pumpguard.RefusedError) as info:
        call()
    assert (info.value.code, info.value.number) == (code, NUMBER[code]), info.value.message
    return info.value


def test_hello_reports_the_device(pump):
    info = pump.info()
    assert info.channels >= 2
    assert info.library.startswith("pumpguard")
    assert info.counters["bad_crc"] == 0


def test_start_sets_the_rate_from_dose_weight_and_concentration(pump):
    d = start_norepinephrine(pump, "0.1")
    # 0.1 mcg/kg/min x 70 kg x 60 min/h / 16 mcg/mL = 26.25 mL/h, exactly
    assert (d.dose, d.dose_unit, d.rate_ml_h) == (Decimal("0.1"), "mcg/kg/min", Decimal("26.25"))
    s = pump.status(1)
    assert (s.state, s.drug, s.rate_ml_h) == ("running", "norepinephrine", Decimal("26.25"))
    assert s.volume_left_ml <= Decimal(50)


def test_hard_maximum_is_refused_with_its_range(pump):
    exc = refused(
        lambda: pump.start(2, "vasopressin", "0.05", "units/min", **VASO), "above_hard_max"
    )
    assert exc.allowed == (Decimal("0.005"), Decimal("0.04"), "units/min")
    assert pump.status(2).rate_ml_h == 0


def test_a_refusal_names_its_reason_and_gives_its_range_in_decimals(pump):
    with pytest.raises(pumpguard.RefusedError) as info:
        pump.start(2, "vasopressin", "0.05", "units/min", **VASO)
    e = info.value
    assert e.code == "above_hard_max"
    assert e.number == NUMBER["above_hard_max"]
    assert e.allowed == (Decimal("0.005"), Decimal("0.04"), "units/min")
    assert str(e) == f"refused (above_hard_max): {e.message} [allowed 0.005 to 0.04 units/min]"
    with pytest.raises(pumpguard.RefusedError) as info:
        pump.start(1, "norepinephrine", "0.02", "mg/kg/min", **NOREPI)
    assert info.value.code == "likely_unit_slip"
    assert info.value.number == NUMBER["likely_unit_slip"]
    assert str(info.value).startswith("refused (likely_unit_slip): ")


def test_soft_maximum_needs_an_override_which_is_logged(pump):
    start_norepinephrine(pump)
    refused(lambda: pump.start(2, "vasopressin", "0.035", "units/min", **VASO), "above_soft_max")
    assert pump.status(2).override is False
    d = pump.start(2, "vasopressin", "0.035", "units/min", override=True, **VASO)
    assert d.dose == Decimal("0.035")
    assert any(e.code == "ok_override" for e in pump.log())
    # the status says so for as long as the overridden dose runs (a monitor shows it)
    assert pump.status(2).override is True
    assert pump.status(1).override is False


def test_thousandfold_unit_slip_is_refused_and_says_so(pump):
    exc = refused(
        lambda: pump.start(1, "norepinephrine", "0.1", "mg/kg/min", **NOREPI), "likely_unit_slip"
    )
    assert "1000x usual" in exc.message and exc.message.endswith("meant 0.1 mcg/kg/min?")
    assert pump.status(1).rate_ml_h == 0


@pytest.mark.parametrize(
    "channel, drug, dose, unit, extra",
    [
        (2, "vasopressin", "0.3", "units/min", VASO),
        (1, "norepinephrine", "10", "mcg/kg/min", NOREPI),
    ],
)
def test_tenfold_entry_error_is_refused_as_such(pump, channel, drug, dose, unit, extra):
    exc = refused(lambda: pump.start(channel, drug, dose, unit, **extra), "likely_unit_slip")
    assert "tenfold" in exc.message


def test_start_above_the_starting_maximum_needs_an_override(pump):
    refused(lambda: start_norepinephrine(pump, "0.3"), "above_start_max")
    assert start_norepinephrine(pump, "0.3", override=True).dose == Decimal("0.3")


@pytest.mark.parametrize(
    "unit, code",
    [("units/min", "wrong_unit_family"), ("mcg/kg/h", "per_hour_unit"), ("mL/h", "rate_not_dose")],
)
def test_dose_in_a_wrong_unit_is_refused(pump, unit, code):
    refused(lambda: pump.start(1, "norepinephrine", "0.1", unit, **NOREPI), code)


def test_mcg_per_min_converts_exactly_with_the_weight(pump):
    d = pump.start(1, "norepinephrine", "7", "mcg/min", **NOREPI)
    assert (d.dose, d.dose_unit) == (Decimal("0.1"), "mcg/kg/min")


def test_missing_weight_and_wrong_concentration_are_refused(pump):
    refused(
        lambda: pump.start(
            1, "norepinephrine", "0.1", "mcg/kg/min", concentration="16 mcg/mL", volume_ml="50"
        ),
        "weight_required",
    )
    refused(
        lambda: pump.start(
            1, "norepinephrine", "0.1", "mcg/kg/min", **{**NOREPI, "concentration": "17 mcg/mL"}
        ),
        "conc_not_allowed",
    )
    refused(lambda: pump.start(1, "propofol", "1", "mcg/kg/min", **NOREPI), "unknown_drug")


@pytest.mark.one_runtime("the API refuses a float before anything is sent")
def test_a_float_dose_never_leaves_the_host(pump):
    last = max((e.seq for e in pump.log()), default=-1)
    with pytest.raises(TypeError, match="float"):
        pump.start(1, "norepinephrine", 0.1, "mcg/kg/min", **NOREPI)
    assert pump.log(last + 1) == []


@pytest.mark.one_runtime("the API refuses the arguments before anything is sent")
def test_a_bad_argument_is_a_usage_error_of_the_api_and_nothing_is_sent(pump):
    # Every error the API raises on purpose is a PumpguardError: a script catches one
    # class. A float is still a TypeError and a bad value a ValueError, as Python's are.
    last = max((e.seq for e in pump.log()), default=-1)
    state = pump.status(1).state  # a board's: an earlier test may have stopped it
    for call, builtin in (
        (lambda: pump.status("1"), TypeError),  # a channel is an int
        (lambda: pump.ack(-1), ValueError),
        (lambda: pump.start(1, "norepinephrine", 0.1, "mcg/kg/min", **NOREPI), TypeError),
        (lambda: pump.titrate(1, "0.1234567", "mcg/kg/min"), ValueError),
        (
            lambda: pump.start(1, "norepinephrine", "0.1", "mcg/kg/min", concentration=("16",)),
            ValueError,
        ),
    ):
        with pytest.raises(pumpguard.UsageError) as info:
            call()
        assert isinstance(info.value, builtin), info.value
    assert pump.log(last + 1) == []
    assert pump.status(1).state == state  # the link is as good as before


def test_titration_step_and_interval(emulator, pump):
    start_norepinephrine(pump, "0.1")
    refused(lambda: pump.titrate(1, "0.2", "mcg/kg/min"), "too_soon")  # a start is a rise
    emulator.advance(120, keepalive=pump.uptime_ms)
    refused(lambda: pump.titrate(1, "0.3", "mcg/kg/min"), "step_up_too_large")
    pump.titrate(1, "0.2", "mcg/kg/min")
    exc = refused(lambda: pump.titrate(1, "0.25", "mcg/kg/min"), "too_soon")
    assert exc.next_at_ms is not None
    emulator.advance(120, keepalive=pump.uptime_ms)
    assert pump.titrate(1, "0.25", "mcg/kg/min").rate_ml_h == Decimal("65.625")
    refused(lambda: pump.titrate(1, "0.1", "mcg/kg/min"), "step_down_too_large")


def test_stop_of_a_taper_drug_tapers_to_zero_under_a_fast_clock(emulator, pump):
    start_norepinephrine(pump, "0.1")
    stopped = pump.stop(1)
    assert [s.dose for s in stopped.plan] == [
        Decimal(x) for x in ("0.08", "0.06", "0.04", "0.02", "0")
    ]
    assert pump.status(1).state == "tapering"
    seen = set()
    for _ in range(5):
        emulator.advance(900, keepalive=pump.uptime_ms)
        seen.add(pump.status(1).dose)
    s = pump.status(1)
    assert (s.state, s.rate_ml_h) == ("stopped", 0)
    assert seen >= {Decimal("0.02"), Decimal("0")} or s.dose in (None, 0)
    assert sum(1 for e in pump.log() if e.code == "taper_step") == 4
    assert emulator.pumps()[0]["rate"] == 0


def test_stop_of_a_drug_without_taper_is_immediate(pump):
    pump.start(
        1,
        "dobutamine",
        "2.5",
        "mcg/kg/min",
        weight_kg="70",
        concentration="1 mg/mL",
        volume_ml="50",
    )
    assert pump.stop(1).plan == ()
    assert pump.status(1).state == "stopped"


def test_emergency_stop_stops_a_taper_drug_at_once_with_a_high_alarm(pump):
    start_norepinephrine(pump)
    pump.emergency_stop(1, "extravasation")
    assert (pump.status(1).state, pump.status(1).rate_ml_h) == ("stopped", 0)
    alarm = next(a for a in pump.alarms() if a.code == "extravasation")
    assert alarm.priority == "high"
    assert any("extravasation" in e.text for e in pump.log() if e.kind == "emergency_stop")
    refused(lambda: pump.emergency_stop(1, "bored"), "unknown_reason")


def test_vasopressin_alone_raises_an_advisory_that_can_be_acked(pump):
    pump.start(2, "vasopressin", "0.03", "units/min", **VASO)
    alarm = next(a for a in pump.alarms() if a.code == "second_line_alone")
    assert alarm.channel == 2
    start_norepinephrine(pump)  # the partner runs: the condition is over
    pump.ack(alarm.id)
    assert "second_line_alone" not in alarm_codes(pump)
    refused(lambda: pump.ack(999), "unknown_alarm")


def test_unknown_channel_is_refused_by_the_api_and_by_the_device(pump, pump_port):
    # The API knows the pump's channels (HELLO): nothing is sent for another one.
    allowed = f"allowed 1 to {pump.channels}"
    with pytest.raises(pumpguard.BadValue, match=f"channel 9 is out of range: {allowed}"):
        pump.status(9)
    with pytest.raises(pumpguard.BadValue, match=f"channel 9 is out of range: {allowed}"):
        start_norepinephrine(pump, channel=9)
    # The device refuses one all the same, whoever sends it.
    raw = RawPort(pump_port)
    try:
        assert raw.hello()[0] == "HELLO_R"
        raw.send("STATUS", 2, {"ch": 9})
        name, fields = raw.answer(2)
    finally:
        raw.close()
    assert (name, fields["code"]) == ("REFUSED", NUMBER["unknown_channel"]), fields
