# SafetyCore: every command to every pump channel passes here, against the drug library.
#
# Pure: time comes in as now_ms (the shell's non-wrapping uptime), nothing here reads a
# clock, a pin or a file. Every command returns a Result and is logged with its decision;
# every rate change and alarm is logged too. tick(), delivered() and host_seen() are the
# shell's hot path: in steady state they only compare and add small integers, and
# allocate nothing (tests/mp/report_core_memory.py proves it with heap_lock).
from micropython import const

from firmware import rules, units
from firmware.alarms import HIGH, MEDIUM, Alarm, Alarms
from firmware.channel import (
    EMERGENCY,
    FAULT,
    RUNNING,
    START,
    STATES,
    STOP,
    TAPER,
    TAPER_END,
    TAPER_STEP,
    TAPERING,
    TITRATE,
    Channel,
    ChannelStatus,
)
from firmware.eventlog import EventLog
from firmware.result import Result, refuse
from protocol.text import TEXT_MAX, clip, duration, listing, shown

EMERGENCY_REASONS = ("occlusion", "air_in_line", "extravasation", "clinician")
# fault kind (from the shell) -> alarm code
FAULTS = {
    "occlusion": "occlusion",
    "air_in_line": "air_in_line",
    "syringe_empty": "syringe_empty",
    "motor": "motor_fault",
}
_SNAPSHOT_VERSION = const(1)
# The wire's largest quantity (protocol Q, i32): anything larger cannot come from the
# host, and bounding it keeps every message that echoes a quantity short.
_QUANTITY_MAX = const(0x7FFFFFFF)


def _is_quantity(value):
    return type(value) is int and 0 <= value <= _QUANTITY_MAX


def _said(value, room=11):
    """A command's argument as the log shows it: a quantity as its decimal, a text as
    itself, anything else as its repr; clipped (the longest quantity is 11 characters)."""
    if _is_quantity(value):
        return units.fmt(value)
    return clip(value, room) if isinstance(value, str) else shown(value, room)


class SafetyCore:
    def __init__(
        self,
        library,
        channels=2,
        max_rate=1000_000000,
        link_timeout_ms=10_000,
        near_empty_s=900,
        log_size=128,
    ):
        self.library = library
        self.max_rate = max_rate
        self.link_timeout_ms = link_timeout_ms
        self.near_empty_s = near_empty_s
        self.log = EventLog(log_size)
        self._alarms = Alarms()
        self._channels = [Channel(n) for n in range(1, channels + 1)]
        self._link_deadline = link_timeout_ms  # the host has until then to be heard
        self._link_alarmed = False
        self._now = 0  # latest now_ms seen: the time of delivered() and of snapshots
        if not library.ok:
            self.log.add(0, 0, "input", "library_invalid", self._library_problem())

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
    ):
        # An argument the command left out (a weight a drug dosed per minute does not
        # need) is left out of the log too, never shown as "None".
        text = "start %s %s %s" % (_said(drug, 16), _said(dose), _said(unit, 14))
        if weight is not None:
            text += ", %s kg" % (_said(weight),)
        if conc is not None or conc_unit is not None:
            text += ", " + " ".join(
                _said(v, room) for v, room in ((conc, 11), (conc_unit, 14)) if v is not None
            )
        if volume is not None:
            text += ", %s mL" % (_said(volume),)
        if override:
            text += ", override"
        self._command(now_ms, ch, "start", text)
        return self._decided(
            now_ms,
            ch,
            self._start(ch, drug, dose, unit, now_ms, weight, conc, conc_unit, volume, override),
        )

    def titrate(self, ch, dose, unit, now_ms, override=False):
        self._command(
            now_ms,
            ch,
            "titrate",
            "titrate %s %s%s" % (_said(dose), _said(unit, 14), ", override" if override else ""),
        )
        return self._decided(now_ms, ch, self._titrate(ch, dose, unit, now_ms, override))

    def stop(self, ch, now_ms):
        self._command(now_ms, ch, "stop", "stop")
        return self._decided(now_ms, ch, self._stop(ch, now_ms))

    def emergency_stop(self, ch, reason, now_ms):
        self._command(now_ms, ch, "emergency_stop", "emergency stop: %s" % (shown(reason),))
        return self._decided(now_ms, ch, self._emergency(ch, reason, now_ms))

    def ack(self, alarm_id, now_ms):
        self._command(now_ms, 0, "ack", "ack alarm %s" % (shown(alarm_id),))
        alarm = self._alarms.ack(alarm_id)
        if alarm is None:
            result = refuse(
                "unknown_alarm",
                "no alarm %s is listed (listed: %s)"
                % (
                    shown(alarm_id),
                    listing([str(a.id) for a in self._alarms.items], 60) or "none",
                ),
            )
        else:
            result = Result(
                True,
                "acked",
                "acknowledged alarm %d (%s, channel %d)" % (alarm.id, alarm.code, alarm.ch),
            )
        return self._decided(now_ms, 0, result)

    # -- shell inputs -----------------------------------------------------------------

    def tick(self, now_ms):
        """Due taper steps, near-empty and link-silence alarms. Compares only, in the
        steady state: every threshold was computed when the rate or link last changed."""
        self._now = now_ms
        for c in self._channels:
            if c.state == TAPERING and now_ms >= c.taper_next_ms:
                self._taper_step(c, now_ms)
            self._check_near_empty(c, now_ms)
        if not self._link_alarmed and now_ms >= self._link_deadline:
            self._link_lost(now_ms)

    def host_seen(self, now_ms):
        """Any valid frame from the host: restart the link-silence timer."""
        self._now = now_ms
        self._link_deadline = now_ms + self.link_timeout_ms
        # Cleared even when this core did not raise it: one restored from a snapshot
        # taken while the link was silent lists it active, and the host is back now.
        self._alarms.clear(0, "link_lost")
        if self._link_alarmed:
            self._link_alarmed = False
            self.log.add(now_ms, 0, "input", "link_back", "host link back")

    def delivered(self, ch, volume):
        """volume (micro-scaled mL) pumped on channel ch since the last call."""
        c = self._get(ch)
        c.volume_infused += volume
        c.volume_left -= volume
        if c.volume_left < 0:
            c.volume_left = 0  # an overshoot past empty: nothing is left, not less
        # Near empty is checked here too, not only on the tick: a delivery that crosses
        # the threshold and empties the syringe in one report must still raise the
        # near-empty alarm before the empty fault (the clinician sees both, in order).
        self._check_near_empty(c, self._now)
        if c.volume_left <= 0 and c.rate:
            self.fault(ch, "syringe_empty", self._now)

    def fault(self, ch, kind, now_ms):
        """A hardware fault reported by the shell: flow stops, high-priority alarm."""
        code = FAULTS.get(kind)
        if code is None:
            raise ValueError("unknown fault %r (known: %s)" % (kind, ", ".join(sorted(FAULTS))))
        self._now = now_ms
        c = self._get(ch)
        was = self._describe(c)
        c.fire(FAULT)
        if c.rate:
            self._set_dose(c, 0, now_ms)
        message = "%s on channel %d: flow stopped (%s)" % (kind.replace("_", " "), ch, was)
        self._alarm(ch, code, HIGH, message, now_ms, False)
        self._check_advisories(now_ms)
        return self._decided(now_ms, ch, Result(True, code, message, dose=0, rate=0))

    def store_lost(self, message, now_ms):
        """The shell found its saved state missing or corrupt (message says which) and
        built this core afresh, so every channel started idle: a high-priority alarm
        tells the clinician that whatever ran before the reset is not running now."""
        self._now = now_ms
        return self._alarm(
            0,
            "store_lost",
            HIGH,
            "saved state lost (%s): every channel started idle" % (clip(message, 50),),
            now_ms,
            False,
        )

    # -- queries ----------------------------------------------------------------------

    def rate(self, ch):
        return self._get(ch).rate

    def status(self, ch):
        return ChannelStatus(self._get(ch), self._alarms.on_channel(ch))

    def alarms(self):
        return list(self._alarms.items)

    @property
    def channels(self):
        return len(self._channels)

    # -- persistence ------------------------------------------------------------------

    def snapshot(self):
        """A JSON-able dict of everything needed to resume after a reset."""
        return {
            "version": _SNAPSHOT_VERSION,
            "library": {
                "name": self.library.name,
                "version": self.library.version,
                "crc32": self.library.crc,
            },
            "at_ms": self._now,
            "channels": [c.snapshot() for c in self._channels],
            "alarms": [a.as_dict() for a in self._alarms.items],
            "next_alarm_id": self._alarms.next_id,
        }

    @classmethod
    def restore(cls, library, snapshot, now_ms=0, **kwargs):
        """A core resuming snapshot at now_ms (the new uptime after a reset).

        Times in the snapshot are shifted so that no time seems to have passed: the
        outage is unknown, so intervals and taper steps restart from now (later, never
        earlier). Raises ValueError if the snapshot is of another library or format, or
        its rates do not follow from its doses (a corrupted store).
        """
        if snapshot.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(
                "snapshot version %r is not %d" % (snapshot.get("version"), _SNAPSHOT_VERSION)
            )
        if snapshot["library"]["crc32"] != library.crc or not library.ok:
            raise ValueError(
                "snapshot was taken with library %s %s (crc32 %r), not %s"
                % (
                    snapshot["library"]["name"],
                    snapshot["library"]["version"],
                    snapshot["library"]["crc32"],
                    library.identity(),
                )
            )
        core = cls(library, channels=len(snapshot["channels"]), **kwargs)
        shift = now_ms - snapshot["at_ms"]
        core._now = now_ms
        core._link_deadline = now_ms + core.link_timeout_ms
        for i, saved in enumerate(snapshot["channels"]):
            core._restore_channel(core._channels[i], saved, shift)
        for saved in snapshot["alarms"]:
            alarm = Alarm.from_dict(saved)
            alarm.at_ms += shift
            core._alarms.items.append(alarm)
        core._alarms.next_id = snapshot["next_alarm_id"]
        for c in core._channels:
            if c.delivering:
                core._alarm(
                    c.ch,
                    "resumed_after_reset",
                    MEDIUM,
                    "channel %d resumed after a reset: %s" % (c.ch, core._describe(c)),
                    now_ms,
                    False,
                )
        core.log.add(now_ms, 0, "input", "restored", "restored from snapshot")
        return core

    def _restore_channel(self, c, saved, shift):
        if saved["ch"] != c.ch:
            raise ValueError("snapshot channel %r out of order" % (saved["ch"],))
        if saved["state"] not in STATES:
            raise ValueError("snapshot channel %d: unknown state %r" % (c.ch, saved["state"]))
        c.state = saved["state"]
        if saved["drug"] is None:
            return
        drug = self.library.drugs[saved["drug"]]
        c.begin(drug, saved["weight"], saved["conc"], saved["volume_left"], 0)
        c.volume_infused = saved["volume_infused"]
        c.override = saved["override"]
        c.last_up_ms = None if saved["last_up_ms"] is None else saved["last_up_ms"] + shift
        c.last_down_ms = None if saved["last_down_ms"] is None else saved["last_down_ms"] + shift
        c.taper_next_ms = saved["taper_next_ms"] + shift
        c.near_empty_raised = saved["near_empty_raised"]
        c.set_dose(saved["dose"] if c.delivering else 0, self.near_empty_s)
        if c.rate != saved["rate"]:
            raise ValueError(
                "snapshot channel %d: rate %r does not follow from its dose (%r)"
                % (c.ch, saved["rate"], c.rate)
            )

    # -- decisions --------------------------------------------------------------------

    def _channel(self, ch):
        """The channel a command names, or None (a refusal, not an error)."""
        if type(ch) is int and 1 <= ch <= len(self._channels):
            return self._channels[ch - 1]
        return None

    def _get(self, ch):
        """The channel a shell input or query names: a bad number is a programming error."""
        if 1 <= ch <= len(self._channels):
            return self._channels[ch - 1]
        raise ValueError("no channel %r: this pump has channels 1-%d" % (ch, len(self._channels)))

    def _unknown_channel(self, ch):
        return refuse(
            "unknown_channel",
            "no channel %s: this pump has channels 1-%d" % (shown(ch), len(self._channels)),
        )

    def _not_now(self, c, what):
        return refuse("invalid_state", "cannot %s: channel %d is %s" % (what, c.ch, c.state))

    def _start(self, ch, name, dose, unit, now_ms, weight, conc, conc_unit, volume, override):
        lib = self.library
        c = self._channel(ch)
        if c is None:
            return self._unknown_channel(ch)
        if not lib.ok:
            return refuse("library_invalid", self._library_problem())
        drug = lib.drugs.get(name)
        if drug is None:
            return refuse(
                "unknown_drug",
                "%s is not in the drug library; known: %s"
                % (shown(name), listing(sorted(lib.drugs), 70)),
            )
        if not c.allows(START):
            return self._not_now(c, "start")
        # The dose is never optional (a missing one is a bad value, not an exception);
        # the others may be left out, and each has its own refusal when it is needed.
        if not _is_quantity(dose):
            return self._bad_value("dose", dose)
        for what, value in (("volume", volume), ("conc", conc), ("weight", weight)):
            if value is not None and not _is_quantity(value):
                return self._bad_value(what, value)
        problem = units.unit_problem(unit, drug.dose_unit)
        if problem:
            return refuse(problem[0], problem[1])
        if weight is None:
            if drug.weight_based or units.needs_weight(unit, drug.dose_unit):
                return refuse(
                    "weight_required",
                    "%s in %s needs the patient's weight (kg)" % (drug.name, unit),
                    (lib.weight_min, lib.weight_max, units.WEIGHT),
                )
        elif not lib.weight_min <= weight <= lib.weight_max:
            return refuse(
                "weight_out_of_range",
                "weight %s kg is outside %s-%s kg"
                % (units.fmt(weight), units.fmt(lib.weight_min), units.fmt(lib.weight_max)),
                (lib.weight_min, lib.weight_max, units.WEIGHT),
            )
        conc_value = self._check_conc(drug, conc, conc_unit)
        if isinstance(conc_value, Result):
            return conc_value
        if volume is None or not lib.volume_min <= volume <= lib.volume_max:
            return refuse(
                "volume_required" if volume is None else "volume_out_of_range",
                "the syringe or bag volume must be %s-%s mL, not %s"
                % (
                    units.fmt(lib.volume_min),
                    units.fmt(lib.volume_max),
                    "missing" if volume is None else units.fmt(volume) + " mL",
                ),
                (lib.volume_min, lib.volume_max, units.VOLUME),
            )
        num, den = units.convert_dose(dose, unit, drug.dose_unit, weight)
        notes = []
        refusal = rules.check_dose(drug, num, den, dose, unit, override, notes)
        if refusal:
            return refusal
        value = units.round_div(num, den)
        refusal = rules.check_start(drug, value, override, notes)
        if refusal:
            return refusal
        refusal = self._check_combined(c, drug, value)
        if refusal:
            return refusal
        refusal = self._check_rate(drug, weight, conc_value, value)
        if refusal:
            return refusal
        c.begin(drug, weight, conc_value, volume, now_ms)
        c.fire(START)
        c.override = bool(notes)
        self._alarms.clear(ch, "near_empty")
        self._set_dose(c, value, now_ms)
        advisory = self._check_advisories(now_ms).get(ch)
        message = "started %s at %s (%s mL/h)" % (
            drug.name,
            self._dose_text(c, value),
            units.fmt(c.rate),
        )
        return self._accepted(c, message, notes, advisory)

    def _bad_value(self, what, value):
        return refuse(
            "bad_value",
            "%s must be a whole number of millionths, 0-%d, not %s"
            % (what, _QUANTITY_MAX, shown(value)),
        )

    def _library_problem(self):
        problems = self.library.problems
        return "drug library invalid, nothing runs; %d problem(s), first: %s" % (
            len(problems),
            clip(problems[0], 60),
        )

    def _check_conc(self, drug, conc, conc_unit):
        allowed = "allowed: %s %s" % (
            listing([units.fmt(a) for a in drug.concs], 40),
            drug.conc_unit,
        )
        if conc is None or conc_unit is None:
            return refuse("conc_required", "the concentration is required (%s)" % (allowed,))
        if conc_unit not in units.CONC_UNITS:
            return refuse(
                "unknown_unit", "unknown concentration unit %s (%s)" % (shown(conc_unit), allowed)
            )
        exact = units.convert_conc(conc, conc_unit, drug.conc_unit)
        if exact is not None:
            for value in drug.concs:
                if exact[0] == value * exact[1]:
                    return value
        return refuse(
            "conc_not_allowed",
            "%s %s is not a library concentration of %s (%s)"
            % (units.fmt(conc), conc_unit, drug.name, allowed),
        )

    def _check_combined(self, c, drug, dose):
        """The hard max is the patient's, not a channel's: the same drug delivering on
        other channels counts too, so two channels at 0.03 units/min of vasopressin are
        refused (0.06 > 0.04). Clinical judgement, the safe side: a syringe changeover
        that runs old and new together must fit under the hard max (else let the old one
        run out: near empty warns well before). Doses add in the drug's dose_unit."""
        others = 0
        for o in self._channels:
            if o is not c and o.delivering and o.started_drug().name == drug.name:
                others += o.dose
        if not others or dose + others <= drug.hard_max:
            return None
        room = drug.hard_max - others
        return refuse(
            "above_hard_max",
            "%s + %s on other channels is above the hard max %s %s for %s"
            % (
                units.fmt(dose),
                units.fmt(others),
                units.fmt(drug.hard_max),
                drug.dose_unit,
                drug.name,
            ),
            (drug.hard_min, room, drug.dose_unit) if room >= drug.hard_min else None,
        )

    def _check_rate(self, drug, weight, conc, dose):
        """The pump's mechanical maximum, as a refusal naming the dose it allows."""
        rate = units.rate_for(dose, drug.dose_unit, weight, conc, drug.conc_unit)
        if rate > self.max_rate:
            top = units.dose_for(self.max_rate, drug.dose_unit, weight, conc, drug.conc_unit)
            return refuse(
                "above_max_rate",
                "%s %s needs %s mL/h, above this pump's max %s mL/h (%s at most)"
                % (
                    units.fmt(dose),
                    drug.dose_unit,
                    units.fmt(rate),
                    units.fmt(self.max_rate),
                    units.fmt(min(top, drug.hard_max)),
                ),
                (drug.hard_min, min(top, drug.hard_max), drug.dose_unit),
            )
        return None

    def _titrate(self, ch, dose, unit, now_ms, override):
        c = self._channel(ch)
        if c is None:
            return self._unknown_channel(ch)
        if not c.allows(TITRATE):
            return self._not_now(c, "titrate")
        if not _is_quantity(dose):
            return self._bad_value("dose", dose)
        drug = c.started_drug()
        problem = units.unit_problem(unit, drug.dose_unit)
        if problem:
            return refuse(problem[0], problem[1])
        if c.weight is None and units.needs_weight(unit, drug.dose_unit):
            return refuse(
                "weight_required",
                "%s needs the patient's weight, which was not given at start: use %s"
                % (unit, drug.dose_unit),
            )
        num, den = units.convert_dose(dose, unit, drug.dose_unit, c.weight)
        notes = []
        refusal = rules.check_dose(drug, num, den, dose, unit, override, notes)
        if refusal:
            return refusal
        value = units.round_div(num, den)
        if value == c.dose and c.state == RUNNING:
            # absolute doses make a repeated titration harmless: nothing changes
            return Result(
                True,
                "ok",
                "%s already at %s" % (drug.name, self._dose_text(c, value)),
                dose=value,
                rate=c.rate,
                unit=drug.dose_unit,
            )
        refusal = rules.check_step(
            drug, c.dose, value, c.last_up_ms, c.last_down_ms, now_ms, override, notes
        )
        if refusal:
            return refusal
        if value > c.dose:  # a fall never needs it: it only lowers the patient's total
            refusal = self._check_combined(c, drug, value)
            if refusal:
                return refusal
        refusal = self._check_rate(drug, c.weight, c.conc, value)
        if refusal:
            return refusal
        was = c.dose
        cancelled = c.state == TAPERING
        c.fire(TITRATE)
        if value > c.dose:
            c.last_up_ms = now_ms
        elif value < c.dose:
            c.last_down_ms = now_ms
        c.override = bool(notes)
        self._set_dose(c, value, now_ms)
        message = "%s %s -> %s (%s mL/h)%s" % (
            drug.name,
            units.fmt(was),
            self._dose_text(c, value),
            units.fmt(c.rate),
            "; taper cancelled" if cancelled else "",
        )
        return self._accepted(c, message, notes, None)

    def _stop(self, ch, now_ms):
        c = self._channel(ch)
        if c is None:
            return self._unknown_channel(ch)
        if c.state == TAPERING:
            plan = c.taper_plan(c.taper_next_ms)
            result = self._not_now(c, "stop")
            result.message += " (taper running, next step in %s)" % (
                duration(c.taper_next_ms - now_ms),
            )
            result.plan = plan
            return result
        if not c.allows(STOP):
            return self._not_now(c, "stop")
        drug = c.started_drug()
        was = self._describe(c)
        if drug.taper and c.dose > drug.taper_stop_at:
            first = now_ms
            if c.last_down_ms is not None:
                first = max(now_ms, c.last_down_ms + drug.taper_interval_ms)
            plan = c.taper_plan(first)
            c.fire(TAPER)
            c.taper_next_ms = first
            if now_ms >= first:
                self._taper_step(c, now_ms)
            return Result(
                True,
                "taper_started",
                "%s is tapered, never stopped abruptly: %d steps of %s every %s, off in %s"
                % (
                    drug.name,
                    len(plan),
                    self._dose_text(c, drug.taper_step),
                    duration(drug.taper_interval_ms),
                    duration(plan[-1][0] - now_ms),
                ),
                plan=plan,
                dose=c.dose,
                rate=c.rate,
                unit=drug.dose_unit,
            )
        c.fire(STOP)
        self._set_dose(c, 0, now_ms)
        self._check_advisories(now_ms)
        return Result(
            True,
            "stopped",
            "stopped (%s)" % (was,),
            plan=[(now_ms, 0)],
            dose=0,
            rate=0,
            unit=drug.dose_unit,
        )

    def _emergency(self, ch, reason, now_ms):
        if reason not in EMERGENCY_REASONS:
            return refuse(
                "unknown_reason",
                "emergency stop needs a reason, one of: %s (not %s)"
                % (", ".join(EMERGENCY_REASONS), shown(reason)),
            )
        c = self._channel(ch)
        if c is None:
            return self._unknown_channel(ch)
        was = self._describe(c)
        c.fire(EMERGENCY)
        if c.rate:
            self._set_dose(c, 0, now_ms)
        message = "EMERGENCY STOP channel %d (%s): %s" % (ch, was, reason.replace("_", " "))
        self._alarm(ch, reason, HIGH, message, now_ms, False)
        self._check_advisories(now_ms)
        return Result(True, "emergency_stopped", message, dose=0, rate=0)

    # -- effects ----------------------------------------------------------------------

    def _set_dose(self, c, dose, now_ms):
        old = c.set_dose(dose, self.near_empty_s)
        if old != c.rate:
            self.log.add(
                now_ms,
                c.ch,
                "rate",
                "rate_changed",
                "%s mL/h -> %s mL/h" % (units.fmt(old), units.fmt(c.rate)),
            )

    def _taper_step(self, c, now_ms):
        dose = c.next_taper_dose()
        c.last_down_ms = now_ms
        # The next step is a full taper interval after this one, whenever this one ran:
        # after a late tick (stalled loop, clock jump, restore far ahead) the missed
        # steps are not taken in a burst on the following ticks, and two steps are never
        # closer than the interval. A tick late by a few ms shifts the rest of the plan
        # by as much: a slower taper is the safe side.
        c.taper_next_ms = now_ms + c.drug.taper_interval_ms
        if dose:
            c.fire(TAPER_STEP)
        else:
            c.fire(TAPER_END)
        self._set_dose(c, dose, now_ms)
        self.log.add(
            now_ms,
            c.ch,
            "decision",
            "taper_step" if dose else "stopped",
            "taper: %s now %s" % (c.drug.name, self._dose_text(c, dose))
            if dose
            else "taper complete: %s stopped" % (c.drug.name,),
        )
        if not dose:
            self._check_advisories(now_ms)

    def _check_near_empty(self, c, now_ms):
        # hot path: two compares, and the alarm only once per start
        if c.rate and not c.near_empty_raised and c.volume_left <= c.near_empty_volume:
            self._near_empty(c, now_ms)

    def _near_empty(self, c, now_ms):
        c.near_empty_raised = True
        self._alarm(
            c.ch,
            "near_empty",
            HIGH if c.drug.taper else MEDIUM,
            "channel %d (%s) near empty: %s mL left, empty in about %s"
            % (
                c.ch,
                c.drug.name,
                units.fmt(c.volume_left),
                duration(c.time_to_empty_s() * 1000),
            ),
            now_ms,
            True,
        )

    def _link_lost(self, now_ms):
        self._link_alarmed = True
        held = [self._describe(c) for c in self._channels if c.delivering]
        self._alarm(
            0,
            "link_lost",
            HIGH if held else MEDIUM,
            "host link silent for over %d s; rates held: %s"
            % (self.link_timeout_ms // 1000, listing(held, 60) if held else "nothing running"),
            now_ms,
            True,
        )

    def _alarm(self, ch, code, priority, message, now_ms, active):
        alarm = self._alarms.raise_(ch, code, priority, message, now_ms, active)
        if alarm is not None:
            self.log.add(now_ms, ch, "alarm", code, "%s #%d: %s" % (priority, alarm.id, message))
        return alarm

    def _check_advisories(self, now_ms):
        """Cross-channel: a second-line drug (vasopressin, phenylephrine, dopamine) with
        none of its partners delivering. Returns {ch: advisory text} for every channel
        the advisory applies to now (raised now or already listed)."""
        running = [c.started_drug().name for c in self._channels if c.delivering]
        alone = {}
        for c in self._channels:
            drug = c.started_drug() if c.delivering else None
            if (
                drug is not None
                and drug.needs_any
                and not any(p in running for p in drug.needs_any)
            ):
                # the library's advisory text (druglib keeps it short enough to send)
                text = drug.advisory or ""
                self._alarm(c.ch, "second_line_alone", MEDIUM, text, now_ms, True)
                alone[c.ch] = text
            else:
                self._alarms.clear(c.ch, "second_line_alone")
        return alone

    # -- messages and log -------------------------------------------------------------

    def _dose_text(self, c, dose):
        return "%s %s" % (units.fmt(dose), c.drug.dose_unit)

    def _describe(self, c):
        if not c.delivering:
            return "channel %d %s" % (c.ch, c.state)
        return "%s %s" % (c.drug.name, self._dose_text(c, c.dose))

    def _accepted(self, c, message, notes, advisory):
        code = "ok"
        if notes:
            code = "ok_override"
            message += "; override: " + ", ".join(notes)
        if advisory:
            code = "ok_advisory" if code == "ok" else code
            # the advisory's text is its alarm's; repeated here when the message has room
            more = "; advisory: " + advisory
            message += more if len(message) + len(more) <= TEXT_MAX else "; advisory alarm"
        return Result(True, code, message, dose=c.dose, rate=c.rate, unit=c.drug.dose_unit)

    def _command(self, now_ms, ch, name, text):
        # kind is the command's name; every log code is a reason (the shell sends its
        # number), and a command's reason is only that it was received
        self._now = now_ms
        self.log.add(now_ms, ch, name, "received", text)

    def _decided(self, now_ms, ch, result):
        self.log.add(now_ms, ch, "decision", result.code, result.message)
        return result
