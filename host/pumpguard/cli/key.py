"""``pumpguard key``: rotate a role's key on the board (the service role), or export
some roles' keys to a key file of their own. Keys are never printed."""

import os

from ..api import keys
from ..errors import UsageError
from .options import command_parser


def argparse_key():
    p = command_parser(
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
