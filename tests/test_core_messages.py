"""Every human text the safety core makes (Result.message, Alarm.message, log text) is
printable ASCII and fits the wire's TEXT_MAX whole, and every log code is a reason.

`_tour` drives the core down every reason-code path (test_the_tour_reaches_every_reason
proves it does), with the longest inputs a command can carry: values at the wire's
limits, odd and non-ASCII text. Hypothesis then throws random drugs, doses, units and
values at it. tests/test_core_properties.py checks the same on its random sequences.
"""

import binascii
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from pumpguard.library.seal import seal

from firmware import druglib, libpush, startup, units
from firmware import main as firmware_main
from firmware.core import FAULTS, SafetyCore
from firmware.handover import move
from firmware.rules import EMERGENCY_REASONS
from protocol import catalog, reasons
from protocol.text import TEXT_MAX
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    library,
    library_text,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, snapshot
from tests.portable.coreview import patient as set_weight
from tests.portable.shellkit import Store

BIG = 0x7FFFFFFF  # the largest quantity the wire carries (protocol Q: i32)
LIB = library()
ODD_TEXT = ["", "x" * 300, "caf\u00e9 \u2192 \U0001f489", "mcg/kg/min" * 20, "\x00\n\t"]


def fits(text):
    return text.isascii() and text.isprintable() and len(text.encode()) <= TEXT_MAX


def assert_core_texts_fit(core, results=()):
    for r in results:
        assert r.code in reasons.NUMBER, r
        assert fits(r.message), (len(r.message), r.message)
    for a in core.alarms():
        assert a.code in reasons.NUMBER, a
        assert fits(a.message), (len(a.message), a.message)
    for seq, _at, _ch, kind, code, text in entries(core.log):
        assert code in reasons.NUMBER, (seq, kind, code, text)
        assert fits(text), (len(text), text)


def _core(**kwargs):
    # a log large enough to hold the whole tour: every entry is checked
    return SafetyCore(LIB, log_size=2000, **kwargs)


def _invalid_library():
    doc = json.loads(library_text())
    doc["drugs"]["x" * 200] = {"dose_unit": "drops/\u00e9" * 40}
    doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"
    lib = druglib.load(json.dumps(doc))
    assert not lib.ok
    return lib


def _tour():
    """([core, ...], results): every reason-code path, with worst-case inputs."""
    core = _core(max_rate=500 * M, link_timeout_ms=10_000)
    cores = [core]
    results = []
    add = results.append
    nor = {"weight": 80 * M, "conc": 16 * M, "conc_unit": "mcg/mL", "volume": 50 * M}
    # refusals of start, one per reason, each with the longest input it can echo
    for name in ODD_TEXT + [BIG, None]:
        add(core.start(1, name, 100000, "mcg/kg/min", 0, **nor))  # unknown_drug
    for ch in (0, 3, -BIG, "x" * 300, None):
        add(core.start(ch, "norepinephrine", 100000, "mcg/kg/min", 0, **nor))  # channel
        add(core.titrate(ch, 100000, "mcg/kg/min", 0))
        add(core.stop(ch, 0))
        add(core.emergency_stop(ch, "clinician", 0))
    for what in ("dose", "volume", "conc", "weight"):
        for bad in (-1, BIG + 1, 10**40, 1.5, "x" * 300, "\u00e9"):
            args = dict(nor, dose=100000)
            args[what] = bad
            dose = args.pop("dose")
            add(core.start(1, "norepinephrine", dose, "mcg/kg/min", 0, **args))  # bad_value
    for unit in ODD_TEXT + ["mL/h", "mcg/kg/h", "units/h", "mcg/min"]:
        add(start_vasopressin(core, unit=unit))  # unit refusals
    for unit in ODD_TEXT + ["mL/h", "mcg/kg/h", "units/h", "milliunits/min"]:
        add(start_norepinephrine(core, unit=unit))
    add(start_norepinephrine(core, weight=None))  # weight_required
    add(start_norepinephrine(core, unit="mcg/min", weight=None))
    for weight in (M, BIG):
        add(start_norepinephrine(core, weight=weight))  # weight_out_of_range
    add(start_norepinephrine(core, conc=None))  # conc_required
    for conc_unit in ODD_TEXT + ["units/mL", "mg/mL"]:
        add(start_norepinephrine(core, conc_unit=conc_unit))
    for conc in (BIG, 1):
        add(start_norepinephrine(core, conc=conc))  # conc_not_allowed
    add(start_norepinephrine(core, volume=None))  # volume_required
    add(start_norepinephrine(core, volume=BIG))  # volume_out_of_range
    for drug in LIB.drugs.values():
        for unit in units.dose_units_of(drug.family):
            doses = (drug.hard_max + 1, drug.hard_min - 1, drug.soft_max + 1, drug.soft_min - 1)
            for dose in (BIG, drug.soft_max * 10, drug.soft_max * 1000) + doses:
                args = {
                    "weight": 300 * M,
                    "conc": drug.concs[0],
                    "conc_unit": drug.conc_unit,
                    "volume": 1000 * M,
                }
                lab = _core(max_rate=500 * M)  # a fresh one: some of these are accepted
                add(lab.start(2, drug.name, dose, unit, 0, **args))
                cores.append(lab)
    add(start_norepinephrine(core, ch=2, dose=300000))  # above_start_max
    add(
        start_norepinephrine(core, ch=2, dose=1000000, conc=4 * M, weight=300 * M, override=True)
    )  # rate (past the start limit: overridden)
    # accepted starts, overrides and advisories, then the titration rules
    add(start_vasopressin(core, ch=1))  # ok_advisory, second_line_alone
    add(start_norepinephrine(core, ch=2, dose=500000, override=True))  # ok_override
    add(start_norepinephrine(core, ch=2))  # invalid_state
    add(core.titrate(2, 900000, "mcg/kg/min", MIN))  # step_up_too_large
    add(core.titrate(2, 600000, "mcg/kg/min", MIN))  # too_soon (up)
    add(core.titrate(2, 1200000, "mcg/kg/min", MIN, override=True))  # override x3
    add(core.titrate(2, 1200000, "mcg/kg/min", MIN))  # already there
    add(core.titrate(2, 1000000, "mcg/kg/min", 2 * MIN))  # step_down_too_large (taper)
    add(core.titrate(2, 1150000, "mcg/kg/min", 2 * MIN))
    add(core.titrate(2, 1100000, "mcg/kg/min", 3 * MIN))  # too_soon (down, taper)
    add(core.stop(1, 4 * MIN))  # taper_started
    add(core.stop(1, 5 * MIN))  # invalid_state, with the taper's next step
    core.supervise(2000, 5 * MIN)  # a host that heartbeats every 2 s, heard now
    core.tick(HOUR + 5 * MIN)  # taper_step, link_lost with rates held
    core.host_seen(HOUR + 6 * MIN)  # link_back
    for a in list(core.alarms()):
        add(core.ack(a.id, HOUR + 7 * MIN))  # acked
    for alarm_id in (BIG, -1, "x" * 300, None):
        add(core.ack(alarm_id, HOUR + 7 * MIN))  # unknown_alarm
    for reason in ODD_TEXT:
        add(core.emergency_stop(2, reason, HOUR + 8 * MIN))  # unknown_reason
    core.delivered(2, 49 * M)  # near_empty
    core.tick(HOUR + 9 * MIN)
    core.delivered(2, M)  # syringe_empty
    core.tick(HOUR + 9 * MIN)
    # a drug without taper: stopped; titration down too soon and too far (soft)
    other = _core()
    add(start_dobutamine(other, ch=1))
    add(other.titrate(1, 5000000, "mcg/kg/min", 20 * MIN))
    add(other.titrate(1, 3000000, "mcg/kg/min", 21 * MIN))  # too_soon (down, soft)
    add(other.titrate(1, 2000000, "mcg/kg/min", 60 * MIN))  # step_down_too_large (soft)
    add(other.stop(1, 61 * MIN))  # stopped
    for kind in sorted(FAULTS):
        add(start_dobutamine(other, ch=2, now=62 * MIN))
        add(other.fault(2, kind, 62 * MIN))
        add(start_dobutamine(other, ch=2, now=62 * MIN))  # fault_active: still reported
        other.fault(2, None, 62 * MIN)  # fault_cleared (logged)
    for reason in EMERGENCY_REASONS:
        add(start_dobutamine(other, ch=1, now=63 * MIN))
        add(other.emergency_stop(1, reason, 63 * MIN))  # emergency_stopped
    # resumed after a reset, and a lost store
    running = _core()
    add(start_norepinephrine(running, ch=1))
    add(start_vasopressin(running, ch=2))
    back = SafetyCore.restore(LIB, json.loads(json.dumps(snapshot(running))), 5000)
    fresh = _core()
    startup.store_lost(fresh, "x" * 300 + "\u00e9", 0)
    startup.store_lost(fresh, "missing", 1)
    for code in ("internal_fault", "store_failed", "record_set_aside", "record_rolled_back"):
        fresh.device_alarm(code, "x" * 300 + "\u00e9", 2)
    # the board's keys (firmware/main.py keys_alarms), and the entries the shell's AUTH
    # and KEY handlers add to the core's log (firmware/handlers.py), with their texts
    fresh.device_alarm("keys_missing", "x" * 300 + "\u00e9", 2, True)
    fresh.device_alarm("insecure_link", "x" * 300 + "\u00e9", 2, True, "low")
    fresh.log.add(3, 0, "input", "auth_refused", "the board refused the key for role clinician")
    fresh.log.add(3, 0, "input", "key_rotated", "key for role clinician replaced")
    # a restored channel that breaks a rule (vasopressin above its hard max) stays stopped
    forged = json.loads(json.dumps(snapshot(running)))
    forged["channels"][1]["dose"] = 999999
    refused = SafetyCore.restore(LIB, forged, 5000)
    # an invalid library, and its standing alarm at boot (firmware/main.py)
    broken = SafetyCore(_invalid_library(), log_size=2000)
    add(start_norepinephrine(broken))
    firmware_main.library_alarm(broken, broken.library, 0)
    made = [_pushes(add), _handovers(add), _patients(add)]
    return cores + [other, running, back, fresh, refused, broken] + made, results


def _patients(add):
    """A core through every decision of PATIENT (firmware/handlers.py, rules.check_patient)
    and a start's weight against the patient's, with the longest figures each echoes."""
    core = _core()
    name = max(LIB.drugs, key=len)
    drug = LIB.drugs[name]
    for bad in (-(2**31) + 1, -1, 0, 300 * M + 1, 2**31 - 1):  # what the wire's i32 holds
        add(set_weight(core, bad, 0))  # bad_value, weight_out_of_range
    add(set_weight(core, 299999999, 0))  # patient_set
    order = {"conc": max(drug.concs), "conc_unit": drug.conc_unit, "volume": 50 * M}
    add(core.start(1, name, drug.soft_min, drug.dose_unit, 0, weight=BIG, **order))
    add(core.start(1, name, drug.soft_min, drug.dose_unit, 0, weight=299999998, **order))
    add(core.start(1, name, drug.soft_min, drug.dose_unit, 0, override=True, **order))
    add(set_weight(core, 1000000, MIN))  # invalid_state: channel 1 delivers
    add(set_weight(core, None, MIN))
    add(set_weight(core, 299999999, MIN))  # the same: accepted
    return core


def _handovers(add):
    """A core through every refusal of a handover (firmware/handover.py), each with the
    longest label it echoes, and one accepted: the drug with the longest name, the
    longest concentration and volume."""
    core = _core()
    name = max(LIB.drugs, key=len)
    drug = LIB.drugs[name]
    conc = max(drug.concs)
    order = {"conc": conc, "conc_unit": drug.conc_unit, "volume": 1000 * M, "weight": 300 * M}
    add(core.start(1, name, drug.soft_min, drug.dose_unit, 0, override=True, **order))
    for label in ODD_TEXT + [BIG, None, "norepinephrine"]:
        add(move(core, 1, 2, label, conc, drug.conc_unit, 50 * M, None, MIN))  # mismatch
    for bad in (BIG, -1, 10**40, 1.5, "x" * 300, None):
        add(move(core, 1, 2, name, bad, drug.conc_unit, 50 * M, None, MIN))  # conc
        add(move(core, 1, 2, name, conc, drug.conc_unit, bad, None, MIN))  # volume
    for conc_unit in ODD_TEXT:
        add(move(core, 1, 2, name, conc, conc_unit, 50 * M, None, MIN))
    for frm, to in ((1, 1), (2, 1), (0, 2), (1, BIG), ("x" * 300, None)):
        add(move(core, frm, to, name, conc, drug.conc_unit, 50 * M, None, MIN))  # channels
    add(move(core, 1, 2, name, conc, drug.conc_unit, BIG, 10 * M, MIN))  # the syringe
    add(move(core, 1, 2, name, conc, drug.conc_unit, 1000 * M, None, MIN))  # handed_over
    return core


def _pushes(add):
    """A core through every step of library pushes (firmware/libpush.py), with the
    longest identities a library may have, every refusal's text added."""
    core = _core()
    store = Store()
    push = libpush.Push(store)
    doc = json.loads(library_text())
    doc["name"], doc["version"] = "n" * 32, "v" * 16
    doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"
    data = json.dumps(doc).encode()
    crc = binascii.crc32(data)
    add(start_norepinephrine(core, ch=1))
    add(start_norepinephrine(core, ch=2))
    core.stop(2, 0)  # tapering
    add(push.begin(core, 1, 0, len(data), crc))  # library_busy
    for ch in (1, 2):
        core.emergency_stop(ch, "clinician", 0)
    add(push.data(core, 1, 0, 0, 1, b"x"))  # invalid_state: not begun
    add(push.begin(core, 1, 0, 10**9, crc))  # bad_value: too large
    for offset, n in ((0, 2), (10**9, 192), (0, 10**9)):  # bad_value: offset and n
        push.begin(core, 1, 0, 1, crc)
        add(push.data(core, 1, 0, offset, n, bytes(192)))
    for size, sent in ((len(data) + 1, data), (len(data), data[:-1] + b" ")):  # size, crc
        push.begin(core, 1, 0, size, crc)
        push.data(core, 1, 0, 0, len(sent), sent)
        add(push.commit(core, 1, 0, _nothing))
    bad = dict(doc, crc32="0x00000000")
    text = json.dumps(bad).encode()
    push.begin(core, 1, 0, len(text), binascii.crc32(text))
    push.data(core, 1, 0, 0, len(text), text)
    add(push.commit(core, 1, 0, _nothing))  # library_invalid
    for version in ("v" * 16, "w" * 16):  # library_pushed and library_switched, twice:
        doc["version"] = version  # the second from a library of the longest identity
        doc["crc32"] = f"0x{druglib.crc_of(doc):08x}"
        data = json.dumps(doc).encode()
        push.begin(core, 1, 0, len(data), binascii.crc32(data))
        push.data(core, 1, 0, 0, len(data), data)
        assert push.commit(core, 1, 0, _nothing)["library_version"] == version
    return core


def _nothing():
    """A commit's applied() (firmware/shell.py) where no shell's net serves it."""


def test_every_text_of_every_reason_path_fits_the_wire():
    cores, results = _tour()
    for core in cores:
        assert_core_texts_fit(core, results)


def test_the_tour_reaches_every_reason():
    cores, results = _tour()
    seen = {r.code for r in results}
    for core in cores:
        seen.update(e[4] for e in entries(core.log))
    assert seen == set(reasons.NUMBER), set(reasons.NUMBER) - seen


def test_the_core_text_bound_is_every_text_field_of_the_wire():
    # The core keeps its texts within protocol/text.py's TEXT_MAX: every TEXT field a
    # message of the core travels in must hold that many bytes.
    def text_fields(fields):
        for f in fields:
            if f[1] == catalog.TEXT:
                yield f
            elif f[1] == catalog.LIST:
                yield from text_fields(f[3])

    sizes = {f[2] for fields in catalog.FIELDS.values() for f in text_fields(fields)}
    assert sizes == {TEXT_MAX}


def test_every_log_code_is_a_reason_and_commands_keep_their_name_as_kind():
    core = _core()
    start_norepinephrine(core)
    core.titrate(1, 120000, "mcg/kg/min", 10 * MIN)
    core.stop(1, 11 * MIN)
    core.emergency_stop(1, "clinician", 12 * MIN)
    core.ack(1, 13 * MIN)
    commands = [(e[3], e[4]) for e in entries(core.log) if e[4] == "received"]
    assert [kind for kind, _ in commands] == ["start", "titrate", "stop", "emergency_stop", "ack"]
    assert all(e[4] in reasons.NUMBER for e in entries(core.log))


def test_too_soon_says_how_long_to_wait_and_keeps_the_time_for_machines():
    core = _core()
    every = LIB.drugs["norepinephrine"].up_interval_ms
    assert every == 2 * MIN  # the library's figure this message is written for
    start_norepinephrine(core, now=240238 - every)
    result = core.titrate(1, 120000, "mcg/kg/min", 240238 - every + 2000)
    assert result.code == "too_soon" and result.next_at_ms == 240238
    assert "may rise again in 1 min 58 s (once every 2 min)" in result.message
    assert "240238" not in result.message


@settings(max_examples=300, deadline=None)
@given(
    name=st.one_of(st.sampled_from(sorted(LIB.drugs)), st.text(max_size=200)),
    dose=st.one_of(st.integers(-(2**40), 2**40), st.integers(0, 10**10)),
    unit=st.one_of(
        st.sampled_from(sorted(units.DOSE_UNITS) + list(units.PER_HOUR_UNITS) + ["mL/h"]),
        st.text(max_size=200),
    ),
    weight=st.one_of(st.none(), st.integers(0, 2**40)),
    conc=st.one_of(st.none(), st.integers(0, 2**40)),
    conc_unit=st.one_of(st.none(), st.sampled_from(sorted(units.CONC_UNITS)), st.text()),
    volume=st.one_of(st.none(), st.integers(0, 2**40)),
    override=st.booleans(),
    titrations=st.lists(
        st.tuples(st.integers(0, 10**10), st.sampled_from(sorted(units.DOSE_UNITS))),
        max_size=4,
    ),
)
def test_random_commands_keep_every_text_within_the_wire(
    name, dose, unit, weight, conc, conc_unit, volume, override, titrations
):
    core = _core()
    results = [start_norepinephrine(core, ch=2, dose=1000000, override=True)]
    results.append(
        core.start(
            1,
            name,
            dose,
            unit,
            0,
            weight=weight,
            conc=conc,
            conc_unit=conc_unit,
            volume=volume,
            override=override,
        )
    )
    for i, (value, how) in enumerate(titrations):
        results.append(core.titrate(1, value, how, (i + 1) * 7 * MIN, override=override))
    results.append(core.stop(1, HOUR))
    core.tick(3 * HOUR)
    assert_core_texts_fit(core, results)


def test_the_longest_accepted_titration_fits():
    # a taper cancelled by an overridden titration past three soft rules at once
    core = _core()
    start_norepinephrine(core, dose=100000)
    core.titrate(1, 100001, "mcg/kg/min", 2 * MIN)
    core.stop(1, 2 * MIN)
    result = core.titrate(1, 1000001, "mcg/kg/min", 2 * MIN + 1000, override=True)
    assert result.code == "ok_override", result
    assert "taper cancelled" in result.message
    assert "override: soft max, step, interval" in result.message
    assert_core_texts_fit(core, [result])


def test_the_handed_over_message_fits_the_wire_with_a_16_character_drug_name(tmp_path):
    # libload takes names of up to 16 characters; the shipped library's longest is 14
    # (found by review: 122 characters, cut in the journal, before the wording was cut)
    doc = json.loads(library_text())
    doc["drugs"]["dobutamine-250mg"] = doc["drugs"].pop("dobutamine")
    path = tmp_path / "lib.json"
    path.write_text(json.dumps(doc))
    seal(path)
    lib = druglib.load(path.read_text())
    assert lib.ok, lib.problems
    core = SafetyCore(lib, channels=255)
    order = {"weight": 40 * M, "conc": 4 * M, "conc_unit": "mg/mL", "volume": 1000 * M}
    assert core.start(254, "dobutamine-250mg", 19999999, "mcg/kg/min", 0, override=True, **order).ok
    r = move(core, 254, 255, "dobutamine-250mg", 4 * M, "mg/mL", 999999999, None, MIN)
    assert r.ok, r.message
    assert len(r.message) <= TEXT_MAX, (len(r.message), r.message)
    assert_core_texts_fit(core, [r])
