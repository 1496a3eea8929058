"""``flash --port auto``: the board's USB (REPL) port, found by the USB id its MicroPython
enumerates with (the board definition's ``USB_IDS``, as ``mpremote devs`` lists them),
never the ``--link`` port.

mpremote's own ``auto`` takes the first serial port with any VID:PID, which can be the
USB-serial adapter carrying the protocol: raw-REPL bytes sent down the link, and a flash
that hangs. Here exactly one candidate is taken; none or several is a usage error that
lists every port seen, so the engineer can give ``--port PORT``.
"""

import os

from serial.tools import list_ports

from ..errors import UsageError


def _usb_id(port):
    if port.vid is None or port.pid is None:
        return None
    return f"{port.vid:04x}:{port.pid:04x}"


def same_port(a, b):
    """Whether two port names are one device (/dev/serial/by-id/... is /dev/ttyUSB0)."""
    return os.path.realpath(a) == os.path.realpath(b)


def _is_link(port, link):
    return link is not None and same_port(port.device, link)


def _shown(port, link):
    serial = port.serial_number or "-"
    said = f"{port.device} {_usb_id(port) or '-'} serial {serial} ({port.description})"
    return said + (" = --link" if _is_link(port, link) else "")


def repl_port(board, link=None):
    """The device path of the one serial port whose USB id is one of ``board.USB_IDS``
    and that is not ``link``; UsageError otherwise (nothing was sent)."""
    if not board.USB_IDS:
        raise UsageError(f"--port auto: board {board.NAME} has no USB REPL id: give --port PORT")
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    found = [p for p in ports if _usb_id(p) in board.USB_IDS and not _is_link(p, link)]
    if len(found) == 1:
        return found[0].device
    wanted = " or ".join(board.USB_IDS)
    if found:
        raise UsageError(
            f"--port auto: {len(found)} {board.NAME} boards ({wanted}): "
            + "; ".join(_shown(p, link) for p in found)
            + ": give --port with the one to flash"
        )
    raise UsageError(
        f"--port auto: no {board.NAME} running MicroPython (USB {wanted})"
        + (" other than --link" if link else "")
        + " among the serial ports: "
        + ("; ".join(_shown(p, link) for p in ports) or "none")
        + ". Plug it in (a board without MicroPython: install it first), or give --port PORT"
    )
