"""What the report reads out of the device's log: the firmware writes words, not numbers,
so each entry's text is read back against the formats the firmware writes it in.

Every format this module relies on is one named pattern below, with the firmware code
that writes it. When the firmware's wording changes, ``tests/test_report_system.py``
(a real emulator session, both runtimes) fails here rather than the report going
quietly blank; an entry that does not match is kept as ``Event.understood = False`` and
listed in the report as not understood, never dropped.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from pumpguard._board.protocol import reasons

from ..api.answers import LogEntry

_NUM = r"-?\d+(?:\.\d+)?"  # firmware/units.py fmt(): the shortest exact decimal
_UNIT = r"\S+"  # a dose unit (the library's units are single words: mcg/kg/min)
# A drug name as the library allows it (1-16 printable ASCII, spaces too: "nor epi drip"):
# lazy, so each pattern reads it up to the fixed words the firmware writes after it.
_DRUG = r"[ -~]{1,16}?"

# firmware/wording.py start_command(): "start DRUG DOSE UNIT[, W kg][, C UNIT][, V mL][, override]"
# (the drug clipped to 16, the unit to 14: the dose and unit are the last two words
# before the first ", " or the end, whatever the name holds)
START_COMMAND = re.compile(r"^start (?P<drug>.+?) (?P<dose>\S+) (?P<unit>[^\s,]+)(?:,|$)")
# ... its ", V mL" part: the volume in the syringe (no upper bound on what it delivers)
SYRINGE = re.compile(rf", (?P<volume>{_NUM}) mL(?:,|$)")
# firmware/wording.py titrate_command(): "titrate DOSE UNIT[, override]"
TITRATE_COMMAND = re.compile(r"^titrate (?P<dose>\S+) (?P<unit>\S+?)(?:, override)?$")
# firmware/core.py _set_dose(): kind "rate", "OLD mL/h -> NEW mL/h"
RATE = re.compile(rf"^(?P<old>{_NUM}) mL/h -> (?P<new>{_NUM}) mL/h$")
# firmware/core.py _start(): "started DRUG at DOSE UNIT (RATE mL/h)[; override: ...][; advisory...]"
STARTED = re.compile(
    rf"^started (?P<drug>{_DRUG}) at (?P<dose>{_NUM}) (?P<unit>{_UNIT}) \((?P<rate>{_NUM}) mL/h\)"
)
# firmware/core.py _titrate(): "DRUG WAS -> DOSE UNIT (RATE mL/h)[; taper cancelled][; ...]"
TITRATED = re.compile(
    rf"^(?P<drug>{_DRUG}) (?P<was>{_NUM}) -> (?P<dose>{_NUM}) (?P<unit>{_UNIT}) "
    rf"\((?P<rate>{_NUM}) mL/h\)"
)
# firmware/core.py _titrate(): a titration to the dose already set, "DRUG already at DOSE UNIT"
ALREADY = re.compile(rf"^(?P<drug>{_DRUG}) already at (?P<dose>{_NUM}) (?P<unit>{_UNIT})$")
# firmware/core.py _stop(): "DRUG is tapered, never stopped abruptly: N steps of ..."
TAPER_STARTED = re.compile(
    rf"^(?P<drug>{_DRUG}) is tapered, never stopped abruptly: (?P<steps>\d+) steps"
)
# firmware/core.py _taper_step(): "taper: DRUG now DOSE UNIT", last "taper complete: DRUG stopped"
TAPER_STEP = re.compile(rf"^taper: (?P<drug>{_DRUG}) now (?P<dose>{_NUM}) (?P<unit>{_UNIT})$")
TAPER_DONE = re.compile(rf"^taper complete: (?P<drug>{_DRUG}) stopped$")
# firmware/core.py _stop() of a drug without taper: "stopped (WHAT IT WAS)"
STOPPED = re.compile(r"^stopped \(")
# firmware/core.py _emergency(): "EMERGENCY STOP channel N (WAS): REASON"
EMERGENCY = re.compile(r"^EMERGENCY STOP channel \d+ ")
# firmware/core.py fault(): "KIND on channel N: flow stopped (WAS)", coded as its alarm
FAULT = re.compile(r"^.+ on channel \d+: flow stopped")
# firmware/handover.py: "DRUG DOSE UNIT: handover channel N -> M (V mL)[, tapering on],
# channel N stopped" (logged on channel N, the one the command named)
HANDED_OVER = re.compile(
    rf"^(?P<drug>{_DRUG}) (?P<dose>{_NUM}) (?P<unit>{_UNIT}): handover channel \d+ -> "
    rf"(?P<to>\d+) \((?P<volume>{_NUM}) mL\)"
)
# firmware/watchers.py alarm(): kind "alarm", "PRIORITY #ID: MESSAGE"
ALARM = re.compile(r"^(?P<priority>low|medium|high) #(?P<id>\d+): (?P<message>.*)$", re.S)
# firmware/resume.py restore(): "channel N resumed after a reset: DRUG DOSE UNIT"
RESUMED = re.compile(
    rf"^channel \d+ resumed after a reset: (?P<drug>{_DRUG}) (?P<dose>{_NUM}) (?P<unit>{_UNIT})$"
)
# firmware/core.py ack(): "acknowledged alarm ID (CODE, channel N)"
ACKED = re.compile(r"^acknowledged alarm (?P<id>\d+) \(.*, channel (?P<channel>\d+)\)$")
# firmware/libpush.py and resume.py restore(): kind "input", code "library_switched",
# "now IDENTITY, was IDENTITY" (pushed) or "at boot: IDENTITY, was NAME VERSION" (a
# switch a power cut kept out of the record), IDENTITY "NAME VERSION (crc32 0xCRC)"
# (firmware/druglib.py identity())
LIBRARY_SWITCHED = re.compile(
    r"^(?:now|at boot:) (?P<name>.+) (?P<version>\S+) \(crc32 0x(?P<crc>[0-9a-f]{8})\), "
    r"was (?P<was>.+)$"
)

# The kinds the firmware writes (ARCHITECTURE.md, "core.log"): its commands' names, and
# decision, rate, alarm, input. A "bolus" command has no firmware yet; its entries, should
# one come, are marked as such (never read as a titration).
COMMANDS = ("start", "titrate", "stop", "emergency_stop", "ack", "bolus", "handover", "patient")
KINDS = (*COMMANDS, "decision", "rate", "alarm", "input")

ACCEPTED_DOSE = ("ok", "ok_override", "ok_advisory")


# The refusals numbered past 39 (protocol/reasons.py: 10-39 filled first)
_REFUSED_PAST_39 = ("weight_mismatch",)


def refused(code):
    """Whether a decision's reason is a refusal (protocol/reasons.py: 10-39, and 83)."""
    number = reasons.NUMBER.get(code)
    return number is not None and (10 <= number <= 39 or code in _REFUSED_PAST_39)


def _alarm_code(code):
    number = reasons.NUMBER.get(code)
    return number is not None and 40 <= number <= 59  # protocol/reasons.py: alarms


def by_pump(code):
    """Whether a decision is the pump's own, answering no command: a taper's step (the
    first one too, made at the stop and logged after its decision) or a fault
    (firmware/core.py fault(): its decision is coded as its alarm)."""
    return code == "taper_step" or _alarm_code(code)


@dataclass(frozen=True)
class Event:
    """One log entry, read: what it says about its channel's dose and rate.

    ``what``: "command", "dose" (a dose set: ``dose``, ``unit``, ``drug``), "handover"
    (the entry's channel stopped, ``channel`` runs ``dose`` from a new syringe of
    ``volume`` mL), "rate"
    (``rate`` now, mL/h), "taper_started", "refused", "alarm" (``alarm_id``,
    ``priority``, ``message``), "acked" (``alarm_id``), "decision" (any other), "input",
    "unknown" (a kind this report does not know). An ack's ``channel`` is its alarm's; a
    library switch's ``library`` is (name, version, crc) of the library it switched to.
    ``understood`` is False for an entry of a known kind whose text matched none of the
    formats it should.
    """

    entry: LogEntry
    what: str
    understood: bool = True
    drug: str | None = None
    dose: Decimal | None = None
    unit: str | None = None
    rate: Decimal | None = None
    was: Decimal | None = None  # a rate entry's rate before it
    volume: Decimal | None = None  # a start command's syringe volume (mL), when it gives one
    alarm_id: int | None = None
    priority: str | None = None
    message: str = ""
    resumed: bool = False  # a dose a restore set after a reset (the rate is the one before)
    # an ack: the channel of the alarm it acknowledged; a handover: the channel taking over
    channel: int | None = None
    library: tuple | None = None  # a library switch: (name, version, crc) now running
    was_library: str = ""  # a library switch: the library before it, as the log names it


def _dose(entry, match, what="dose", **extra):
    return Event(
        entry,
        what,
        drug=match["drug"],
        dose=Decimal(match["dose"]),
        unit=match["unit"],
        **extra,
    )


def _decision(entry):
    code, text = entry.code, entry.text
    if refused(code):
        return Event(entry, "refused")
    if code in ACCEPTED_DOSE:
        m = STARTED.match(text) or TITRATED.match(text) or ALREADY.match(text)
        if m is None:
            return Event(entry, "dose", understood=False)
        rate = m.groupdict().get("rate")
        return _dose(entry, m, rate=None if rate is None else Decimal(rate))
    if code == "taper_started":
        m = TAPER_STARTED.match(text)
        return Event(entry, "taper_started", understood=m is not None, drug=m and m["drug"])
    if code == "taper_step":
        m = TAPER_STEP.match(text)
        return _dose(entry, m) if m else Event(entry, "dose", understood=False)
    if code == "handed_over":
        m = HANDED_OVER.match(text)
        if m is None:
            return Event(entry, "handover", understood=False)
        return _dose(entry, m, "handover", channel=int(m["to"]), volume=Decimal(m["volume"]))
    if code == "acked":
        m = ACKED.match(text)
        if m is None:
            return Event(entry, "acked", understood=False)
        return Event(entry, "acked", alarm_id=int(m["id"]), channel=int(m["channel"]))
    stops = {"stopped": (TAPER_DONE, STOPPED), "emergency_stopped": (EMERGENCY,)}
    if code in stops or _alarm_code(code):
        # a stop, an emergency stop or a fault (its decision is named by its alarm): dose 0
        patterns = stops.get(code, (FAULT,))
        ok = any(p.match(text) for p in patterns)
        return Event(entry, "dose", understood=ok, dose=Decimal(0), rate=Decimal(0))
    return Event(entry, "decision")


def read(entry: LogEntry) -> Event:
    """The entry, read against the firmware's formats."""
    kind, text = entry.kind, entry.text
    if kind in COMMANDS:
        if entry.code != "received":
            return Event(entry, "command", understood=False)
        pattern = {"start": START_COMMAND, "titrate": TITRATE_COMMAND}.get(kind)
        syringe = SYRINGE.search(text) if kind == "start" else None
        return Event(
            entry,
            "command",
            understood=pattern is None or bool(pattern.match(text)),
            volume=syringe and Decimal(syringe["volume"]),
        )
    if kind == "decision":
        return _decision(entry)
    if kind == "rate":
        m = RATE.match(text)
        if m is None:
            return Event(entry, "rate", understood=False)
        return Event(entry, "rate", rate=Decimal(m["new"]), was=Decimal(m["old"]))
    if kind == "alarm":
        m = ALARM.match(text)
        if m is None:
            return Event(entry, "alarm", understood=False, message=text)
        resumed = RESUMED.match(m["message"]) if entry.code == "resumed_after_reset" else None
        alarm_id, priority, message = int(m["id"]), m["priority"], m["message"]
        if resumed:
            return _dose(
                entry,
                resumed,
                "alarm",
                resumed=True,
                alarm_id=alarm_id,
                priority=priority,
                message=message,
            )
        return Event(entry, "alarm", alarm_id=alarm_id, priority=priority, message=message)
    if kind == "input":
        if entry.code != "library_switched":
            return Event(entry, "input")
        m = LIBRARY_SWITCHED.match(text)
        if m is None:
            return Event(entry, "input", understood=False)
        return Event(
            entry, "input", library=(m["name"], m["version"], m["crc"]), was_library=m["was"]
        )
    return Event(entry, "unknown")
