# Persistence (snapshot/restore across a reset) and the bounded event log.
import json

from firmware import channel, druglib
from firmware.channel import Channel
from firmware.core import SafetyCore
from firmware.eventlog import EventLog
from tests.portable.corekit import (
    HOUR,
    MIN,
    M,
    alarm,
    library,
    library_text,
    make_core,
    start_dobutamine,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import entries, last, since, snapshot, status_of


def _raises_value_error(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except ValueError as exc:
        return str(exc)
    return None


def _through_json(snapshot):
    return json.loads(json.dumps(snapshot))


def test_a_reset_mid_infusion_resumes_the_verified_rates():
    core = make_core()
    start_norepinephrine(core)
    start_vasopressin(core)
    core.delivered(1, 10 * M)
    core.tick(30 * MIN)
    snap = _through_json(snapshot(core))
    back = SafetyCore.restore(library(), snap, now_ms=0)
    assert back.rate(1) == 30 * M and back.rate(2) == 18 * M
    assert status_of(back, 1).volume_left == 40 * M and status_of(back, 1).state == "running"
    assert alarm(back, "resumed_after_reset").priority == "medium"


def test_a_taper_resumes_after_a_reset_never_sooner():
    core = make_core()
    start_norepinephrine(core)
    start_vasopressin(core)
    core.stop(2, 10 * MIN)  # next step at 70 min
    core.tick(40 * MIN)
    back = SafetyCore.restore(library(), _through_json(snapshot(core)), now_ms=5000)
    assert status_of(back, 2).state == "tapering" and status_of(back, 2).dose == 25000
    back.tick(5000 + 30 * MIN - 1)
    assert status_of(back, 2).dose == 25000
    back.tick(5000 + 30 * MIN)
    assert status_of(back, 2).dose == 20000


def test_restore_keeps_alarms_and_titration_intervals():
    core = make_core()
    start_vasopressin(core)
    core.titrate(2, 25000, "units/min", MIN)
    back = SafetyCore.restore(library(), _through_json(snapshot(core)), now_ms=0)
    assert alarm(back, "second_line_alone") is not None
    assert back.titrate(2, 20000, "units/min", 10 * MIN).code == "too_soon"
    assert back.titrate(2, 20000, "units/min", HOUR).ok


def test_restore_refuses_a_snapshot_of_another_library():
    core = make_core()
    start_norepinephrine(core)
    snap = snapshot(core)
    doc = json.loads(library_text())
    shipped = doc["version"]
    doc["version"] = "0.3.0"
    doc["crc32"] = "0x%08x" % druglib.crc_of(doc)
    other = druglib.load(json.dumps(doc))
    assert other.ok
    message = _raises_value_error(SafetyCore.restore, other, snap, 0)
    assert message and shipped in message


def test_restore_refuses_a_corrupted_rate():
    core = make_core()
    start_norepinephrine(core)
    snap = _through_json(snapshot(core))
    snap["channels"][0]["rate"] = 300 * M
    back = SafetyCore.restore(library(), snap, 0)  # the channel stays stopped, and says why
    assert status_of(back, 1).state == "stopped" and back.rate(1) == 0
    refused = alarm(back, "restore_refused")
    assert refused.priority == "high" and "rate 300 mL/h does not follow" in refused.message


def test_restore_keeps_the_volume_programmed():
    core = make_core()
    start_norepinephrine(core)
    core.delivered(1, 10 * M)
    back = SafetyCore.restore(library(), _through_json(snapshot(core)), now_ms=0)
    s = status_of(back, 1)
    assert (s.volume, s.volume_left, s.volume_infused) == (50 * M, 40 * M, 10 * M)


def test_restore_refuses_more_left_than_was_programmed():
    core = make_core()
    start_norepinephrine(core)
    for volume, why in (
        (30 * M, "50 mL left is more than the 30 mL programmed"),
        (None, "no volume"),
    ):
        snap = _through_json(snapshot(core))
        snap["channels"][0]["volume"] = volume
        back = SafetyCore.restore(library(), snap, 0)
        assert status_of(back, 1).state == "stopped" and back.rate(1) == 0
        assert why in alarm(back, "restore_refused").message


def test_restore_refuses_a_record_of_the_format_before_the_volume_programmed():
    core = make_core()
    start_norepinephrine(core)
    snap = _through_json(snapshot(core))
    snap["version"] = 1
    del snap["channels"][0]["volume"]
    assert "record format 1 is not 2" in _raises_value_error(SafetyCore.restore, library(), snap, 0)
    snap = _through_json(snapshot(core))
    snap["channels"][1]["volume"] = "50"
    assert "volume out of type" in _raises_value_error(SafetyCore.restore, library(), snap, 0)


def test_restore_refuses_a_state_the_transition_table_never_reaches():
    core = make_core()
    start_norepinephrine(core)
    for bad in ("paused", ["running"], None):
        snap = _through_json(snapshot(core))
        snap["channels"][0]["state"] = bad
        message = _raises_value_error(SafetyCore.restore, library(), snap, 0)
        assert message and "channel 1: unknown state" in message, (bad, message)


def test_restore_refuses_channels_out_of_order():
    snap = _through_json(snapshot(make_core()))
    snap["channels"].reverse()
    assert "out of order" in _raises_value_error(SafetyCore.restore, library(), snap, 0)


def test_every_state_restores_through_the_transition_table():
    core = make_core(channels=4)
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2)
    core.stop(2, MIN)  # tapering
    start_vasopressin(core, ch=3, dose=10000)
    core.emergency_stop(3, "clinician", MIN)  # stopped
    fired = []  # (channel, event): every state a restore reaches, Channel.fire() made
    fire = Channel.fire

    def recording(c, event):
        fired.append((c.ch, event))
        fire(c, event)

    Channel.fire = recording
    try:
        back = SafetyCore.restore(library(), _through_json(snapshot(core)), 0, channels=4)
    finally:
        Channel.fire = fire
    # the fewest events from idle, through the table (an emergency stop reaches stopped)
    assert fired == [(1, "start"), (2, "start"), (2, "taper"), (3, "emergency")], fired
    states = [status_of(back, ch).state for ch in (1, 2, 3, 4)]
    assert states == ["running", "tapering", "stopped", "idle"]
    # each restored channel takes the table's next events from there
    assert back.stop(2, MIN).code == "invalid_state"
    assert start_vasopressin(back, ch=3, dose=10000, now=MIN).ok
    assert start_dobutamine(back, ch=4, now=MIN).ok


def test_a_restore_reaches_its_state_only_through_the_transition_table():
    # The table is the only writer of a state: with the stop of a running taper drug
    # taken out of it, a snapshot of a tapering channel can no longer be restored.
    core = make_core()
    start_norepinephrine(core)
    assert core.stop(1, MIN).code == "taper_started"
    snap = _through_json(snapshot(core))
    assert snap["channels"][0]["state"] == "tapering"
    running = channel._TRANSITIONS[channel.RUNNING]
    taper = running.pop(channel.TAPER)
    try:
        message = _raises_value_error(SafetyCore.restore, library(), snap, 0)
    finally:
        running[channel.TAPER] = taper
    assert message and "channel 1: unknown state 'tapering'" in message, message
    assert status_of(SafetyCore.restore(library(), snap, 0), 1).state == "tapering"


def test_snapshot_is_plain_json():
    core = make_core()
    start_norepinephrine(core)
    snap = snapshot(core)
    assert _through_json(snap) == snap


def test_log_is_a_bounded_ring_with_continuing_sequence_numbers():
    log = EventLog(4)
    for i in range(10):
        log.add(i, 0, "input", "ok", "event %d" % i)
    assert len(log) == 4
    assert [e[0] for e in entries(log)] == [6, 7, 8, 9]
    assert [e[0] for e in since(log, 8)] == [8, 9]
    assert [e[0] for e in since(log, 0)] == [6, 7, 8, 9]  # the gap shows what was lost
    assert last(log)[5] == "event 9"


def test_core_log_stays_bounded():
    core = make_core(log_size=16)
    start_norepinephrine(core)
    for i in range(50):
        core.titrate(1, 100000 + (i % 2) * 50000, "mcg/kg/min", (i + 1) * 10 * MIN)
    assert len(core.log) == 16
    assert core.log.next_seq > 100


def test_rates_and_tapers_need_a_started_channel():
    c = Channel(1)
    assert "never started" in _raises_value_error(c.set_dose, 1000, 900)
    assert "never started" in _raises_value_error(c.taper_plan, 0)


def test_the_core_holds_no_boot_code_once_booted():
    # resume (and the rest of the boot) is imported by SafetyCore.restore when a boot
    # restores, never held by the core's module: a booted board may drop it (issue 14)
    from firmware import core as core_module

    for name in ("resume", "main", "libpush", "keys"):
        assert not hasattr(core_module, name), name
