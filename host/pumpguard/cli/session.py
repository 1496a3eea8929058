"""How a command reaches its pump: the port (``--port``, ``PUMPGUARD_PORT``, or
``auto``: the one pumpguard board that answers on this machine's serial ports), and the
session opened on it, whose link failures say what to check."""

from pumpguard._board.firmware import VERSION
from pumpguard._board.protocol import catalog

from ..api import discover
from ..api.client import connect
from ..errors import Busy, LinkError, NoAnswer, ProtocolMismatch, UsageError


def pump_port(args):
    """The port the command talks on: ``args.global_port``, ``auto`` resolved."""
    port = args.global_port
    if not port:
        raise UsageError("no port: give --port PORT (-p PORT), --port auto, or set PUMPGUARD_PORT")
    if port != "auto":
        return port
    # The probe opens no session (discover.boards()); the connect() that follows says
    # the HELLO, and is told a mismatch.
    found, tried = discover.boards(args.global_timeout, hello=False)
    if not found:
        raise NoAnswer(discover.nobody(tried), may_have_run=False)
    if len(found) > 1:
        # Which pump a command reaches is never a guess: a start on the wrong patient's.
        # Named by their HELLO, to choose from.
        named = discover.probe_all([p.port for p in found], args.global_timeout)
        boards = "; ".join(f"{p.port}: {p.said}" for p in named)
        raise UsageError(
            f"--port auto: {len(found)} pumpguard boards answer ({boards}): give --port "
            "with the one you mean"
        )
    return found[0].port


def open_pump(args, **options):
    """``connect()`` to ``args.pump_port`` with the global options; a link failure
    there says what to check."""
    port = args.pump_port
    try:
        return connect(
            port,
            timeout=args.global_timeout,
            key=args.key,
            role=args.role,
            insecure=args.global_insecure,
            **options,
        )
    except ProtocolMismatch as exc:
        exc.add_note(_MISMATCH)  # main() prints an error's notes on its line
        raise
    except LinkError as exc:
        if not isinstance(exc, Busy):  # Busy answered: its message says why it has no room
            exc.add_note((_SILENT if isinstance(exc, NoAnswer) else _UNOPENED).format(port=port))
        raise


_SILENT = (
    "Check: is the emulator running (`pumpguard emulate` prints its port)? Is {port} the "
    "board's protocol port, not its REPL port (mpremote's)? `pumpguard ports` lists the "
    "serial ports and which of them a pumpguard board answers on"
)
_UNOPENED = (
    "Check the port: `pumpguard ports` lists the serial ports; an emulator's PTY is the "
    "path `pumpguard emulate` printed, there while it runs"
)
_MISMATCH = (
    f"This host is pumpguard {VERSION} (protocol {catalog.PROTOCOL_VERSION}, schema "
    f"{catalog.SCHEMA_HASH:08x}): flash the board with it, or use the pumpguard the "
    "board was flashed with"
)
