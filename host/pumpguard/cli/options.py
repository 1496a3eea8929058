"""What every command's parser shares: one-line usage errors, the global options (given
before or after the command), and the value types that check an argument while it is
parsed, so a bad one is a usage error before anything is sent.

A usage error is one line on stderr, ``pumpguard: <command>: <what was wrong and what
is allowed>; see pumpguard <command> --help``, and exit code 2: argparse's own errors
too (its usage block is left out: the pointer to --help stands in for it).
"""

import argparse
import os
from typing import NoReturn, cast

from ..api import keys
from ..api.quantity import to_micro
from ..errors import UsageError

TIMEOUT_S = 0.5  # a request's answer takes milliseconds on a working link
_TIMEOUT_MAX_S = 60
_CHANNEL_MAX = 255  # the wire's u8
_ALARM_ID_MAX = 0xFFFF  # the wire's u16


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are ``UsageError``s (main() prints the one line)
    and that takes no abbreviated option: ``flash --key`` must never be ``--keys``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message) -> NoReturn:
        command = self.prog.partition(" ")[2]
        where = f"{command}: " if command else ""
        raise UsageError(f"{where}{message}; see {self.prog} --help")


def command_parser(name, description, **kwargs):
    """A command's parser (``pumpguard NAME``); main() adds it as a subcommand."""
    return Parser(prog="pumpguard " + name, description=description, **kwargs)


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 < value <= _TIMEOUT_MAX_S:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a timeout: give seconds above 0, at most {_TIMEOUT_MAX_S}"
        )
    return value


def _whole(text, what, lo, hi, hint=""):
    try:
        value = int(text)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}: give {lo} to {hi}{hint}")
    return value


def channel_number(text):
    return _whole(text, "a channel", 1, _CHANNEL_MAX, " (channels count from 1)")


def alarm_id(text):
    return _whole(text, "an alarm id", 0, _ALARM_ID_MAX, " (pumpguard alarms lists them)")


def tcp_port(text):
    return _whole(text, "a TCP port", 0, 65535, " (0 picks a free one)")


def quantity(what):
    def parse(text):
        try:
            to_micro(text, what)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = what  # argparse names the type in its messages
    return parse


class Concentration(argparse.Action):
    """--concentration VALUE UNIT: VALUE checked as a quantity while parsing, so a bad
    one is a usage error before anything is sent."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            to_micro(cast(list, values)[0], "concentration")  # nargs=2: [VALUE, UNIT]
        except ValueError as exc:
            parser.error(f"argument {option_string}: {exc}")
        setattr(namespace, self.dest, values)


# (flags, argparse keywords): main() reads each dest; an environment variable stands in
# for an option not given (settle()).
GLOBAL_OPTIONS = (
    (
        ("-p", "--port"),
        {
            "dest": "port_given",
            "metavar": "PORT",
            "help": "the pump's port: a device path, a PTY, a pyserial URL, or auto (the "
            "serial port a pumpguard board answers on); default $PUMPGUARD_PORT",
        },
    ),
    (
        ("--channel",),
        {"type": channel_number, "metavar": "N", "help": "the channel (default 1)"},
    ),
    (
        ("--timeout",),
        {
            "dest": "global_timeout",
            "type": seconds,
            "metavar": "S",
            "help": f"seconds each attempt waits for an answer (default $PUMPGUARD_TIMEOUT, "
            f"else {TIMEOUT_S})",
        },
    ),
    (
        ("--key",),
        {
            "metavar": "FILE",
            "help": "the board's key file (default $PUMPGUARD_KEY, else the key store's "
            "file for the board)",
        },
    ),
    (
        ("--role",),
        {
            "choices": keys.ROLES,
            "metavar": "ROLE",
            "help": "monitor, clinician or service: the role to speak as (default $PUMPGUARD_ROLE, "
            "else the first of clinician, monitor, service the key file holds)",
        },
    ),
    (
        ("--insecure",),
        {
            "dest": "global_insecure",
            "action": "store_true",
            "help": "talk to an emulator started with --insecure (no keys; development only)",
        },
    ),
)


def add_global_options(parser, after_command):
    """The global options on ``parser``: the top-level one, or (``after_command``) a
    command's, where an option not given leaves the value given before the command.
    An option the command defines itself is the command's (flash's --port, emulate's
    --insecure)."""
    title = "global options (also before the command)" if after_command else "global options"
    group = parser.add_argument_group(title)
    for flags, options in GLOBAL_OPTIONS:
        if after_command:
            options = {**options, "default": argparse.SUPPRESS}
        try:
            group.add_argument(*flags, **options)
        except argparse.ArgumentError:  # the command's own option of that name
            continue


def settle(args):
    """The global options' values once parsed: the environment's for those not given,
    checked as the options are; ``port_given`` (None: not given) and ``global_port``."""
    env = os.environ
    args.global_port = args.port_given or env.get("PUMPGUARD_PORT") or None
    if args.channel is None:
        args.channel = 1
    if args.global_timeout is None:
        text = env.get("PUMPGUARD_TIMEOUT") or str(TIMEOUT_S)
        try:
            args.global_timeout = seconds(text)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"PUMPGUARD_TIMEOUT: {exc}") from None
    args.key = args.key or env.get("PUMPGUARD_KEY") or None
    role = args.role or env.get("PUMPGUARD_ROLE") or None
    if role is not None and role not in keys.ROLES:
        raise UsageError(f"PUMPGUARD_ROLE {role!r} is not a role: give {', '.join(keys.ROLES)}")
    # A command may speak as a role of its own by default (`key rotate`: service).
    args.role = role or getattr(args, "session_role", None)


def channel(pump, args):
    """``--channel``, once the pump said how many it has (on_pump())."""
    return on_pump(pump, args.channel, "--channel")


def on_pump(pump, ch, named):
    """Channel ch (the command line's ``named``) once the pump said how many it has: a
    usage error, before the command is sent, for one it lacks."""
    if ch > pump.channels:
        raise UsageError(f"{named} {ch}: this pump has channels 1 to {pump.channels}")
    return ch


def check_board(name):
    from pumpguard._board import boards

    if name not in boards.names():
        raise UsageError(f"unknown board {name!r} (known: {', '.join(boards.names())})")
