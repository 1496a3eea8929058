"""Where a report's entries come from: a connected pump (its log and identity), or a file
``pumpguard log`` exported: ``--json`` (one object, the device's identity and the
entries), ``--jsonl`` or ``--csv`` (the entries alone: the identity is not in them)."""

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.answers import LogEntry
from ..errors import UsageError
from .records import Now

if TYPE_CHECKING:  # the API is the caller's: imported for the hints only
    from ..api.client import Pump

# What parse() and load() return: the entries, the device's identity (None: the export
# has none) and the export's format ("json", "jsonl" or "csv").
Export = tuple[list[LogEntry], dict[str, Any] | None, str]

# The identity ``pumpguard log --json`` writes as "device", and the report shows.
IDENTITY = (
    "board",
    "firmware",
    "bundle",
    "board_id",
    "library",
    "library_version",
    "library_crc",
    "boot_id",
)
# LogEntry.as_json()'s fields: what every export carries per entry (wall_time derived).
_FIELDS = ("seq", "boot_id", "at_ms", "wall_ms", "channel", "kind", "code", "text")


def identity(pump: "Pump") -> dict[str, Any]:
    """The pump's identity (``IDENTITY``) from its HELLO and INFO; boot_id is the boot
    now running."""
    info = pump.info()
    return {
        "board": info.board,
        "firmware": info.firmware,
        "bundle": info.bundle,
        "board_id": pump.device.get("board_id", ""),
        "library": info.library,
        "library_version": info.library_version,
        "library_crc": info.library_crc,
        "boot_id": info.boot_id,
    }


def now(pump: "Pump") -> Now:
    """The pump's boot, uptime and every channel's status now: where a report from it
    closes each channel's timeline (its log's last entry may be long past)."""
    info = pump.info()
    statuses = {n: pump.status(n) for n in range(1, pump.channels + 1)}
    return Now(info.boot_id, info.uptime_ms, statuses)


def export(entries: Iterable[LogEntry], device: dict[str, Any] | None) -> dict[str, Any]:
    """``pumpguard log --json``'s one object."""
    return {"device": device, "entries": [e.as_json() for e in entries]}


def _whole(row, name):
    # JSON's 1.5 or true would pass int() silently (truncated, or 1): a field of a log
    # entry is a whole number >= 0 (CSV: its digits)
    v = row[name]
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    raise ValueError(f"{name} {v!r} is not a whole number >= 0")


def _entry(row, where):
    try:
        missing = [f for f in _FIELDS if f not in row]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        texts = {f: row[f] for f in ("kind", "code", "text")}
        wrong = [f for f, v in texts.items() if not isinstance(v, str)]
        if wrong:
            raise ValueError(", ".join(f"{f} {texts[f]!r} is not a text" for f in wrong))
        wall = None if row["wall_ms"] in ("", None) else _whole(row, "wall_ms")  # no clock yet
        entry = LogEntry(
            _whole(row, "seq"),
            _whole(row, "at_ms"),
            _whole(row, "channel"),
            texts["kind"],
            texts["code"],
            texts["text"],
            boot_id=_whole(row, "boot_id"),
            wall_ms=wall,
        )
        try:
            entry.wall_time  # noqa: B018 (a time no calendar has: year 5e9, or before 1970)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"wall_ms {wall} is no date") from None
        return entry
    except ValueError as exc:
        raise UsageError(f"{where}: not a log entry ({exc})") from None


def _json(text, where):
    try:
        return json.loads(text)
    except RecursionError:  # json's decoder recurses: a hostile file would be a traceback
        raise UsageError(f"{where}: JSON nested too deep to be a log export") from None


def parse(text: str, name: str = "the file") -> Export:
    """(entries, device or None, format) of an export's text."""
    stripped = text.lstrip()
    if not stripped:
        return [], None, "jsonl"  # `log --jsonl` of an empty log writes nothing
    if stripped.startswith("{"):
        try:
            whole = _json(text, name)
        except ValueError:
            whole = None  # not one object: JSON Lines (each line read below)
        if isinstance(whole, dict) and "entries" in whole:
            device = whole.get("device")
            if not isinstance(device, dict) or not isinstance(whole["entries"], list):
                raise UsageError(f"{name}: a `log --json` object needs a device and entries")
            rows = whole["entries"]
            entries = [_entry(r, f"{name} entry {i}") for i, r in enumerate(rows)]
            return entries, device, "json"
        entries = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = _json(line, f"{name} line {n}")
                except ValueError as exc:
                    raise UsageError(f"{name} line {n}: not JSON ({exc})") from None
                if not isinstance(row, dict):
                    raise UsageError(f"{name} line {n}: not a log entry object")
                entries.append(_entry(row, f"{name} line {n}"))
        return entries, None, "jsonl"
    rows = csv.DictReader(io.StringIO(text))
    if rows.fieldnames is None or not set(_FIELDS) <= set(rows.fieldnames):
        raise UsageError(
            f"{name} is not a log export: give the output of `pumpguard log --json`, "
            "`--jsonl` or `--csv`"
        )
    try:
        return [_entry(r, f"{name} row {n}") for n, r in enumerate(rows, 2)], None, "csv"
    except csv.Error as exc:  # a field past csv's size limit, a NUL byte
        raise UsageError(f"{name} row {rows.line_num}: not CSV ({exc})") from None


def load(path: str | os.PathLike[str]) -> Export:
    """(entries, device or None, format) of the export at ``path``."""
    try:
        # utf-8-sig: Excel's "CSV UTF-8" and Windows editors begin with a byte order
        # mark; their CRLF line ends read as newlines (read_text's universal newlines)
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return parse(text, str(path))
