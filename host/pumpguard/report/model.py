"""``build(entries, device)``: the log read into a ``Report``: each channel's dose, rate and
volume over time with what happened on it marked, the decisions, the alarms and the boots.

Times: an entry's own wall clock (UTC) where it has one, else its boot and uptime. The
plots need one axis across boots: the wall clock when every boot has one (an entry of a
boot made before a host gave the time is placed by that boot's offset), else hours with
the boots laid end to end (the time between them unknown). Volume infused is computed
from the log's rates (mL/h held until the next rate entry), boot by boot: nothing is
counted between a boot's last entry and the next boot (the pump was off for part of it,
and the log cannot say which part).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from protocol.text import duration

from ..api.answers import LogEntry
from .parse import Event, by_pump, read

MS_PER_H = 3_600_000

# What is marked on a channel's plot: key -> legend label, in the legend's order.
MARKS = {
    "start": "start",
    "titration": "titration",
    "override": "override (past a soft limit)",
    "bolus": "bolus",
    "taper_started": "stop asked: taper begins",
    "taper_step": "taper step",
    "stopped": "stopped",
    "refused": "refused command",
    "alarm": "alarm",
}


def when(entry: LogEntry) -> str:
    """The entry's time as the report prints it: UTC wall clock, else boot and uptime."""
    return entry.wall_time or f"boot {entry.boot_id:08x} +{duration(entry.at_ms)}"


@dataclass(frozen=True)
class Boot:
    boot_id: int
    first: LogEntry
    last: LogEntry
    entries: int
    at: float | datetime  # its first entry's position on the plots' time axis


@dataclass(frozen=True)
class Mark:
    kind: str  # a MARKS key
    at: float | datetime  # position on the plot's time axis
    dose: Decimal | None  # the dose set when it happened (None: nothing set yet)
    entry: LogEntry


@dataclass
class Segment:
    """One drug's dose over an unbroken stretch of one boot: (position, dose) steps."""

    drug: str
    unit: str
    points: list = field(default_factory=list)


@dataclass
class ChannelReport:
    channel: int
    doses: list = field(default_factory=list)  # Segment, in time order
    rates: list = field(default_factory=list)  # per boot: [(position, mL/h as Decimal)]
    volumes: list = field(default_factory=list)  # per boot: [(position, mL so far)]
    marks: list = field(default_factory=list)  # Mark
    volume_ml: Decimal = Decimal(0)
    by_drug: dict = field(default_factory=dict)  # drug -> mL (computed from the rates)

    @property
    def drugs(self):
        return list(dict.fromkeys(s.drug for s in self.doses))


@dataclass(frozen=True)
class DecisionRow:
    entry: LogEntry  # the decision
    command: LogEntry | None  # the command it decided, None: the pump's own (taper, fault)
    refused: bool


@dataclass
class AlarmRow:
    entry: LogEntry
    alarm_id: int | None
    priority: str
    message: str
    acked: LogEntry | None = None


@dataclass
class Report:
    device: dict | None  # identity (pumpguard.report.identity), None: not in the export
    source: str
    entries: list
    wall_axis: bool  # the plots' time axis: UTC (True) or hours, boots end to end
    boots: list
    channels: list  # ChannelReport, only channels with entries
    unused: list  # channel numbers the device has that the log never names
    decisions: list
    alarms: list
    not_understood: list  # LogEntry of a known kind whose text no format matched
    unknown: list  # LogEntry of a kind this report does not know


def _boots(entries):
    boots = []
    for e in entries:
        if boots and boots[-1][0] == e.boot_id:
            boots[-1][1].append(e)
        else:
            boots.append((e.boot_id, [e]))
    return boots


class _Axis:
    """Each entry's position on the plots' one time axis."""

    def __init__(self, boots):
        self.offsets = {}
        for boot_id, run in boots:
            walls = [e.wall_ms - e.at_ms for e in run if e.wall_ms is not None]
            if walls and boot_id not in self.offsets:
                self.offsets[boot_id] = walls[0]
        self.wall = bool(boots) and all(b in self.offsets for b, _ in boots)
        self.base = {}  # run index -> ms before it (boots end to end)
        total = 0
        for i, (_, run) in enumerate(boots):
            self.base[i] = total
            total += run[-1].at_ms

    def at(self, run, e):
        if self.wall:
            ms = e.wall_ms if e.wall_ms is not None else e.at_ms + self.offsets[e.boot_id]
            return datetime.fromtimestamp(ms / 1000, UTC)
        return (self.base[run] + e.at_ms) / MS_PER_H


class _Channel:
    """One channel's state while the log is read."""

    def __init__(self, ch):
        self.out = ChannelReport(ch)
        self.drug = None
        self.unit = None
        self.dose = None
        self.rate = Decimal(0)
        self.volume = Decimal(0)
        self.last_ms = None  # uptime of the last point of this boot
        self.segment = None

    def boot(self, pos, at_ms):
        # a new boot: nothing runs until the log says it resumed (power was lost)
        self.rate = Decimal(0)
        self.dose = None
        self.segment = None
        self.last_ms = at_ms
        self.out.rates.append([(pos, self.rate)])
        self.out.volumes.append([(pos, float(self.volume))])

    def advance(self, pos, at_ms):
        if self.last_ms is not None and at_ms > self.last_ms:
            delivered = self.rate * (at_ms - self.last_ms) / MS_PER_H
            self.volume += delivered
            if self.drug is not None and delivered:
                by = self.out.by_drug
                by[self.drug] = by.get(self.drug, Decimal(0)) + delivered
            self.out.volumes[-1].append((pos, float(self.volume)))
        self.last_ms = at_ms

    def set_rate(self, pos, rate):
        self.rate = rate
        self.out.rates[-1].append((pos, self.rate))

    def set_dose(self, pos, ev: Event):
        if ev.drug is not None and ev.unit is not None:
            self.drug, self.unit = ev.drug, ev.unit
        self.dose = ev.dose
        if self.drug is None or self.unit is None:
            return  # a stop with nothing known before it: no curve to draw
        s = self.segment
        if s is None or (s.drug, s.unit) != (self.drug, self.unit):
            s = self.segment = Segment(self.drug, self.unit)
            self.out.doses.append(s)
        s.points.append((pos, ev.dose))

    def mark(self, kind, pos, entry):
        self.out.marks.append(Mark(kind, pos, self.dose, entry))

    def close(self, pos):
        # every curve held to the boot's last entry
        self.out.rates[-1].append((pos, self.rate))
        if self.segment is not None:
            self.segment.points.append((pos, self.dose))
        self.segment = None


def _dose_mark(ev: Event, command):
    """The mark of a dose set: by the code of its decision, else by its command."""
    code = ev.entry.code
    if code == "ok_override":
        return "override"
    if code == "taper_step":
        return "taper_step"
    if ev.drug is None:  # a stop, a taper's end, an emergency stop, a fault: dose 0
        return "stopped"
    kind = command.kind if command is not None else ""
    return {"start": "start", "bolus": "bolus"}.get(kind, "titration")


def build(entries, device=None, channels=None, source="") -> Report:
    """The report of ``entries`` (``LogEntry``, oldest first, as ``Pump.log()``) of the
    device ``device`` (``identity()``'s dict, None when unknown). ``channels``: the
    device's channel count when known (a live pump), so a channel the log never names
    is said to be unused."""
    entries = sorted(entries, key=lambda e: e.seq)
    runs = _boots(entries)
    axis = _Axis(runs)
    chans: dict[int, _Channel] = {}
    decisions, alarms, odd, unknown = [], [], [], []
    by_id: dict[int, AlarmRow] = {}
    pending: dict[int, LogEntry] = {}  # channel -> its command awaiting a decision
    boots = []
    for i, (boot_id, run) in enumerate(runs):
        first = axis.at(i, run[0])
        boots.append(Boot(boot_id, run[0], run[-1], len(run), first))
        for c in chans.values():
            c.boot(first, run[0].at_ms)
        pending.clear()
        for e in run:
            pos = axis.at(i, e)
            if e.channel and e.channel not in chans:
                chans[e.channel] = _Channel(e.channel)
                chans[e.channel].boot(first, run[0].at_ms)
            c = chans.get(e.channel)
            if c is not None:
                c.advance(pos, e.at_ms)
            ev = read(e)
            if not ev.understood:
                odd.append(e)
            if ev.what == "unknown":
                unknown.append(e)
            elif ev.what == "command":
                pending[e.channel] = e
                if e.kind == "bolus" and c is not None:
                    c.mark("bolus", pos, e)
            elif ev.what in ("refused", "dose", "taper_started", "acked", "decision"):
                # the pump's own decisions (a taper's step, even the first, made inside
                # the stop before its decision is logged; a fault) answer no command
                command = None if by_pump(e.code) else pending.pop(e.channel, None)
                decisions.append(DecisionRow(e, command, ev.what == "refused"))
                if c is not None and ev.what == "refused":
                    c.mark("refused", pos, e)
                elif c is not None and ev.what == "taper_started":
                    c.mark("taper_started", pos, e)
                elif c is not None and ev.what == "dose" and ev.understood:
                    c.set_dose(pos, ev)
                    c.mark(_dose_mark(ev, command), pos, e)
                if ev.what == "acked" and ev.alarm_id in by_id:
                    by_id[ev.alarm_id].acked = e
            elif ev.what == "rate" and c is not None and ev.rate is not None:
                c.set_rate(pos, ev.rate)
            elif ev.what == "alarm":
                row = AlarmRow(e, ev.alarm_id, ev.priority or "", ev.message)
                alarms.append(row)
                if ev.alarm_id is not None:
                    by_id[ev.alarm_id] = row
                if c is not None:
                    if ev.resumed:
                        c.set_dose(pos, ev)
                        c.set_rate(pos, _rate_before(c))
                    c.mark("alarm", pos, e)
        last = axis.at(i, run[-1])
        for c in chans.values():
            c.advance(last, run[-1].at_ms)
            c.close(last)
    for c in chans.values():
        c.out.volume_ml = c.volume
    used = sorted(chans)
    unused = [n for n in range(1, (channels or 0) + 1) if n not in chans]
    return Report(
        device=device,
        source=source,
        entries=entries,
        wall_axis=axis.wall,
        boots=boots,
        channels=[chans[n].out for n in used],
        unused=unused,
        decisions=decisions,
        alarms=alarms,
        not_understood=odd,
        unknown=unknown,
    )


def _rate_before(c: _Channel):
    # the rate the channel ran at before this boot: a restored channel runs at it again
    for run in reversed(c.out.rates[:-1]):
        if run:
            return run[-1][1]
    return Decimal(0)
