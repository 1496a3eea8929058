"""The real ``pumpguard`` command, run as a subprocess against the emulator's PTY."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.system

NOREPI = ["--weight", "70", "--concentration", "16", "mcg/mL", "--volume", "50"]


def test_start_status_json_and_exit_0(cli):
    r = cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI)
    assert r.returncode == 0, r.stderr
    assert "26.25 mL/h" in r.stdout
    r = cli("status", "--json")
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
    assert (status["state"], status["dose"], status["rate_ml_h"]) == ("running", 0.1, 26.25)


def test_status_json_all_prints_one_object_per_channel(cli):
    r = cli("status", "--json", "--all")
    lines = r.stdout.splitlines()
    assert [json.loads(line)["channel"] for line in lines] == [1, 2]


def test_refusal_exits_3_and_prints_the_reason_and_range(cli):
    r = cli(
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
    assert "0.005 to 0.04 units/min" in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["start", "norepinephrine", "abc", "mcg/kg/min"],
        ["start", "norepinephrine", "0.1234567", "mcg/kg/min"],
        ["titrate"],
        ["frobnicate"],
        ["stop", "--emergency", "bored"],
    ],
)
def test_usage_errors_exit_2_and_send_nothing(cli, args):
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert "usage" in r.stderr or "pumpguard:" in r.stderr


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


def test_port_from_the_environment(port):
    env = dict(os.environ, PUMPGUARD_PORT=port)
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


def test_stop_on_a_taper_drug_prints_the_plan(cli):
    assert cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = cli("stop")
    assert r.returncode == 0, r.stderr
    assert "tapering, 5 steps" in r.stdout
    assert "0.08 mcg/kg/min" in r.stdout and "0:15:00" in r.stdout


def test_emergency_stop_alarms_ack_and_log_csv(cli):
    assert cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    assert cli("stop", "--emergency", "occlusion").returncode == 0
    r = cli("alarms")
    assert "high" in r.stdout and "occlusion" in r.stdout
    alarm_id = r.stdout.split()[0]
    assert cli("alarms", "--ack", alarm_id).returncode == 0
    r = cli("log", "--csv")
    assert r.stdout.splitlines()[0] == "seq,at_ms,channel,kind,code,text"
    assert "emergency" in r.stdout


def test_titrate_on_channel_2(cli):
    assert cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = cli(
        "start",
        "vasopressin",
        "0.03",
        "units/min",
        "--concentration",
        "1",
        "units/mL",
        "--volume",
        "20",
        channel=2,
    )
    assert r.returncode == 0, r.stderr
    r = cli("titrate", "0.035", "units/min", channel=2)
    assert r.returncode == 3
    assert "above_soft_max" in r.stderr
    r = cli("titrate", "0.035", "units/min", "--override", channel=2)
    assert r.returncode == 0, r.stderr
    assert "now 0.035 units/min" in r.stdout
