# SafetyCore: every command to every pump channel passes here, against the drug library.
#
# Pure: time comes in as now_ms (the shell's non-wrapping uptime), nothing here reads a
# clock, a pin or a file. Every command returns a Result and is logged with its decision;
# every rate change and alarm is logged too. tick(), delivered() and host_seen() are the
# shell's hot path: in steady state they only compare and add small integers, and
# allocate nothing (tests/mp/report_core_memory.py proves it with heap_lock).
from micropython import const

from firmware import rules, units, wording
from firmware.alarms import HIGH, MESSAGE_MAX, Alarms
from firmware.channel import (
    EMERGENCY,
    FAULT,
    RUNNING,
    START,
    STOP,
    TAPER,
    TAPER_END,
    TAPER_STEP,
    TAPERING,
    TITRATE,
    Channel,
    describe,
    keep,
)
from firmware.eventlog import EventLog
from firmware.result import Result
from firmware.watchers import Watchers
from protocol.text import clip, shown

_CHANNEL_KEPT = const(15)  # a channel's fields keep() copies (channel.py's _KEPT)
_KEPT_ALARMS = const(12)  # alarms listed keep() has room for from the start

# fault kind (from the shell) -> alarm code
FAULTS = {"occlusion": "occlusion", "air_in_line": "air_in_line",
          "syringe_empty": "syringe_empty", "motor": "motor_fault"}  # fmt: skip


class SafetyCore:
    def __init__(
        self,
        library,
        channels=2,
        max_rate=1000_000000,
        link_timeout_ms=10_000,
        near_empty_s=900,
        log_size=64,  # the ring's entries: why so many, firmware/eventlog.py
    ):
        self.library = library
        self.max_rate = max_rate
        self.near_empty_s = near_empty_s
        self.log = EventLog(log_size)
        self._alarms = Alarms()
        self._channels = [Channel(n) for n in range(1, channels + 1)]
        self._watch = Watchers(self._alarms, self.log, self._channels, link_timeout_ms)
        self._now = 0  # latest now_ms seen: the time of snapshots
        self.weight = None  # the patient's, micro kg, None: none known (rules.check_patient)
        self.pending = False  # a delivery reached near empty or empty: tick() raises it
        self._notes = []  # what an override passed, per decision (cleared, never made)
        # keep()'s, made now for every channel's fields and _KEPT_ALARMS alarms listed:
        # grown later (past that many) in a heap cut up by hours of service, it needs a
        # stretch larger than any left (190k, the soak's 8th hour: 512 B, none free)
        self._kept = [None] * (_CHANNEL_KEPT * channels + 3 + 3 * _KEPT_ALARMS)
        if not library.ok:
            self.log.add(0, 0, "input", "library_invalid", rules.library_problem(library))

    # -- commands ---------------------------------------------------------------------

    def start(
        self,
        ch,
        drug,
        dose,
        unit,
        now_ms,
        weight=None,
        conc=None,
        conc_unit=None,
        volume=None,
        override=False,
        syringe=None,  # the loaded syringe's capacity (micro mL, the motor's), None: none known
    ):
        self._now = now_ms
        # kept as received, worded when read: nothing made of it now
        form = wording.START_OVERRIDE if override else wording.START
        seq = self.log.put(now_ms, ch, form, drug, dose, unit, weight,
                           conc, conc_unit, volume)  # fmt: skip
        if not wording.kept(drug, unit, conc_unit, dose, weight, conc, volume):
            self.log.freeze(seq)  # an odd argument (a list, a float): worded as it is now
        result = self._start(ch, drug, dose, unit, now_ms, weight, conc, conc_unit,
                             volume, override, syringe)  # fmt: skip
        return self._decided(now_ms, ch, result)

    def titrate(self, ch, dose, unit, now_ms, override=False):
        self._now = now_ms
        form = wording.TITRATE_OVERRIDE if override else wording.TITRATE
        seq = self.log.put(now_ms, ch, form, dose, unit)
        if not wording.kept(unit, None, None, dose, None, None, None):
            self.log.freeze(seq)
        return self._decided(now_ms, ch, self._titrate(ch, dose, unit, now_ms, override))

    def stop(self, ch, now_ms):
        self._command(now_ms, ch, "stop", "stop")
        result = self._decided(now_ms, ch, self._stop(ch, now_ms))
        if result.code == "taper_started":
            # A first step due at once is taken after the decision that began the taper
            # is logged: the log (and a report of it) reads the stop, then its steps.
            c = self._channels[ch - 1]
            if now_ms >= c.taper_next_ms:
                self._taper_step(c, now_ms)
                result.dose = c.dose  # what runs now, as before
                result.rate = c.rate
        return result

    def emergency_stop(self, ch, reason, now_ms):
        if reason in rules.EMERGENCY_REASONS:  # kept, worded when read: its repr is plain
            self._now = now_ms
            self.log.put(now_ms, ch, wording.EMERGENCY, reason)
        else:
            self._command(now_ms, ch, "emergency_stop", "emergency stop: %s" % (shown(reason),))
        return self._decided(now_ms, ch, self._emergency(ch, reason, now_ms))

    def ack(self, alarm_id, now_ms):
        self._command(now_ms, 0, "ack", "ack alarm %s" % (shown(alarm_id),))
        found = rules.check_alarm(alarm_id, self._alarms.items)  # the alarm, or a refusal
        if isinstance(found, Result):
            return self._decided(now_ms, 0, found)
        self._alarms.ack(found)
        message = "acknowledged alarm %d (%s, channel %d)" % (found.id, found.code, found.ch)
        return self._decided(now_ms, 0, Result(True, "acked", message))

    # -- shell inputs -----------------------------------------------------------------

    def tick(self, now_ms):
        """Due taper steps, near-empty, empty and link-silence alarms. Compares only, in
        the steady state: each threshold was computed when the rate or link changed."""
        self._now = now_ms
        self.pending = False
        for c in self._channels:
            if c.state == TAPERING and now_ms >= c.taper_next_ms:
                self._taper_step(c, now_ms)
            self._watch.near_empty(c, now_ms)
            if c.volume_left <= 0 and c.rate:
                self.fault(c.ch, "syringe_empty", now_ms, False)  # no sensor's: a start ends it
        self._watch.link(now_ms)

    def next_due(self):
        """The uptime from which tick() has something to do on its own (a taper step,
        the host link's deadline), or None: the shell skips the ticks before it unless
        an input came, so an idle turn allocates nothing (report_shell_memory.py)."""
        due = self._watch.link_due()
        for c in self._channels:
            if c.state == TAPERING and (due is None or c.taper_next_ms < due):
                due = c.taper_next_ms
        return due

    def host_seen(self, now_ms):
        """Any valid frame from the host: restart the link-silence timer."""
        self._now = now_ms
        self._watch.host_seen(now_ms)

    def supervise(self, interval_ms, now_ms, heard=True):
        """The largest heartbeat interval a host declared (0: none supervises, silence is
        no alarm), whenever it changes; heard: a host's word, not a session closed."""
        self._now = now_ms
        self._watch.supervise(interval_ms, now_ms, heard)

    def delivered(self, ch, volume, left=None):
        """volume (micro mL) pumped on channel ch since the last call; left: what the pump
        measures is left in its syringe, or None. Volume left is the lower of the count
        and left: a syringe holding less than was typed alarms near empty before it is
        dry (issue 9, finding 1). Near empty or empty sets pending: this turn's tick()."""
        c = self._get(ch)
        c.volume_infused += volume
        c.volume_left -= volume
        if left is not None and left < c.volume_left:
            c.volume_left = left
        if c.volume_left < 0:
            c.volume_left = 0  # an overshoot past empty: nothing is left, not less
        if c.rate and (
            c.volume_left <= 0 or (not c.near_empty_raised and c.volume_left <= c.near_empty_volume)
        ):
            self.pending = True

    def fault(self, ch, kind, now_ms, active=True):
        """What channel ch's fault sensors report, from the shell when it changes
        (firmware/sensors.py): a kind, or None. A fault stops the flow at once; its high
        alarm stays listed, acked or not, until none is reported, and the channel starts
        nothing meanwhile (rules.check_state). A kind FAULTS lacks is a motor fault.
        active=False: the core's own syringe_empty (the volume programmed is in)."""
        code = None if kind is None else FAULTS.get(kind, "motor_fault")
        self._now = now_ms
        c = self._get(ch)
        if active:
            if c.fault == code:
                return None  # the same report again: nothing began or ended
            if c.fault is not None:  # over (none reported, or another): listed until seen
                self._alarms.clear(ch, c.fault)
                said = "channel %d: %s cleared" % (ch, c.fault.replace("_", " "))
                self.log.add(now_ms, ch, "input", "fault_cleared", said)
            c.fault = code
        if kind is None:
            return None
        message = "%s on channel %d: flow stopped (%s)" % (kind.replace("_", " "), ch, describe(c))
        counted = self._alarms.find(ch, code) if code == "syringe_empty" else None
        if counted and not counted.active and counted.at_ms >= (c.last_up_ms or 0):
            message = counted.message  # this infusion's count ended it first: drug, dose
        c.fire(FAULT)
        if c.rate:
            self._set_dose(c, 0, now_ms)
        self._watch.alarm(ch, code, HIGH, message, now_ms, active)
        self._watch.advisories(now_ms)
        return self._decided(now_ms, ch, Result(True, code, message, dose=0, rate=0))

    def device_alarm(self, code, message, now_ms, active=False, priority=HIGH):
        """An alarm about the whole device, from the shell: the store (store_lost,
        store_failed, record_set_aside, record_rolled_back), its own loop
        (internal_fault) or its keys (keys_missing; insecure_link, low priority).
        active: a condition that lasts until condition_over()."""
        self._now = now_ms
        return self._watch.alarm(0, code, priority, clip(message, MESSAGE_MAX), now_ms, active)

    def condition_over(self, code):
        """The device alarm code's condition has ended (listed until acknowledged)."""
        self._alarms.clear(0, code)

    # -- queries ----------------------------------------------------------------------

    def rate(self, ch):
        return self._get(ch).rate

    def alarms(self):
        return list(self._alarms.items)

    def listed(self):
        """The alarms listed, the core's own list (no copy): for a caller that only
        reads it at once (the shell's change detection), never keeps or changes it."""
        return self._alarms.items

    def channel(self, ch):
        """Channel ch itself (firmware/channel.py), to read at once, never to change."""
        return self._get(ch)

    @property
    def channels(self):
        return len(self._channels)

    def _get(self, ch):
        """The channel a shell input or query names: a bad number is a programming error."""
        if 1 <= ch <= len(self._channels):
            return self._channels[ch - 1]
        raise ValueError("no channel %r: this pump has channels 1-%d" % (ch, len(self._channels)))

    # -- persistence ------------------------------------------------------------------

    def record(self, write):  # the record's state uncopied, for firmware/recordtext.py
        return write(self._now, self._channels, self._alarms, self.weight)

    @classmethod
    def restore(cls, library, snapshot, now_ms=0, into=None, **kwargs):
        """A core for this library and board (kwargs as the constructor's) resuming
        snapshot at now_ms, the new uptime after a reset, each channel re-verified
        (firmware/resume.py: one that breaks a rule stays stopped, alarmed). ValueError
        for a snapshot of another library, format or channel count, or a field out of
        its type or range, changing nothing of into (a core made so, never used: a boot's)."""
        # boot code: imported here, not by this module (a booted board need not hold it)
        from firmware import resume

        core = cls(library, **kwargs) if into is None else into
        resume.restore(core, snapshot, now_ms)
        return core

    def keep(self):
        """What rollback() puts back, kept before each request: the channels' fields, the
        patient's weight, the alarms listed and the next id, in one list made once."""
        kept = self._kept
        o = keep(self._channels, kept)
        kept[o] = self.weight
        self._alarms.keep(kept, o + 1)
        return kept

    def rollback(self, kept):
        """Back to what keep() kept before a command whose handling raised: nothing of
        it applied, its log entries kept (what was received); shell: internal_fault."""
        o = keep(self._channels, kept, True)
        self.weight = kept[o]
        self._alarms.keep(kept, o + 1, True)

    # -- decisions --------------------------------------------------------------------

    # Each command applies its checks (firmware/rules/) in the order written, and the
    # first refusal is the decision. The chains are cut only where a later check needs
    # what an earlier one made sure of: the channel, the drug, the concentration, the
    # dose in the drug's unit.

    def _start(
        self, ch, name, dose, unit, now_ms, weight, conc, conc_unit, volume, override, syringe
    ):
        lib = self.library
        refusal = (
            rules.check_channel(ch, len(self._channels))
            or rules.check_library(lib)
            or rules.check_drug(lib, name)
        )
        if refusal:
            return refusal
        c = self._channels[ch - 1]
        drug = lib.drugs[name]
        refusal = (
            rules.check_state(c, START, "start")
            or rules.check_values(dose, volume, conc, weight)
            or rules.check_unit(unit, drug)
            or rules.check_weight(lib, drug, unit, weight, self.weight)
        )
        if refusal:
            return refusal
        weight = self.weight if weight is None else weight  # the patient's (check_patient)
        conc_value = rules.check_conc(drug, conc, conc_unit)
        if isinstance(conc_value, Result):
            return conc_value
        refusal = rules.check_volume(lib, volume, syringe)
        if refusal:
            return refusal
        num, den = units.convert_dose(dose, unit, drug.dose_unit, weight)
        notes = self._notes  # what an override passed, named in the decision
        notes.clear()
        refusal = rules.check_dose(drug, num, den, dose, unit, override, notes, False, weight, True)
        if refusal:
            return refusal
        value = units.round_div(num, den)
        refusal = (
            rules.check_start(drug, value, override, notes)
            or rules.check_combined(c, drug, value, self._channels)
            or rules.check_rate(drug, weight, conc_value, value, self.max_rate)
        )
        if refusal:
            return refusal
        c.begin(drug, weight, conc_value, volume, now_ms)
        c.fire(START)
        self.weight = weight  # the patient's now, if it was not
        c.override = bool(notes)
        self._alarms.clear(ch, "near_empty")
        self._set_dose(c, value, now_ms)
        advisory = self._watch.advisories(now_ms, ch)
        mask = wording.notes_mask(notes)
        return self._accepted(
            now_ms, c, wording.accepted_code(mask, advisory), wording.STARTED, drug, value,
            c.rate, mask, advisory,
        )  # fmt: skip

    def _titrate(self, ch, dose, unit, now_ms, override):
        refusal = rules.check_channel(ch, len(self._channels))
        if refusal:
            return refusal
        c = self._channels[ch - 1]
        refusal = (
            rules.check_state(c, TITRATE, "titrate")
            or rules.check_values(dose)
            or rules.check_unit(unit, c.started_drug())
            or rules.check_weight_known(c, unit)
        )
        if refusal:
            return refusal
        drug = c.drug
        num, den = units.convert_dose(dose, unit, drug.dose_unit, c.weight)
        notes = self._notes
        notes.clear()
        down = c.state == RUNNING and num <= c.dose * den  # dose.py: check_dose's above
        refusal = rules.check_dose(drug, num, den, dose, unit, override, notes, down, c.weight)
        if refusal:
            return refusal
        value = units.round_div(num, den)
        if value == c.dose and c.state == RUNNING:
            # absolute doses make a repeated titration harmless: nothing changes
            return self._accepted(now_ms, c, "ok", wording.ALREADY, drug, value)
        refusal = (
            rules.check_step(
                drug, c.dose, value, c.last_up_ms, c.last_down_ms, now_ms, override, notes
            )
            or rules.check_combined(c, drug, value, self._channels)
            or rules.check_rate(drug, c.weight, c.conc, value, self.max_rate)
        )
        if refusal:
            return refusal
        was = c.dose
        cancelled = c.state == TAPERING
        c.fire(TITRATE)
        if value > c.dose:
            c.last_up_ms = now_ms
        elif value < c.dose:
            c.last_down_ms = now_ms
        c.override = bool(notes) or (down and value > drug.soft_max)
        self._set_dose(c, value, now_ms)
        mask = wording.notes_mask(notes)
        return self._accepted(
            now_ms, c, wording.accepted_code(mask, None), wording.TITRATED, drug, was, value,
            c.rate, cancelled, mask,
        )  # fmt: skip

    def _stop(self, ch, now_ms):
        refusal = rules.check_channel(ch, len(self._channels))
        if refusal:
            return refusal
        c = self._channels[ch - 1]
        refusal = rules.check_stop(c, now_ms)
        if refusal:
            return refusal
        drug = c.started_drug()
        was = drug if c.delivering else None  # describe(c), worded when read
        was_dose = c.dose
        was_state = c.state
        first = now_ms
        if drug.taper and c.last_down_ms is not None:
            first = max(now_ms, c.last_down_ms + drug.taper_interval_ms)
        # The step to 0 comes a taper interval after the dose last fell, however it fell:
        # a titration to the stop dose then a stop is the taper's one step (issue 9).
        if drug.taper and (c.dose > drug.taper_stop_at or first > now_ms):
            plan = c.taper_plan(first)
            c.fire(TAPER)
            c.taper_next_ms = first  # when due now, stop() takes it once this is logged
            result = self._accepted(
                now_ms, c, "taper_started", wording.TAPER_STARTED, drug, len(plan),
                plan[-1][0] - now_ms,
            )  # fmt: skip
            result.plan = plan
            return result
        c.fire(STOP)
        self._set_dose(c, 0, now_ms)
        self._watch.advisories(now_ms)
        result = self._accepted(
            now_ms, c, "stopped", wording.STOPPED, was, was_dose, c.ch, was_state
        )
        result.plan = [(now_ms, 0)]
        return result

    def _emergency(self, ch, reason, now_ms):
        refusal = rules.check_reason(reason) or rules.check_channel(ch, len(self._channels))
        if refusal:
            return refusal
        c = self._channels[ch - 1]
        # the alarm's message, worded of the channel as it was (describe(c)): one str
        was = c.drug if c.delivering else None
        message = self.log.worded(wording.EMERGENCY_STOPPED, was, c.dose, ch, c.state, reason)
        c.fire(EMERGENCY)
        if c.rate:
            self._set_dose(c, 0, now_ms)
        # replacing the alarm of a fault of that code its sensor still reports: active
        self._watch.alarm(ch, reason, HIGH, message, now_ms, c.fault == reason)
        self._watch.advisories(now_ms)
        return Result(True, "emergency_stopped", message, dose=0, rate=0)

    # -- effects ----------------------------------------------------------------------

    def _set_dose(self, c, dose, now_ms):
        old = c.set_dose(dose, self.near_empty_s)
        if old != c.rate:
            self.log.put(now_ms, c.ch, wording.RATE, old, c.rate)

    def _taper_step(self, c, now_ms):
        dose = c.next_taper_dose()
        c.last_down_ms = now_ms
        # The next step is a full taper interval after this one, whenever this one ran:
        # after a late tick (stalled loop, clock jump, restore far ahead) the missed steps
        # are not taken in a burst, and two steps are never closer than the interval (a
        # tick late by a few ms shifts the rest of the plan by as much: the safe side).
        c.taper_next_ms = now_ms + c.drug.taper_interval_ms
        c.override = c.override and dose > c.drug.soft_max  # past it only as overridden
        if dose:
            c.fire(TAPER_STEP)
        else:
            c.fire(TAPER_END)
        self._set_dose(c, dose, now_ms)
        if dose:
            self.log.put(now_ms, c.ch, wording.TAPER_STEP, c.drug, dose)
        else:
            self.log.put(now_ms, c.ch, wording.TAPER_DONE, c.drug)
            self._watch.advisories(now_ms)

    # -- log --------------------------------------------------------------------------

    def _command(self, now_ms, ch, name, text):
        # kind is the command's name; every log code is a reason (the shell sends its
        # number), and a command's reason is only that it was received
        self._now = now_ms
        self.log.add(now_ms, ch, name, "received", text)

    def _decided(self, now_ms, ch, result):
        if result._log is None:  # not logged already (_accepted)
            self.log.add(now_ms, ch, "decision", result.code, result.message)
        return result

    def _accepted(self, now_ms, c, code, form, a=None, b=None, g=None, d=None, e=None, f=None):
        """An accepted decision on channel c, logged now as form with its arguments: its
        Result's message is worded when read (firmware/wording.py)."""
        drug = c.drug
        result = Result(True, code, None, dose=c.dose, rate=c.rate, unit=drug.dose_unit)
        result.logged(self.log, self.log.put(now_ms, c.ch, form, a, b, g, d, e, f))
        return result
