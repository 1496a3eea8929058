"""Property tests of the safety core: a RuleBasedStateMachine of random commands, units,
clock steps, faults, deliveries and resets, checking after every step that

- no channel ever runs above its drug's hard maximum, in dose or in mL/h (nor above the
  pump's mechanical maximum), and the rate is the one its dose and solution give
  (computed here with exact fractions, not with firmware.units);
- a delivering channel's dose is 0 or at least its drug's hard minimum;
- no dose above a soft maximum, nor one below a soft minimum while running, was set
  without an override;
- a refused command changes nothing: the snapshot and every rate are as they were;
- a taper drug never drops by more than its step, outside an emergency stop, a fault
  or a titration with override;
- a delivering taper drug never stops except through its taper or an emergency/fault,
  and its taper's step to 0 comes a full taper interval after its dose last fell;
- a handover moves a program whole: the patient's total unchanged, the new channel at
  the old one's dose and taper, the old one stopped;
- a fault its sensor still reports is latched: the channel delivers nothing, and the
  fault's alarm is listed and active, whatever was acknowledged or restored;
- every text the core makes fits the wire whole and every log code is a reason
  (tests/test_core_messages.py).

HYPOTHESIS_PROFILE=long runs many more and longer sequences.
"""

import json
import math
from fractions import Fraction

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from firmware import libsteps, units
from firmware.core import FAULTS, SafetyCore
from firmware.handover import move
from firmware.rules import EMERGENCY_REASONS
from tests.budgets import budget
from tests.portable.corekit import HOUR, M, library
from tests.portable.coreview import patient, snapshot, status_of
from tests.test_core_messages import assert_core_texts_fit

_SETTINGS = settings(
    max_examples=budget(100, 3000), stateful_step_count=budget(30, 80), deadline=None
)

LIB = library()
DRUGS = sorted(LIB.drugs)
CHANNELS = 2
MAX_RATE = 500 * M
ALL_UNITS = sorted(units.DOSE_UNITS) + list(units.PER_HOUR_UNITS) + ["mL/h", "drops/min"]
HEAVY = LIB.weight_max  # the heaviest patient: the highest rate per dose

# What one unit of dose or concentration holds, in mcg (mass) or units, and whether a
# dose is per kg: written out here so that the rate invariant does not check
# firmware.units against itself.
_DOSE_AMOUNT = {
    "ng/kg/min": (Fraction(1, 1000), True),
    "mcg/min": (1, False),
    "mcg/kg/min": (1, True),
    "mg/min": (1000, False),
    "mg/kg/min": (1000, True),
    "milliunits/min": (Fraction(1, 1000), False),
    "units/min": (1, False),
}
_CONC_AMOUNT = {"mcg/mL": 1, "mg/mL": 1000, "milliunits/mL": Fraction(1, 1000), "units/mL": 1}


def exact_rate(drug, dose, weight, conc):
    """The micro-scaled mL/h that delivers dose from conc, exactly (a Fraction)."""
    amount, per_kg = _DOSE_AMOUNT[drug.dose_unit]
    per_min = Fraction(dose, M) * amount * (Fraction(weight, M) if per_kg else 1)
    per_ml = Fraction(conc, M) * _CONC_AMOUNT[drug.conc_unit]
    return per_min * 60 / per_ml * M


TAPER_DRUGS = [name for name in DRUGS if LIB.drugs[name].taper]
# Drugs whose hard maximum, for the heaviest patient on the most dilute solution, needs
# more than the pump's max rate: start_near_max_rate takes them to that edge.
FAST_DRUGS = [
    name
    for name in DRUGS
    if exact_rate(LIB.drugs[name], LIB.drugs[name].hard_max, HEAVY, min(LIB.drugs[name].concs))
    > MAX_RATE
]


def _interesting_doses(drug):
    """Limits, their neighbours, and their tenfold and thousandfold slips."""
    base = {
        drug.hard_min,
        drug.soft_min,
        drug.soft_max,
        drug.hard_max,
        (drug.soft_min + drug.soft_max) // 2,
    }
    out = set()
    for value in base:
        for scaled in (value, value * 10, value * 1000, value // 10, value // 1000):
            out.update((scaled - 1, scaled, scaled + 1))
    return sorted(v for v in out if v >= 0)


doses_for = {name: _interesting_doses(LIB.drugs[name]) for name in DRUGS}
channel = st.integers(1, CHANNELS)


class CoreMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.core = SafetyCore(LIB, channels=CHANNELS, max_rate=MAX_RATE)
        self.now = 0
        # per channel: whether the command that set the current dose carried override
        self.overridden = [False] * (CHANNELS + 1)
        # per channel: when its dose last fell while it delivered (None: not since start)
        self.fell_at = [None] * (CHANNELS + 1)
        # per channel: the fault kind its sensor reports now (the shell's report), or None
        self.sensed = [None] * (CHANNELS + 1)

    # -- bookkeeping around every step -------------------------------------------------

    def _before(self):
        return [status_of(self.core, ch) for ch in range(1, CHANNELS + 1)]

    def _state(self):
        return snapshot(self.core), [self.core.rate(ch) for ch in range(1, CHANNELS + 1)]

    def _decide(self, command):
        """command() (a core command), checking that a refusal changed nothing: not the
        snapshot (channels, alarms) nor any rate. Only the log records a refusal."""
        before = self._state()
        result = command()
        if not result.ok:
            assert self._state() == before, result
        return result

    def _check_transitions(self, before, exempt=(), fast=()):
        """Drop and stop rules, comparing each channel before and after one step.
        exempt: channels an emergency stop or a fault may have stopped; fast: channels
        a titration with override may have brought down faster than a step (a soft
        limit: issue 9, finding 3), never to 0."""
        for ch in range(1, CHANNELS + 1):
            was, now = before[ch - 1], status_of(self.core, ch)
            if ch in exempt or was.drug is None or now.drug != was.drug:
                continue
            drug = LIB.drugs[was.drug]
            if not drug.taper:
                continue
            delivering = ("running", "tapering")
            if was.state in delivering and now.dose < was.dose and ch not in fast:
                assert was.dose - now.dose <= drug.step_down, (was, now)
            if was.state in delivering and now.state not in delivering:
                assert was.dose <= drug.taper_stop_at, ("cut short", was, now)
                fell = self.fell_at[ch]
                assert fell is None or self.now - fell >= drug.taper_interval_ms, (
                    "to 0 within a taper interval of the last fall",
                    fell,
                    self.now,
                    was,
                )
        self._track_falls(before, exempt)

    def _track_falls(self, before, exempt):
        for ch in range(1, CHANNELS + 1):
            was, now = before[ch - 1], status_of(self.core, ch)
            delivering = ("running", "tapering")
            if now.state not in delivering or was.state not in delivering or ch in exempt:
                self.fell_at[ch] = None  # a start (or none): the dose has not fallen since
            elif now.dose < was.dose:
                self.fell_at[ch] = self.now

    # -- rules -------------------------------------------------------------------------

    @rule(
        ch=channel,
        name=st.sampled_from(DRUGS),
        data=st.data(),
        weight=st.sampled_from([20 * M, 70 * M, 80 * M, 123456789, 300 * M]),
        volume=st.sampled_from([M, 5 * M, 50 * M, 1000 * M]),
        override=st.booleans(),
    )
    def start_plausible(self, ch, name, data, weight, volume, override):
        """A start a clinician would type: the library's concentrations and units."""
        drug = LIB.drugs[name]
        target = data.draw(
            st.one_of(st.integers(drug.hard_min, drug.hard_max), st.sampled_from(doses_for[name]))
        )
        unit = data.draw(st.sampled_from(units.dose_units_of(drug.family)))
        dose = units.round_div(*units.convert_dose(target, drug.dose_unit, unit, weight))
        conc = data.draw(st.sampled_from(drug.concs))
        self._start(ch, name, dose, unit, weight, conc, drug.conc_unit, volume, override)

    @rule(
        ch=channel,
        name=st.sampled_from(DRUGS),
        data=st.data(),
        unit_choice=st.integers(0, 9),
        weight=st.sampled_from([None, 10 * M, 20 * M, 70 * M, 80 * M, 300 * M, 301 * M]),
        volume=st.sampled_from([None, M // 2, M, 5 * M, 50 * M, 1000 * M]),
        override=st.booleans(),
    )
    def start_any(self, ch, name, data, unit_choice, weight, volume, override):
        drug = LIB.drugs[name]
        dose = data.draw(st.one_of(st.sampled_from(doses_for[name]), st.integers(0, 10**10)))
        # mostly the drug's own unit, sometimes anything
        unit = drug.dose_unit if unit_choice < 6 else data.draw(st.sampled_from(ALL_UNITS))
        conc = data.draw(st.sampled_from(list(drug.concs) + [drug.concs[0] + 1, 0]))
        conc_unit = data.draw(
            st.sampled_from([drug.conc_unit, drug.conc_unit, "mg/mL", "units/mL"])
        )
        self._start(ch, name, dose, unit, weight, conc, conc_unit, volume, override)

    @rule(ch=channel, data=st.data())
    def start_near_max_rate(self, ch, data):
        """The heaviest patient on the most dilute solution, at a dose near the one the
        pump's max rate allows: starts and titrations up meet that limit."""
        name = data.draw(st.sampled_from(FAST_DRUGS))
        drug = LIB.drugs[name]
        conc = min(drug.concs)
        top = units.dose_for(MAX_RATE, drug.dose_unit, HEAVY, conc, drug.conc_unit)
        dose = data.draw(
            st.integers(max(drug.hard_min, top * 9 // 10), min(top + top // 10, drug.hard_max))
        )
        self._start(ch, name, dose, drug.dose_unit, HEAVY, conc, drug.conc_unit, 1000 * M, True)

    @rule(ch=channel, name=st.sampled_from(TAPER_DRUGS), data=st.data())
    def start_near_taper_end(self, ch, name, data):
        """A taper drug at a low dose, up to one step above the taper's stop dose: from
        below hard_min + step a step would fall under the hard minimum, were it not held
        there."""
        drug = LIB.drugs[name]
        dose = data.draw(st.integers(drug.hard_min, drug.taper_stop_at + drug.taper_step))
        conc = drug.concs[0]
        self._start(ch, name, dose, drug.dose_unit, HEAVY, conc, drug.conc_unit, 50 * M, True)

    def _start(self, ch, name, dose, unit, weight, conc, conc_unit, volume, override):
        before = self._before()
        result = self._decide(
            lambda: self.core.start(
                ch,
                name,
                dose,
                unit,
                self.now,
                weight=weight,
                conc=conc,
                conc_unit=conc_unit,
                volume=volume,
                override=override,
            )
        )
        if result.ok:
            self.overridden[ch] = override
        self._check_transitions(before)

    @rule(ch=channel, data=st.data(), unit_choice=st.integers(0, 9), override=st.booleans())
    def titrate(self, ch, data, unit_choice, override):
        status = status_of(self.core, ch)
        name = status.drug or data.draw(st.sampled_from(DRUGS))
        drug = LIB.drugs[name]
        step = drug.step_down or drug.hard_min
        near = [status.dose + k * step for k in (-2, -1, 0, 1, 2)]  # 0: a hold
        near += [status.dose * 2, status.dose * 3]
        dose = data.draw(
            st.one_of(
                st.sampled_from([d for d in near if d >= 0] or [0]),
                st.sampled_from(doses_for[name]),
                st.integers(0, 10**10),
            )
        )
        unit = drug.dose_unit if unit_choice < 7 else data.draw(st.sampled_from(ALL_UNITS))
        self._titrate(ch, status, dose, unit, override)

    def _delivering(self):
        return [
            ch
            for ch in range(1, CHANNELS + 1)
            if status_of(self.core, ch).state in ("running", "tapering")
        ]

    @precondition(lambda self: self._delivering())
    @rule(data=st.data(), past=st.booleans())
    def titrate_to_the_max_rate(self, data, past):
        """With override, to the dose the pump's max rate allows for the channel's patient
        and solution, or just past it (refused above_max_rate, if within the drug's limits)."""
        ch = data.draw(st.sampled_from(self._delivering()))
        status = status_of(self.core, ch)
        drug = LIB.drugs[status.drug]
        edge = units.dose_for(MAX_RATE, drug.dose_unit, status.weight, status.conc, drug.conc_unit)
        self._titrate(ch, status, edge + 1 if past else edge, drug.dose_unit, True)

    def _above_their_stop_dose(self):
        out = []
        for ch in range(1, CHANNELS + 1):
            status = status_of(self.core, ch)
            drug = status.drug and LIB.drugs[status.drug]
            if status.state == "running" and drug.taper and status.dose > drug.taper_stop_at:
                out.append(ch)
        return out

    @precondition(lambda self: self._above_their_stop_dose())
    @rule(data=st.data())
    def titrate_down_to_the_stop_dose(self, data):
        """With override, a taper drug's running dose down to its taper's stop dose: then
        a stop (rule stop) must still wait a taper interval before 0 (issue 9, finding 4:
        this was off at once)."""
        ch = data.draw(st.sampled_from(self._above_their_stop_dose()))
        status = status_of(self.core, ch)
        drug = LIB.drugs[status.drug]
        self._titrate(ch, status, drug.taper_stop_at, drug.dose_unit, True)

    def _titrate(self, ch, status, dose, unit, override):
        before = self._before()
        result = self._decide(
            lambda: self.core.titrate(ch, dose, unit, self.now, override=override)
        )
        # the dose was set anew unless a running channel was already at it (a hold during
        # a taper sets it anew: the channel runs again)
        if result.ok and (result.dose != status.dose or status.state == "tapering"):
            # down from past the soft max, still past it: the override that set the
            # dose before holds for this lower one (firmware/rules/dose.py check_dose)
            drug = LIB.drugs[status.drug]
            still = result.dose < status.dose and result.dose > drug.soft_max
            self.overridden[ch] = override or (still and self.overridden[ch])
        self._check_transitions(before, fast=(ch,) if override and result.ok else ())

    @rule(ch=channel)
    def stop(self, ch):
        before = self._before()
        result = self._decide(lambda: self.core.stop(ch, self.now))
        if result.ok and result.plan:
            doses = [before[ch - 1].dose] + [d for _, d in result.plan]
            drug = LIB.drugs[before[ch - 1].drug]
            if drug.taper:
                assert all(a - b <= drug.step_down for a, b in zip(doses, doses[1:], strict=False))
            assert doses[-1] == 0
        self._check_transitions(before)

    @precondition(lambda self: self._delivering())
    @rule(
        data=st.data(),
        label=st.sampled_from(("same",) * 4 + ("other drug", "other conc", "no volume", "big")),
        syringe=st.sampled_from([None, 10 * M, 50 * M]),
    )
    def handover(self, data, label, syringe):
        """A program moved to another channel's new syringe (issue 9, finding 2): the
        patient's total of the drug is unchanged, the old channel stops (its only stop
        outside a taper, an emergency or a fault), the new one runs on as it ran."""
        frm = data.draw(st.sampled_from(self._delivering()))
        to = data.draw(st.one_of(st.sampled_from(range(1, CHANNELS + 1)), st.integers(0, 9)))
        before = self._before()
        was = before[frm - 1]
        drug = LIB.drugs.get(was.drug or "norepinephrine")
        name = (
            DRUGS[(DRUGS.index(drug.name) + 1) % len(DRUGS)] if label == "other drug" else drug.name
        )
        conc = was.conc if was.conc is not None else drug.concs[0]
        if label == "other conc":
            conc = [c for c in drug.concs if c != conc][0] if len(drug.concs) > 1 else conc + 1
        volume = {"no volume": None, "big": 60 * M if syringe else 1001 * M}.get(label, 5 * M)
        result = self._decide(
            lambda: move(self.core, frm, to, name, conc, drug.conc_unit, volume, syringe, self.now)
        )
        if not result.ok:
            self._check_transitions(before)
            return
        assert label == "same" and was.state in ("running", "tapering"), (label, was)
        old, new = status_of(self.core, frm), status_of(self.core, to)
        assert (old.state, self.core.rate(frm)) == ("stopped", 0), old
        assert (new.state, new.dose, new.drug) == (was.state, was.dose, was.drug), new
        assert self.core.rate(to) == was.rate and new.volume_left == volume
        assert new.taper_next_ms == was.taper_next_ms
        self.overridden[to] = self.overridden[frm]
        fell = self.fell_at[frm]
        self._check_transitions(before, exempt=(frm, to))
        self.fell_at[to] = fell  # the new channel's dose last fell when the old one's did

    @rule(ch=channel, reason=st.sampled_from(EMERGENCY_REASONS + ("bogus",)))
    def emergency_stop(self, ch, reason):
        before = self._before()
        result = self._decide(lambda: self.core.emergency_stop(ch, reason, self.now))
        if result.ok:
            assert self.core.rate(ch) == 0
        self._check_transitions(before, exempt=(ch,) if result.ok else ())

    @rule(ch=channel, kind=st.sampled_from(sorted(FAULTS)))
    def fault(self, ch, kind):
        # the shell reports a fault once, when it begins (or turns into another)
        if self.sensed[ch] == kind:
            return
        before = self._before()
        self.sensed[ch] = kind
        self.core.fault(ch, kind, self.now)
        assert self.core.rate(ch) == 0
        self._check_transitions(before, exempt=(ch,))

    @precondition(lambda self: any(self.sensed))
    @rule(data=st.data())
    def fault_cleared(self, data):
        ch = data.draw(st.sampled_from([c for c in range(1, CHANNELS + 1) if self.sensed[c]]))
        channels = snapshot(self.core)["channels"]
        self.sensed[ch] = None
        self.core.fault(ch, None, self.now)
        assert snapshot(self.core)["channels"] == channels  # it starts nothing by itself

    @rule(
        step=st.one_of(st.integers(0, 5000), st.integers(0, 2 * HOUR)),
        host=st.booleans(),
    )
    def advance(self, step, host):
        before = self._before()
        held = [self.core.rate(ch) for ch in range(1, CHANNELS + 1)]
        self.now += step
        if host:
            self.core.host_seen(self.now)
        self.core.tick(self.now)
        self._check_transitions(before)
        if not host:
            for ch in range(1, CHANNELS + 1):
                # link silence never stops or changes a channel by itself; only a taper may
                if before[ch - 1].state == "running":
                    assert self.core.rate(ch) == held[ch - 1]

    @rule(
        ch=channel,
        volume=st.integers(0, 60 * M),
        left=st.one_of(st.none(), st.integers(0, 60 * M)),  # the syringe's own measure
    )
    def delivered(self, ch, volume, left):
        before = self._before()
        self.core.delivered(ch, volume, left)
        self.core.tick(self.now)  # as the shell does in the same turn (pending alarms)
        status = status_of(self.core, ch)
        self._check_transitions(before, exempt=(ch,) if status.volume_left == 0 else ())
        # never more left than the syringe says it holds (issue 9, finding 1), and a
        # delivery within its near-empty volume has its alarm, whichever said so
        if left is not None:
            assert status.volume_left <= left, (status, left)
        c = self.core.channel(ch)
        if c.rate and c.volume_left <= c.near_empty_volume:
            assert c.near_empty_raised and "near_empty" in status.alarms, status

    @precondition(lambda self: self.core.alarms())
    @rule(data=st.data())
    def ack(self, data):
        alarm = data.draw(st.sampled_from(self.core.alarms()))
        assert self.core.ack(alarm.id, self.now).ok

    @precondition(lambda self: not self._delivering())
    @rule()
    def library_switch(self):
        """A library pushed and switched to (firmware/libpush.py: only while no channel
        delivers), here the same library: the channels made anew from their records
        (what the sensors report must survive it: the fault invariant)."""
        libsteps.switch(self.core, LIB, libsteps.switched(self.core, LIB))

    @rule(outage=st.integers(0, 10 * 60000))
    def reset(self, outage):
        """A reset mid-infusion: snapshot, through JSON, restored on a new uptime."""
        before = self._before()
        snap = json.loads(json.dumps(snapshot(self.core)))
        # the restored core's times move by the outage's shift (firmware/resume.py)
        shift = outage - snap["at_ms"]
        self.fell_at = [None if t is None else t + shift for t in self.fell_at]
        self.now = outage
        self.core = SafetyCore.restore(LIB, snap, now_ms=self.now, max_rate=MAX_RATE)
        for ch in range(1, CHANNELS + 1):
            assert self.core.rate(ch) == before[ch - 1].rate
        self._check_transitions(before)
        # the shell's first turn: the sensors read again, every fault still reported
        # reported to the new core (a new occurrence: the record kept no sensor's word)
        for ch in range(1, CHANNELS + 1):
            if self.sensed[ch]:
                self.core.fault(ch, self.sensed[ch], self.now)

    # -- invariants --------------------------------------------------------------------

    @rule(weight=st.sampled_from([None, 0, 20 * M, 70 * M, 80 * M, 300 * M, 301 * M]))
    def patient(self, weight):
        """PATIENT (issue 9, finding 7): another weight only while no dose that went
        through the weight delivers (a drug dosed per kg, or one of mass with a weight),
        or when none was known; never a running rate changed; a refusal changes nothing."""
        was = self.core.weight
        rates = [self.core.rate(ch) for ch in range(1, CHANNELS + 1)]
        delivering = [
            ch
            for ch in self._delivering()
            if self.core.channel(ch).drug.weight_based
            or (self.core.channel(ch).weight and self.core.channel(ch).drug.family == units.MASS)
        ]
        before = self._state()
        r = patient(self.core, weight, self.now)
        if r.ok:
            assert self.core.weight == weight
            assert was is None or weight == was or not delivering, (was, weight, delivering)
            assert rates == [self.core.rate(ch) for ch in range(1, CHANNELS + 1)]
        else:
            assert self._state() == before, r.message

    @invariant()
    def one_patient(self):
        """A delivering channel runs at the patient's weight, or at none (none known
        when it started, or a drug given none): never at another."""
        for ch in self._delivering():
            weight = self.core.channel(ch).weight
            assert weight is None or weight == self.core.weight, (ch, weight, self.core.weight)

    @invariant()
    def never_above_a_hard_maximum(self):
        for ch in range(1, CHANNELS + 1):
            status = status_of(self.core, ch)
            assert self.core.rate(ch) <= MAX_RATE
            if status.drug is None:
                assert status.rate == 0
                continue
            drug = LIB.drugs[status.drug]
            assert status.dose <= drug.hard_max
            assert status.rate <= exact_rate(drug, drug.hard_max, status.weight, status.conc)
            if status.state in ("running", "tapering"):
                # rounded down to the sub-unit: never more than the verified dose
                exact = exact_rate(drug, status.dose, status.weight, status.conc)
                assert status.rate == math.floor(exact), (status, exact)
            else:
                assert status.rate == 0

    @invariant()
    def never_a_dose_below_the_hard_minimum(self):
        for ch in range(1, CHANNELS + 1):
            status = status_of(self.core, ch)
            if status.state in ("running", "tapering"):
                dose = status.dose
                assert dose == 0 or dose >= LIB.drugs[status.drug].hard_min, status

    @invariant()
    def a_fault_still_reported_holds_its_channel_and_its_alarm(self):
        for ch in range(1, CHANNELS + 1):
            kind = self.sensed[ch]
            if kind is None:
                # and a fault no sensor reports has no alarm an ack could never remove
                stuck = [a for a in self.core.alarms() if a.ch == ch and a.active]
                assert not [a for a in stuck if a.code in FAULTS.values()], stuck
                continue
            assert status_of(self.core, ch).state not in ("running", "tapering")
            assert self.core.rate(ch) == 0
            listed = [a for a in self.core.alarms() if a.ch == ch and a.code == FAULTS[kind]]
            assert len(listed) == 1 and listed[0].active, (kind, self.core.alarms())

    @invariant()
    def every_text_fits_the_wire_and_every_log_code_is_a_reason(self):
        assert_core_texts_fit(self.core)

    @invariant()
    def no_soft_excess_without_override(self):
        for ch in range(1, CHANNELS + 1):
            status = status_of(self.core, ch)
            delivering = status.drug and status.state in ("running", "tapering")
            if delivering and status.dose > LIB.drugs[status.drug].soft_max:
                assert self.overridden[ch], status
            # a taper goes below the soft minimum by design; a running dose only by override
            if status.state == "running" and status.dose < LIB.drugs[status.drug].soft_min:
                assert self.overridden[ch], status


TestCoreMachine = CoreMachine.TestCase
TestCoreMachine.settings = _SETTINGS
