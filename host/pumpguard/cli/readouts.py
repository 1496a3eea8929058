"""The commands that read a pump: ``info``, ``status``, ``alarms`` (and acknowledging
one), ``log``. Each prints plain text, or with ``--json`` the API's answer
(jsonout.py); ``log`` keeps its own exports (CSV, JSON Lines, ``--json``), the shapes
``pumpguard report --from`` reads."""

import csv
import json

from pumpguard._board.protocol.text import duration

from .jsonout import print_json
from .options import alarm_id, channel, command_parser

_JSON_HELP = "the answer as one JSON object (quantities as exact decimal strings)"


def argparse_info():
    p = command_parser("info", "Firmware, board, drug library and link counters.")
    p.add_argument("--json", action="store_true", help=_JSON_HELP)
    return p


def do_info(pump, args, out):
    info = pump.info()
    if args.json:
        print_json(info, out)
        return
    print(f"firmware  {info.firmware}", file=out)
    print(f"bundle    {info.bundle or '- (runs from source)'}", file=out)
    print(f"board     {info.board}, {info.channels} channels", file=out)
    print(
        f"library   {info.library} {info.library_version} (crc {info.library_crc:08x})",
        file=out,
    )
    if info.library_problems:
        n = info.library_problems
        print(
            f"          INVALID: {n} problem{'s' if n > 1 else ''}, every start refused "
            "(the board's console lists them; pumpguard library check FILE too)",
            file=out,
        )
    print(f"uptime    {info.uptime_ms // 1000} s (boot {info.boot_id:08x})", file=out)
    print(
        "link      " + ", ".join(f"{k} {v}" for k, v in info.counters.items()),
        file=out,
    )


def argparse_status():
    p = command_parser("status", "The channel's state, dose, rate, volumes and alarms.")
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per channel, one per line (quantities as exact decimal strings)",
    )
    p.add_argument("--all", action="store_true", help="every channel, not only --channel")
    return p


def do_status(pump, args, out):
    channels = range(1, pump.channels + 1) if args.all else [channel(pump, args)]
    for ch in channels:
        s = pump.status(ch)
        if args.json:
            print_json(s, out)
            continue
        what = f"{s.drug} {s.dose} {s.dose_unit}" if s.drug else "-"
        left = "" if s.volume_left_ml is None else f", {s.volume_left_ml} mL left"
        empty = (
            "" if s.time_to_empty_s is None else f", empty in {duration(s.time_to_empty_s * 1000)}"
        )
        step = ""
        if s.taper_next_in_s is not None:
            step = f", next taper step in {duration(int(s.taper_next_in_s * 1000))}"
            if s.taper_next_dose is not None:
                step += f" to {s.taper_next_dose} {s.dose_unit}"
        if s.override:
            what += " (override)"
        what += f" [{s.order}]" if s.order else ""
        print(
            f"channel {ch}: {s.state}, {what}, {s.rate_ml_h} mL/h, "
            f"{s.volume_infused_ml} mL infused{left}{empty}{step}, "
            f"alarms {list(s.alarms) or 'none'}",
            file=out,
        )


def argparse_alarms():
    p = command_parser("alarms", "List the device's alarms, or acknowledge one.")
    p.add_argument("--ack", type=alarm_id, metavar="ID", help="acknowledge alarm ID")
    p.add_argument(
        "--json",
        action="store_true",
        help='the alarms as one JSON list of objects (with --ack: {"acknowledged": ID})',
    )
    return p


def do_alarms(pump, args, out):
    if args.ack is not None:
        pump.ack(args.ack)
        if args.json:
            print_json({"acknowledged": args.ack}, out)
        else:
            print(f"alarm {args.ack} acknowledged", file=out)
        return
    alarms = pump.alarms()
    if args.json:
        print_json(alarms, out)
        return
    if not alarms:
        print("no alarms", file=out)
    width = max((len(a.code) for a in alarms), default=0)
    for a in alarms:
        print(
            f"{a.id:3d}  ch{a.channel}  {a.priority:<6} {a.code:<{width}} {a.message}"
            + ("  (acked)" if a.acked else ""),
            file=out,
        )


# CSV and JSON Lines carry the same fields, named as in LogEntry.as_json().
LOG_FIELDS = ("seq", "boot_id", "at_ms", "wall_ms", "wall_time", "channel", "kind", "code", "text")


def argparse_log():
    p = command_parser(
        "log",
        "Print the device's persistent event log, across its boots: wall-clock time "
        "(UTC) where the device had it, else its uptime.",
    )
    p.add_argument("--since", type=int, default=0, metavar="SEQ", help="from entry SEQ on")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", action="store_true", help="CSV with a header row")
    out.add_argument(
        "--jsonl",
        action="store_true",
        help="JSON Lines, one object per entry: " + ", ".join(LOG_FIELDS),
    )
    out.add_argument(
        "--json",
        action="store_true",
        help='one JSON object {"device": {the identity}, "entries": [as --jsonl]}: '
        "what `pumpguard report --from` reads with the device named",
    )
    return p


def do_log(pump, args, out):
    entries = pump.log(args.since)
    if args.json:
        from ..report.source import export, identity  # the report's package: imported here

        print(json.dumps(export(entries, identity(pump)), indent=1), file=out)
        return
    if args.csv:
        w = csv.writer(out)
        w.writerow(LOG_FIELDS)
        for e in entries:
            w.writerow(["" if v is None else v for v in e.as_json().values()])
        return
    if args.jsonl:
        for e in entries:
            print(json.dumps(e.as_json()), file=out)
        return
    width = max((len(e.code) for e in entries), default=0)
    boot = None
    for e in entries:
        if e.boot_id != boot:
            boot = e.boot_id
            print(f"-- boot {boot:08x}", file=out)
        when = e.wall_time or f"uptime {duration(e.at_ms)}"
        print(
            f"{e.seq:5d} {when:>24}  ch{e.channel}  {e.kind:<8} {e.code:<{width}} {e.text}",
            file=out,
        )
