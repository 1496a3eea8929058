"""What ``Pump``'s methods return: frozen dataclasses, quantities as exact ``Decimal``s
in the unit their name or a sibling field names (never the wire's millionths), and the
wire-to-API conversions of device records (alarms, log entries, events)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pumpguard._board.protocol.catalog import PRIORITY_NAMES

from ..errors import reason_name
from .quantity import micro_to_decimal


@dataclass(frozen=True)
class Info:
    """What the device said about itself at HELLO, and its active library and link
    counters now."""

    firmware: str
    board: str
    channels: int
    library: str
    library_version: str
    library_crc: int
    bundle: str  # SHA-256 of the bundle flashed, "" when the firmware runs from source
    boot_id: int
    uptime_ms: int
    counters: dict[str, int]
    library_problems: int  # the active library's problems (0: valid; else nothing starts)


@dataclass(frozen=True)
class LibraryId:
    """A drug library's identity: what HELLO_R reports and ``Pump.push_library`` returns."""

    name: str
    version: str
    crc: int


@dataclass(frozen=True)
class Heartbeat:
    """The answer to a heartbeat: the device's uptime and boot, and how many of its
    alarms are not acknowledged."""

    uptime_ms: int
    boot_id: int
    active_alarms: int


@dataclass(frozen=True)
class Status:
    """One channel's state; quantities are exact ``Decimal`` in the unit named. Four
    fields are the order of the channel's last start (kept after it stops; None before
    a first start): its concentration in ``concentration_unit``, the weight it ran at
    (None: none known) and the volume programmed; the last, the patient's weight."""

    channel: int
    state: str  # idle | running | tapering | stopped | ... (firmware/core.py)
    drug: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_h: Decimal
    volume_infused_ml: Decimal
    volume_left_ml: Decimal | None
    time_to_empty_s: int | None
    alarms: tuple[int, ...]  # ids of the alarms listed on this channel
    taper_next_in_s: Decimal | None  # tapering: seconds until the next step, else None
    taper_next_dose: Decimal | None  # tapering: the dose of that step (dose_unit)
    override: bool  # the running dose was set past a soft limit by an override
    concentration: Decimal | None = None
    concentration_unit: str | None = None  # e.g. "mcg/mL"
    weight_kg: Decimal | None = None
    volume_ml: Decimal | None = None  # programmed at the start (volume_left_ml: now)
    patient_weight_kg: Decimal | None = None  # the patient's, whatever this channel runs

    @property
    def order(self) -> str:
        """The last start's order in a line: "16 mcg/mL, 70 kg, 50 mL programmed" (""
        before a first start)."""
        parts = (
            []
            if self.concentration is None
            else [f"{self.concentration} {self.concentration_unit}"]
        )
        parts += [] if self.weight_kg is None else [f"{self.weight_kg} kg"]
        parts += [] if self.volume_ml is None else [f"{self.volume_ml} mL programmed"]
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        """A dict for ``json.dumps``: Decimals as JSON numbers, exact to 6 decimals."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if isinstance(value, Decimal):
                # Shortest float repr of text with <= 6 decimals is that same text.
                value = int(value) if value == value.to_integral_value() else float(value)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Patient:
    """The patient the pump's channels deliver to: its weight (None: none known yet, the
    next start that gives one sets it). Every start's weight must be it."""

    weight_kg: Decimal | None


@dataclass(frozen=True)
class Decision:
    """An accepted start or titrate: the dose now set and the rate the motor runs."""

    channel: int
    dose: Decimal
    dose_unit: str
    rate_ml_h: Decimal


@dataclass(frozen=True)
class HandedOver:
    """An accepted handover: ``channel`` now runs the program ``from_channel`` ran (which
    stopped, without a taper of its own), at ``dose`` and ``rate_ml_h``; ``state`` is
    ``running``, or ``tapering`` when the program's taper goes on there."""

    from_channel: int
    channel: int
    state: str
    dose: Decimal
    dose_unit: str
    rate_ml_h: Decimal


@dataclass(frozen=True)
class TaperStep:
    """One step of a taper: at ``at_ms`` the dose becomes ``dose`` (``Stopped.dose_unit``)."""

    at_ms: int  # device uptime of the step
    in_s: Decimal  # seconds from the stop command to the step
    dose: Decimal


@dataclass(frozen=True)
class Stopped:
    """The answer to stop(): ``plan`` is empty when the channel stopped at once, else the
    whole taper the device now runs by itself (every step), the last at dose 0."""

    channel: int
    dose_unit: str
    plan: tuple[TaperStep, ...]


@dataclass(frozen=True)
class Alarm:
    """An alarm the device lists (``Pump.alarms()``) or has just raised (an event)."""

    id: int
    channel: int  # 0: the whole device
    code: str  # reason name, e.g. "occlusion" (protocol/reasons.py)
    priority: str  # low | medium | high
    message: str
    at_ms: int
    acked: bool


@dataclass(frozen=True)
class LogEntry:
    """One entry of the device's persistent event log.

    ``seq`` counts across the device's boots; ``boot_id`` names the boot that made the
    entry (HELLO_R's); ``at_ms`` is device uptime; ``wall_ms`` the Unix time in ms
    once a host had given the device the wall clock at HELLO (None before).
    """

    seq: int
    at_ms: int
    channel: int
    kind: str
    code: str
    text: str
    boot_id: int = 0
    wall_ms: int | None = None

    @property
    def wall_time(self) -> str | None:
        """``wall_ms`` as ISO 8601 UTC with milliseconds ("2026-12-01T09:41:02.123Z"),
        or None."""
        if self.wall_ms is None:
            return None
        at = datetime.fromtimestamp(self.wall_ms // 1000, UTC)
        return f"{at:%Y-%m-%dT%H:%M:%S}.{self.wall_ms % 1000:03d}Z"

    def as_json(self) -> dict[str, Any]:
        """The entry as one JSON Lines object (``pumpguard log --jsonl``): seq,
        boot_id, at_ms, wall_ms (null: no wall clock yet), wall_time, channel, kind,
        code, text."""
        return {
            "seq": self.seq,
            "boot_id": self.boot_id,
            "at_ms": self.at_ms,
            "wall_ms": self.wall_ms,
            "wall_time": self.wall_time,
            "channel": self.channel,
            "kind": self.kind,
            "code": self.code,
            "text": self.text,
        }


@dataclass(frozen=True)
class StateChange:
    """An event: channel ``channel`` changed state (started, titrated, a taper step,
    stopped) at device uptime ``at_ms``; dose in ``dose_unit``, the motor's rate now."""

    channel: int
    state: str
    drug: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_h: Decimal
    at_ms: int


# What Pump.events() returns: one of these per unsolicited event of the catalog.
Event = Alarm | StateChange


def _state_change(f: Mapping[str, Any]) -> StateChange:
    drug = f["drug"] or None
    return StateChange(
        f["ch"],
        f["state"],
        drug,
        micro_to_decimal(f["dose"]) if drug else None,
        f["unit"] or None,
        micro_to_decimal(f["rate"]),
        f["at_ms"],
    )


def _event(name: str, fields: Mapping[str, Any]) -> Event:
    return EVENTS[name](fields)


def _log_entry(e: Mapping[str, Any]) -> LogEntry:
    return LogEntry(
        e["seq"],
        e["at_ms"],
        e["ch"],
        e["kind"],
        reason_name(e["code"]),
        e["text"],
        boot_id=e["boot_id"],
        wall_ms=e["wall_ms"],
    )


def _alarm(fields: Mapping[str, Any]) -> Alarm:
    return Alarm(
        fields["id"],
        fields["ch"],
        reason_name(fields["code"]),
        PRIORITY_NAMES.get(fields["priority"], str(fields["priority"])),
        fields["message"],
        fields["at_ms"],
        fields["acked"],
    )


# Per event of the catalog (protocol/catalog.py, EV_*), its conversion.
EVENTS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    "EV_ALARM": _alarm,
    "EV_STATE": _state_change,
}
