"""The commands of the ``pumpguard`` command line: for each, ``argparse_NAME()`` builds
its parser and ``do_NAME(pump, args, out)`` runs it (mpremote's ``commands.py``).

A handler prints its result to ``out`` and raises a ``PumpguardError`` for anything
that went wrong; ``main.py`` turns that into a message and an exit code.
"""

import argparse
import csv
import json
import os
from typing import cast

from pumpguard._board.protocol.text import duration

from ..api import keys
from ..api.quantity import to_micro
from ..errors import UsageError
from ..report.source import export, identity


def _quantity(what):
    def parse(text):
        try:
            to_micro(text, what)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = what  # argparse names the type in its messages
    return parse


class _Concentration(argparse.Action):
    """--concentration VALUE UNIT: VALUE checked as a quantity while parsing, so a bad
    one is a usage error before anything is sent."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            to_micro(cast(list, values)[0], "concentration")  # nargs=2: [VALUE, UNIT]
        except ValueError as exc:
            parser.error(f"argument {option_string}: {exc}")
        setattr(namespace, self.dest, values)


def _tcp_port(text):
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TCP port: give 0 to 65535 (0 picks a free one)"
        )
    return port


def _parser(name, help_text):
    return argparse.ArgumentParser(prog="pumpguard " + name, description=help_text)


# -- commands that need no pump --------------------------------------------------------


def argparse_ports():
    return _parser("ports", "List the serial ports pyserial finds.")


def do_ports(pump, args, out):
    from serial.tools import list_ports

    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        print(f"{port.device}\t{port.description}", file=out)


def argparse_emulate():
    from pumpguard._board import boards

    from ..emulator import CONTROL_HELP, RUNTIMES, syringe_help

    p = argparse.ArgumentParser(
        prog="pumpguard emulate",
        description="Run the firmware on an emulated board. It prints `key: PATH` (the "
        "host key file of the board's keys, made on a state dir's first start), then "
        "the port to open.",
        epilog=CONTROL_HELP + syringe_help(boards.get("emulator")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--board", default="emulator", help="board definition (default: emulator)")
    p.add_argument(
        "--time-scale",
        type=int,
        default=1,
        metavar="N",
        help="virtual clock runs N times real time (default 1)",
    )
    p.add_argument(
        "--state-dir", metavar="DIR", help="the store; reuse it to restore after power loss"
    )
    p.add_argument(
        "--tcp",
        type=_tcp_port,
        metavar="PORT",
        help="serve socket://127.0.0.1:PORT (0 to 65535; 0 picks a free one)",
    )
    p.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="cpython",
        help="cpython: the firmware's sources in this process (default); micropython: "
        "its compiled bundle on the real MicroPython interpreter (WebAssembly, Node)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="development only: a board without keys (a new state dir), reported in "
        "HELLO and by a standing low alarm; hosts need --insecure to talk to it",
    )
    p.add_argument(
        "--library",
        metavar="FILE",
        help="boot with this drug library, as if pushed (put in the store as druglib.json; "
        "refused unless valid and sealed), on the state dir's first start only (a new "
        "board, or after a factory reset): a power cycle keeps the library pushed since",
    )
    return p


def _check_board(name):
    from pumpguard._board import boards

    if name not in boards.names():
        raise UsageError(f"unknown board {name!r} (known: {', '.join(boards.names())})")


def do_emulate(pump, args, out):
    from ..emulator import serve

    _check_board(args.board)
    if args.time_scale < 1:
        raise UsageError("--time-scale must be at least 1")
    serve(
        args.board,
        args.time_scale,
        args.state_dir,
        args.tcp,
        out,
        args.runtime,
        args.insecure,
        args.library,
    )


def argparse_flash():
    p = argparse.ArgumentParser(
        prog="pumpguard flash",
        description="Compile the firmware for a board, deploy it with mpremote and check "
        "over the protocol that it runs; or write the bundle only (--bundle).",
        epilog="Back to a board's REPL: `pumpguard flash --board NAME --port PORT --repl`, "
        "then `mpremote connect PORT repl`; the next reset runs the pump loop again.",
    )
    p.add_argument("--board", required=True, help="board definition, e.g. pico")
    p.add_argument("--port", help="the board's USB (REPL) port, or auto: the first one found")
    p.add_argument("--bundle", metavar="DIR", help="write the bundle to DIR; no device needed")
    p.add_argument(
        "--link", metavar="PORT", help="the board's protocol port, when not its USB port"
    )
    p.add_argument(
        "--repl",
        action="store_true",
        help="only stop the pump loop: the board is left at its REPL until its next reset",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="flash even while a channel infuses, or when its state cannot be read over "
        "--link: the safe boot stops every motor at once, with no taper and no alarm",
    )
    p.add_argument(
        "--keys",
        metavar="FILE",
        help="provision this key file's keys (every role) instead of new random ones; "
        "either way they go to the board and to the host key store (the check before "
        "the flash speaks with the keys the board holds now: --key, else the key store)",
    )
    p.add_argument(
        "--library",
        metavar="FILE",
        help="ship this drug library in the bundle instead of firmware/druglib.json "
        "(refused unless valid and sealed); a library pushed to the board before is removed",
    )
    return p


def do_flash(pump, args, out):
    from ..deploy import bundle
    from ..deploy.flash import Flasher

    _check_board(args.board)
    if args.bundle:
        manifest = bundle.build(args.board, args.bundle, args.library)  # a UsageError
        sizes = bundle.sizes(args.bundle)
        print(
            f"bundle {manifest['bundle']} for {manifest['board']} in {args.bundle}: "
            f"{len(manifest['files'])} files, {sizes['total']} bytes (compiled modules "
            f"{sizes['.mpy']}, drug library {sizes['.json'] - sizes['manifest']}, "
            f"main.py {sizes['.py']}, manifest {sizes['manifest']})",
            file=out,
        )
        return
    port = args.port or args.global_port
    if not port:
        raise UsageError("no port: give --port PORT (or auto), or --bundle DIR")
    flasher = Flasher(
        args.board,
        port,
        link=args.link,
        force=args.force,
        keys=args.keys,
        key=args.key,
        library=args.library,
    )
    if args.repl:
        flasher.enter_repl()
        print(f"{args.board} on {port} is at its REPL: mpremote connect {port} repl", file=out)
        return
    flasher.flash()


# -- commands on a pump ----------------------------------------------------------------


def argparse_info():
    return _parser("info", "Firmware, board, drug library and link counters.")


def do_info(pump, args, out):
    info = pump.info()
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
    p = _parser("status", "The channel's state, dose, rate, volumes and alarms.")
    p.add_argument("--json", action="store_true", help="one JSON object per channel")
    p.add_argument("--all", action="store_true", help="every channel, not only --channel")
    return p


def do_status(pump, args, out):
    channels = range(1, pump.channels + 1) if args.all else [args.channel]
    for ch in channels:
        s = pump.status(ch)
        if args.json:
            print(json.dumps(s.as_json()), file=out)
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
        print(
            f"channel {ch}: {s.state}, {what}, {s.rate_ml_h} mL/h, "
            f"{s.volume_infused_ml} mL infused{left}{empty}{step}, "
            f"alarms {list(s.alarms) or 'none'}",
            file=out,
        )


def argparse_start():
    p = _parser("start", "Start DRUG at DOSE UNIT on --channel.")
    p.add_argument("drug")
    p.add_argument("dose", type=_quantity("dose"))
    p.add_argument("unit", help="dose unit, e.g. mcg/min, mcg/kg/min, units/min")
    p.add_argument("--weight", type=_quantity("weight"), metavar="KG")
    p.add_argument(
        "--concentration",
        nargs=2,
        action=_Concentration,
        metavar=("VALUE", "UNIT"),
        help="e.g. 16 mcg/mL",
    )
    p.add_argument("--volume", type=_quantity("volume"), metavar="ML", help="syringe volume")
    p.add_argument("--override", action="store_true", help="accept a soft-limit excess (logged)")
    return p


def do_start(pump, args, out):
    d = pump.start(
        args.channel,
        args.drug,
        args.dose,
        args.unit,
        weight_kg=args.weight,
        concentration=args.concentration,
        volume_ml=args.volume,
        override=args.override,
    )
    print(
        f"channel {d.channel}: {args.drug} running at {d.dose} {d.dose_unit} = {d.rate_ml_h} mL/h",
        file=out,
    )


def argparse_titrate():
    p = _parser("titrate", "Change the running dose on --channel.")
    p.add_argument("dose", type=_quantity("dose"))
    p.add_argument("unit")
    p.add_argument("--override", action="store_true", help="accept a soft-limit excess (logged)")
    return p


def do_titrate(pump, args, out):
    d = pump.titrate(args.channel, args.dose, args.unit, override=args.override)
    print(f"channel {d.channel}: now {d.dose} {d.dose_unit} = {d.rate_ml_h} mL/h", file=out)


def argparse_stop():
    p = _parser("stop", "Stop --channel (taper drugs taper; --emergency stops at once).")
    p.add_argument(
        "--emergency",
        metavar="REASON",
        choices=("occlusion", "air_in_line", "extravasation", "clinician"),
        help="occlusion, air_in_line, extravasation or clinician",
    )
    return p


def do_stop(pump, args, out):
    if args.emergency:
        pump.emergency_stop(args.channel, args.emergency)
        print(f"channel {args.channel}: emergency stop ({args.emergency})", file=out)
        return
    r = pump.stop(args.channel)
    if not r.plan:
        print(f"channel {r.channel}: stopped", file=out)
        return
    print(f"channel {r.channel}: tapering, {len(r.plan)} steps:", file=out)
    for i, step in enumerate(r.plan, 1):
        print(
            f"  step {i:2d}  in {duration(int(step.in_s * 1000)):<14} {step.dose} {r.dose_unit}",
            file=out,
        )


def argparse_alarms():
    p = _parser("alarms", "List the device's alarms, or acknowledge one.")
    p.add_argument("--ack", type=int, metavar="ID", help="acknowledge alarm ID")
    return p


def do_alarms(pump, args, out):
    if args.ack is not None:
        pump.ack(args.ack)
        print(f"alarm {args.ack} acknowledged", file=out)
        return
    alarms = pump.alarms()
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
    p = _parser(
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


def argparse_key():
    p = _parser(
        "key",
        "Rotate a role's key on the board (needs the service key), or export some "
        "roles' keys to a key file of their own. Keys are never printed.",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = sub.add_parser(
        "rotate",
        help="a new random key for ROLE on the board and in the key file used (written "
        "to FILE.new first, so a lost answer loses no key); prints the file's path",
    )
    rotate.add_argument("rotated", metavar="ROLE", choices=keys.ROLES)
    rotate.set_defaults(session_role="service")
    export = sub.add_parser(
        "export",
        help="write a key file holding only ROLE... (mode 0600), e.g. a monitor key "
        "for a bedside display",
    )
    export.add_argument("roles", metavar="ROLE", nargs="+", choices=keys.ROLES)
    export.add_argument("--out", required=True, metavar="FILE", help="a new file")
    return p


def key_needs_pump(args):
    """`key rotate` talks to the board; `key export` only when no key file is given
    (the board names the key store's file)."""
    return args.action == "rotate" or not args.key


def do_key(pump, args, out):
    if args.action == "rotate":
        path = pump.rotate_key(args.rotated)
        print(
            f"the {args.rotated} key of board {pump.device['board_id']} was replaced; "
            f"the new one is in {path}",
            file=out,
        )
        return
    source = keys.given(args.key) if pump is None else pump.key_path
    if source is None:
        raise UsageError("the device runs without keys (--insecure): none to export")
    if not isinstance(source, keys.KeyFile):
        source = keys.KeyFile.load(source)
    if os.path.lexists(args.out):
        raise UsageError(f"{args.out} exists: export writes a new key file, never over one")
    path = source.only(args.roles).save(args.out)
    print(
        f"wrote the {', '.join(args.roles)} key of board {source.board_id} to {path}",
        file=out,
    )
