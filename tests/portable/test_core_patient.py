# One patient per pump module (issue 9, finding 7): one weight for every channel, set
# by PATIENT or by the first start that gives one; a start at another weight is
# refused naming both, a start without one runs at the patient's, and the patient
# changes only while no dose that went through the weight runs. Kept across a reset.
import json

from firmware.core import SafetyCore
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    codes,
    library,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, snapshot, status_of
from tests.portable.coreview import patient as set_weight


def _same(core, before):
    now = snapshot(core)
    now["at_ms"] = before["at_ms"]  # the time of the latest command, refused or not
    assert now == before, "a refusal changed the core"


def test_a_second_weight_for_the_patient_is_refused_naming_both():
    core = make_core()
    assert start_norepinephrine(core, weight=70 * M).ok
    before = snapshot(core)
    r = start_dobutamine(core, ch=2, weight=170 * M, now=MIN)
    assert not r.ok and r.code == "weight_mismatch", (r.code, r.message)
    assert r.message.startswith("weight 170 kg is not the patient's 70 kg"), r.message
    assert r.allowed == (70 * M, 70 * M, "kg"), r.allowed
    assert len(r.message) <= 120
    _same(core, before)
    assert core.weight == 70 * M


def test_finding_7_a_per_kg_total_at_two_weights_is_refused():
    # norepinephrine 0.8 mcg/kg/min at 300 kg beside 2.2 at 20 kg: 284 mcg/min, each
    # channel under the hard max on its own weight
    core = make_core()
    assert start_norepinephrine(core, dose=800000, weight=300 * M, override=True).ok
    r = start_norepinephrine(core, ch=2, dose=2200000, weight=20 * M, override=True, now=MIN)
    assert r.code == "weight_mismatch", (r.code, r.message)
    assert status_of(core, 2).state == "idle"


def test_a_start_without_a_weight_runs_at_the_patients():
    core = make_core()
    assert start_norepinephrine(core, weight=80 * M).ok
    r = start_dobutamine(core, ch=2, weight=None, now=MIN)
    assert r.ok, (r.code, r.message)
    assert r.rate == 12 * M  # 2.5 mcg/kg/min at 80 kg of 1 mg/mL: as with weight=80 kg
    assert core.channel(2).weight == 80 * M
    # vasopressin is not dosed per kg; its channel still runs for the same patient
    core2 = make_core()
    assert set_weight(core2, 65 * M, 0).ok
    assert start_vasopressin(core2).ok
    assert core2.channel(2).weight == 65 * M


def test_the_same_weight_again_passes():
    core = make_core()
    assert set_weight(core, 72500000, 0).ok
    assert start_norepinephrine(core, weight=72500000).ok
    assert start_dobutamine(core, ch=2, weight=72500000, now=MIN).ok


def test_the_first_accepted_start_with_a_weight_sets_the_patient_a_refused_one_does_not():
    core = make_core()
    assert core.weight is None
    r = start_norepinephrine(core, dose=5 * M, weight=70 * M)  # above the hard max
    assert not r.ok and core.weight is None, (r.code, core.weight)
    assert start_vasopressin(core).ok  # no weight given, none known: still none
    assert core.weight is None and core.channel(2).weight is None
    assert start_norepinephrine(core, weight=70 * M, now=MIN).ok
    assert core.weight == 70 * M


def test_a_per_kg_start_without_any_weight_still_needs_one():
    core = make_core()
    r = start_norepinephrine(core, weight=None)
    assert r.code == "weight_required", (r.code, r.message)


def test_the_patient_changes_only_while_nothing_delivers():
    core = make_core()
    assert start_norepinephrine(core, weight=70 * M).ok
    before = snapshot(core)
    for weight in (71 * M, None):
        r = set_weight(core, weight, MIN)
        assert r.code == "invalid_state", (r.code, r.message)
        assert r.message == (
            "cannot change the patient: channel 1's norepinephrine is dosed at 70 kg; end it"
            " first (stop or emergency stop)"
        ), r.message
        _same(core, before)
    assert set_weight(core, 70 * M, MIN).ok  # the same: nothing changes
    assert core.emergency_stop(1, "clinician", 2 * MIN).ok
    r = set_weight(core, 90 * M, 3 * MIN)
    assert r.ok and r.code == "patient_set" and r.message == "patient 90 kg", r.message
    assert set_weight(core, None, 4 * MIN).message == "patient cleared"
    assert core.weight is None
    assert start_norepinephrine(core, weight=110 * M, now=5 * MIN).ok  # the new patient's
    assert core.weight == 110 * M


def test_a_weight_is_set_while_a_drug_without_one_delivers():
    # none was known: no running rate follows a weight, so nothing it changes
    core = make_core()
    assert start_vasopressin(core).ok
    assert set_weight(core, 70 * M, MIN).ok
    assert start_norepinephrine(core, weight=None, now=2 * MIN).ok
    assert core.channel(1).weight == 70 * M


def test_a_bad_weight_is_refused_and_changes_nothing():
    core = make_core()
    assert set_weight(core, 70 * M, 0).ok
    before = snapshot(core)
    for bad in (-1, -(2**31) + 1, 2**31 - 1, 0, 301 * M):  # as the wire's i32 carries them
        r = set_weight(core, bad, MIN)
        assert not r.ok and r.code in ("bad_value", "weight_out_of_range"), (bad, r.code)
        assert len(r.message) <= 120
    _same(core, before)


def test_a_rollback_puts_the_patient_back():
    core = make_core()
    kept = core.keep()
    assert start_norepinephrine(core, weight=70 * M).ok
    core.rollback(kept)
    assert core.weight is None


def test_a_reset_keeps_the_patient():
    core = make_core()
    assert set_weight(core, 68 * M, 0).ok
    snap = json.loads(json.dumps(snapshot(core)))
    back = SafetyCore.restore(library(), snap, 1000)
    assert back.weight == 68 * M
    r = start_norepinephrine(back, weight=70 * M, now=2000)
    assert r.code == "weight_mismatch", (r.code, r.message)


def _unweighed(snap):
    # the record as the format before the patient's weight (2) held it
    snap = json.loads(json.dumps(snap))
    del snap["weight"]
    snap["version"] = 2
    return snap


def test_a_record_of_format_2_takes_the_patient_from_its_delivering_channels():
    core = make_core()
    assert start_norepinephrine(core, weight=70 * M).ok
    assert start_dobutamine(core, ch=2, weight=70 * M, now=MIN).ok
    snap = _unweighed(snapshot(core))
    snap["channels"][1]["weight"] = 170 * M  # two weights: what format 2 let in
    snap["channels"][1]["rate"] = 170 * 25 * M // 10 * 60 // 1000  # dobutamine at 170 kg
    back = SafetyCore.restore(library(), snap, 1000)
    assert back.weight == 70 * M
    assert status_of(back, 1).state == "running"
    assert status_of(back, 2).state == "stopped"
    refused = [a for a in back.alarms() if a.code == "restore_refused"]
    assert len(refused) == 1 and "170 kg is not the patient's 70 kg" in refused[0].message, [
        a.message for a in refused
    ]


def test_a_record_of_format_2_with_nothing_delivering_knows_no_patient():
    core = make_core()
    back = SafetyCore.restore(library(), _unweighed(snapshot(core)), 1000)
    assert back.weight is None and "store_lost" not in codes(back)


def test_a_record_of_format_3_with_a_channel_at_another_weight_resumes_it_not():
    core = make_core()
    assert start_norepinephrine(core, weight=70 * M).ok
    snap = json.loads(json.dumps(snapshot(core)))
    snap["weight"] = 75 * M
    back = SafetyCore.restore(library(), snap, HOUR)
    assert back.weight == 75 * M
    assert status_of(back, 1).state == "stopped" and "restore_refused" in codes(back)


def test_a_record_whose_patients_weight_is_no_quantity_is_refused():
    core = make_core()
    for bad in (-1, "70", 1.5, True, 2**31):
        snap = json.loads(json.dumps(snapshot(core)))
        snap["weight"] = bad
        try:
            SafetyCore.restore(library(), snap, 0)
        except ValueError as exc:
            assert "weight" in str(exc), str(exc)
        else:
            raise AssertionError("restored a record whose weight is %r" % (bad,))


def test_the_patient_changes_while_only_drugs_dosed_per_minute_deliver():
    # a weight mistyped for the patient is corrected while vasopressin runs: its rate
    # follows no weight, and the channel runs at the new one (a titration in per kg of
    # a drug dosed per minute converts at it)
    core = make_core()
    assert set_weight(core, 170 * M, 0).ok
    assert start_vasopressin(core, ch=2).ok
    rate = core.rate(2)
    r = set_weight(core, 70 * M, MIN)
    assert r.ok, (r.code, r.message)
    assert (core.weight, core.channel(2).weight, core.rate(2)) == (70 * M, 70 * M, rate)
    assert start_norepinephrine(core, weight=70 * M, now=2 * MIN).ok
    r = set_weight(core, 80 * M, 3 * MIN)  # norepinephrine's rate follows the weight: no
    assert r.code == "invalid_state", (r.code, r.message)


def test_a_titration_per_kg_of_a_drug_started_per_minute_uses_the_patient_set_since():
    core = make_core()
    r = core.start(1, "phenylephrine", 30 * M, "mcg/min", 0, conc=100 * M, conc_unit="mcg/mL",
                   volume=50 * M)  # fmt: skip
    assert r.ok, (r.code, r.message)
    assert set_weight(core, 60 * M, MIN).ok
    r = core.titrate(1, 500000, "mcg/kg/min", HOUR)  # 0.5 mcg/kg/min at 60 kg: 30 mcg/min
    assert r.ok and r.dose == 30 * M, (r.code, r.message)


def test_a_bad_weight_is_logged_as_it_came():
    core = make_core()
    assert set_weight(core, -2500000, 0).code == "bad_value"
    assert [e[5] for e in entries(core.log)[-2:]][0] == "patient -2500000 millionths of a kg"
    assert start_norepinephrine(core, weight=70 * M).ok
    assert set_weight(core, None, MIN).code == "invalid_state"
    assert entries(core.log)[-2][5] == "patient clear"  # as received: not "cleared"


def test_a_record_of_format_2_takes_the_patient_from_a_channel_dosed_by_weight():
    # vasopressin's typed weight is not the patient's: its rate follows none
    core = make_core()
    assert start_vasopressin(core, ch=1, weight=80 * M).ok
    core.weight = None  # format 2 kept no patient: each start took its own weight
    assert start_norepinephrine(core, ch=2, weight=70 * M).ok
    back = SafetyCore.restore(library(), _unweighed(snapshot(core)), 1000)
    assert [status_of(back, ch).state for ch in (1, 2)] == ["running", "running"]
    assert (back.weight, back.channel(1).weight) == (70 * M, 70 * M)


def test_a_record_of_format_2_takes_the_patient_from_a_channel_that_resumes():
    core = make_core()
    assert start_norepinephrine(core, ch=1, weight=170 * M, dose=50000).ok
    core.weight = None
    assert start_dobutamine(core, ch=2, weight=70 * M).ok
    snap = _unweighed(snapshot(core))
    snap["channels"][0]["rate"] += 1  # channel 1 fails its own checks
    back = SafetyCore.restore(library(), snap, 1000)
    assert [status_of(back, ch).state for ch in (1, 2)] == ["stopped", "running"]
    assert back.weight == 70 * M


def test_a_weight_correction_is_refused_while_a_dose_typed_per_kg_runs_per_minute():
    # phenylephrine is dosed per minute: 0.3 mcg/kg/min typed at 100 kg is 30 mcg/min; a
    # patient of 50 kg would make it 0.6 mcg/kg/min, twice the order, without a word
    core = make_core()
    r = core.start(1, "phenylephrine", 300000, "mcg/kg/min", 0, weight=100 * M,
                   conc=100 * M, conc_unit="mcg/mL", volume=50 * M)  # fmt: skip
    assert r.ok and r.dose == 30 * M, (r.code, r.message)
    r = set_weight(core, 50 * M, MIN)
    assert r.code == "invalid_state", (r.code, r.message)
    assert r.message == (
        "cannot change the patient: channel 1's phenylephrine is dosed at 100 kg; end it"
        " first (stop or emergency stop)"
    ), r.message
    assert core.weight == 100 * M


def test_a_restored_patients_weight_outside_the_librarys_range_is_none():
    core = make_core()
    assert start_vasopressin(core).ok
    snap = json.loads(json.dumps(snapshot(core)))
    snap["weight"] = 2147483647
    back = SafetyCore.restore(library(), snap, 1000)
    assert back.weight is None and back.channel(2).weight is None
    assert status_of(back, 2).state == "running"


def test_mass_is_the_one_family_with_per_kg_units():
    # check_patient's reading of the units table: if another family gets a per-kg unit,
    # a dose typed in it went through the weight too, and check_patient must say so
    from firmware import units

    per_kg = [family for family, _size, kg in units.DOSE_UNITS.values() if kg]
    assert per_kg and all(family == units.MASS for family in per_kg), per_kg
