"""``pumpguard emulate``: the firmware on an emulated board (``pumpguard.emulator``),
served on a PTY or ``--tcp``; a TCP port it cannot serve on is one line, not a
traceback."""

import argparse
import errno
import os

from ..errors import EmulatorError, UsageError
from .options import check_board, command_parser, tcp_port


def argparse_emulate():
    import boards

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
    except OSError as exc:
        # The TCP server's bind, before the board starts (emulator/server.py): another
        # program serves there, or a port below 1024 without the privilege (a socket's
        # error names no file; a state dir's does).
        if args.tcp is None or exc.filename is not None:
            raise
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise
        raise EmulatorError(
            f"--tcp {args.tcp}: cannot serve on 127.0.0.1:{args.tcp} "
            f"({os.strerror(exc.errno)}): "
            "give a free port, or 0 to pick one"
        ) from None
