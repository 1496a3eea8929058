# A handover (issue 9, finding 2): the running program moves to a new syringe on
# another channel in one decision. The new channel starts at the old one's dose, with
# its history and its taper; the old one stops without a taper; the patient's total of
# the drug never changes. A refusal changes nothing.
from firmware.handover import move
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    alarm,
    codes,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, snapshot, status_of

LABEL = ("norepinephrine", 16 * M, "mcg/mL", 50 * M)  # the new syringe's: as channel 1's


def _move(core, now, frm=1, to=2, label=LABEL, syringe=None):
    name, conc, conc_unit, volume = label
    return move(core, frm, to, name, conc, conc_unit, volume, syringe, now)


def _state(core):
    snap = snapshot(core)
    return snap["channels"], snap["alarms"]


def test_the_program_moves_and_the_old_channel_stops_without_a_taper():
    core = make_core()
    assert start_norepinephrine(core, dose=300000, override=True).ok  # 0.3 mcg/kg/min: 90 mL/h
    r = _move(core, 10 * MIN, label=("norepinephrine", 16 * M, "mcg/mL", 20 * M))
    assert r.ok and r.code == "handed_over", (r.code, r.message)
    assert (r.dose, r.unit, r.rate) == (300000, "mcg/kg/min", 90 * M)
    said = "norepinephrine 0.3 mcg/kg/min: handover channel 1 -> 2 (20 mL), channel 1 stopped"
    assert r.message == said, r.message
    old, new = status_of(core, 1), status_of(core, 2)
    assert (old.state, core.rate(1)) == ("stopped", 0)  # no taper on top of the new dose
    assert (new.state, new.dose, core.rate(2)) == ("running", 300000, 90 * M)
    assert (new.weight, new.conc, new.volume, new.volume_left) == (80 * M, 16 * M, 20 * M, 20 * M)
    assert core.rate(1) + core.rate(2) == 90 * M  # the patient's total, unchanged
    logged = [e[2:] for e in entries(core.log)]  # ch, kind, code, text
    said = "handover channel 1 to 2: norepinephrine 16 mcg/mL, 20 mL"
    assert (1, "handover", "received", said) in logged, logged
    assert logged[-1][:3] == (1, "decision", "handed_over"), logged[-1]


def test_the_new_channel_keeps_when_the_dose_last_fell():
    # titrated down to the taper's stop dose, handed over, then stopped: the step to 0
    # still waits a full taper interval after the dose fell (closing finding 4 there too)
    core = make_core()
    assert start_norepinephrine(core).ok
    assert core.titrate(1, 20000, "mcg/kg/min", 10 * MIN, override=True).ok
    assert _move(core, 11 * MIN).ok
    r = core.stop(2, 12 * MIN)
    assert r.code == "taper_started", (r.code, r.message)
    assert r.plan == [(10 * MIN + 15 * MIN, 0)]
    assert core.rate(2) > 0


def test_a_taper_goes_on_on_the_new_channel_at_its_pace():
    core = make_core()
    assert start_norepinephrine(core).ok  # 0.1: steps of 0.02 every 15 min
    assert core.stop(1, 10 * MIN).code == "taper_started"
    assert status_of(core, 1).dose == 80000  # its first step, at once
    due = status_of(core, 1).taper_next_ms
    assert _move(core, 12 * MIN).ok
    new = status_of(core, 2)
    assert (new.state, new.dose, new.taper_next_ms) == ("tapering", 80000, due)
    # said so: read as "running ... no taper", a clinician takes the taper for cancelled
    assert "2 (50 mL), tapering on, channel 1 stopped" in core.log.text(core.log.next_seq - 1)
    assert status_of(core, 1).state == "stopped"
    core.tick(due - 1)
    assert status_of(core, 2).dose == 80000
    core.tick(due)
    assert status_of(core, 2).dose == 60000 and core.rate(1) == 0


def test_the_old_syringe_near_empty_alarm_is_over():
    core = make_core()
    assert start_norepinephrine(core, volume=10 * M).ok  # 30 mL/h: near empty at 7.5 mL
    core.delivered(1, 3 * M)
    core.tick(6 * MIN)
    assert "near_empty" in codes(core)
    assert _move(core, 7 * MIN).ok
    assert not alarm(core, "near_empty").active


def test_a_refused_handover_changes_nothing():
    refusals = (
        ("handover_mismatch", {"label": ("dopamine", 16 * M, "mcg/mL", 50 * M)}, "dopamine"),
        ("handover_mismatch", {"label": ("norepinephrine", 4 * M, "mcg/mL", 50 * M)}, "4"),
        ("conc_not_allowed", {"label": ("norepinephrine", 8 * M, "mcg/mL", 50 * M)}, "8"),
        ("conc_required", {"label": ("norepinephrine", None, None, 50 * M)}, "required"),
        ("volume_required", {"label": ("norepinephrine", 16 * M, "mcg/mL", None)}, "missing"),
        ("volume_out_of_range", {"syringe": 10 * M}, "(the syringe loaded)"),
        ("invalid_state", {"to": 1}, "itself"),
        ("invalid_state", {"frm": 2, "to": 1}, "channel 2 is idle"),
        ("unknown_channel", {"to": 3}, "no channel 3"),
        ("unknown_channel", {"frm": 0}, "no channel 0"),
    )
    for code, kwargs, said in refusals:
        core = make_core()
        assert start_norepinephrine(core).ok
        before = _state(core)
        r = _move(core, MIN, **kwargs)
        assert not r.ok and r.code == code, (kwargs, r.code, r.message)
        assert said in r.message and len(r.message) <= 120, (code, r.message)
        assert _state(core) == before and core.rate(1) == 30 * M


def test_no_handover_onto_a_channel_that_delivers_or_reports_a_fault():
    core = make_core()
    assert start_norepinephrine(core).ok
    assert start_dobutamine(core, ch=2).ok
    r = _move(core, MIN)
    assert (r.code, "channel 2 is running" in r.message) == ("invalid_state", True), r.message
    core = make_core()
    assert start_norepinephrine(core).ok
    core.fault(2, "air_in_line", 0)
    before = _state(core)
    r = _move(core, MIN)
    assert r.code == "fault_active" and "air in line" in r.message, r.message
    assert _state(core) == before


def test_a_stopped_program_cannot_be_handed_over():
    core = make_core()
    assert start_dobutamine(core).ok
    assert core.stop(1, MIN).code == "stopped"
    r = _move(core, 2 * MIN, label=("dobutamine", 1 * M, "mg/mL", 50 * M))
    assert r.code == "invalid_state" and "channel 1 is stopped" in r.message, r.message


def test_a_handover_and_a_handover_back():
    # the old channel's syringe refilled: the program comes back, its volume counted anew
    core = make_core()
    assert start_norepinephrine(core).ok
    assert _move(core, HOUR).ok
    assert _move(core, 2 * HOUR, frm=2, to=1).ok
    assert (status_of(core, 1).state, core.rate(1), core.rate(2)) == ("running", 30 * M, 0)


def test_an_acknowledged_advisory_stays_acknowledged_on_the_new_channel():
    # vasopressin alone: its second_line_alone advisory, acknowledged, is no news after
    # a syringe change (found by review: raised again, unacknowledged, alarm output on)
    core = make_core()
    assert start_vasopressin(core, ch=1).code == "ok_advisory"
    for a in core.alarms():
        assert core.ack(a.id, MIN).ok
    assert _move(core, 2 * MIN, label=("vasopressin", 100000, "units/mL", 50 * M)).ok
    assert [(a.ch, a.code, a.acked) for a in core.alarms()] == [(2, "second_line_alone", True)]
    # one never acknowledged: the new channel's unacknowledged, the old one's listed
    # until acknowledged, over
    core = make_core()
    assert start_vasopressin(core, ch=1).code == "ok_advisory"
    assert _move(core, MIN, label=("vasopressin", 100000, "units/mL", 50 * M)).ok
    listed = [(a.ch, a.acked, a.active) for a in core.alarms() if a.code == "second_line_alone"]
    assert listed == [(1, False, False), (2, False, True)], listed


def test_the_command_logged_says_what_was_received_as_it_was():
    # found by review: kept by reference and worded when read, a text given for a
    # quantity read as one ('16': 16) and a number for a text as a quantity (5: 0.000005)
    core = make_core()
    assert start_norepinephrine(core).ok
    assert not _move(core, MIN, label=(5, "16", 3, "50")).ok
    said = "handover channel 1 to 2: 5 '16' 3, '50' mL"
    assert (1, "handover", "received", said) in [e[2:] for e in entries(core.log)]
