"""``pumpguard library``: the pharmacist's tools on a drug library file (check, seal,
show, diff: pumpguard.library does the work, this prints it) and ``push``, which loads
one onto a pump with the service role."""

import json

from ..errors import PumpguardError
from .jsonout import print_json
from .options import command_parser

# action -> (help, its arguments (a trailing "?": optional), takes --json)
_ACTIONS = {
    "check": (
        "every problem at once, by drug and field; exit 0 only when valid and sealed",
        ("file",),
        True,
    ),
    "seal": (
        "write the content's CRC into FILE's \"crc32\" in place (the rest of the text kept "
        "as written); refused when anything else is wrong",
        ("file",),
        False,
    ),
    "show": (
        "every drug (or DRUG): each figure with its unit and its source",
        ("file", "drug?"),
        True,
    ),
    "diff": (
        "every figure that differs, drug by drug, with both sources; exit 0 when the "
        "content is the same, 1 when it differs",
        ("old", "new"),
        True,
    ),
    "push": (
        "load FILE onto the pump, every channel idle or stopped (needs the service key); "
        "prints the library the pump then runs",
        ("file",),
        True,
    ),
}


def argparse_library():
    p = command_parser(
        "library",
        "Check, seal, show and compare a drug library file (firmware/druglib.json's "
        "format), or push one to a pump (service role).",
    )
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, (help_text, names, takes_json) in _ACTIONS.items():
        a = sub.add_parser(action, help=help_text)
        for name in names:
            dest = name.rstrip("?")
            a.add_argument(dest, metavar=dest.upper(), nargs="?" if name != dest else None)
        if takes_json:
            a.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    sub.choices["push"].set_defaults(session_role="service")
    return p


def library_needs_pump(args):
    """Only push talks to a pump; the rest work on files."""
    return args.action == "push"


def do_library(pump, args, out):
    if args.action == "push":
        active = pump.push_library(args.file)
        if args.json:
            print_json(active, out)
            return
        print(
            f"the pump now runs {active.name} {active.version} (crc32 0x{active.crc:08x})",
            file=out,
        )
        return
    # Imported here: the other commands start without the library's modules.
    from .. import library
    from ..library.document import count

    if args.action == "seal":
        sealed = library.seal(args.file)
        if sealed.changed:
            print(f"{sealed.file}: crc32 {sealed.old or 'none'} -> {sealed.new}", file=out)
        else:
            print(f"{sealed.file}: already sealed, crc32 {sealed.new}", file=out)
        return
    if args.action == "check":
        result = library.check(args.file)
        _print(out, args.json, result.as_json(), _check_lines(result))
        if not result.valid:
            n = count(len(result.problems), "problem")  # the count its first line says
            raise PumpguardError(f"{result.file}: invalid, {n}")
        if not result.sealed:
            raise PumpguardError(
                f"{result.file}: valid but not sealed (pumpguard library seal FILE seals it)"
            )
        return
    if args.action == "show":
        shown = library.show(args.file, args.drug)
        _print(out, args.json, shown.as_json(), shown.lines())
        return
    record = library.review(args.old, args.new)
    _print(out, args.json, record.as_json(), record.lines())
    if record.changes:
        raise PumpguardError(f"{record.old_file} and {record.new_file} differ")


def _print(out, as_json, data, lines):
    if as_json:
        print(json.dumps(data, indent=2), file=out)
    else:
        for line in lines:
            print(line, file=out)


def _check_lines(result):
    from ..library.document import count

    verdict = "valid" if result.ok else count(len(result.problems), "problem")
    yield f"{result.file}: {result.identity.line()}; {verdict}"
    yield from result.problems
