"""``report.html``: one self-contained page (the PNGs inline as data: URIs, the style in
the page, no script, nothing fetched), every text from the log escaped."""

import base64
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from pumpguard._board.protocol.text import duration

from .records import DecisionRow, Report, when
from .source import IDENTITY

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #111; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.refused td { background: #fde8e0; } tr.high td { background: #fde8e0; }
tr.medium td { background: #fff4d6; }
.note { color: #444; } img { max-width: 100%; border: 1px solid #ddd; }
"""

_LABELS = {
    "board": "board",
    "firmware": "firmware",
    "bundle": "bundle (SHA-256)",
    "board_id": "board id",
    "library": "drug library",
    "library_version": "library version",
    "library_crc": "library CRC-32",
    "boot_id": "boot when exported",
}


def _cell(value, cls=None):
    attr = f' class="{cls}"' if cls else ""
    return f"<td{attr}>{escape(str(value))}</td>"


def _table(head, rows):
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    out += rows
    return "\n".join(out) + "</table>"


def _identity(report):
    d = report.device
    if d is None:
        return (
            f"<p>Device identity: <b>not in this export</b> ({escape(report.source)}). "
            "<code>pumpguard log --json</code> exports it with the entries.</p>"
        )
    rows = []
    for key in IDENTITY:
        value = d.get(key, "")
        if key in ("library_crc", "boot_id") and isinstance(value, int):
            value = f"{value:08x}"
        if key == "bundle" and not value:
            value = "- (firmware runs from source)"
        rows.append(f"<tr><th>{escape(_LABELS[key])}</th>{_cell(value)}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _boots(report):
    if not report.boots:
        return "<p>No boot: the log is empty.</p>"
    rows = [
        f"<tr>{_cell(f'{b.boot_id:08x}')}{_cell(when(b.first), 't')}{_cell(when(b.last), 't')}"
        f"{_cell(b.entries)}</tr>"
        for b in report.boots
    ]
    note = ""
    if len(report.boots) > 1:
        note = (
            '<p class="note">Between two boots the pump was reset or lost power: nothing '
            "is known of that time, and no volume is counted for it.</p>"
        )
    for b in report.boots:
        if b.clock_behind_ms:
            note += (
                f"<p><b>Boot {b.boot_id:08x}'s clock was {duration(b.clock_behind_ms)} "
                "behind</b> the previous boot's last entry (a host with a wrong clock gave "
                "one of them the time): the plots place it at that entry, in boot order; "
                "the tables show the times as logged.</p>"
            )
    return _table(("boot", "first entry", "last entry", "entries"), rows) + note


def _channels(report, images):
    parts = []
    for ch in report.channels:
        parts.append(f"<h3>Channel {ch.channel}</h3><p>{escape(_volume(ch))}</p>")
        image = images.get(ch.channel)
        if image is not None:
            data = base64.b64encode(image.read_bytes()).decode("ascii")
            parts.append(
                f'<img alt="channel {ch.channel}: dose, rate and volume over time" '
                f'src="data:image/png;base64,{data}">'
            )
    for n in report.unused:
        parts.append(f"<h3>Channel {n}</h3><p>Not used: the log has no entry for it.</p>")
    if not parts:
        parts.append("<p>No channel appears in this log: nothing to plot.</p>")
    return "\n".join(parts)


def _volume(ch):
    drugs = [f"{drug} {ml:.2f} mL" for drug, ml in ch.by_drug.items()]
    unnamed = ch.volume_ml - sum(ch.by_drug.values())
    if unnamed > 0:  # a rate running at the first entry kept, its drug not yet named
        drugs.append(f"{unnamed:.2f} mL of a drug set before the log's first entry")
    # a bound, never an exact-looking figure, where the log cannot give one
    bound = "at most " if ch.upper_bound else "at least " if ch.at_least else ""
    said = f"Volume infused: {bound}{ch.volume_ml:.2f} mL "
    said += f"({', '.join(drugs) or 'nothing delivered'})"
    said += ", computed from the motor rates the log records, boot by boot"
    if ch.upper_bound:
        said += (
            "; an upper bound: the syringe ran dry, and the volume typed at its start "
            "(counted as given) is not measured: the syringe may have held less"
        )
    if ch.at_least:
        said += (
            "; a lower bound: the channel was delivering when a boot ended, and the time "
            "until the pump went off is not counted"
        )
    if round(ch.not_counted, 2):
        said += (
            f"; {ch.not_counted:.2f} mL more that the rates held until the next entry "
            "say is not counted: the syringe (or the pump's own count) held no more"
        )
    s = ch.now
    if s is not None:
        dose = f"{s.drug} {s.dose} {s.dose_unit}, " if s.drug else ""
        said += (
            f". The pump says now: {s.state}, {dose}{s.rate_ml_h} mL/h, "
            f"{s.volume_infused_ml:.2f} mL infused since its start (its own count"
            + (": the figure to trust)" if ch.at_least or ch.upper_bound else ")")
        )
    return said + "."


def _timeline(report):
    if report.now is not None:
        at = f"boot {report.now.boot_id:08x} +{duration(report.now.uptime_ms)}"
        return (
            "Each channel's timeline is closed at the pump's uptime when this report was "
            f"made ({at}), at the rate the pump ran then."
        )
    return (
        "Each channel's timeline ends at the log's last entry: what ran after it is not in the log."
    )


def _decision(row: DecisionRow):
    e = row.entry
    # a taper's step or a fault answers no command: the pump did it on its own
    command = row.command.text if row.command is not None else "(none: the pump's own)"
    outcome = "REFUSED" if row.refused else "accepted" if row.command else "done by the pump"
    cls = ' class="refused"' if row.refused else ""
    return (
        f"<tr{cls}>{_cell(when(e), 't')}{_cell(row.channel or 'device')}{_cell(command)}"
        f"{_cell(outcome)}{_cell(e.code)}{_cell(e.text)}</tr>"
    )


def _events(report):
    if not report.inputs:
        return "<p>No device event in this log.</p>"
    rows = [f"<tr>{_cell(when(e), 't')}{_cell(e.code)}{_cell(e.text)}</tr>" for e in report.inputs]
    return _table(("time", "event", "what the pump said"), rows)


def _libraries(report):
    if not report.libraries:
        return ""
    rows = []
    for p in report.libraries:
        since = when(p.since) if p.since else "the log's first entry"
        until = when(p.until) if p.until else "the log's last entry"
        rows.append(f"<tr>{_cell(since, 't')}{_cell(until, 't')}{_cell(p.library)}</tr>")
    return (
        "<p><b>The drug library was switched during this log</b>: each part of it ran "
        "under the library below (see Device events).</p>"
        + _table(("from", "to", "drug library"), rows)
    )


def _repeats(report):
    parts = []
    if report.repeats:
        parts.append(
            f"<p>{report.repeats} repeated entries (the same entry twice in the export, "
            "as overlapping <code>log --since</code> appends write it) were read once.</p>"
        )
    if report.clashes:
        keys = ", ".join(f"boot {b:08x} seq {q}" for b, q in report.clashes)
        parts.append(
            f"<p><b>This export is inconsistent</b>: different entries share one boot and "
            f"seq ({escape(keys)}); both are kept, and which one the pump wrote is "
            "unknown.</p>"
        )
    return "\n".join(parts)


def _alarms(report):
    if not report.alarms:
        return "<p>No alarm in this log.</p>"
    rows = []
    for a in report.alarms:
        acked = when(a.acked) if a.acked is not None else "not in this log"
        cls = f' class="{escape(a.priority)}"' if a.priority in ("high", "medium") else ""
        rows.append(
            f"<tr{cls}>{_cell(when(a.entry), 't')}{_cell(a.entry.channel or 'device')}"
            f"{_cell(a.priority)}{_cell(a.entry.code)}{_cell(a.message)}{_cell(acked, 't')}</tr>"
        )
    head = ("time", "channel", "priority", "alarm", "message", "acknowledged")
    return _table(head, rows)


def _odd(report):
    parts = []
    if report.unknown:
        kinds = ", ".join(sorted({e.kind for e in report.unknown}))
        parts.append(
            f"<p>{len(report.unknown)} entries of a kind this report does not know "
            f"({escape(kinds)}): listed, not plotted.</p>"
        )
    others = [e for e in report.not_understood if e not in report.unknown]
    if others:
        parts.append(
            f"<p>{len(others)} entries whose text this report could not read (a firmware "
            "that words its log differently?): listed, not plotted.</p>"
        )
    rows = [
        f"<tr>{_cell(e.seq)}{_cell(when(e), 't')}{_cell(e.channel)}{_cell(e.kind)}"
        f"{_cell(e.code)}{_cell(e.text)}</tr>"
        for e in [*report.unknown, *others]
    ]
    if rows:
        parts.append(_table(("seq", "time", "channel", "kind", "code", "text"), rows))
    return "\n".join(parts)


def html(report: Report, images: dict) -> str:
    """The page; ``images``: channel -> its PNG file."""
    made = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    times = (
        "Times are UTC wall clock where the entry has it, else <i>boot xxxxxxxx "
        "+uptime</i> (the pump had not been given the time yet in that boot)."
    )
    decisions = _table(
        ("time", "channel", "command", "decision", "reason code", "what the pump said"),
        [_decision(r) for r in report.decisions],
    )
    if not report.decisions:
        decisions = "<p>No decision in this log.</p>"
    empty = "<p><b>The log is empty</b>: no entry to report.</p>" if not report.entries else ""
    if report.first_seq:
        empty += (
            f"<p><b>The entries before seq {report.first_seq} are not in this log</b> "
            "(rotated out of the pump's journal, or left out by --since): the volume "
            "infused before them is unknown, and a rate running then is counted from "
            "the first entry kept.</p>"
        )
    body = f"""<h1>pumpguard session report</h1>
<p class="note">From {escape(report.source)}; {len(report.entries)} log entries; made {made}.
{times} {_timeline(report)}</p>
{empty}
{_repeats(report)}
<h2>Device</h2>
{_identity(report)}
{_libraries(report)}
<h2>Boots seen</h2>
{_boots(report)}
<h2>Channels</h2>
{_channels(report, images)}
<h2>Decisions and refusals</h2>
{decisions}
<h2>Alarms</h2>
{_alarms(report)}
<h2>Device events</h2>
{_events(report)}
{_odd(report)}
"""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>pumpguard session report</title>"
        f"<style>{_STYLE}</style></head><body>\n{body}</body></html>\n"
    )


def write_html(report: Report, images: dict, path: Path) -> Path:
    path.write_text(html(report, images), encoding="utf-8")
    return path
