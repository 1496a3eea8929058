"""``pumpguard ports``: the serial ports pyserial lists (device, VID:PID, serial
number, description) and, for each, whether a pumpguard board answers there
(``pumpguard.api.discover``: a probe that never stops a board's program at its REPL)."""

import dataclasses

from ..api import discover
from .jsonout import print_json
from .options import command_parser

_COLUMNS = ("DEVICE", "VID:PID", "SERIAL", "DESCRIPTION", "PUMPGUARD")


def argparse_ports():
    p = command_parser(
        "ports",
        "List the serial ports pyserial finds, with VID:PID, serial number and "
        "description, and whether a pumpguard board answers HELLO there (each probed "
        "for --timeout seconds, all at once). An emulator's PTY is not a serial port "
        "pyserial lists: it is the path `pumpguard emulate` printed.",
    )
    p.add_argument(
        "--no-probe",
        action="store_true",
        help="list only: open no port (a port another program is using is then left alone)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON list: each port\'s fields and "pumpguard", its probe (answers, '
        "matches, said, board, board_id, firmware), null with --no-probe",
    )
    return p


def do_ports(pump, args, out):
    ports = discover.serial_ports()
    if args.no_probe:
        probes = [None] * len(ports)
    else:
        probes = discover.probe_all([p.device for p in ports], args.global_timeout)
    if args.json:
        found = [
            {**dataclasses.asdict(p), "pumpguard": q} for p, q in zip(ports, probes, strict=True)
        ]
        print_json(found, out)
        return
    if not ports:
        print(
            "no serial port found (an emulator's PTY is not listed: it is the path "
            "`pumpguard emulate` printed)",
            file=out,
        )
        return
    rows: list[tuple[str, ...]] = [_COLUMNS[:-1] if args.no_probe else _COLUMNS]
    for p, q in zip(ports, probes, strict=True):
        row = (p.device, p.vid_pid or "-", p.serial_number or "-", p.description)
        rows.append(row if q is None else (*row, _answer(q)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1], file=out
        )


def _answer(probe):
    return ("yes: " if probe.matches else "no: ") + probe.said
