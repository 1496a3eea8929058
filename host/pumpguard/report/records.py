"""What a ``Report`` holds (``model.build`` fills it; ``page`` and ``plots`` show it):
the boots, each channel's dose, rate and volume steps with its marks, the decisions,
the alarms, the library switches and the pump's own figures when it was asked now."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pumpguard._board.protocol.text import duration

from ..api.answers import LogEntry, Status

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
    "handover": "handover (to or from another channel)",
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
    clock_behind_ms: int = 0  # its clock put it this much before the previous boot's end


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
    points: list[tuple[float | datetime, Decimal | None]] = field(default_factory=list)


@dataclass
class ChannelReport:
    channel: int
    doses: list[Segment] = field(default_factory=list)  # in time order
    # per boot: [(position, mL/h)]; [(position, mL so far, a float: a plot's point)]
    rates: list[list[tuple[float | datetime, Decimal]]] = field(default_factory=list)
    volumes: list[list[tuple[float | datetime, float]]] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    volume_ml: Decimal = Decimal(0)
    by_drug: dict[str, Decimal] = field(default_factory=dict)  # drug -> mL (from the rates)
    not_counted: Decimal = Decimal(0)  # mL the rates said past the syringe or pump's count
    upper_bound: bool = False  # a syringe_empty counted the volume typed, no count to bound it
    at_least: bool = False  # a boot ended while it delivered: the time off is not counted
    now: Status | None = None  # from a live pump: the channel's status when reported

    @property
    def drugs(self) -> list[str]:
        return list(dict.fromkeys(s.drug for s in self.doses))


@dataclass(frozen=True)
class DecisionRow:
    entry: LogEntry  # the decision
    command: LogEntry | None  # the command it decided, None: the pump's own (taper, fault)
    refused: bool
    channel: int  # the entry's, or for an ack the channel of the alarm it acknowledged


@dataclass
class AlarmRow:
    entry: LogEntry
    alarm_id: int | None
    priority: str
    message: str
    acked: LogEntry | None = None


@dataclass(frozen=True)
class LibrarySwitch:
    at: float | datetime  # position on the plots' time axis
    version: str
    entry: LogEntry


@dataclass(frozen=True)
class LibraryPeriod:
    """A part of the session run under one library, as the log's switches say."""

    library: str
    since: LogEntry | None  # the switch that began it, None: from the log's first entry
    until: LogEntry | None  # the switch that ended it, None: to the log's last entry


@dataclass(frozen=True)
class Now:
    """A live pump's state as the report is made (``pumpguard.report.now``)."""

    boot_id: int
    uptime_ms: int
    statuses: dict[int, Status]  # channel -> its Status


@dataclass
class Report:
    device: dict[str, Any] | None  # identity (pumpguard.report.identity), None: not known
    source: str
    entries: list[LogEntry]
    wall_axis: bool  # the plots' time axis: UTC (True) or hours, boots end to end
    boots: list[Boot]
    channels: list[ChannelReport]  # only channels with entries
    unused: list[int]  # channel numbers the device has that the log never names
    decisions: list[DecisionRow]
    alarms: list[AlarmRow]
    not_understood: list[LogEntry]  # of a known kind whose text no format matched
    unknown: list[LogEntry]  # of a kind this report does not know
    first_seq: int = 0  # > 0: the entries before it are not in this log (rotated, --since)
    now: Now | None = None  # live: where the timeline was closed (None: at the last entry)
    inputs: list[LogEntry] = field(default_factory=list)  # of kind "input": device events
    switches: list[LibrarySwitch] = field(default_factory=list)  # in time order
    libraries: list[LibraryPeriod] = field(default_factory=list)  # empty: no switch logged
    repeats: int = 0  # identical copies of an entry dropped
    clashes: list[tuple[int, int]] = field(default_factory=list)  # (boot_id, seq) held twice
