"""``pumpguard flash``'s parser and handler: the command line of deploy/flash.py (build,
safe boot, copy, reset, verify) and of the bundle alone (``--bundle DIR``).

The REPL port is flash's own ``--port``, else a ``--port``/``-p`` given before the command
(main's ``args.port_given``); never ``PUMPGUARD_PORT``: that names the protocol link, and
mpremote's raw REPL sent down a link hangs.
"""

import argparse

from ..errors import UsageError
from .options import check_board as _check_board


def argparse_flash():
    p = argparse.ArgumentParser(
        prog="pumpguard flash",
        description="Compile the firmware for a board, deploy it with mpremote and check "
        "over the protocol that it runs (or flash a bundle built earlier, --from-bundle); "
        "or write the bundle only (--bundle).",
        epilog="Back to a board's REPL: `pumpguard flash --board NAME --port PORT --repl`, "
        "then `mpremote connect PORT repl`; the next reset runs the pump loop again.",
    )
    p.add_argument("--board", required=True, help="board definition, e.g. pico")
    p.add_argument(
        "-p",
        "--port",
        help="the board's USB (REPL) port, or auto: the one serial port with the board's "
        "MicroPython USB id that is not --link (never PUMPGUARD_PORT: the protocol's)",
    )
    p.add_argument("--bundle", metavar="DIR", help="write the bundle to DIR; no device needed")
    p.add_argument(
        "--from-bundle",
        metavar="DIR",
        help="flash the bundle an earlier --bundle DIR wrote, as it is: refused unless "
        "every file is the one its manifest lists (none changed, missing or extra)",
    )
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
    if args.from_bundle and (args.bundle or args.library):
        given = "--bundle DIR" if args.bundle else "--library FILE"
        raise UsageError(
            f"--from-bundle flashes a bundle as it was built: no {given} with it "
            "(give that when building it with --bundle DIR)"
        )
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
    port = args.port or args.port_given
    if not port:
        raise UsageError(
            "no REPL port: give --port PORT (the board's USB port) or --port auto; "
            "PUMPGUARD_PORT is the protocol link's, never the REPL's (or --bundle DIR alone)"
        )
    flasher = Flasher(
        args.board,
        port,
        link=args.link,
        force=args.force,
        keys=args.keys,
        key=args.key,
        library=args.library,
        from_bundle=args.from_bundle,
    )
    if args.repl:
        flasher.enter_repl()
        port = flasher.port  # --port auto: the port it found
        print(f"{args.board} on {port} is at its REPL: mpremote connect {port} repl", file=out)
        return
    flasher.flash()
