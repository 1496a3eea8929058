"""``main()``: parse the command line, connect when the command needs a pump, run the
command's handler, and turn a ``PumpguardError`` into one line and an exit code: the
one place that does.

Each command is a row of ``_COMMANDS`` (its handler, its parser, its summary, whether
main() connects for it), as mpremote's ``main.py`` keeps its ``_COMMANDS``; each
module of this package holds the commands of one role (readouts.py, delivery.py...).
The global options (options.py) are accepted before and after the command.
"""

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from pumpguard._board.firmware import VERSION
from pumpguard._board.protocol import catalog

from ..errors import (
    EXIT_AUTH,
    EXIT_ERROR,
    EXIT_LINK,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    LinkError,
    ProtocolMismatch,
    PumpguardError,
    UsageError,
)
from .delivery import (
    argparse_handover,
    argparse_patient,
    argparse_start,
    argparse_stop,
    argparse_titrate,
    do_handover,
    do_patient,
    do_start,
    do_stop,
    do_titrate,
)
from .emulate import argparse_emulate, do_emulate
from .flash import argparse_flash, do_flash
from .key import argparse_key, do_key, key_needs_pump
from .library import argparse_library, do_library, library_needs_pump
from .monitor import argparse_monitor, do_monitor
from .options import Parser, add_global_options, settle
from .ports import argparse_ports, do_ports
from .readouts import (
    argparse_alarms,
    argparse_info,
    argparse_log,
    argparse_status,
    do_alarms,
    do_info,
    do_log,
    do_status,
)
from .report import argparse_report, do_report, report_needs_pump
from .session import open_pump, pump_port

_VERSION = (
    f"pumpguard {VERSION} (protocol {catalog.PROTOCOL_VERSION}, schema {catalog.SCHEMA_HASH:08x})"
)

# The codes come from the error classes (errors.py), which carry them.
_EPILOG = f"""\
Global options go before or after the command (`pumpguard status -p /dev/ttyUSB0
--json`); a command's own options go after it. `pumpguard COMMAND --help` for each.

exit codes:
  {EXIT_OK}  done
  {EXIT_USAGE}  usage error (bad option or value; nothing was sent)
  {EXIT_REFUSED}  refused by the safety layer (the reason and the allowed range are printed),
     or a flash refused while a channel infuses (the channels are named)
  {EXIT_LINK}  link failure (no answer, or a device that speaks another protocol; --port
     auto: no board answered)
  {EXIT_AUTH}  authentication failed: the board refused the key for the role, the
     device failed its own proof (not the board the key file is for), a request
     the role may not send (forbidden), or a device without keys (--insecure)
  {EXIT_ERROR}  anything else
Every error is one line on stderr: `pumpguard: <what was wrong and what is allowed>`.

Keys: --key FILE (or PUMPGUARD_KEY) is the board's key file; without it the key
store's file for the board id the device names is used ($PUMPGUARD_KEYS, else
$XDG_CONFIG_HOME/pumpguard/keys, one <board_id>.json per board; `pumpguard flash`
writes it). --role (or PUMPGUARD_ROLE) is monitor, clinician or service; by default
clinician if the key file holds it, else monitor, else service. A key file missing,
malformed or readable by others is a usage error ({EXIT_USAGE}).

The port comes from --port/-p or the PUMPGUARD_PORT environment variable: a device
path (/dev/ttyUSB0), a PTY printed by `pumpguard emulate`, a pyserial URL
(socket://...), or auto: the serial port where a pumpguard board answers HELLO (an
error when none does, or more than one: `pumpguard ports` shows which answer).
--timeout (or PUMPGUARD_TIMEOUT) is how long each of the 3 attempts of a request waits
for its answer: raise it for a slow link or a busy machine.
Quantities are exact decimals (at most 6 decimals, at most 2147.483647: the wire's
32 bits); nothing is rounded. --json prints the API's answer: quantities as strings.
"""


@dataclass(frozen=True)
class _Command:
    run: Callable
    parser: Callable[[], argparse.ArgumentParser]
    summary: str  # its line in `pumpguard --help`
    pump: bool | Callable = False  # main() connects first (or a function of the args)
    port: bool = False  # the command opens its own session on the port (monitor)


_COMMANDS = {
    "info": _Command(do_info, argparse_info, "firmware, board, drug library, link counters", True),
    "status": _Command(
        do_status, argparse_status, "a channel's state, dose, rate, volumes, alarms", True
    ),
    "start": _Command(do_start, argparse_start, "start DRUG at DOSE UNIT on --channel", True),
    "titrate": _Command(do_titrate, argparse_titrate, "change the running dose on --channel", True),
    "stop": _Command(
        do_stop, argparse_stop, "stop --channel (a taper drug tapers: its plan)", True
    ),
    "handover": _Command(
        do_handover, argparse_handover, "move channel FROM's program to a new syringe on TO", True
    ),
    "patient": _Command(
        do_patient, argparse_patient, "the patient's weight, one for every channel", True
    ),
    "alarms": _Command(do_alarms, argparse_alarms, "list the alarms, or acknowledge one", True),
    "log": _Command(do_log, argparse_log, "the device's persistent event log", True),
    "monitor": _Command(
        do_monitor, argparse_monitor, "watch the pump live (a supervising session)", port=True
    ),
    "report": _Command(
        do_report, argparse_report, "a session report (plots, HTML) from the log", report_needs_pump
    ),
    "library": _Command(
        do_library,
        argparse_library,
        "check, seal, show, diff or push a drug library",
        library_needs_pump,
    ),
    "key": _Command(
        do_key, argparse_key, "rotate a role's key, or export keys to a file", key_needs_pump
    ),
    "ports": _Command(
        do_ports, argparse_ports, "serial ports, VID:PID, and whether a board answers"
    ),
    "emulate": _Command(do_emulate, argparse_emulate, "run the firmware on an emulated board"),
    "flash": _Command(do_flash, argparse_flash, "deploy the firmware to a board (or --bundle)"),
}


def _parser():
    p = Parser(
        prog="pumpguard",
        description="Drive a pumpguard infusion-pump safety module, or emulate one.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=_VERSION)
    add_global_options(p, after_command=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    for name, command in _COMMANDS.items():
        own = command.parser()
        child = sub.add_parser(
            name,
            # argparse copies any parser's arguments; its stubs want the subparsers' class
            parents=[cast(Parser, own)],
            add_help=False,  # own's -h is copied
            help=command.summary,
            description=own.description,
            epilog=own.epilog,
            formatter_class=own.formatter_class,
        )
        _add_globals_after(child)
    return p


def _add_globals_after(parser):
    # Every parser a command's arguments reach takes the global options, down to an
    # action's (`key rotate ROLE --role service`).
    add_global_options(parser, after_command=True)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for nested in action.choices.values():
                _add_globals_after(nested)


def _parse(argv):
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        raise UsageError(_unrecognized(args.command, extra, argv))
    return args


def _unrecognized(command, extra, argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    before = argv[: argv.index(command)] if command in argv else []
    misplaced = [a for a in extra if a in before]
    if misplaced:
        return (
            f"{' '.join(misplaced)}: not a global option; a command's options go after "
            f"it (pumpguard {command} {' '.join(misplaced)}); see pumpguard --help"
        )
    return f"{command}: unrecognized arguments: {' '.join(extra)}; see pumpguard {command} --help"


def _describe(exc):
    # A refusal's str() names its reason and range (errors.RefusedError); notes say
    # what to check (session.py).
    text = str(exc)
    if isinstance(exc, LinkError | ProtocolMismatch):
        text = f"link failure: {text}"
    return ". ".join([text, *getattr(exc, "__notes__", ())])


def main(argv=None, out=None):
    """Run one command; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    pump = None
    try:
        # A quantity the wire cannot carry raises UsageError while parsing (quantity.py).
        args = _parse(argv)
        command = _COMMANDS[args.command]
        settle(args)
        if args.global_insecure and args.command == "emulate":
            args.insecure = True  # `pumpguard --insecure emulate` is `emulate --insecure`
        elif args.global_insecure and args.command == "flash":
            raise UsageError(
                "--insecure is the emulator's development mode: a flash always provisions "
                "keys (the check before it and its verify speak with them)"
            )
        needs_pump = command.pump(args) if callable(command.pump) else command.pump
        if needs_pump or command.port:
            args.pump_port = pump_port(args)
        if needs_pump:
            pump = open_pump(args, supervise=0)  # one-shot: its silence after is no alarm
        command.run(pump, args, out)
        return EXIT_OK
    except SystemExit as exc:  # argparse: --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except PumpguardError as exc:
        print(f"pumpguard: {_describe(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`pumpguard log | head`): what it wanted it has. Later
        # writes, the interpreter's own flush at exit included, go nowhere instead of
        # ending in a traceback.
        if out is sys.stdout:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    finally:
        if pump is not None:
            pump.close()
