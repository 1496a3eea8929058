"""The API's answers from a running pump: a channel's order in its status, events as
typed answers with Decimal quantities, the order in `pumpguard status` too."""

import json
import re
from decimal import Decimal
from pathlib import Path

import pumpguard
import pytest

from tests.systemkit import ANSWER_TIMEOUT_S, start_norepinephrine

pytestmark = pytest.mark.system


@pytest.mark.needs_emulator  # a fresh board: an idle channel says no order
def test_status_gives_the_order_here_in_the_status_command_and_the_readme(pump, pump_cli, capsys):
    idle = pump.status(2)
    assert (idle.concentration, idle.concentration_unit, idle.weight_kg, idle.volume_ml) == (
        None,
        None,
        None,
        None,
    )
    start_norepinephrine(pump)  # 0.1 mcg/kg/min, 70 kg, 16 mcg/mL, 50 mL
    pump.start(2, "vasopressin", "30", "milliunits/min", concentration=("1", "units/mL"),
               volume_ml=20)  # fmt: skip
    s = pump.status(1)
    assert (s.concentration, s.concentration_unit) == (Decimal("16"), "mcg/mL")
    assert (s.weight_kg, s.volume_ml) == (Decimal("70"), Decimal("50"))
    assert s.volume_left_ml is not None and s.volume_left_ml <= s.volume_ml
    assert s.order == "16 mcg/mL, 70 kg, 50 mL programmed"
    v = pump.status(2)  # no weight given: the patient's; the dose in the drug's unit
    assert (v.dose, v.dose_unit, v.concentration, v.concentration_unit) == (
        Decimal("0.03"),
        "units/min",
        Decimal("1"),
        "units/mL",
    )
    assert (v.weight_kg, v.volume_ml) == (Decimal("70"), Decimal("20"))
    assert (v.patient_weight_kg, idle.patient_weight_kg) == (Decimal("70"), None)
    r = pump_cli("status")
    assert r.returncode == 0, r.stderr
    assert "norepinephrine 0.1 mcg/kg/min [16 mcg/mL, 70 kg, 50 mL programmed]" in r.stdout
    shown = json.loads(pump_cli("status", "--json").stdout)
    # --json gives every quantity as its exact decimal string (cli/jsonout.py)
    assert (shown["concentration"], shown["concentration_unit"]) == ("16", "mcg/mL")
    assert (shown["weight_kg"], shown["volume_ml"]) == ("70", "50")
    # the README's second example, verbatim, on this pump
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Script a pump from Python", 1)[1].split("\n## ", 1)[0]
    exec(
        re.findall(r"```python\n(.*?)```", section, re.S)[1], {"pump": pump, "pumpguard": pumpguard}
    )
    assert "1 running 0.1 mcg/kg/min 26.25" in capsys.readouterr().out.splitlines()
    pump.emergency_stop(1, "clinician")
    stopped = pump.status(1)  # what it ran is still said
    assert stopped.state == "stopped" and stopped.order == s.order
    # the concentration in the drug's unit, as the library writes it
    start_norepinephrine(pump, concentration=("0.016", "mg/mL"))
    assert pump.status(1).order == "16 mcg/mL, 70 kg, 50 mL programmed"


def test_events_are_typed_answers_with_decimal_quantities(pump, emulator):
    start_norepinephrine(pump)
    emulator.inject("occlusion", 1)
    events = []
    # Events come as the device sends them: read until both are in (each poll waits).
    for _ in range(20):
        events += pump.events(timeout=ANSWER_TIMEOUT_S / 4)
        if any(isinstance(e, pumpguard.Alarm) for e in events):
            break
    running = [e for e in events if isinstance(e, pumpguard.StateChange) and e.state == "running"]
    assert running, events
    assert (running[0].channel, running[0].drug) == (1, "norepinephrine")
    assert (running[0].dose, running[0].dose_unit) == (Decimal("0.1"), "mcg/kg/min")
    assert running[0].rate_ml_h == Decimal("26.25")
    (alarm,) = [e for e in events if isinstance(e, pumpguard.Alarm)]
    assert (alarm.channel, alarm.code, alarm.priority) == (1, "occlusion", "high")
    assert all(isinstance(e, (pumpguard.Alarm, pumpguard.StateChange)) for e in events)
