"""``pumpguard.report`` without a device: the safety core's own log (its real wording) read
into a report, and what a log may hold that a session rarely does: nothing at all, a
channel never used, a kind the report does not know, a text it cannot read, no wall
clock, text that must be escaped, and exports that are not a log."""

import io
from decimal import Decimal

import pytest
from pumpguard import UsageError, report
from pumpguard.api.answers import LogEntry
from pumpguard.cli.commands import argparse_log, do_log
from pumpguard.report.plots import HEIGHT, WIDTH

from firmware.core import SafetyCore
from tests.portable.corekit import library

WALL = 1_796_000_000_000  # a Unix time in ms (2026)
BOOT = 0x0B0071D5


def _core_entries(wall=True):
    """A session on the core itself: vasopressin alone (an advisory alarm), a titration
    refused, a stop an hour later (it tapers: the first step at once)."""
    core = SafetyCore(library())
    core.start(
        1, "vasopressin", 30000, "units/min", 0, conc=1000000, conc_unit="units/mL", volume=20000000
    )
    core.titrate(1, 40000, "units/min", 1000)  # above its soft max: refused
    core.stop(1, 3_600_000)
    return [
        LogEntry(seq, at, ch, kind, code, text, BOOT, WALL + at if wall else None)
        for seq, at, ch, kind, code, text in core.log.entries()
    ]


def _page(tmp_path, r):
    paths = report.write(r, tmp_path / "out")
    return paths, paths[-1].read_text()


def test_the_core_s_own_wording_is_read_and_a_channel_never_used_is_said(tmp_path):
    r = report.build(_core_entries(), {"board": "b", "board_id": "<id>"}, channels=2)
    assert r.not_understood == [] and r.unknown == [] and r.unused == [2]
    (ch,) = r.channels
    kinds = ["alarm", "start", "refused", "taper_step", "taper_started"]
    assert [m.kind for m in ch.marks] == kinds
    # 0.03 units/min at 1 units/mL is 1.8 mL/h, for one hour: 1.8 mL
    assert ch.volume_ml == Decimal("1.8") and ch.by_drug == {"vasopressin": ch.volume_ml}
    paths, page = _page(tmp_path, r)
    assert [p.name for p in paths] == ["channel-1.png", "report.html"]
    data = paths[0].read_bytes()
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (
        WIDTH,
        HEIGHT,
    )
    assert "Channel 2</h3><p>Not used" in page
    assert "&lt;id&gt;" in page and "<id>" not in page  # every text escaped
    assert "2026-" in page and "1.80 mL" in page


def test_an_empty_log_is_a_page_that_says_so(tmp_path):
    paths, page = _page(tmp_path, report.build([], None))
    assert [p.name for p in paths] == ["report.html"]
    assert "The log is empty" in page and "not in this export" in page


def test_without_wall_clock_times_are_boot_and_uptime(tmp_path):
    r = report.build(_core_entries(wall=False), None)
    assert not r.wall_axis
    _, page = _page(tmp_path, r)
    assert f"boot {BOOT:08x} +1 h" in page


def test_an_unknown_kind_a_bolus_and_an_unreadable_text_are_listed_not_lost(tmp_path):
    entries = _core_entries()
    at = entries[-1].at_ms + 1
    extra = [
        LogEntry(90, at, 1, "bolus", "received", "bolus 1 mL", BOOT, WALL + at),
        LogEntry(91, at, 1, "rate", "rate_changed", "faster now <b>", BOOT, WALL + at),
        LogEntry(92, at, 1, "frobnicate", "ok", "something new", BOOT, WALL + at),
    ]
    r = report.build(entries + extra, None)
    assert [e.seq for e in r.unknown] == [92]
    assert [e.seq for e in r.not_understood] == [91]
    assert r.channels[0].marks[-1].kind == "bolus"
    _, page = _page(tmp_path, r)
    assert "frobnicate" in page and "faster now &lt;b&gt;" in page


class _Pump:
    device = {"board_id": "0123456789abcdef"}

    def log(self, since=0):
        return _core_entries()

    def info(self):
        from pumpguard.api.answers import Info

        return Info("pumpguard 0.1.0", "emulator", 2, "lib", "1.0", 0xABCDEF01, "", BOOT, 0, {}, 0)


@pytest.mark.parametrize("form", ["--json", "--jsonl", "--csv"])
def test_every_export_reads_back_as_the_entries(form):
    out = io.StringIO()
    do_log(_Pump(), argparse_log().parse_args([form]), out)
    entries, device, name = report.parse(out.getvalue())
    assert entries == _core_entries() and name == form[2:]
    if form == "--json":
        assert device["board_id"] == "0123456789abcdef" and device["library_crc"] == 0xABCDEF01
    else:
        assert device is None


@pytest.mark.parametrize(
    "text",
    ["seq,kind\n1,start\n", '{"seq": 1}\n', "[1, 2]\n", '{"device": 1, "entries": []}'],
)
def test_a_file_that_is_no_log_export_is_a_usage_error(text):
    with pytest.raises(UsageError):
        report.parse(text)
