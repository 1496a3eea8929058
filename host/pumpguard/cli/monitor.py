"""``pumpguard monitor``: the live view of a pump (``pumpguard.monitor``), or one frame
of it (``--once``, for scripts). It opens its own session, a supervising one, rather
than main()'s one-shot session: so it needs no pump from main()."""

import functools
import sys

from ..errors import UsageError
from .options import command_parser
from .session import open_pump

_INTERVAL_MIN_S = 0.1  # faster only loads the link: a refresh is a few requests
_INTERVAL_MAX_S = 3600


def argparse_monitor():
    p = command_parser(
        "monitor",
        "Watch the pump live: every channel (state, drug, dose, rate, volumes, "
        "time to empty, next taper step, override) and the alarms by priority. A "
        "clinician's session supervises the link while it runs (the device alarms "
        "link_lost if the monitor dies; q or Ctrl-C is a clean goodbye); a monitor key "
        "only polls. Keys 1-9 acknowledge the alarm of that number; q quits.",
        epilog="Colour only on a terminal, and never with NO_COLOR set. A link failure "
        "is shown ('link lost: ...') and the monitor connects again every interval.",
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="print one frame and exit (a one-shot session: no supervision, no keys)",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between refreshes (default 1)",
    )
    return p


def do_monitor(pump, args, out):
    if not _INTERVAL_MIN_S <= args.interval <= _INTERVAL_MAX_S:  # also refuses nan and inf
        raise UsageError(
            f"--interval {args.interval:g} is not a refresh interval: give seconds from "
            f"{_INTERVAL_MIN_S} to {_INTERVAL_MAX_S}"
        )
    # Imported here: rich is a tenth of a second of every other command's start.
    from rich.console import Console

    from ..monitor import Keys, gather, render, run

    console = Console(file=out)  # a terminal and NO_COLOR decide the colour
    opened = functools.partial(open_pump, args)  # args.pump_port: main() found it
    if args.once:
        with opened() as one_shot:  # supervise=0: its silence after is no alarm
            console.print(render(gather(one_shot, 0)))
        return
    # boot_wait=0: a device that does not answer is shown as such at once, and asked
    # again at the next refresh, keys read meanwhile.
    run(functools.partial(opened, boot_wait=0), console, args.interval, Keys(sys.stdin))
