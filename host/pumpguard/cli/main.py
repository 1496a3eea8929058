"""``main()``: parse the global options, connect when the command needs a pump, run the
command's handler (``commands.py``), and turn a ``PumpguardError`` into a message and
an exit code: the one place that does.

Each command is ``name -> (handler, parser, needs a pump)`` in ``_COMMANDS``, as
mpremote's ``main.py`` keeps its ``_COMMANDS``.
"""

import argparse
import os
import sys

from ..api.client import connect
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
from .commands import (
    argparse_alarms,
    argparse_emulate,
    argparse_info,
    argparse_key,
    argparse_log,
    argparse_ports,
    argparse_start,
    argparse_status,
    argparse_stop,
    argparse_titrate,
    do_alarms,
    do_emulate,
    do_info,
    do_key,
    do_log,
    do_ports,
    do_start,
    do_status,
    do_stop,
    do_titrate,
    key_needs_pump,
)
from .flash import argparse_flash, do_flash
from .library import argparse_library, do_library, library_needs_pump
from .monitor import argparse_monitor, do_monitor
from .report import argparse_report, do_report, report_needs_pump

# The codes come from the error classes (errors.py), which carry them.
_EPILOG = f"""\
exit codes:
  {EXIT_OK}  done
  {EXIT_USAGE}  usage error (bad option or value; nothing was sent)
  {EXIT_REFUSED}  refused by the safety layer (the reason and the allowed range are printed),
     or a flash refused while a channel infuses (the channels are named)
  {EXIT_LINK}  link failure (no answer, or a device that speaks another protocol)
  {EXIT_AUTH}  authentication failed: the board refused the key for the role, the
     device failed its own proof (not the board the key file is for), a request
     the role may not send (forbidden), or a device without keys (--insecure)
  {EXIT_ERROR}  anything else

Keys: --key FILE (or PUMPGUARD_KEY) is the board's key file; without it the key
store's file for the board id the device names is used ($PUMPGUARD_KEYS, else
$XDG_CONFIG_HOME/pumpguard/keys, one <board_id>.json per board; `pumpguard flash`
writes it). --role (or PUMPGUARD_ROLE) is monitor, clinician or service; by default
clinician if the key file holds it, else monitor, else service. A key file missing,
malformed or readable by others is a usage error ({EXIT_USAGE}).

The port comes from --port or the PUMPGUARD_PORT environment variable: a device path
(/dev/ttyUSB0), a PTY printed by `pumpguard emulate`, or a pyserial URL (socket://...).
--timeout (or PUMPGUARD_TIMEOUT) is how long each of the 3 attempts of a request waits
for its answer: raise it for a slow link or a busy machine.
Quantities are exact decimals (at most 6 decimals, at most 2147.483647: the wire's
32 bits); nothing is rounded.
"""


# name -> (handler, parser, needs a pump: a bool, or a function of the parsed args)
_COMMANDS = {
    "ports": (do_ports, argparse_ports, False),
    "emulate": (do_emulate, argparse_emulate, False),
    "flash": (do_flash, argparse_flash, False),
    "info": (do_info, argparse_info, True),
    "status": (do_status, argparse_status, True),
    "start": (do_start, argparse_start, True),
    "titrate": (do_titrate, argparse_titrate, True),
    "stop": (do_stop, argparse_stop, True),
    "alarms": (do_alarms, argparse_alarms, True),
    "log": (do_log, argparse_log, True),
    "key": (do_key, argparse_key, key_needs_pump),
    "report": (do_report, argparse_report, report_needs_pump),
    "library": (do_library, argparse_library, library_needs_pump),
    "monitor": (do_monitor, argparse_monitor, False),
}


def _describe(exc):
    # A refusal's str() names its reason and range (errors.RefusedError).
    if isinstance(exc, (LinkError, ProtocolMismatch)):
        return f"link failure: {exc}"
    return str(exc)


_TIMEOUT_S = 0.5  # a request's answer takes milliseconds on a working link
_TIMEOUT_MAX_S = 60


def _seconds(text):
    # argparse applies it to the environment's default too: a bad PUMPGUARD_TIMEOUT is
    # a usage error, not a traceback.
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= _TIMEOUT_MAX_S:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a timeout: give seconds above 0, at most {_TIMEOUT_MAX_S}"
        )
    return value


def _global_parser():
    p = argparse.ArgumentParser(
        prog="pumpguard",
        description="Drive a pumpguard infusion-pump safety module, or emulate one.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", default=os.environ.get("PUMPGUARD_PORT"), help="the pump's port")
    p.add_argument("--channel", type=int, default=1, metavar="N", help="channel (default 1)")
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=os.environ.get("PUMPGUARD_TIMEOUT", str(_TIMEOUT_S)),
        metavar="S",
        help=f"seconds each attempt waits for an answer (default {_TIMEOUT_S})",
    )
    p.add_argument(
        "--key",
        default=os.environ.get("PUMPGUARD_KEY") or None,
        metavar="FILE",
        help="the board's key file (default: the key store's file for the board)",
    )
    p.add_argument(
        "--role",
        default=os.environ.get("PUMPGUARD_ROLE") or None,
        choices=("monitor", "clinician", "service"),
        help="the role to speak as (default: clinician, else monitor, else service)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="talk to an emulator started with --insecure (no keys; development only; "
        "`--insecure emulate` starts one)",
    )
    p.add_argument(
        "command", choices=sorted(_COMMANDS), metavar="COMMAND", help="one of: %(choices)s"
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments (COMMAND -h)")
    return p


def main(argv=None, out=None):
    """Run one command; returns the exit code (the console script exits with it)."""
    out = out or sys.stdout
    pump = None
    try:
        # A quantity the wire cannot carry raises UsageError while parsing (quantity.py).
        g = _global_parser().parse_args(argv)
        handler, make_parser, needs_pump = _COMMANDS[g.command]
        args = make_parser().parse_args(g.args)
        args.channel = g.channel
        args.global_port = g.port
        args.key = g.key
        args.global_timeout, args.global_insecure = g.timeout, g.insecure  # monitor connects
        if g.insecure and g.command == "emulate":
            args.insecure = True  # `pumpguard --insecure emulate` is `emulate --insecure`
        elif g.insecure and g.command == "flash":
            raise UsageError(
                "--insecure is the emulator's development mode: a flash always provisions "
                "keys (the check before it and its verify speak with them)"
            )
        # A command may speak as a role of its own by default (`key rotate`: service).
        args.role = g.role or getattr(args, "session_role", None)
        if callable(needs_pump):
            needs_pump = needs_pump(args)
        if needs_pump:
            if not g.port:
                raise UsageError("no port: give --port PORT or set PUMPGUARD_PORT")
            # one-shot: its silence after is no alarm
            pump = connect(
                g.port,
                timeout=g.timeout,
                supervise=0,
                key=g.key,
                role=args.role,
                insecure=g.insecure,
            )
        handler(pump, args, out)
        return EXIT_OK
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code
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
