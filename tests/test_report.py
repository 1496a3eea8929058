"""``pumpguard.report`` without a device: the safety core's own log (its real wording) read
into a report, and what a log may hold that a session rarely does: nothing at all, a
channel never used, a kind the report does not know, a text it cannot read, no wall
clock, text that must be escaped, and exports that are not a log."""

import io
from decimal import Decimal

import pytest
from pumpguard import UsageError, report
from pumpguard.api.answers import LogEntry, Status
from pumpguard.cli.readouts import argparse_log, do_log
from pumpguard.report.plots import HEIGHT, WIDTH
from pumpguard.report.records import Now

from firmware.core import SafetyCore
from tests.portable.corekit import library
from tests.portable.coreview import entries

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
        for seq, at, ch, kind, code, text in entries(core.log)
    ]


def _page(tmp_path, r):
    paths = report.write(r, tmp_path / "out")
    return paths, paths[-1].read_text()


def test_the_core_s_own_wording_is_read_and_a_channel_never_used_is_said(tmp_path):
    r = report.build(_core_entries(), {"board": "b", "board_id": "<id>"}, channels=2)
    assert r.not_understood == [] and r.unknown == [] and r.unused == [2]
    (ch,) = r.channels
    kinds = ["alarm", "start", "refused", "taper_started", "taper_step"]  # the stop first
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


# --- exports a user may hand over: a one-line UsageError naming the entry, never a traceback

_ROW = {
    "seq": 0,
    "boot_id": 1,
    "at_ms": 392,
    "wall_ms": WALL,
    "channel": 1,
    "kind": "start",
    "code": "received",
    "text": "start norepinephrine 0.1 mcg/kg/min, 70 kg, 16 mcg/mL, 50 mL",
}


def _report_cli(*argv):
    from pumpguard.cli.main import main

    out = io.StringIO()
    return main([str(a) for a in argv], out=out)


def test_a_deeply_nested_export_is_a_usage_error_not_a_recursion_error(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"entries":' + "[" * 100_000 + "]" * 100_000 + "}")
    assert _report_cli("report", "--from", deep, "--out", tmp_path / "out") == 2
    import json

    lines = json.dumps(_ROW) + "\n" + '{"a":' + "[" * 100_000 + "]" * 100_000 + "}\n"
    with pytest.raises(UsageError, match="line 2: JSON nested too deep"):
        report.parse(lines)  # a JSON Lines export


def test_a_csv_with_a_field_too_large_is_a_usage_error():
    with pytest.raises(UsageError, match="row"):
        head = "seq,boot_id,at_ms,wall_ms,channel,kind,code,text\n"
        report.parse(head + "1,1,0,,1,start,received," + "x" * 200_000 + "\n")


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("wall_ms", 10**20, "wall_ms"),
        ("wall_ms", -(10**15), "wall_ms"),
        ("text", None, "text"),
        ("seq", 1.5, "seq"),
        ("at_ms", True, "at_ms"),
    ],
)
def test_an_impossible_or_mistyped_field_is_a_usage_error_naming_the_entry(
    tmp_path, field, value, said
):
    import json

    export = tmp_path / "log.jsonl"
    export.write_text(json.dumps(_ROW) + "\n" + json.dumps({**_ROW, field: value}) + "\n")
    assert _report_cli("report", "--from", export, "--out", tmp_path / "out") == 2
    with pytest.raises(UsageError, match=rf"line 2: .*{said}"):
        report.load(export)


# --- what the log says about time and volume it does not hold


def _rows(*rows, seq0=0, boot=7, wall0=WALL):
    return [
        LogEntry(seq, at, ch, kind, code, text, boot, None if wall0 is None else wall0 + at)
        for seq, (at, ch, kind, code, text) in enumerate(rows, seq0)
    ]


_START = (0, 1, "start", "received", "start norepinephrine 0.1 mcg/kg/min, 70 kg, 16 mcg/mL, 50 mL")
_STARTED = (0, 1, "decision", "ok", "started norepinephrine at 0.1 mcg/kg/min (26.25 mL/h)")
_RUNNING = (_START, (0, 1, "rate", "rate_changed", "0 mL/h -> 26.25 mL/h"), _STARTED)


def test_a_log_whose_oldest_entries_rotated_out_counts_the_rate_it_says_was_running(tmp_path):
    # the journal keeps its newest entries only: the first rate entry kept says the pump
    # ran at 26.25 mL/h until then, an hour after the first entry kept
    entries = _rows(
        (36_000_000, 0, "ack", "received", "ack alarm 1"),
        (36_000_000, 0, "decision", "acked", "acknowledged alarm 1 (near_empty, channel 1)"),
        (39_600_000, 1, "titrate", "received", "titrate 0.2 mcg/kg/min"),
        (39_600_000, 1, "rate", "rate_changed", "26.25 mL/h -> 52.5 mL/h"),
        (39_600_000, 1, "decision", "ok", "norepinephrine 0.1 -> 0.2 mcg/kg/min (52.5 mL/h)"),
        seq0=300,
    )
    r = report.build(entries, None)
    assert not r.not_understood and r.first_seq == 300
    (ch,) = r.channels
    assert ch.volume_ml == Decimal("26.25")
    _, page = _page(tmp_path, r)
    assert "entries before seq 300 are not in this log" in page


def test_volume_never_exceeds_what_the_syringe_held():
    # 26.25 mL/h held for 3 h by the log (no entry until a late one): 78.75 mL of a 50 mL
    # syringe; the syringe_empty fault, logged after the pump ran dry, ends the count too
    entries = _rows(
        *_RUNNING,
        (10_800_000, 1, "rate", "rate_changed", "26.25 mL/h -> 0 mL/h"),
        (
            10_800_000,
            1,
            "decision",
            "syringe_empty",
            "syringe empty on channel 1: flow stopped (norepinephrine)",
        ),
    )
    r = report.build(entries, None)
    assert not r.not_understood
    assert r.channels[0].volume_ml == 50 and r.channels[0].not_counted == Decimal("28.75")
    assert max(v for run in r.channels[0].volumes for _, v in run) == 50


def test_a_boot_whose_clock_is_behind_the_previous_one_is_placed_after_it(tmp_path):
    # boot 8's wall clock says it began 10 min before boot 7's last entry (a host with a
    # wrong clock): the axis keeps boot order, and the page says the clock disagreed
    first = _rows(*_RUNNING)
    first.append(
        LogEntry(3, 1_200_000, 1, "titrate", "received", "titrate 0.2", 7, WALL + 1_200_000)
    )
    second = _rows((0, 2, "input", "button", "pressed"), seq0=4, boot=8, wall0=WALL + 600_000)
    r = report.build(first + second, None)
    assert r.wall_axis
    assert r.boots[1].at.timestamp() * 1000 == WALL + 1_200_000
    assert r.boots[1].clock_behind_ms == 600_000
    _, page = _page(tmp_path, r)
    assert "clock was 10 min behind" in page


def test_a_report_from_a_file_says_its_timeline_ends_at_the_last_entry(tmp_path):
    _, page = _page(tmp_path, report.build(_core_entries(), None))
    assert "ends at the log's last entry" in page


# --- the plots: labels a clinician can read


def _drawn(monkeypatch, r, tmp_path, look):
    """``look(figure, renderer)`` of each figure drawn as ``report.write`` saves it."""
    from matplotlib.figure import Figure

    seen = []
    real = Figure.savefig

    def capture(fig, *args, **kwargs):
        fig.canvas.draw()
        seen.append(look(fig, fig.canvas.get_renderer()))
        return real(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    report.write(r, tmp_path)
    return seen


def test_the_time_labels_of_a_short_session_are_distinct(tmp_path, monkeypatch):
    entries = _rows(
        *_RUNNING,
        (180_000, 1, "titrate", "received", "titrate 0.2 mcg/kg/min"),
        (180_000, 1, "rate", "rate_changed", "26.25 mL/h -> 52.5 mL/h"),
        (180_000, 1, "decision", "ok", "norepinephrine 0.1 -> 0.2 mcg/kg/min (52.5 mL/h)"),
    )
    (labels,) = _drawn(
        monkeypatch,
        report.build(entries, None),
        tmp_path,
        lambda fig, _: [t.get_text() for t in fig.axes[-1].get_xticklabels() if t.get_text()],
    )
    assert len(labels) > 1 and len(set(labels)) == len(labels), labels


def test_the_codes_of_marks_close_in_time_do_not_overlap(tmp_path, monkeypatch):
    from matplotlib.text import Text

    refusals = [
        row
        for at in range(60_000, 66_000, 1_000)
        for row in (
            (at, 1, "titrate", "received", "titrate 0.3 mcg/kg/min"),
            (at, 1, "decision", "above_hard_max", "titration refused: wait 2 min"),
        )
    ]
    entries = _rows(*_RUNNING, *refusals)
    (boxes,) = _drawn(
        monkeypatch,
        report.build(entries, None),
        tmp_path,
        lambda fig, renderer: [  # each label's text (its leader line meets the others')
            Text.get_window_extent(t, renderer)
            for t in fig.axes[0].texts
            if t.get_text() == "above_hard_max"
        ],
    )
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_a_negative_since_is_refused_from_a_file_as_from_a_pump(tmp_path):
    path = tmp_path / "session.jsonl"
    path.write_text("")
    assert _report_cli("report", "--from", path, "--since", -5, "--out", tmp_path / "o") == 2
    assert not (tmp_path / "o").exists()


def test_an_ack_is_listed_on_the_channel_of_the_alarm_it_acknowledged(tmp_path):
    entries = _rows(
        (0, 0, "ack", "received", "ack alarm 4"),
        (0, 0, "decision", "acked", "acknowledged alarm 4 (occlusion, channel 2)"),
    )
    r = report.build(entries, None)
    assert not r.not_understood
    assert [d.channel for d in r.decisions] == [2]
    _, page = _page(tmp_path, r)
    assert "<td>2</td><td>ack alarm 4</td>" in page


def test_an_entry_repeated_is_read_once_and_a_seq_held_twice_is_said(tmp_path):
    entries = _rows(*_RUNNING)
    other = LogEntry(1, 5, 1, "input", "button", "pressed", 7, WALL + 5)  # seq 1 again
    r = report.build([*entries, *entries[:2], other], None)
    assert r.repeats == 2 and r.clashes == [(7, 1)]
    assert r.entries == sorted([*entries, other], key=lambda e: e.seq)
    _, page = _page(tmp_path, r)
    assert "2 repeated entries" in page and "This export is inconsistent" in page
    assert "boot 00000007 seq 1" in page


def test_a_volume_across_a_power_cut_is_said_to_be_at_least(tmp_path):
    # boot 7 ends with the channel at 26.25 mL/h: the time until power went off is lost
    first = _rows(*_RUNNING, (3_600_000, 0, "input", "link_back", "host link back"))
    second = _rows((0, 0, "input", "restored", "restored from snapshot"), seq0=4, boot=8)
    r = report.build(first + second, None)
    (ch,) = r.channels
    assert ch.at_least and ch.volume_ml == Decimal("26.25")
    _, page = _page(tmp_path, r)
    assert "Volume infused: at least 26.25 mL" in page and "a lower bound" in page
    # from a live pump: its own count is the figure to trust
    status = Status(
        1,
        "running",
        "norepinephrine",
        Decimal("0.1"),
        "mcg/kg/min",
        Decimal("26.25"),
        Decimal("30"),
        None,
        None,
        (),
        None,
        None,
        False,
    )
    live = report.build(first + second, None, now=Now(8, 60_000, {1: status}))
    _, page = _page(tmp_path, live)
    assert "30.00 mL infused since its start (its own count: the figure to trust)" in page
    # no power cut while it delivered: exact as computed
    (alone,) = report.build(first, None).channels
    assert not alone.at_least


def test_a_library_switch_is_a_line_on_each_channel_plot_and_a_device_event(tmp_path, monkeypatch):
    switched = (
        60_000,
        0,
        "input",
        "library_switched",
        "now adult icu 0.2.0 (crc32 0x0badcafe), was adult icu 0.1.0 (crc32 0x12345678)",
    )
    r = report.build(_rows(*_RUNNING, switched), None)
    assert not r.not_understood and [s.version for s in r.switches] == ["0.2.0"]
    before, after = r.libraries
    assert before.library == "adult icu 0.1.0 (crc32 0x12345678)"
    assert after.library == "adult icu 0.2.0 (crc32 0x0badcafe)"
    (labels,) = _drawn(
        monkeypatch,
        r,
        tmp_path,
        lambda fig, renderer: [t.get_text() for t in fig.axes[0].texts],
    )
    assert "library 0.2.0" in labels
    page = (tmp_path / "report.html").read_text()
    assert "Device events" in page and "library_switched" in page


def test_a_handover_stops_one_channel_and_runs_the_other_in_the_report(tmp_path):
    # the core's own log of a syringe change: norepinephrine 30 mL/h for an hour on
    # channel 1, handed over to channel 2's 20 mL syringe, an hour there
    from firmware.handover import move

    core = SafetyCore(library())
    start = {"weight": 80_000000, "conc": 16_000000, "conc_unit": "mcg/mL", "volume": 50_000000}
    assert core.start(1, "norepinephrine", 100000, "mcg/kg/min", 0, **start).ok
    label = ("norepinephrine", 16_000000, "mcg/mL", 20_000000)
    assert move(core, 1, 2, *label, None, 3_600_000).ok
    core.titrate(2, 120000, "mcg/kg/min", 7_200_000)  # 36 mL/h from the second hour on
    rows = [
        LogEntry(seq, at, ch, kind, code, text, BOOT, WALL + at)
        for seq, at, ch, kind, code, text in entries(core.log)
    ]
    r = report.build(rows, None, channels=2)
    assert r.not_understood == [] and r.unknown == [] and r.unused == []
    one, two = r.channels
    assert [m.kind for m in one.marks] == ["start", "handover"]
    assert [m.kind for m in two.marks] == ["handover", "titration"]
    # an hour each at 30 mL/h: channel 2's 20 mL syringe ran dry first, as the report says
    assert one.volume_ml == 30 and (two.volume_ml, two.not_counted) == (20, 10)
    assert one.doses[-1].points[-1][1] == 0  # channel 1 stopped at the handover
    assert two.doses[0].points[0][1] == Decimal("0.1")  # channel 2 at once at its dose
    _page(tmp_path, r)


def test_every_refusal_reads_as_one_whatever_its_number_and_a_patients_entry_as_a_command():
    # weight_mismatch is 83: the refusals' 10-39 were full (it read as a plain decision)
    from pumpguard.report.parse import read as parse_read
    from pumpguard.report.parse import refused

    from protocol import reasons

    core = SafetyCore(library())
    core.start(1, "norepinephrine", 100000, "mcg/kg/min", 0, weight=70000000,
               conc=16000000, conc_unit="mcg/mL", volume=50000000)  # fmt: skip
    core.start(2, "dobutamine", 2500000, "mcg/kg/min", 1000, weight=170000000,
               conc=1000000, conc_unit="mg/mL", volume=50000000)  # fmt: skip
    read = [parse_read(LogEntry(s, at, ch, k, c, t, BOOT, None)) for s, at, ch, k, c, t in
            entries(core.log)]  # fmt: skip
    assert [e.what for e in read if e.entry.code == "weight_mismatch"] == ["refused"]
    assert parse_read(
        LogEntry(9, 0, 0, "patient", "received", "patient 70 kg", BOOT, None)
    ).what == ("command")
    named = {n for n in reasons.NUMBER if refused(n)}
    assert named >= {"weight_mismatch", "handover_mismatch", "bad_value"}, named
    assert not {"handed_over", "patient_set", "library_refused", "ok"} & named
