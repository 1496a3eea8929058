"""What ``Pump``'s methods return: frozen dataclasses, quantities as exact ``Decimal``s,
and the two wire-to-API conversions of device records (alarms, log entries)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pumpguard._board.protocol.catalog import PRIORITY_NAMES

from ..errors import reason_name


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
    counters: dict
    library_problems: int  # the active library's problems (0: valid; else nothing starts)


@dataclass(frozen=True)
class LibraryId:
    """A drug library's identity: what HELLO_R reports and ``Pump.push_library`` returns."""

    name: str
    version: str
    crc: int


@dataclass(frozen=True)
class Status:
    """One channel's state; quantities are exact ``Decimal`` in the unit named."""

    channel: int
    state: str  # idle | running | tapering | stopped | ... (firmware/core.py)
    drug: str | None
    dose: Decimal | None
    dose_unit: str | None
    rate_ml_h: Decimal
    volume_infused_ml: Decimal
    volume_left_ml: Decimal | None
    time_to_empty_s: int | None
    alarms: tuple  # ids of the alarms listed on this channel
    taper_next_in_s: Decimal | None  # tapering: seconds until the next step, else None
    taper_next_dose: Decimal | None  # tapering: the dose of that step (dose_unit)
    override: bool  # the running dose was set past a soft limit by an override

    def as_json(self):
        """A dict for ``json.dumps``: Decimals as JSON numbers, exact to 6 decimals."""
        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, Decimal):
                # Shortest float repr of text with <= 6 decimals is that same text.
                value = int(value) if value == value.to_integral_value() else float(value)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Decision:
    """An accepted start or titrate: the dose now set and the rate the motor runs."""

    channel: int
    dose: Decimal
    dose_unit: str
    rate_ml_h: Decimal


@dataclass(frozen=True)
class TaperStep:
    at_ms: int  # device uptime of the step
    in_s: Decimal  # seconds from the stop command to the step
    dose: Decimal


@dataclass(frozen=True)
class Stopped:
    """The answer to stop(): ``plan`` is empty when the channel stopped at once, else the
    whole taper the device now runs by itself (every step), the last at dose 0."""

    channel: int
    dose_unit: str
    plan: tuple


@dataclass(frozen=True)
class Alarm:
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
    def wall_time(self):
        """``wall_ms`` as ISO 8601 UTC with milliseconds ("2026-12-01T09:41:02.123Z"),
        or None."""
        if self.wall_ms is None:
            return None
        at = datetime.fromtimestamp(self.wall_ms // 1000, UTC)
        return f"{at:%Y-%m-%dT%H:%M:%S}.{self.wall_ms % 1000:03d}Z"

    def as_json(self):
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


def _log_entry(e):
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


def _alarm(fields):
    return Alarm(
        fields["id"],
        fields["ch"],
        reason_name(fields["code"]),
        PRIORITY_NAMES.get(fields["priority"], str(fields["priority"])),
        fields["message"],
        fields["at_ms"],
        fields["acked"],
    )
