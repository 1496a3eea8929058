"""What the pytest plugin asks a board (or an emulator): the session's HELLO check, its
identity for the JUnit report, its event log's tail for a failing test, and the clean-up
after each test on a board."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import pumpguard
from pumpguard._board.firmware.sessions import HOLD_MS
from pumpguard._board.protocol.text import duration

from . import ANSWER_TIMEOUT_S

# The JUnit testsuite properties of one board, in this order: its identity (as
# `pumpguard log --json` gives it) and the port it answered on.
PROPERTIES = (
    "board",
    "port",
    "board_id",
    "firmware",
    "bundle",
    "library",
    "library_version",
    "library_crc",
)
LOG_TAIL = 40  # entries of the event log a failing test's report shows
# A HELLO never followed by its AUTH (a test of a keyless, refused or stranger's handshake)
# holds its slot on the device for HOLD_MS (SPEC §3, firmware/sessions.py), and on a board
# whose other slots earlier tests' sessions fill, clean()'s HELLO is refused busy until
# then. clean() says HELLO again for that long and a margin (a loaded machine answers
# late); busy after that, something holds the board that no handshake's hold explains,
# and clean() fails with it.
CLEAN_BUSY_S = HOLD_MS / 1000 + 3.0
_BUSY_PAUSE_S = 0.25  # between clean()'s HELLOs the device had no room for
# A test's board, for its report: () -> (port, key file or None); read when the test
# fails, so an emulator powered on again on a new port is found there.
TARGET = pytest.StashKey[object]()


def _connect(port, key):
    # boot_wait 0: a board that says nothing after 3 attempts is not booting, it is
    # not there (connect()'s default waits 10 s more, in every test).
    return pumpguard.connect(port, key=key, timeout=ANSWER_TIMEOUT_S, boot_wait=0)


def identity(pump, port):
    """The board's PROPERTIES, as text (the CRC in hex, as `pumpguard info` shows it)."""
    found = pumpguard.report.identity(pump)
    found.update(port=port, library_crc=f"{found['library_crc']:08x}")
    return {name: str(found[name]) for name in PROPERTIES}


def check(port, board, key):
    """HELLO on ``port``: (its identity, None), or (None, what is wrong and what to check)."""
    try:
        with _connect(port, key) as pump:
            found = identity(pump, port)
    except pumpguard.LinkError as exc:
        return None, (
            f"pumpguard: --pump-port {port}: no pumpguard board answers HELLO there ({exc}): "
            f"check that the board is powered and flashed (pumpguard flash --board {board}) "
            "and that the port is its protocol link, not its REPL's USB port "
            "(`pumpguard ports` lists the ports)"
        )
    except (pumpguard.KeyFileError, pumpguard.AuthError) as exc:
        return None, (
            f"pumpguard: --pump-port {port}: the board's key: {exc} (give --pump-key FILE, "
            "PUMPGUARD_KEY, or the key store's <board_id>.json that pumpguard flash wrote)"
        )
    except pumpguard.PumpguardError as exc:  # another protocol, a device error
        return None, (
            f"pumpguard: --pump-port {port}: {exc} (flash it with this pumpguard's "
            f"firmware: pumpguard flash --board {board})"
        )
    if found["board"] != board:
        return None, (
            f"pumpguard: --pump-port {port} is a {found['board']!r} board, not {board!r}: "
            f"give --pump-board {found['board']}, or the port of a {board}"
        )
    return found, None


def check_all(ports, board, key):
    """``check()`` every port at once (N silent boards take one timeout, not N):
    (the identities, the problems in the ports' order)."""
    with ThreadPoolExecutor(len(ports)) as pool:
        results = list(pool.map(lambda port: check(port, board, key), ports))
    return [found for found, _ in results if found], [problem for _, problem in results if problem]


def log_tail(port, key):
    """The last LOG_TAIL entries of the board's event log as text, or why there are none."""
    try:
        with _connect(port, key) as pump:
            entries = pump.log()[-LOG_TAIL:]
    except pumpguard.PumpguardError as exc:
        return f"(no event log: {exc})\n"
    lines = []
    boot = None
    for e in entries:
        if e.boot_id != boot:
            boot = e.boot_id
            lines.append(f"-- boot {boot:08x}")
        when = f"uptime {duration(e.at_ms)}"
        lines.append(f"{e.seq:5d} {when:>18}  ch{e.channel}  {e.kind:<8} {e.code} {e.text}")
    return "\n".join(lines) + "\n"


def _connect_when_free(port, key, wait):
    deadline = time.monotonic() + wait
    while True:
        try:
            return _connect(port, key)
        except pumpguard.Busy as exc:
            if time.monotonic() >= deadline:
                raise pumpguard.Busy(
                    f"{exc} (still busy after {wait:g} s of HELLOs: longer than a "
                    f"handshake holds a slot, {HOLD_MS} ms)",
                    False,
                ) from exc
            time.sleep(_BUSY_PAUSE_S)


def clean(port, key, busy_wait=CLEAN_BUSY_S):
    """Leave a board as the next test expects it: a real board keeps its state between
    tests, so every channel still infusing is emergency-stopped, the patient forgotten
    (the next test's start at another weight is another patient's) and every alarm
    acked. A device busy with a handshake the test left is asked again for
    ``busy_wait`` seconds (CLEAN_BUSY_S), then its Busy is raised."""
    with _connect_when_free(port, key, busy_wait) as pump:
        for ch in range(1, pump.channels + 1):
            if pump.status(ch).state not in ("idle", "stopped"):
                pump.emergency_stop(ch, "clinician")
        if pump.patient().weight_kg is not None:
            pump.patient(clear=True)
        for alarm in pump.alarms():
            if not alarm.acked:
                pump.ack(alarm.id)
