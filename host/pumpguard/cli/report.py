"""``pumpguard report``: the session report of a pump's event log, or of a file
``pumpguard log`` exported (``pumpguard.report`` does the work)."""

from ..errors import BadValue
from .options import command_parser

SEQ_MAX = 0xFFFFFFFF  # the highest entry seq Pump.log() takes (api/client.py)


def argparse_report():
    p = command_parser(
        "report",
        "Write a session report: one PNG per channel (dose and motor rate over "
        "time, titrations, taper steps, overrides, refusals and alarms marked, volume "
        "infused computed from the log's rates) and one self-contained report.html with "
        "the plots, the decisions and refusals, the alarms, the device and its boots. "
        "From the pump's persistent event log (across its boots), or --from a file.",
    )
    p.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="an export of `pumpguard log --json` (with the device's identity), "
        "`--jsonl` or `--csv` (identity then not in the report); no pump needed",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the directory to write into")
    p.add_argument("--since", type=int, default=0, metavar="SEQ", help="from entry SEQ on")
    return p


def report_needs_pump(args):
    return args.from_file is None


def do_report(pump, args, out):
    from .. import report  # imported here: the other commands start without it

    if args.from_file is not None:
        if not 0 <= args.since <= SEQ_MAX:  # the rule a pump's log() applies
            raise BadValue(f"since {args.since} is not an entry seq: give 0 to {SEQ_MAX}")
        entries, device, form = report.load(args.from_file)
        entries = [e for e in entries if e.seq >= args.since]
        made = report.build(entries, device, source=f"{args.from_file} (log --{form})")
    else:
        device = report.identity(pump)
        source = f"the pump on {args.pump_port}, board id {device['board_id']}"
        entries = pump.log(args.since)
        # after the log: its last entry is never later than the uptime the timeline ends at
        now = report.now(pump)
        made = report.build(entries, device, pump.channels, source=source, now=now)
    for path in report.write(made, args.out):
        print(path, file=out)
