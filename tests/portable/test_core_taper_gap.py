# Attacks on the taper schedule: a late tick (the loop stalled, a long gap, a restore)
# must never let the taper drop more than one step at once or step in a burst.
from firmware.core import SafetyCore
from tests.portable.corekit import (
    HOUR,
    MIN,
    library,
    make_core,
    start_norepinephrine,
    start_vasopressin,
)
from tests.portable.coreview import snapshot, status_of


def _taper_vasopressin():
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2)
    core.stop(2, 0)  # first step at once: 0.025 units/min, next due at 1 h
    return core


def test_a_late_tick_takes_one_step_then_waits_a_full_interval():
    core = _taper_vasopressin()
    late = 25 * HOUR  # a day late
    core.host_seen(late)
    core.tick(late)
    assert status_of(core, 2).dose == 20000
    for dt in (1, 10, MIN, HOUR - 1):
        core.tick(late + dt)
        assert status_of(core, 2).dose == 20000, dt
    assert status_of(core, 2).taper_next_ms == late + HOUR
    core.tick(late + HOUR)
    assert status_of(core, 2).dose == 15000


def test_a_restored_taper_ticked_far_ahead_steps_once_per_interval():
    core = _taper_vasopressin()
    restored = SafetyCore.restore(library(), snapshot(core), now_ms=0)
    t = 10 * HOUR
    restored.host_seen(t)
    restored.tick(t)
    restored.tick(t + 1)
    restored.tick(t + 2)
    assert status_of(restored, 2).dose == 20000
    assert status_of(restored, 2).state == "tapering"


def test_an_on_time_taper_keeps_its_plan():
    core = make_core()
    start_norepinephrine(core, ch=1)
    start_vasopressin(core, ch=2)
    plan = core.stop(2, 0).plan
    for at, dose in plan[1:]:
        core.host_seen(at)
        core.tick(at + 5)  # a tick a few ms late does not shift the plan
        assert status_of(core, 2).dose == dose
