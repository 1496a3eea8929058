"""Property tests of the safety core: a RuleBasedStateMachine of random commands, units,
clock steps, faults, deliveries and resets, checking after every step that

- no channel ever runs above its drug's hard maximum, in dose or in mL/h (nor above the
  pump's mechanical maximum), and the rate is the one its dose and solution give;
- no dose above a soft maximum was set without an override;
- a taper drug never drops by more than its step, outside an emergency stop or a fault;
- a delivering taper drug never stops except through its taper or an emergency/fault;
- every text the core makes fits the wire whole and every log code is a reason
  (tests/test_core_messages.py).

HYPOTHESIS_PROFILE=long runs many more and longer sequences.
"""

import json
import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from firmware import units
from firmware.core import EMERGENCY_REASONS, FAULTS, SafetyCore
from tests.portable.corekit import HOUR, M, library
from tests.test_core_messages import assert_core_texts_fit

_PROFILES = {
    "default": settings(max_examples=200, stateful_step_count=30, deadline=None),
    "long": settings(max_examples=3000, stateful_step_count=80, deadline=None),
}
_SETTINGS = _PROFILES.get(os.environ.get("HYPOTHESIS_PROFILE", "default"), _PROFILES["default"])

LIB = library()
DRUGS = sorted(LIB.drugs)
CHANNELS = 2
MAX_RATE = 500 * M
ALL_UNITS = sorted(units.DOSE_UNITS) + list(units.PER_HOUR_UNITS) + ["mL/h", "drops/min"]


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

    # -- bookkeeping around every step -------------------------------------------------

    def _before(self):
        return [self.core.status(ch) for ch in range(1, CHANNELS + 1)]

    def _check_transitions(self, before, exempt=()):
        """Drop and stop rules, comparing each channel before and after one step.
        exempt: channels an emergency stop or a fault may have stopped."""
        for ch in range(1, CHANNELS + 1):
            was, now = before[ch - 1], self.core.status(ch)
            if ch in exempt or was.drug is None or now.drug != was.drug:
                continue
            drug = LIB.drugs[was.drug]
            if not drug.taper:
                continue
            delivering = ("running", "tapering")
            if was.state in delivering and now.dose < was.dose:
                assert was.dose - now.dose <= drug.step_down, (was, now)
            if was.state in delivering and now.state not in delivering:
                assert was.dose <= drug.taper_stop_at, ("cut short", was, now)

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

    def _start(self, ch, name, dose, unit, weight, conc, conc_unit, volume, override):
        before = self._before()
        result = self.core.start(
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
        if result.ok:
            self.overridden[ch] = override
        self._check_transitions(before)

    @rule(ch=channel, data=st.data(), unit_choice=st.integers(0, 9), override=st.booleans())
    def titrate(self, ch, data, unit_choice, override):
        status = self.core.status(ch)
        name = status.drug or data.draw(st.sampled_from(DRUGS))
        drug = LIB.drugs[name]
        step = drug.step_down or drug.hard_min
        near = [status.dose + k * step for k in (-2, -1, 1, 2)] + [status.dose * 2, status.dose * 3]
        dose = data.draw(
            st.one_of(
                st.sampled_from([d for d in near if d >= 0] or [0]),
                st.sampled_from(doses_for[name]),
                st.integers(0, 10**10),
            )
        )
        unit = drug.dose_unit if unit_choice < 7 else data.draw(st.sampled_from(ALL_UNITS))
        before = self._before()
        result = self.core.titrate(ch, dose, unit, self.now, override=override)
        if result.ok and result.dose != status.dose:
            self.overridden[ch] = override
        self._check_transitions(before)

    @rule(ch=channel)
    def stop(self, ch):
        before = self._before()
        result = self.core.stop(ch, self.now)
        if result.ok and result.plan:
            doses = [before[ch - 1].dose] + [d for _, d in result.plan]
            drug = LIB.drugs[before[ch - 1].drug]
            if drug.taper:
                assert all(a - b <= drug.step_down for a, b in zip(doses, doses[1:], strict=False))
            assert doses[-1] == 0
        self._check_transitions(before)

    @rule(ch=channel, reason=st.sampled_from(EMERGENCY_REASONS + ("bogus",)))
    def emergency_stop(self, ch, reason):
        before = self._before()
        result = self.core.emergency_stop(ch, reason, self.now)
        if result.ok:
            assert self.core.rate(ch) == 0
        self._check_transitions(before, exempt=(ch,) if result.ok else ())

    @rule(ch=channel, kind=st.sampled_from(sorted(FAULTS)))
    def fault(self, ch, kind):
        before = self._before()
        self.core.fault(ch, kind, self.now)
        assert self.core.rate(ch) == 0
        self._check_transitions(before, exempt=(ch,))

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

    @rule(ch=channel, volume=st.integers(0, 60 * M))
    def delivered(self, ch, volume):
        before = self._before()
        self.core.delivered(ch, volume)
        self._check_transitions(
            before, exempt=(ch,) if self.core.status(ch).volume_left == 0 else ()
        )

    @precondition(lambda self: self.core.alarms())
    @rule(data=st.data())
    def ack(self, data):
        alarm = data.draw(st.sampled_from(self.core.alarms()))
        assert self.core.ack(alarm.id, self.now).ok

    @rule(outage=st.integers(0, 10 * 60000))
    def reset(self, outage):
        """A reset mid-infusion: snapshot, through JSON, restored on a new uptime."""
        before = self._before()
        snap = json.loads(json.dumps(self.core.snapshot()))
        self.now = outage
        self.core = SafetyCore.restore(LIB, snap, now_ms=self.now, max_rate=MAX_RATE)
        for ch in range(1, CHANNELS + 1):
            assert self.core.rate(ch) == before[ch - 1].rate
        self._check_transitions(before)

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def never_above_a_hard_maximum(self):
        for ch in range(1, CHANNELS + 1):
            status = self.core.status(ch)
            assert self.core.rate(ch) <= MAX_RATE
            if status.drug is None:
                assert status.rate == 0
                continue
            drug = LIB.drugs[status.drug]
            assert status.dose <= drug.hard_max
            top = units.rate_for(
                drug.hard_max, drug.dose_unit, status.weight, status.conc, drug.conc_unit
            )
            assert status.rate <= top
            if status.state in ("running", "tapering"):
                assert status.rate == units.rate_for(
                    status.dose, drug.dose_unit, status.weight, status.conc, drug.conc_unit
                )
            else:
                assert status.rate == 0

    @invariant()
    def every_text_fits_the_wire_and_every_log_code_is_a_reason(self):
        assert_core_texts_fit(self.core)

    @invariant()
    def no_soft_excess_without_override(self):
        for ch in range(1, CHANNELS + 1):
            status = self.core.status(ch)
            delivering = status.drug and status.state in ("running", "tapering")
            if delivering and status.dose > LIB.drugs[status.drug].soft_max:
                assert self.overridden[ch], status


TestCoreMachine = CoreMachine.TestCase
TestCoreMachine.settings = _SETTINGS
