"""Which serial ports a pumpguard board answers on: ``pumpguard ports`` and ``--port
auto``.

    for port, probe in discover.survey():       # every serial port pyserial lists
        print(port.device, port.vid_pid, probe.said)
    discover.find()                             # the first port a board answers HELLO on

A probe asks twice, each with one short timeout:

1. A frame that opens no session and runs nothing (INFO without a sid, answered ERROR
   hello_required by the firmware's loop, as emulator/probe.py asks). A port that does
   not answer it gets nothing else. The port may be a MicroPython board's USB REPL
   (a Pico's, beside its protocol UART): there Ctrl-C (0x03) stops the running program,
   the pump loop included, and Ctrl-D (0x04) or a line's end (CR, LF) runs what was
   typed. HELLO carries the protocol version 3, a Ctrl-C, in every frame; this frame's
   bytes are none of those (a test checks it), so the probe never stops a board.
2. Only where the firmware answered: HELLO as the monitor role (the least), for the
   board's identity, or the mismatch that keeps this host from talking to it. No AUTH
   follows: the handshake's slot lapses on the device 2 s later (protocol/SPEC.md §12),
   and nothing is logged.

Emulator PTYs and ``socket://`` URLs are not serial ports pyserial lists: the emulator
prints the port it serves. Probes run in parallel, one thread per port; a port whose
open() hangs (a Bluetooth serial port without its peer) is reported as not answering
and its thread left behind (a daemon).
"""

import secrets
import threading
import time
from dataclasses import dataclass

import serial

from pumpguard._board.protocol import auth, catalog, messages
from pumpguard._board.protocol.decoder import Decoder

from ..errors import NoAnswer
from .link import CRC32, PORT_ERRORS

PROBE_TIMEOUT_S = 0.5  # a board answers in milliseconds; the CLI's --timeout replaces it
_BAUD = 115200  # the protocol link's (boards/*.py)
_OPEN_S = 1.0  # what a port's open() may take beyond the probe's two timeouts
_PROBE_SEQ = 0xFFFF  # its wire bytes hold no REPL control character (see _PROBE)
_HELLO_SEQ = 1
# The sessionless INFO of step 1. Bytes a MicroPython REPL acts on: Ctrl-C interrupts,
# Ctrl-D soft-resets (or runs a raw REPL's buffer), CR and LF end a line.
REPL_ACTS_ON = frozenset(b"\x03\x04\r\n")
_PROBE = messages.to_wire("INFO", _PROBE_SEQ, {}, crc=CRC32)


@dataclass(frozen=True)
class SerialPort:
    """A serial port as pyserial lists it (``mpremote devs``' columns)."""

    device: str  # /dev/ttyUSB0, COM3
    vid_pid: str | None  # "2e8a:0005" for a USB device, else None
    serial_number: str | None
    description: str  # "n/a" when the system gives none
    manufacturer: str | None


@dataclass(frozen=True)
class Probe:
    """What answered on a port."""

    port: str
    answers: bool  # a pumpguard firmware answered there
    # ... and its HELLO_R this host's protocol and schema: a board to talk to (None:
    # no HELLO asked; a connect() says it next, and is told a mismatch)
    matches: bool | None
    said: str  # one line: the board's identity, or what stood in the way
    board: str | None = None
    board_id: str | None = None
    firmware: str | None = None


def serial_ports():
    """Every serial port pyserial lists, by device name."""
    from serial.tools import list_ports

    found = []
    for p in sorted(list_ports.comports(), key=lambda p: p.device):
        vid_pid = None if p.vid is None else f"{p.vid:04x}:{p.pid or 0:04x}"
        found.append(SerialPort(p.device, vid_pid, p.serial_number, p.description, p.manufacturer))
    return found


def probe(url, timeout=PROBE_TIMEOUT_S, hello=True):
    """Ask ``url`` (a device path or a pyserial URL) whether a pumpguard board answers;
    ``hello``: and who it is (HELLO)."""
    try:
        port = serial.serial_for_url(url, baudrate=_BAUD, timeout=timeout)
    except (*PORT_ERRORS, ValueError) as exc:
        return Probe(url, False, False, f"cannot open: {exc}")
    try:
        port.reset_input_buffer()
        port.write(_PROBE)
        if _answer(port, _PROBE_SEQ, timeout) is None:
            return Probe(url, False, False, f"no pumpguard answer within {timeout:g} s")
        if not hello:
            return Probe(url, True, None, "pumpguard firmware (HELLO not asked)")
        return _hello(port, url, timeout)
    except PORT_ERRORS as exc:
        return Probe(url, False, False, f"port failed: {exc}")
    finally:
        port.close()


def _hello(port, url, timeout):
    fields = {
        "protocol": catalog.PROTOCOL_VERSION,
        "schema": catalog.SCHEMA_HASH,
        "host": "pumpguard-ports",
        "supervise_s": 0,
        "wall_ms": 0,  # the host's clock is for the sessions that authenticate
        "role": catalog.ROLES["monitor"],
        "nonce": secrets.token_bytes(auth.NONCE),
    }
    port.write(messages.to_wire("HELLO", _HELLO_SEQ, fields, crc=CRC32))
    frame = _answer(port, _HELLO_SEQ, timeout)
    if frame is None:
        return Probe(url, True, False, f"pumpguard firmware, but no HELLO_R within {timeout:g} s")
    try:
        reply = messages.decode(frame.msg_id, frame.payload)
    except ValueError as exc:
        return Probe(url, True, False, f"pumpguard firmware, its answer unreadable: {exc}")
    if frame.msg_id == catalog.ID["ERROR"]:
        if reply["code"] == catalog.ERR_BUSY:  # the right protocol: connect() waits for room
            return Probe(url, True, True, f"pumpguard board, {reply['message']}")
        return Probe(
            url, True, False, f"pumpguard board this host cannot talk to: {reply['message']}"
        )
    if frame.msg_id != catalog.ID["HELLO_R"]:
        return Probe(
            url, True, False, f"pumpguard firmware, answered HELLO with {frame.msg_id:#04x}"
        )
    said = f"board {reply['board']} {reply['board_id']}, {reply['firmware']}"
    if not reply["auth"]:
        said += " (insecure: no keys)"
    return Probe(url, True, True, said, reply["board"], reply["board_id"], reply["firmware"])


def _answer(port, seq, timeout):
    """The frame answering request ``seq`` within ``timeout`` seconds, or None. Events
    and requests are skipped: a port that echoes (a loopback plug) is no board."""
    decoder = Decoder(crc=CRC32)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        port.timeout = left
        for frame in decoder.decode(port.read(port.in_waiting or 1)):
            answer = not (catalog.is_event(frame.msg_id) or catalog.is_request(frame.msg_id))
            if frame.seq == seq and answer:
                return frame
    return None


def survey(ports=None, timeout=PROBE_TIMEOUT_S, hello=True):
    """``(SerialPort, Probe)`` for each of ``ports`` (default: ``serial_ports()``)."""
    ports = serial_ports() if ports is None else ports
    return list(zip(ports, probe_all([p.device for p in ports], timeout, hello), strict=True))


def probe_all(urls, timeout=PROBE_TIMEOUT_S, hello=True):
    """``probe()`` of each of ``urls``, in parallel: within two timeouts and a second
    for the opens."""
    results = {}
    threads = []
    for url in urls:
        thread = threading.Thread(
            target=lambda url=url: results.__setitem__(url, probe(url, timeout, hello)),
            name=f"probe {url}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    deadline = time.monotonic() + 2 * timeout + _OPEN_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    hung = f"no answer: the port did not open within {2 * timeout + _OPEN_S:g} s"
    return [results.get(url) or Probe(url, False, False, hung) for url in urls]


def boards(timeout=PROBE_TIMEOUT_S, ports=None, hello=True):
    """The probes of the ports where a pumpguard board answers (``hello``: its HELLO,
    in this host's protocol), in device order, and every probe made (what was tried,
    for a message).

    Without ``hello`` a board is asked nothing that opens a session: a HELLO's
    handshake holds one of the device's slots for 2 s, and a HELLO that finds them
    full (4 hosts' sessions, and this handshake) waits that long."""
    tried = survey(ports, timeout, hello)
    return [p for _, p in tried if p.matches is not False and p.answers], [p for _, p in tried]


def find(timeout=PROBE_TIMEOUT_S, ports=None):
    """The first serial port where a pumpguard board answers HELLO; ``NoAnswer`` (a
    LinkError) naming every port tried when none does."""
    found, tried = boards(timeout, ports)
    if not found:
        raise NoAnswer(nobody(tried), may_have_run=False)
    return found[0].port


def nobody(tried):
    """The one line saying no board answered, and what was tried."""
    where = "; ".join(f"{p.port}: {p.said}" for p in tried) or "pyserial lists no serial port"
    return (
        f"no pumpguard board answers on any serial port (tried: {where}); an "
        "emulator's PTY is not listed: give the port `pumpguard emulate` printed"
    )
