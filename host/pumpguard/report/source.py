"""Where a report's entries come from: a connected pump (its log and identity), or a file
``pumpguard log`` exported: ``--json`` (one object, the device's identity and the
entries), ``--jsonl`` or ``--csv`` (the entries alone: the identity is not in them)."""

import csv
import io
import json
from pathlib import Path

from ..api.answers import LogEntry
from ..errors import UsageError

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


def identity(pump) -> dict:
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


def export(entries, device) -> dict:
    """``pumpguard log --json``'s one object."""
    return {"device": device, "entries": [e.as_json() for e in entries]}


def _entry(row, where):
    try:
        missing = [f for f in _FIELDS if f not in row]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")

        def wall():
            v = row["wall_ms"]
            return None if v in ("", None) else int(v)  # empty, null: no wall clock yet

        seq, at_ms, ch, boot = (int(row[f]) for f in ("seq", "at_ms", "channel", "boot_id"))
        return LogEntry(
            seq,
            at_ms,
            ch,
            str(row["kind"]),
            str(row["code"]),
            str(row["text"]),
            boot_id=boot,
            wall_ms=wall(),
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{where}: not a log entry ({exc})") from None


def parse(text, name="the file"):
    """(entries, device or None, format) of an export's text."""
    stripped = text.lstrip()
    if not stripped:
        return [], None, "jsonl"  # `log --jsonl` of an empty log writes nothing
    if stripped.startswith("{"):
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None
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
                    row = json.loads(line)
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
    return [_entry(r, f"{name} row {n}") for n, r in enumerate(rows, 2)], None, "csv"


def load(path):
    """(entries, device or None, format) of the export at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    return parse(text, str(path))
