"""``pumpguard emulate``: the firmware on an emulated board (``pumpguard.emulator``),
served on a PTY or ``--tcp``; what the machine refuses it (a TCP port taken, a state dir
it cannot make) is one line, not a traceback."""

import argparse
import os

from ..errors import EmulatorError, UsageError
from .options import check_board, command_parser, tcp_port


def argparse_emulate():
    from pumpguard._board import boards

    from ..emulator import CONTROL_HELP, RUNTIMES, syringe_help

    p = command_parser(
        "emulate",
        "Run the firmware on an emulated board. It prints `key: PATH` (the "
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
        type=tcp_port,
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


def do_emulate(pump, args, out):
    from ..emulator import serve

    check_board(args.board)
    if args.time_scale < 1:
        raise UsageError("--time-scale must be at least 1")
    try:
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
    except BrokenPipeError:
        raise  # its reader went away: main() says nothing
    except OSError as exc:
        raise EmulatorError(_cannot(args, exc)) from None


def _cannot(args, exc):
    """What the environment refused the emulator, in one line. A socket's error names
    no file: the TCP server's bind, before the board starts (another program serves
    there, or a port below 1024 without the privilege). A file's: the state dir (one
    that cannot be made or written)."""
    why = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.filename is None and args.tcp is not None:
        return (
            f"--tcp {args.tcp}: cannot serve on 127.0.0.1:{args.tcp} ({why}): give a free "
            "port, or 0 to pick one"
        )
    if exc.filename is None:
        return f"the emulator cannot start: {exc}"
    fix = ": give --state-dir a directory it may create and write" if args.state_dir else ""
    return f"the emulator cannot use {exc.filename} ({why}){fix}"
