"""``pumpguard report`` on a real emulator session, both runtimes: start, titration, a
refusal, an override, an alarm (an occlusion), a stop that tapers, and a power cut in the
middle of the taper. The report must read every entry the firmware wrote (a change of
the firmware's wording fails here, pumpguard/report/parse.py), list the decisions, mark
the alarms, continue the timeline across both boots, and write valid PNGs and one
self-contained page; ``log --json`` round-trips into ``report --from``, and the JSON
Lines and CSV exports work too."""

import io
import re
import subprocess
import sys
from decimal import Decimal

import pumpguard
import pytest
from pumpguard import report
from pumpguard.cli.main import main
from pumpguard.report.plots import HEIGHT, WIDTH

from tests.librarykit import LIBRARY, SHIPPED_VERSION
from tests.systemkit import ANSWER_TIMEOUT_S, NOREPI, VASO, start_norepinephrine

pytestmark = pytest.mark.system


def _session(emu):
    """The session; returns the boot ids seen and the refusal's code."""
    with pumpguard.connect(emu.port, timeout=ANSWER_TIMEOUT_S) as pump:
        first = pump.info().boot_id
        start_norepinephrine(pump, "0.05")
        emu.advance(125)
        pump.titrate(1, "0.1", "mcg/kg/min")
        with pytest.raises(pumpguard.RefusedError) as refused:
            pump.titrate(1, "0.2", "mcg/kg/min")  # within 2 min of the last step up
        pump.start(2, "vasopressin", "0.03", "units/min", **VASO)
        pump.titrate(2, "0.035", "units/min", override=True)  # past its soft max
        emu.inject("occlusion", 2)
        emu.advance(1)
        pump.stop(1)  # the taper's first step at once (0.08), the next 15 min later
        emu.advance(15 * 60 + 30)
    emu.power_cycle()  # mid-taper, at 0.06: the next boot resumes it
    with pumpguard.connect(emu.port, timeout=ANSWER_TIMEOUT_S) as pump:
        emu.advance(3 * 15 * 60 + 60)  # 0.04, 0.02, then 0
        second = pump.info().boot_id
    return [first, second], refused.value.code


def _run(*argv):
    out = io.StringIO()
    code = main([str(a) for a in argv], out=out)
    return code, out.getvalue()


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _check_page(page, device):
    assert "http:" not in page and "https:" not in page
    assert all(
        src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)', page)
    )
    assert page.count('src="data:image/png;base64,') == 2
    for value in (
        device["board_id"],
        device["library"],
        device["library_version"],
        device["board"],
    ):
        assert value in page
    assert f"{device['library_crc']:08x}" in page


def test_a_session_across_a_power_cut_is_read_whole_and_reported(emulator, tmp_path):
    boots, refusal = _session(emulator)
    port = ["--port", emulator.port]
    code, text = _run(*port, "log", "--json")
    assert code == 0
    (tmp_path / "session.json").write_text(text)
    entries, device, form = report.load(tmp_path / "session.json")
    assert form == "json" and device["boot_id"] == boots[1] and device["board"] == "emulator"
    r = report.build(entries, device, channels=2)

    # every entry read against the firmware's formats: none left over
    assert r.not_understood == [] and r.unknown == []
    assert [b.boot_id for b in r.boots] == boots
    ch1, ch2 = r.channels
    assert ch1.drugs == ["norepinephrine"] and ch2.drugs == ["vasopressin"]
    marks = [(m.kind, m.dose) for m in ch1.marks]
    d = Decimal
    assert marks == [
        ("start", d("0.05")),
        ("titration", d("0.1")),
        ("refused", d("0.1")),
        ("taper_started", d("0.1")),  # the stop, at the dose it was asked at
        ("taper_step", d("0.08")),  # its first step at once, logged after it
        ("taper_step", d("0.06")),
        ("alarm", d("0.06")),  # resumed after the reset, at the dose it had
        ("taper_step", d("0.04")),
        ("taper_step", d("0.02")),
        ("stopped", d("0")),
    ]
    assert [m.entry.code for m in ch1.marks if m.kind == "alarm"] == ["resumed_after_reset"]
    # the rates (70 kg, 16 mcg/mL): 0.05 mcg/kg/min is 13.125 mL/h; each boot its own run
    rates = [[rate for _, rate in run] for run in ch1.rates]
    assert len(rates) == 2
    assert d("13.125") in rates[0] and d("26.25") in rates[0] and d("15.75") in rates[0]
    assert d("15.75") in rates[1] and rates[1][-1] == 0  # resumed at 0.06, then to 0
    assert [m.kind for m in ch2.marks] == ["start", "override", "alarm", "stopped"]
    assert [m.entry.code for m in ch2.marks if m.kind == "alarm"] == ["occlusion"]
    assert ch1.volume_ml > 0 and ch2.volume_ml > 0

    # the decisions table lists each decision with its command; the alarms their times
    rows = [(x.command.text if x.command else None, x.entry.code, x.refused) for x in r.decisions]
    assert ("titrate 0.2 mcg/kg/min", refusal, True) in rows
    assert ("titrate 0.035 units/min, override", "ok_override", False) in rows
    assert ("stop", "taper_started", False) in rows
    assert (None, "taper_step", False) in rows and (None, "occlusion", False) in rows
    assert {a.entry.code for a in r.alarms} == {"occlusion", "resumed_after_reset"}

    # the command itself, on the pump: one PNG per channel of the size said, one page
    argv = [sys.executable, "-m", "pumpguard", *port, "report", "--out", tmp_path / "live"]
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    written = [tmp_path / "live" / n for n in ("channel-1.png", "channel-2.png", "report.html")]
    assert done.stdout.split() == [str(p) for p in written]
    assert [_png_size(p) for p in written[:2]] == [(WIDTH, HEIGHT)] * 2
    page = written[2].read_text()
    _check_page(page, device)
    assert refusal in page and "ok_override" in page and "occlusion" in page
    assert f"{boots[0]:08x}" in page and f"{boots[1]:08x}" in page
    assert "&lt;" not in page or "<script" not in page

    # from the files: log --json as the pump's (the identity in it), jsonl and csv without
    code, out = _run("report", "--from", tmp_path / "session.json", "--out", tmp_path / "json")
    assert code == 0 and out.split()[-1].endswith("report.html")
    _check_page((tmp_path / "json" / "report.html").read_text(), device)
    for form in ("jsonl", "csv"):
        code, text = _run(*port, "log", f"--{form}")
        (tmp_path / f"session.{form}").write_text(text)
        code, out = _run("report", "--from", tmp_path / f"session.{form}", "--out", tmp_path / form)
        assert code == 0
        page = (tmp_path / form / "report.html").read_text()
        assert "not in this export" in page and refusal in page
        again, _, _ = report.load(tmp_path / f"session.{form}")
        assert again == entries


def test_a_pump_still_infusing_is_reported_to_now_beside_its_own_volume(emulator, tmp_path):
    # 0.1 mcg/kg/min, 70 kg, 16 mcg/mL: 26.25 mL/h; 10 min later 4.375 mL are in the
    # patient, though the log's last entry is the start
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        emulator.advance(600)
        infused = pump.status(1).volume_infused_ml
        r = report.build(pump.log(), report.identity(pump), pump.channels, now=report.now(pump))
    assert infused > 4
    (ch,) = r.channels
    assert ch.volume_ml >= Decimal("4.375") and ch.now.volume_infused_ml >= infused
    code, _ = _run("--port", emulator.port, "report", "--out", tmp_path)
    assert code == 0
    page = (tmp_path / "report.html").read_text()
    assert "nothing delivered" not in page and "The pump says now: running" in page


def test_a_syringe_run_dry_is_never_reported_as_more_than_it_held(emulator):
    # each rate is held until the next entry, and the fault is logged after the pump ran
    # dry: counted as is, 50.02 mL of a 50 mL syringe
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")  # 26.25 mL/h (its start max)
        for dose in ("0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"):
            emulator.advance(125)
            pump.titrate(1, dose, "mcg/kg/min")
        emulator.advance(600)  # runs dry at 262.5 mL/h
        status = pump.status(1)
        r = report.build(pump.log(), report.identity(pump), pump.channels, now=report.now(pump))
    assert status.volume_left_ml == 0
    (ch,) = r.channels
    assert ch.volume_ml <= 50, f"report: {ch.volume_ml} mL of a 50 mL syringe"


def test_the_time_axis_never_runs_backwards_across_a_reboot(emulator, tmp_path):
    # boot 1's clock runs 10 min ahead of the host's (advance), as a host with a wrong
    # clock would make it: boot 2's HELLO time is before boot 1's last entry
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, "0.1")
        emulator.advance(600)
        pump.titrate(1, "0.15", "mcg/kg/min")
    emulator.power_cycle()
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        pump.start(2, "vasopressin", "0.03", "units/min", **VASO)
        r = report.build(pump.log(), report.identity(pump), pump.channels)
    assert len(r.boots) == 2 and r.wall_axis
    end = r.boots[0].last.wall_ms
    assert r.boots[1].at.timestamp() * 1000 >= end
    assert r.boots[1].clock_behind_ms > 0
    page = report.write(r, tmp_path)[-1].read_text()
    assert "clock was" in page and "behind" in page


def _sealed(tmp_path, name, edit):
    """The shipped library, edited by ``edit(text) -> text``, sealed with the CLI."""
    path = tmp_path / name
    path.write_text(edit(LIBRARY.read_text()))
    code, _ = _run("library", "seal", path)
    assert code == 0
    code, text = _run("library", "check", path)
    assert code == 0 and "valid" in text, text
    return path


def _push(emu, library):
    with pumpguard.connect(emu.port, key=emu.key, role="service", timeout=ANSWER_TIMEOUT_S) as s:
        s.push_library(library)


def test_a_drug_whose_valid_name_has_a_space_is_read(emulator, tmp_path):
    # a drug name is 1-16 printable ASCII characters: a space is one
    spaced = _sealed(
        tmp_path, "spaced.json", lambda t: t.replace('"norepinephrine"', '"nor epi drip"')
    )
    _push(emulator, spaced)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        pump.start(1, "nor epi drip", "0.1", "mcg/kg/min", **NOREPI)
        emulator.advance(600)
        pump.titrate(1, "0.15", "mcg/kg/min")
        emulator.advance(600)
        pump.stop(1)  # tapered: its start, steps and end name the drug too
        r = report.build(pump.log(), report.identity(pump), pump.channels, now=report.now(pump))
    (ch,) = r.channels
    assert r.not_understood == [], [e.text for e in r.not_understood]
    assert ch.drugs == ["nor epi drip"]
    # the taper's first step is made inside the stop, logged before its decision
    assert [m.kind for m in ch.marks] == ["start", "titration", "taper_started", "taper_step"]
    assert set(ch.by_drug) == {"nor epi drip"}


def test_a_library_switched_mid_log_is_on_the_page(emulator, tmp_path):
    # the first infusion ran under the shipped library, the second under 0.3.0
    edited = _sealed(
        tmp_path,
        "v3.json",
        lambda t: t.replace(f'"version": "{SHIPPED_VERSION}"', '"version": "0.3.0"', 1),
    )
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        old = pump.info()
        start_norepinephrine(pump)
        emulator.advance(300)
        pump.emergency_stop(1, "clinician")
    _push(emulator, edited)
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        emulator.advance(300)
        r = report.build(pump.log(), report.identity(pump), pump.channels, now=report.now(pump))
    assert [s.version for s in r.switches] == ["0.3.0"]
    assert {"library_pushed", "library_switched"} <= {e.code for e in r.inputs}
    first, second = r.libraries
    assert first.since is None and old.library_version in first.library
    # the library before is named as the firmware clips it ("... 0.2.0"): its version
    assert "0.3.0" in second.library and second.until is None
    page = report.write(r, tmp_path / "r")[-1].read_text()
    assert "Device events" in page and "library_switched" in page
    assert "The drug library was switched during this log" in page


# The firmware's log, read whole on both runtimes, is the subject of the tests above; these
# two read back an export already written (a BOM, CRLF, entries repeated): the host's alone.
@pytest.mark.one_runtime("the host reads back an export it wrote")
@pytest.mark.parametrize("form", ["json", "csv"])
def test_an_export_saved_with_a_byte_order_mark_and_crlf_is_read(emulator, tmp_path, form):
    # Excel's "CSV UTF-8" and Windows editors write a BOM and CRLF
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        emulator.advance(60)
        entries = pump.log()
    code, text = _run("--port", emulator.port, "log", f"--{form}")
    assert code == 0
    path = tmp_path / f"session.{form}"
    path.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))
    assert report.load(path)[0] == entries
    code, _ = _run("report", "--from", path, "--out", tmp_path / "r")
    assert code == 0


def test_a_syringe_that_runs_dry_is_never_past_the_pumps_count(emulator, tmp_path):
    # 50 mL programmed (no more is: the board's syringe bounds it), the syringe pushed to
    # its end after an hour (it held less than typed: not measured, as on a real pump);
    # syringe_empty says at most the 50 typed went in
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump, volume_ml="50")
        emulator.advance(3600, keepalive=pump.uptime_ms)
        emulator.inject("empty", 1)
        emulator.advance(3600, keepalive=pump.uptime_ms)
        status = pump.status(1)
        entries = pump.log()
        r = report.build(entries, report.identity(pump), pump.channels, now=report.now(pump))
    assert status.state == "stopped" and 26 <= status.volume_infused_ml < 27
    (ch,) = r.channels
    assert ch.volume_ml <= status.volume_infused_ml and not ch.upper_bound
    # from a file no count bounds it: the volume typed, said to be an upper bound
    (from_file,) = report.build(entries).channels
    assert from_file.upper_bound and from_file.volume_ml == 50
    page = report.write(report.build(entries), tmp_path)[-1].read_text()
    assert "Volume infused: at most 50.00 mL" in page and "an upper bound" in page


@pytest.mark.one_runtime("the host reads back exports it wrote")
def test_overlapping_jsonl_exports_list_each_entry_once_and_say_so(emulator, tmp_path):
    # a QA script appends `log --jsonl --since N` as it goes; a re-run repeats entries
    with pumpguard.connect(emulator.port, timeout=ANSWER_TIMEOUT_S) as pump:
        start_norepinephrine(pump)
        with pytest.raises(pumpguard.RefusedError):
            pump.titrate(1, "5", "mcg/kg/min")
        emulator.advance(60)
        entries = pump.log()
    code, first = _run("--port", emulator.port, "log", "--jsonl")
    assert code == 0
    code, again = _run("--port", emulator.port, "log", "--jsonl", "--since", 0)
    assert code == 0
    path = tmp_path / "appended.jsonl"
    path.write_text(first + again)
    r = report.build(*report.load(path)[:2])
    assert len([d for d in r.decisions if d.refused]) == 1
    assert r.entries == entries and r.repeats == len(entries) and not r.clashes
    code, _ = _run("report", "--from", path, "--out", tmp_path / "r")
    assert code == 0
    page = (tmp_path / "r" / "report.html").read_text()
    assert f"{len(entries)} repeated entries" in page
