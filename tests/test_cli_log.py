"""``pumpguard log``'s exports round-trip: what CSV and JSON Lines carry reads back as
the very entries the API returned (texts with commas, quotes and newlines included),
and the listing shows wall-clock time where the device had it."""

import argparse
import csv
import io
import json

import pytest
from pumpguard.api.client import LogEntry
from pumpguard.cli.readouts import LOG_FIELDS, argparse_log, do_log
from pumpguard.errors import UsageError

_ENTRIES = [
    LogEntry(0, 1200, 0, "input", "restored", "restored from snapshot", 0xDEADBEEF, None),
    LogEntry(1, 65_000, 1, "start", "received", 'start "x", y\nz', 0xDEADBEEF, 1_764_580_000_123),
    LogEntry(7, 40, 2, "decision", "ok", "", 0x00000002, 1_764_590_000_000),
]


class _Pump:
    def __init__(self):
        self.since = None

    def log(self, since=0):
        self.since = since
        return [e for e in _ENTRIES if e.seq >= since]


def _run(*argv):
    out = io.StringIO()
    pump = _Pump()
    do_log(pump, argparse_log().parse_args(list(argv)), out)
    return out.getvalue(), pump


def _entry(row):
    # a CSV row or a JSON object back to a LogEntry ("" in CSV: no wall clock)
    def num(v):
        return None if v in ("", None) else int(v)

    return LogEntry(
        num(row["seq"]),
        num(row["at_ms"]),
        num(row["channel"]),
        row["kind"],
        row["code"],
        row["text"],
        boot_id=num(row["boot_id"]),
        wall_ms=num(row["wall_ms"]),
    )


def test_csv_round_trips():
    text, _ = _run("--csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == LOG_FIELDS
    assert [_entry(r) for r in rows] == _ENTRIES
    assert rows[1]["wall_time"] == "2025-12-01T09:06:40.123Z" and rows[0]["wall_time"] == ""


def test_jsonl_round_trips_one_object_per_line():
    text, _ = _run("--jsonl")
    objects = [json.loads(line) for line in text.splitlines()]
    assert len(objects) == len(_ENTRIES) and all(tuple(o) == LOG_FIELDS for o in objects)
    assert [_entry(o) for o in objects] == _ENTRIES
    assert objects[0]["wall_ms"] is None and objects[0]["wall_time"] is None


def test_the_listing_shows_each_boot_and_wall_time_where_known():
    text, pump = _run("--since", "1")
    assert pump.since == 1
    lines = text.splitlines()
    assert lines[0] == "-- boot deadbeef" and "2025-12-01T09:06:40.123Z" in lines[1]
    assert "-- boot 00000002" in lines
    text, _ = _run()
    assert "uptime 2 s" in text.splitlines()[1]  # no wall clock: the device's uptime


def test_csv_and_jsonl_are_one_or_the_other():
    # a usage error (exit 2), one line: main() prints it
    with pytest.raises(
        UsageError, match=r"^log: argument --jsonl: not allowed with argument --csv"
    ):
        argparse_log().parse_args(["--csv", "--jsonl"])
    assert isinstance(argparse_log(), argparse.ArgumentParser)
