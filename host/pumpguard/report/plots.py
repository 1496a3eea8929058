"""One PNG per channel (matplotlib, Agg): the dose set and the motor's rate over time, and
the volume infused computed from those rates, with what happened marked."""

from datetime import UTC
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window (and no display needed)

import matplotlib.pyplot as plt  # noqa: E402 (the backend is chosen first)
from matplotlib import dates  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from .records import MARKS, ChannelReport, Report  # noqa: E402

WIDTH, HEIGHT, DPI = 1100, 820, 100  # every PNG's size in pixels
# marker, colour per mark (colour-blind safe: the Okabe-Ito palette)
_STYLE = {
    "start": ("^", "#009E73"),
    "titration": ("o", "#0072B2"),
    "override": ("D", "#E69F00"),
    "bolus": ("P", "#56B4E9"),
    "taper_started": ("v", "#CC79A7"),
    "taper_step": ("v", "#CC79A7"),
    "stopped": ("s", "#000000"),
    "handover": (">", "#009E73"),
    "refused": ("x", "#D55E00"),
    "alarm": ("*", "#D55E00"),
}
_DOSE_COLOURS = ("#0072B2", "#009E73", "#CC79A7", "#E69F00")


def _steps(ax, points, **style):
    if points:
        xs, ys = zip(*points, strict=True)
        ax.step(xs, [float(y) for y in ys], where="post", **style)


# ConciseDateFormatter's formats by tick level (year .. second), each one naming the
# time fully enough that two ticks never read alike (its default "%S" repeats each minute)
_TICKS = ("%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S.%f")
_ZERO = ("", "%Y", "%b", "%b %d", "%H:%M", "%H:%M")
_NO_OFFSET = ("",) * 6  # the date is in the axis label already
_LIFT, _STEP = 6, 10  # a code's height above its mark, and between stacked codes (points)


def _unclutter(fig, codes):
    """Lift each code label above the ones it would overlap: marks close in time (a
    refusal repeated, an alarm with the decision it stopped) are all readable."""
    fig.draw_without_rendering()  # the axes' final limits: where each label lands
    renderer = fig.canvas.get_renderer()

    def text(code):  # the label alone: the leader lines all meet near their marks
        return Text.get_window_extent(code, renderer)

    placed = []
    for code in sorted(codes, key=lambda a: text(a).x0):
        # a mark near the right edge: its label to its left, not over the legend
        side = -1 if text(code).x1 > code.axes.get_window_extent(renderer).x1 else 1
        code.set_horizontalalignment("right" if side < 0 else "left")
        level = 0
        code.xyann = (4 * side, _LIFT)
        while any(text(code).overlaps(p) for p in placed):
            level += 1
            code.xyann = (4 * side, _LIFT + _STEP * level)
        placed.append(text(code))


def _vline(axes, at, label, colours, style, side):
    """A vertical line at ``at`` across every axis, ``label`` written along it at the top
    of the first, on its ``side`` (a reboot and a switch at one time both readable)."""
    line, text = colours
    for ax in axes:
        ax.axvline(at, color=line, linestyle=style, linewidth=1.2)
    axes[0].annotate(
        label,
        (at, 1),
        xycoords=("data", "axes fraction"),
        # clear of the line and of the axes' top edge, which would hide its last letters
        xytext=(2 if side == "left" else -2, -3),
        textcoords="offset points",
        rotation=90,
        va="top",
        ha=side,
        fontsize=8,
        color=text,
    )


def channel_png(report: Report, ch: ChannelReport, path: Path) -> Path:
    fig, (dose_ax, rate_ax, vol_ax) = plt.subplots(
        3,
        1,
        sharex=True,
        figsize=(WIDTH / DPI, HEIGHT / DPI),
        dpi=DPI,
        gridspec_kw={"height_ratios": (3, 2, 2)},
    )
    drugs = ch.drugs
    title = f"Channel {ch.channel}: " + (", ".join(drugs) if drugs else "no drug started")
    fig.suptitle(title, fontsize=13, fontweight="bold")
    colours = {}
    for s in ch.doses:
        key = (s.drug, s.unit)
        first = key not in colours
        colour = colours.setdefault(key, _DOSE_COLOURS[len(colours) % len(_DOSE_COLOURS)])
        label = f"{s.drug} dose ({s.unit})" if first else None
        _steps(dose_ax, s.points, color=colour, linewidth=2, label=label)
    units = sorted({u for _, u in colours})
    dose_ax.set_ylabel("dose set\n" + (units[0] if len(units) == 1 else "(unit: see legend)"))
    shown = set()
    codes = []  # the refusals' and alarms' code labels, placed once the axes are laid out
    for m in ch.marks:
        marker, colour = _STYLE[m.kind]
        y = float(m.dose) if m.dose is not None else 0.0
        label = MARKS[m.kind] if m.kind not in shown else None
        shown.add(m.kind)
        size = 160 if m.kind == "alarm" else 70
        hollow = m.kind == "taper_started"  # the stop asked, apart from the steps it makes
        dose_ax.scatter(
            [m.at],
            [y],
            marker=marker,
            s=size,
            zorder=5,
            label=label,
            **(
                {"facecolors": "none", "edgecolors": colour, "linewidths": 1.5}
                if hollow
                else {"color": colour}
            ),
        )
        if m.kind in ("refused", "alarm"):
            # which refusal, which alarm: its reason code beside the mark
            codes.append(
                dose_ax.annotate(
                    m.entry.code,
                    (m.at, y),
                    textcoords="offset points",
                    xytext=(4, _LIFT),
                    fontsize=7,
                    color=colour,
                    arrowprops={"arrowstyle": "-", "color": colour, "alpha": 0.5, "lw": 0.6},
                )
            )
        if m.kind == "alarm":
            for ax in (dose_ax, rate_ax, vol_ax):
                ax.axvline(m.at, color=colour, alpha=0.35, linewidth=1)
    for run in ch.rates:
        _steps(rate_ax, run, color="#333333", linewidth=1.5)
    rate_ax.set_ylabel("motor rate\nmL/h")
    for run in ch.volumes:
        if run:
            xs, ys = zip(*run, strict=True)
            vol_ax.plot(xs, ys, color="#0072B2", linewidth=1.5)
    vol_ax.set_ylabel("volume infused\nmL")
    bound = "at most " if ch.upper_bound else "at least " if ch.at_least else ""
    said = f"{bound}{ch.volume_ml:.2f} mL in all, computed from the log's rates"
    if round(ch.not_counted, 2):
        said += ", no more than the syringe held"
    if ch.now is not None and ch.now.drug:
        said += f"; the pump counts {ch.now.volume_infused_ml:.2f} mL since its start"
    vol_ax.set_title(said, fontsize=9, loc="left")
    axes = (dose_ax, rate_ax, vol_ax)
    for switch in report.switches:
        # the drug library changed: the limits each dose was checked against changed too
        _vline(axes, switch.at, f"library {switch.version}", ("#E69F00", "#9A6700"), ":", "left")
    for boot in report.boots[1:]:
        # a boot: the pump was reset or powered off between the entries either side
        _vline(axes, boot.at, f"reboot {boot.boot_id:08x}", ("#777777", "#555555"), "--", "right")
    for ax in (dose_ax, rate_ax, vol_ax):
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    top = dose_ax.get_ylim()[1]
    dose_ax.set_ylim(0, top * 1.3 if top > 0 else 1)  # room for the codes above the marks
    if dose_ax.get_legend_handles_labels()[0]:
        dose_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    if report.wall_axis:
        # labels as fine as the ticks: "%H:%M" alone repeats itself on a short session
        locator = dates.AutoDateLocator(tz=UTC)
        vol_ax.xaxis.set_major_locator(locator)
        vol_ax.xaxis.set_major_formatter(
            dates.ConciseDateFormatter(
                locator, tz=UTC, formats=_TICKS, zero_formats=_ZERO, offset_formats=_NO_OFFSET
            )
        )
        first, last = report.boots[0].first.wall_time, report.boots[-1].last.wall_time
        days = sorted({t[:10] for t in (first, last) if t})
        vol_ax.set_xlabel("time (UTC), " + " to ".join(days))
    else:
        vol_ax.set_xlabel("hours from the log's first entry (boots end to end: no wall clock)")
    fig.subplots_adjust(left=0.1, right=0.76, top=0.92, bottom=0.1, hspace=0.25)
    _unclutter(fig, codes)
    fig.savefig(path, dpi=DPI)  # no bbox "tight": every PNG WIDTH x HEIGHT exactly
    plt.close(fig)
    return path
