"""A ``Snapshot`` as a rich renderable: the device's identity, one column per channel,
the alarms by priority. Styles only: the console decides whether they become colour
(a terminal, NO_COLOR), so a pipe gets the same text, plain."""

from rich import box
from rich.console import Group
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pumpguard._board.protocol.text import duration

_STATE = {"running": "bold green", "tapering": "bold yellow", "stopped": "red", "idle": "dim"}
_PRIORITY = {"high": "bold red", "medium": "yellow", "low": "cyan"}
_NONE = "-"
_ALARM_TEXT_MIN = 24  # columns an alarm's text wraps in, at the least, in the table
_ENDLESS = 10_000  # a width no screen has: what a table needs with nothing cut


def identity(device, role, library_problems=0):
    """The lines that say which pump this is, who is looking, and which library it
    runs (and when that library is invalid: nothing starts)."""
    invalid = ""
    if library_problems:
        n = library_problems
        invalid = (
            f"  INVALID: {n} problem{'s' if n > 1 else ''}, every start refused",
            "bold red",
        )
    return Text.assemble(
        ("board ", "dim"),
        (f"{device['board']} ({device['board_id'] or 'no id'})", "bold"),
        ("  firmware ", "dim"),
        device["firmware"],
        ("  role ", "dim"),
        (role, "bold"),
        ("\nlibrary ", "dim"),
        f"{device['library']} {device['library_version']} (crc {device['library_crc']:08x})",
        invalid,
    )


def supervision(snapshot):
    if snapshot.supervise_s:
        return Text(
            f"supervising the link: a heartbeat every {snapshot.supervise_s} s "
            "(the device alarms link_lost if this monitor falls silent)",
            style="green",
        )
    if snapshot.role != "clinician":
        return Text(
            f"role {snapshot.role}: polling only, not supervising (the device lets only a "
            "clinician's session supervise the link)",
            style="yellow",
        )
    return Text("one frame: not supervising the link", style="dim")


def _dose(s, dose):
    return _NONE if dose is None else f"{dose} {s.dose_unit}"


def _next_step(s):
    if s.taper_next_in_s is None:
        return _NONE
    when = f"in {duration(int(s.taper_next_in_s * 1000))}"
    return when if s.taper_next_dose is None else f"{when} to {_dose(s, s.taper_next_dose)}"


class _ByWidth:
    """The wide layout where it fits, else the narrow one. Fitting a table to a narrow
    terminal, rich cuts cells ("mcg/kg...") or drops a column (an alarm without its
    name): never acceptable for a dose or an alarm, so a narrow screen stacks. The wide
    one fits when the cells that may not wrap (``whole``, a table of them) fit whole,
    with ``room`` more columns for what may wrap."""

    def __init__(self, wide, narrow, whole=None, room=0):
        self._wide = wide
        self._narrow = narrow
        self._whole = wide if whole is None else whole
        self._room = room

    def __rich_console__(self, console, options):
        # measured as if the screen were endless: rich clamps a measure to the width
        natural = Measurement.get(console, options.update(width=_ENDLESS), self._whole)
        fits = natural.maximum + self._room <= options.max_width
        yield self._wide if fits else self._narrow


def _fields(snapshot):
    """(field, one cell per channel) for every row the channels show."""
    return [
        ("state", [Text(s.state, style=_STATE.get(s.state, "bold")) for s in snapshot.channels]),
        ("drug", [s.drug or _NONE for s in snapshot.channels]),
        ("dose", [_dose(s, s.dose) for s in snapshot.channels]),
        (
            "override",
            [
                Text("yes: past a soft limit", style="bold magenta") if s.override else "no"
                for s in snapshot.channels
            ],
        ),
        ("rate", [f"{s.rate_ml_h} mL/h" for s in snapshot.channels]),
        ("infused", [f"{s.volume_infused_ml} mL" for s in snapshot.channels]),
        (
            "left",
            [
                _NONE if s.volume_left_ml is None else f"{s.volume_left_ml} mL"
                for s in snapshot.channels
            ],
        ),
        (
            "empty in",
            [
                _NONE if s.time_to_empty_s is None else duration(s.time_to_empty_s * 1000)
                for s in snapshot.channels
            ],
        ),
        ("next taper step", [_next_step(s) for s in snapshot.channels]),
    ]


def channels(snapshot):
    """Fields as rows, one column per channel: a board's few channels side by side fit
    a bedside terminal's width, where ten columns per channel would not; on a narrower
    one, each channel's fields under its own heading."""
    rows = _fields(snapshot)
    wide = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    wide.add_column("", style="dim", no_wrap=True)
    for s in snapshot.channels:
        wide.add_column(f"channel {s.channel}", header_style="bold", no_wrap=True)
    for name, cells in rows:
        wide.add_row(name, *cells)
    stacked = []
    for i, s in enumerate(snapshot.channels):
        one = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        one.add_column("", style="dim", no_wrap=True)
        one.add_column(f"channel {s.channel}", header_style="bold", overflow="fold")
        for name, cells in rows:
            one.add_row(name, cells[i])
        stacked.append(one)
    return _ByWidth(wide, Group(*stacked))


def alarms(snapshot):
    """The alarms by priority, numbered as the keys that acknowledge them (1-9)."""
    listed = snapshot.listed
    if not listed:
        return Text("no alarms", style="green")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("#", "id", "priority", "ch", "alarm", "age", "acked"):
        table.add_column(name, no_wrap=name != "alarm")
    whole = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)  # all but the text
    for name in ("#", "id", "priority", "ch", "age", "acked"):
        whole.add_column(name, no_wrap=True)
    stacked = []
    for n, a in enumerate(listed, 1):
        style = "dim" if a.acked else _PRIORITY.get(a.priority, "bold red")
        key = str(n) if n <= 9 else ""
        where = "dev" if a.channel == 0 else str(a.channel)
        age = duration(max(0, snapshot.uptime_ms - a.at_ms))
        what = Text.assemble((a.code, style), f": {a.message}")
        acked = "yes" if a.acked else Text("no", style=style)
        table.add_row(key, str(a.id), Text(a.priority, style=style), where, what, age, acked)
        whole.add_row(key, str(a.id), a.priority, where, age, acked)
        stacked.append(
            Text.assemble(
                f"{key or '-'}. ",
                (a.priority, style),
                f" ch {where}, id {a.id}, {age} ago, {'acked' if a.acked else 'not acked'}\n   ",
                what,
            )
        )
    # The alarm's text wraps: the table needs room for a readable share of it per line.
    return _ByWidth(table, Group(*stacked), whole, _ALARM_TEXT_MIN)


def render(snapshot=None, device=None, role=None, problem=None, note=None, keys=None):
    """The monitor's screen: ``snapshot`` (None when the link is lost: no figure is
    shown that the device did not say just now); ``device`` and ``role`` name the pump
    without one; ``problem`` ("link lost: ...") and ``note`` (what a key did) are lines
    of their own; ``keys`` the key help (None: no keys, as with ``--once``)."""
    parts = []
    problems = 0
    if snapshot is not None:
        device, role, problems = snapshot.device, snapshot.role, snapshot.library_problems
    if device is not None:
        parts.append(identity(device, role, problems))
    if problem is not None:
        parts.append(Text(problem, style="bold red"))
    if snapshot is not None:
        parts.append(supervision(snapshot))
        parts.append(Panel(channels(snapshot), title="channels", title_align="left"))
        parts.append(Panel(alarms(snapshot), title="alarms", title_align="left"))
    if note is not None:
        parts.append(Text(note, style="bold"))
    if keys is not None:
        parts.append(Text(keys, style="dim"))
    return Group(*parts)
