"""One patient per pump module (issue 9, finding 7) through the real ``pumpguard``
command against the emulator, on both runtimes: one weight for every channel, a start
at another refused naming both (exit 3), a start without one run at the patient's,
the patient changed only while no dose that went through a weight runs, and kept
across a power cycle.

Before it, 70 kg on channel 1 and 170 kg on channel 2 were both accepted for one
patient, and norepinephrine 0.8 mcg/kg/min at 300 kg beside 2.2 at 20 kg ran 284
mcg/min, each channel under its hard max at its own weight."""

import json
from decimal import Decimal

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S

pytestmark = pytest.mark.system

CONC = ["--concentration", "16", "mcg/mL", "--volume", "50"]
DOBUTAMINE = ["--concentration", "1", "mg/mL", "--volume", "50"]


def _patient(pump_cli, *args):
    r = pump_cli("patient", *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["weight_kg"]


def _status(pump_cli, ch):
    r = pump_cli("status", "--json", channel=ch)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_second_weight_for_the_patient_is_refused_naming_both(pump_cli):
    r = pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", "--weight", "70", *CONC)
    assert r.returncode == 0, r.stderr
    r = pump_cli(
        "start", "dobutamine", "2.5", "mcg/kg/min", "--weight", "170", *DOBUTAMINE, channel=2
    )
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "weight 170 kg is not the patient's 70 kg" in r.stderr, r.stderr
    assert "weight_mismatch" in r.stderr, r.stderr
    assert _status(pump_cli, 2)["state"] == "idle"
    # finding 7's total at two weights: refused too, nothing runs on channel 2
    r = pump_cli(
        "start", "norepinephrine", "2.2", "mcg/kg/min", "--weight", "20", *CONC, "--override",
        channel=2,
    )  # fmt: skip
    assert r.returncode == 3 and "not the patient's 70 kg" in r.stderr, r.stderr
    assert _status(pump_cli, 2)["state"] == "idle"


def test_a_start_without_a_weight_runs_at_the_patients(pump_cli):
    assert _patient(pump_cli, "--weight", "80") == "80"
    r = pump_cli("start", "dobutamine", "2.5", "mcg/kg/min", *DOBUTAMINE)
    assert r.returncode == 0, r.stderr
    assert "= 12 mL/h" in r.stdout, r.stdout  # 2.5 mcg/kg/min at 80 kg of 1 mg/mL
    s = _status(pump_cli, 1)
    assert (s["weight_kg"], s["patient_weight_kg"]) == ("80", "80"), s
    r = pump_cli("patient")
    assert (r.returncode, r.stdout) == (0, "patient: 80 kg\n"), (r.stdout, r.stderr)


def test_the_patient_changes_only_while_nothing_delivers(pump_cli):
    r = pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", "--weight", "70", *CONC)
    assert r.returncode == 0, r.stderr
    for args in (["--weight", "75"], ["--clear"]):
        r = pump_cli("patient", *args)
        assert r.returncode == 3, (args, r.stdout, r.stderr)
        assert "channel 1's norepinephrine is dosed at 70 kg" in r.stderr, r.stderr
    assert _patient(pump_cli) == "70"
    assert _patient(pump_cli, "--weight", "70") == "70"  # the same weight: nothing changes
    assert pump_cli("stop", "--emergency", "clinician").returncode == 0
    assert _patient(pump_cli, "--clear") is None
    r = pump_cli("patient")
    assert r.returncode == 0 and "no weight known" in r.stdout, r.stdout
    r = pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", "--weight", "95", *CONC)
    assert r.returncode == 0, r.stderr  # the new patient's weight
    assert _patient(pump_cli) == "95"


def test_a_mistyped_weight_is_corrected_while_only_a_drug_dosed_per_minute_runs(pump_cli):
    assert _patient(pump_cli, "--weight", "170") == "170"
    r = pump_cli("start", "vasopressin", "0.03", "units/min", "--concentration", "1",
                 "units/mL", "--volume", "20")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _patient(pump_cli, "--weight", "70") == "70"  # its rate follows no weight
    s = _status(pump_cli, 1)
    assert (s["state"], s["weight_kg"], s["rate_ml_h"]) == ("running", "70", "1.8"), s


def test_a_bad_weight_is_a_usage_error_or_the_librarys_refusal(pump_cli):
    r = pump_cli("patient", "--weight", "70kg")
    assert r.returncode == 2 and "weight" in r.stderr, r.stderr  # nothing was sent
    r = pump_cli("patient", "--weight", "70", "--clear")
    assert r.returncode == 2, r.stderr
    r = pump_cli("patient", "--weight", "900")
    assert r.returncode == 3 and "weight 900 kg is outside" in r.stderr, r.stderr
    assert _patient(pump_cli) is None


def test_the_patient_is_kept_across_a_power_cycle(emulator):
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.patient("64.5") == pumpguard.Patient(Decimal("64.5"))
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        assert pump.patient().weight_kg == Decimal("64.5")
        with pytest.raises(pumpguard.RefusedError, match="not the patient's 64.5 kg") as info:
            pump.start(1, "norepinephrine", "0.1", "mcg/kg/min", weight_kg="70",
                       concentration="16 mcg/mL", volume_ml="50")  # fmt: skip
        assert info.value.code == "weight_mismatch"
        assert info.value.allowed == (Decimal("64.5"), Decimal("64.5"), "kg")
        assert pump.status(1).state == "idle"
