"""A syringe change by handover (issue 9, finding 2) through the real ``pumpguard``
command against the emulator, on both runtimes: the program moves to the new syringe
on another channel in one decision, and a changeover never runs two doses together.

Before it, the only ways off the old syringe were a stop, whose taper ran on top of the
new syringe's full dose (0.3 + 0.28 mcg/kg/min together), or an emergency stop."""

import json

import pytest

pytestmark = pytest.mark.system

NOREPI = ["--weight", "70", "--concentration", "16", "mcg/mL", "--volume", "50"]
LABEL = ["--drug", "norepinephrine", "--concentration", "16", "mcg/mL", "--volume", "50"]


def _status(pump_cli, ch):
    r = pump_cli("status", "--json", channel=ch)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _rates(emulator):
    return [p["rate"] for p in emulator.pumps()]


def test_a_handover_moves_the_program_and_never_doubles_the_dose(emulator, pump_cli):
    r = pump_cli("start", "norepinephrine", "0.3", "mcg/kg/min", *NOREPI, "--override")
    assert r.returncode == 0, r.stderr
    running = _rates(emulator)[0]
    r = pump_cli("handover", "1", "2", *LABEL, "--json")
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert (answer["from_channel"], answer["channel"], answer["state"]) == (1, 2, "running")
    assert (answer["dose"], answer["rate_ml_h"]) == ("0.3", "78.75"), answer
    assert _rates(emulator) == [0, running]  # one syringe at a time, the same rate
    old, new = _status(pump_cli, 1), _status(pump_cli, 2)
    assert (old["state"], old["rate_ml_h"]) == ("stopped", "0"), old  # no taper on top
    assert (new["state"], new["dose"], new["override"]) == ("running", "0.3", True), new
    assert (new["weight_kg"], new["volume_ml"]) == ("70", "50"), new
    assert 49 < float(new["volume_left_ml"]) <= 50, new  # counted from the new syringe
    # the log says what moved where, and the old channel stopped by it
    log = pump_cli("log", "--json")
    assert log.returncode == 0, log.stderr
    texts = [e["text"] for e in json.loads(log.stdout)["entries"]]
    assert any("handover channel 1 -> 2 (50 mL), channel 1 stopped" in t for t in texts), texts


def test_a_tapering_program_hands_over_with_its_taper(emulator, pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    r = pump_cli("stop")
    assert r.returncode == 0 and "tapering" in r.stdout, r.stdout
    r = pump_cli("handover", "1", "2", *LABEL)
    assert r.returncode == 0 and "tapering at 0.08" in r.stdout, r.stdout  # not "running"
    assert "(its taper goes on)" in r.stdout, r.stdout
    new = _status(pump_cli, 2)
    assert (new["state"], new["dose"]) == ("tapering", "0.08"), new  # the first step
    assert _status(pump_cli, 1)["state"] == "stopped"
    emulator.advance(15 * 60)  # one taper interval: channel 2 takes the next step
    new = _status(pump_cli, 2)
    assert (new["state"], new["dose"]) == ("tapering", "0.06"), new
    assert _rates(emulator)[0] == 0


def test_a_handover_is_refused_unless_the_new_syringe_is_the_same_and_free(emulator, pump_cli):
    assert pump_cli("start", "norepinephrine", "0.1", "mcg/kg/min", *NOREPI).returncode == 0
    running = _rates(emulator)
    wrong = (
        (["--drug", "dopamine", "--concentration", "16", "mcg/mL", "--volume", "50"],
         "handover_mismatch"),
        (["--drug", "norepinephrine", "--concentration", "4", "mcg/mL", "--volume", "50"],
         "handover_mismatch"),
    )  # fmt: skip
    for label, code in wrong:
        r = pump_cli("handover", "1", "2", *label)
        assert r.returncode == 3 and code in r.stderr, (r.returncode, r.stderr)
        assert "channel 1 runs norepinephrine 16 mcg/mL" in r.stderr, r.stderr
    assert emulator.command("load 2 8").startswith("ok")  # a 10 mL syringe on channel 2
    r = pump_cli("handover", "1", "2", *LABEL)
    assert r.returncode == 3 and "1-10 mL (the syringe loaded)" in r.stderr, r.stderr
    emulator.inject("air", 2)
    emulator.advance(1)
    r = pump_cli("handover", "1", "2", *LABEL[:-1], "10")
    assert r.returncode == 3 and "channel 2 still reports air in line" in r.stderr, r.stderr
    r = pump_cli("handover", "1", "3", *LABEL)
    assert r.returncode == 2 and "this pump has channels 1 to 2" in r.stderr, r.stderr
    assert _rates(emulator) == running  # nothing of any of them applied
    assert _status(pump_cli, 2)["state"] == "idle"
