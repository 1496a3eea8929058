"""The real ``pumpguard`` command, run as a subprocess against the emulator's PTY."""

import argparse
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from decimal import Decimal

import pumpguard
import pytest
from pumpguard import errors
from pumpguard.cli import main as cli_main
from pumpguard.cli import readouts

from protocol import reasons
from protocol.reasons import NAME, NUMBER
from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

pytestmark = pytest.mark.system

NOREPI = ["--weight", "70", "--concentration", "16", "mcg/mL", "--volume", "50"]
VASO = ["--concentration", "1", "units/mL", "--volume", "20"]


def test_start_status_json_and_exit_0(pump_cli):
    r = pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI)
    assert r.returncode == 0, r.stderr
    assert "26.25 mL/h" in r.stdout
    r = pump_cli("status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    for key in (
        "state",
        "drug",
        "dose",
        "dose_unit",
        "rate_ml_h",
        "volume_infused_ml",
        "time_to_empty_s",
        "alarms",
    ):
        assert key in status
    assert (status["state"], status["dose"], status["rate_ml_h"]) == ("running", "0.1", "26.25")


def test_status_json_all_prints_one_object_per_channel(pump_cli):
    r = pump_cli("status", "--json", "--all")
    lines = r.stdout.splitlines()
    assert [json.loads(line)["channel"] for line in lines] == [1, 2]


def test_refusal_exits_3_and_prints_the_reason_and_range(pump_cli):
    r = pump_cli(
        "start",
        "vasopressin",
        "0.05",
        "units/min",
        "--concentration",
        "1",
        "units/mL",
        "--volume",
        "20",
        channel=2,
    )
    assert r.returncode == 3
    assert r.stderr.startswith("pumpguard: refused (above_hard_max)")
    assert r.stderr.rstrip().endswith("[allowed 0.005 to 0.04 units/min]")


@pytest.mark.parametrize(
    "args",
    [
        ["start", "norepinephrine", "abc", "mcg/kg/min"],
        ["start", "norepinephrine", "0.1234567", "mcg/kg/min"],
        ["titrate"],
        ["frobnicate"],
        ["stop", "--emergency", "bored"],
        ["start", "norepinephrine", "0.1", "mcg/kg/min", "--concentration", "x", "mcg/mL"],
        ["titrate", "1e9", "mcg/kg/min"],
        ["start", "norepinephrine", "0.1", "mcg/kg/min", "--weight", "2147.483648"],
        ["start", "norepinephrine", "0.1", "mcg/kg/min", "--concentration", "9e9", "mcg/mL"],
        ["start", "norepinephrine", "0.1", "mcg/kg/min", "--volume", "1e400"],
    ],
)
@pytest.mark.one_runtime("the CLI refuses its arguments before it opens the port")
def test_usage_errors_exit_2_and_send_nothing(pump, pump_cli, args):
    # The device is the witness that not a frame reached it, on one runtime: the
    # refusal is the host's, and no firmware of either runtime is asked anything.
    def frames():
        return pump.info().counters["frames"]

    before = frames()
    one_info = frames() - before  # what asking costs: the INFO request itself
    r = pump_cli(*args)
    assert r.returncode == 2, r.stderr
    assert "usage" in r.stderr or "pumpguard:" in r.stderr
    assert "Traceback" not in r.stderr
    # Not a frame reached the device: no HELLO, no command.
    assert frames() - before == 2 * one_info


@pytest.mark.one_runtime("the CLI refuses a dose the wire cannot carry before it sends")
def test_a_dose_beyond_the_wire_says_the_range(pump_cli):
    r = pump_cli("titrate", "1e9", "mcg/kg/min")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "pumpguard: dose 1e9 is out of range: allowed 0 to 2147.483647 (the wire's 32 bits)"
    )


@pytest.mark.one_runtime("the API refuses a quantity the wire cannot carry before it sends")
@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda p: p.titrate(1, "1e9", "mcg/kg/min"), "dose"),
        (lambda p: start_norepinephrine(p, weight_kg="3000"), "weight"),
        (lambda p: start_norepinephrine(p, concentration="2147.5 mcg/mL"), "concentration"),
        (lambda p: start_norepinephrine(p, volume_ml=10**10), "volume"),
    ],
)
def test_the_api_refuses_quantities_beyond_the_wire(pump, call, what):
    state = pump.status(1).state  # a board's: an earlier test may have stopped it
    with pytest.raises(errors.UsageError, match=rf"^{what} .* out of range: allowed 0 to 2147"):
        call(pump)
    assert pump.status(1).state == state  # nothing was sent


def test_alarm_columns_fit_the_longest_code():
    from pumpguard.api.client import Alarm

    class Pump:
        def alarms(self):
            return [
                Alarm(1, 1, "occlusion", "high", "flow stopped", 0, False),
                Alarm(2, 2, "resumed_after_reset", "medium", "resumed at 5 mL/h", 0, True),
            ]

    out = io.StringIO()
    readouts.do_alarms(Pump(), argparse.Namespace(ack=None, json=False), out)
    lines = out.getvalue().splitlines()
    assert lines[0].index("flow stopped") == lines[1].index("resumed at 5 mL/h")


def test_link_failure_exits_4():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "--port", "/dev/nonexistent-pump", "info"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 4
    assert r.stderr.startswith("pumpguard: link failure")


def test_missing_port_is_a_usage_error():
    env = {k: v for k, v in os.environ.items() if k != "PUMPGUARD_PORT"}
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "info"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 2
    assert "PUMPGUARD_PORT" in r.stderr


def test_port_from_the_environment(pump_port):
    env = dict(os.environ, PUMPGUARD_PORT=pump_port)
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "info"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    assert "library" in r.stdout


def test_help_documents_the_exit_codes():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "--help"], capture_output=True, text=True
    )
    assert r.returncode == 0
    for line in ("0  done", "2  usage", "3  refused", "4  link failure", "1  anything else"):
        assert line in r.stdout


def test_stop_on_a_taper_drug_prints_the_plan(pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = pump_cli("stop")
    assert r.returncode == 0, r.stderr
    assert "tapering, 5 steps" in r.stdout
    assert "0.08 mcg/kg/min" in r.stdout and "in 15 min " in r.stdout


def test_emergency_stop_alarms_ack_and_log_csv(pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    assert pump_cli("stop", "--emergency", "occlusion").returncode == 0
    r = pump_cli("alarms")
    assert "high" in r.stdout and "occlusion" in r.stdout
    alarm_id = r.stdout.split()[0]
    assert pump_cli("alarms", "--ack", alarm_id).returncode == 0
    r = pump_cli("log", "--csv")
    assert r.stdout.splitlines()[0] == "seq,boot_id,at_ms,wall_ms,wall_time,channel,kind,code,text"
    assert "emergency" in r.stdout


def test_titrate_on_channel_2(pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = pump_cli("start", "vasopressin", "0.03", "units/min", *VASO, channel=2)
    assert r.returncode == 0, r.stderr
    r = pump_cli("titrate", "0.035", "units/min", channel=2)
    assert r.returncode == 3
    assert "above_soft_max" in r.stderr
    r = pump_cli("titrate", "0.035", "units/min", "--override", channel=2)
    assert r.returncode == 0, r.stderr
    assert "now 0.035 units/min" in r.stdout
    r = pump_cli("status", channel=2)
    assert "vasopressin 0.035 units/min (override)" in r.stdout, r.stdout


def test_a_refusal_about_time_says_when_in_human_terms(pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = pump_cli("titrate", "0.15", "mcg/kg/min")
    assert r.returncode == 3, r.stderr
    assert "refused (too_soon)" in r.stderr
    # 2 min between steps up, a second or so of it gone: never a raw device uptime.
    assert re.search(r"\(next allowed in (1 min \d+ s|2 min)\)$", r.stderr.strip())
    assert not re.search(r"\d{4,} ?ms", r.stderr)


def test_stop_of_a_long_taper_prints_every_step_and_status_the_next_one(emulator, pump_cli):
    # From 1 mcg/kg/min norepinephrine tapers by 0.02 every 15 min: 50 steps, more than
    # STOP_R carries; the rest come from TAPER, none dropped.
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1", weight_kg="40")  # its start max
        for dose in ("0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"):
            emulator.advance(120, keepalive=pump.uptime_ms)
            pump.titrate(1, dose, "mcg/kg/min")
    r = pump_cli("stop")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "channel 1: tapering, 50 steps:"
    steps = [line.split() for line in lines[1:]]
    assert [int(s[1]) for s in steps] == list(range(1, 51))
    # "step N  in 15 min  DOSE UNIT": the wait is one to three words, the dose last
    assert [s[-2] for s in steps[:3]] == ["0.98", "0.96", "0.94"]
    assert steps[-2][-2:] == ["0.02", "mcg/kg/min"] and steps[-1][-2:] == ["0", "mcg/kg/min"]
    r = pump_cli("status")
    assert r.returncode == 0, r.stderr
    assert re.search(
        r"tapering, .* next taper step in (14 min \d+ s|15 min) to 0.96 mcg/kg/min,", r.stdout
    )


class _Raises:
    def __init__(self, exc):
        self.exc = exc

    def __call__(self, pump, args, out):
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "code", "said"),
    [
        (
            errors.RefusedError("above_hard_max", 24, "above the hard maximum"),
            3,
            "refused (above_hard_max): above the hard maximum",
        ),
        (errors.LinkError("no answer", may_have_run=True), 4, "link failure: no answer"),
        (errors.DeviceReset("it reset", may_have_run=False), 4, "link failure: it reset"),
        (errors.ProtocolMismatch([("schema hash", "1", "2")]), 4, "link failure: protocol"),
        (errors.DeviceError(5, "internal", "boom"), 1, "device error internal"),
        (errors.DeviceAlarm({"id": 1, "ch": 1, "priority": 3, "message": "air"}), 1, "alarm 1"),
        (errors.UsageError("bad value"), 2, "bad value"),
    ],
)
def test_each_error_exits_with_the_code_its_class_carries(monkeypatch, capsys, exc, code, said):
    ports = cli_main._COMMANDS["ports"]
    monkeypatch.setitem(cli_main._COMMANDS, "ports", dataclasses.replace(ports, run=_Raises(exc)))
    assert exc.exit_code == code
    assert cli_main.main(["ports"], out=io.StringIO()) == code
    assert capsys.readouterr().err.startswith("pumpguard: " + said)


def test_reason_names_come_from_the_firmware_table_with_a_name_for_the_rest():
    missing = next(n for n in range(256) if n not in NAME and n != reasons.UNKNOWN)
    assert errors.reason_name(NUMBER["likely_unit_slip"]) == "likely_unit_slip"
    assert errors.reason_name(reasons.UNKNOWN) == "unknown"
    assert errors.reason_name(missing) == f"reason {missing}"


def test_a_refusal_shows_an_open_side_of_its_range_as_a_dash():
    exc = errors.RefusedError("above_max_rate", 32, "too fast", (None, Decimal("120"), "mL/h"))
    assert str(exc) == "refused (above_max_rate): too fast [allowed - to 120 mL/h]"


def test_the_documented_exit_codes_are_the_classes_codes():
    r = subprocess.run(
        [sys.executable, "-m", "pumpguard", "--help"], capture_output=True, text=True
    )
    documented = dict(re.findall(r"^  (\d)  (\w+)", r.stdout, re.M))
    assert documented == {
        "0": "done",
        "2": "usage",
        "3": "refused",
        "4": "link",
        "5": "authentication",
        "1": "anything",
    }
    assert errors.RefusedError.exit_code == 3
    assert errors.AuthError.exit_code == errors.Forbidden.exit_code == 5
    assert errors.KeyFileError.exit_code == 2
    assert errors.LinkError.exit_code == errors.DeviceReset.exit_code == 4
    assert errors.ProtocolMismatch.exit_code == 4
    assert errors.PumpguardError.exit_code == errors.DeviceError.exit_code == 1
    assert errors.DeviceAlarm.exit_code == 1


def _uptime_s(result):
    assert result.returncode == 0, result.stderr
    return int(re.search(r"^uptime +(\d+) s", result.stdout, re.M).group(1))


def test_each_run_is_a_new_session_answered_now_never_from_the_last_one(emulator, pump_cli):
    # Every run sends the same HELLO at seq 1 and the same INFO after it: byte for byte
    # the last run's frames, which the device must answer anew.
    first = _uptime_s(pump_cli("info"))
    emulator.advance(30)
    assert _uptime_s(pump_cli("info")) >= first + 30


def test_a_titrate_refused_too_soon_runs_once_the_interval_passed(emulator, pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = pump_cli("titrate", "0.15", "mcg/kg/min")
    assert r.returncode == 3 and "too_soon" in r.stderr, r.stderr
    emulator.advance(125)
    r = pump_cli("titrate", "0.15", "mcg/kg/min")
    assert r.returncode == 0, r.stderr
    assert "now 0.15 mcg/kg/min" in r.stdout


def test_a_link_loss_with_a_drug_running_alarms_high_after_an_idle_one(emulator, pump_cli):
    # Someone supervises (a monitor, every 2 s) while the CLI is used: silences alarm.
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S, supervise=2) as monitor:
        emulator.advance(15)  # silent while idle: link_lost, medium, "nothing running"
        assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
        emulator.advance(15)  # silent again, norepinephrine held this time
        monitor.uptime_ms()  # the monitor speaks again before it says goodbye
    r = pump_cli("alarms")
    lost = [line for line in r.stdout.splitlines() if "link_lost" in line]
    assert len(lost) == 1 and "high" in lost[0] and "norepinephrine" in lost[0], r.stdout


def test_the_log_shows_no_field_the_command_left_out(pump_cli):
    r = pump_cli("start", "vasopressin", "0.03", "units/min", *VASO, channel=2)
    assert r.returncode == 0, r.stderr
    r = pump_cli("log", "--csv")
    assert "start vasopressin 0.03 units/min, 1 units/mL, 20 mL" in r.stdout, r.stdout
    assert "None" not in r.stdout
