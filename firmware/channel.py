# One pump channel: its state machine (a table, in one place) and its infusion data.
#
# The table is the whole life of a channel; anything not in it is illegal and fire()
# raises, the way h11's _state.py does. The core asks allows() first, so a command in
# the wrong state is a refusal, never an exception. Alarm conditions (link silent,
# near empty, faults) sit on top of these states (core.py, watchers.py); they add none.
# fire() is the only writer of state: a restore (firmware/resume.py, boot code) too
# reaches a saved state by firing.
from micropython import const

from firmware import units

# States
IDLE = "idle"  # never started since power-on
RUNNING = "running"  # delivering the verified dose
TAPERING = "tapering"  # delivering, stepping down by the library's taper towards 0
STOPPED = "stopped"  # not delivering (stop, end of taper, emergency stop or fault)

# Events
START = "start"
TITRATE = "titrate"
STOP = "stop"  # immediate stop: drugs without taper, or at/below the taper's stop dose
TAPER = "taper"  # stop of a taper drug: the taper begins
TAPER_STEP = "taper_step"
TAPER_END = "taper_end"  # the taper's last step reached 0
EMERGENCY = "emergency"  # the one way to stop a taper drug at once
FAULT = "fault"  # hardware fault: flow stops
# The program moved to another channel's syringe (firmware/handover.py): besides an
# emergency stop or a fault, the one way a taper drug leaves a channel at once, its
# dose (and its taper) going on on the other.
HANDOVER = "handover"

_TRANSITIONS = {
    IDLE: {START: RUNNING, EMERGENCY: STOPPED, FAULT: IDLE},
    RUNNING: {
        TITRATE: RUNNING,
        STOP: STOPPED,
        TAPER: TAPERING,
        EMERGENCY: STOPPED,
        FAULT: STOPPED,
        HANDOVER: STOPPED,
    },
    # A titration during a taper cancels the taper (the clinician takes over again).
    TAPERING: {
        TITRATE: RUNNING,
        TAPER_STEP: TAPERING,
        TAPER_END: STOPPED,
        EMERGENCY: STOPPED,
        FAULT: STOPPED,
        HANDOVER: STOPPED,
    },
    STOPPED: {START: RUNNING, EMERGENCY: STOPPED, FAULT: STOPPED},
}


_S_PER_H = const(3600)


def dose_text(drug, dose):
    """A dose as every message shows it: "0.1 mcg/kg/min"."""
    return "%s %s" % (units.fmt(dose), drug.dose_unit)


def describe(c):
    """Channel c as a message names it: its drug and dose while delivering, else its
    number and state."""
    if not c.delivering:
        return "channel %d %s" % (c.ch, c.state)
    return "%s %s" % (c.drug.name, dose_text(c.drug, c.dose))


def taper_after(drug, dose):
    """The dose one taper step after dose: 0 once at or below stop_at, else down by the
    step but never below hard_min.

    So a taper never runs a dose the library forbids (between 0 and hard_min) and never
    drops by more than its step: a step is at most the step, the clamp only shortens it,
    and the final drop to 0 is from at most stop_at, which the library keeps within one
    step (druglib checks hard_min <= stop_at <= step). Every step also goes down (above
    stop_at the dose is above hard_min), so the plan ends.
    """
    if dose <= drug.taper_stop_at:
        return 0
    return max(dose - drug.taper_step, drug.hard_min)


class Channel:
    """State and infusion data of one channel. Doses are micro-scaled in the drug's
    dose_unit, volumes micro-scaled mL, rates micro-scaled mL/h, times ms of uptime."""

    def __init__(self, ch):
        self.ch = ch
        self.state = IDLE
        self.drug = None
        self.dose = 0
        self.weight = None
        self.conc = 0
        self.volume = None  # the volume START programmed (the syringe's or bag's)
        self.volume_left = 0
        self.volume_infused = 0
        self.rate = 0
        self.override = False  # the current dose was set past a soft limit by override
        self.last_up_ms = None  # last increase (or start): titration-up interval
        self.last_down_ms = None  # last decrease (titration or taper step)
        self.taper_next_ms = 0  # TAPERING: when the next step is due
        self.near_empty_volume = 0  # volume_left at which the near-empty alarm rises
        self.near_empty_raised = False
        # The alarm code of the fault this channel's sensors report now (core.fault()),
        # or None: a fact of the hardware, so no command's rollback puts it back (not
        # in _KEPT) and no record keeps it: after a reset the shell reads the sensors
        # again in its first turn, before any session can exist to send a request; a
        # library switch carries it to the channels it makes (libsteps.switch()).
        self.fault = None

    def allows(self, event):
        return event in _TRANSITIONS[self.state]

    def fire(self, event):
        try:
            self.state = _TRANSITIONS[self.state][event]
        except KeyError:
            raise ValueError(
                "channel %d: %s is illegal in state %s" % (self.ch, event, self.state)
            ) from None

    def started_drug(self):
        """The drug of a channel that has been started. Rates and tapers exist only then,
        so calling this on a channel never started is a programming error."""
        drug = self.drug
        if drug is None:
            raise ValueError("channel %d has no drug: it was never started" % (self.ch,))
        return drug

    @property
    def delivering(self):
        return self.state == RUNNING or self.state == TAPERING

    def begin(self, drug, weight, conc, volume, now_ms):
        self.drug = drug
        self.weight = weight
        self.conc = conc
        self.volume = volume
        self.volume_left = volume
        self.volume_infused = 0
        self.last_up_ms = now_ms
        self.last_down_ms = None
        self.near_empty_raised = False

    def set_dose(self, dose, near_empty_s):
        """Set dose and its rate; the near-empty volume is computed here, at rate-change
        time, so the tick only compares two integers. Returns the previous rate."""
        old = self.rate
        drug = self.started_drug()
        self.dose = dose
        self.rate = units.rate_for(dose, drug.dose_unit, self.weight, self.conc, drug.conc_unit)
        # rate * near_empty_s // _S_PER_H, exactly, without a product past a small int
        # (a 32-bit board's ends at 2**30: 30 mL/h is 3 * 10**7 here)
        rate = self.rate
        self.near_empty_volume = rate // _S_PER_H * near_empty_s + (
            rate % _S_PER_H * near_empty_s // _S_PER_H
        )
        return old

    def time_to_empty_s(self):
        if not self.rate:
            return None
        return self.volume_left * _S_PER_H // self.rate

    def next_taper_dose(self):
        """The dose after one taper step (see taper_after)."""
        return taper_after(self.started_drug(), self.dose)

    def taper_plan(self, at_ms):
        """[(at_ms, dose), ...] from at_ms, one step per taper interval, ending at 0."""
        plan = []
        dose = self.dose
        at = at_ms
        drug = self.started_drug()
        while dose:
            dose = taper_after(drug, dose)
            plan.append((at, dose))
            at += drug.taper_interval_ms
        return plan


# What a rollback puts back of a channel: every field but ch (the shell's safety net,
# SafetyCore.keep() before each request and rollback() should it raise).
_KEPT = const(("state", "drug", "dose", "weight", "conc", "volume", "volume_left", "volume_infused",
         "rate", "override", "last_up_ms", "last_down_ms", "taper_next_ms",
         "near_empty_volume", "near_empty_raised"))  # fmt: skip


def keep(channels, kept, back=False):
    """Every channel's fields (_KEPT) copied into the list kept from 0, in place (it
    grows only the first time), or back: from kept into the channels. Returns where
    they end in kept. (One function both ways: each costs a board's heap.)"""
    o = 0
    for c in channels:
        for name in _KEPT:
            if back:
                setattr(c, name, kept[o])
            elif o < len(kept):
                kept[o] = getattr(c, name)
            else:
                kept.append(getattr(c, name))
            o += 1
    return o
