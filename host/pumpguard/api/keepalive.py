"""Supervision from the host: ``Pump.keepalive()``'s heartbeat thread and the checks of
a heartbeat interval (protocol/SPEC.md §3, "Supervision and link silence")."""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ..errors import PumpguardError, UsageError
from . import args

if TYPE_CHECKING:  # client.py imports this module: the name only, for the hints
    from .client import Pump


def interval(value: object, least: int) -> int:
    """A heartbeat interval in whole seconds, least..65535, or a UsageError."""
    return args.whole(value, "heartbeat interval (s)", least, 0xFFFF)


def may_supervise(role: str, supervise_s: int | bool) -> None:
    """Supervision (and the sign of life it asks for) is the clinician's, as the device
    rules (catalog.MAY: SUPERVISE; a HELLO's supervise_s from another role is ignored):
    a UsageError, before anything is sent, for another role's."""
    if supervise_s and role != "clinician":
        raise UsageError(
            f"supervision is the clinician's role: this session is {role} (connect with "
            "the clinician's key and role, or without supervise=/keepalive()); nothing "
            "was sent"
        )


@contextlib.contextmanager
def keepalive(pump: "Pump", interval_s: int) -> Iterator["Pump"]:
    """Declare interval_s (SUPERVISE), heartbeat from a thread while the block runs,
    then declare what was declared before (SUPERVISE 0: the goodbye, unless the pump
    was connected with supervise=). pump.supervise(s) and pump.heartbeat() are the
    two requests; the pump serialises them with the caller's."""
    interval_s = interval(interval_s, 1)
    previous = pump.supervise_s
    pump.supervise(interval_s)
    stop = threading.Event()
    beats = threading.Thread(target=_beat, args=(pump, interval_s, stop), name="keepalive")
    beats.daemon = True
    beats.start()
    failed = False
    try:
        yield pump
    except BaseException:
        failed = True
        raise
    finally:
        stop.set()
        beats.join()
        try:
            pump.supervise(previous)
        except PumpguardError:
            if not failed:  # never hide the error the block raised
                raise


_PROBE_S = 0.05  # host seconds before the first heartbeats, which measure the clock


def _beat(
    pump: "Pump",
    interval_s: int,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    # A heartbeat every interval_s of the DEVICE's clock, which the device's silence
    # timeout counts in: an emulator run with --time-scale 10 lives ten of its seconds
    # in one of ours, and beats every interval_s of ours would be silences of ten times
    # that to it (link_lost). Its uptime in each answer measures the rate; a board's is
    # ours, and a reset (uptime back to 0) changes nothing. The first beats come soon,
    # to measure it before a slow one could pass the timeout.
    # A failed heartbeat is kept for the caller to see and the next one tried: a
    # glitch must not end supervision, and the caller's own requests still report it.
    wait = min(interval_s, _PROBE_S)
    last = None  # (device uptime ms, host clock s) of the last heartbeat answered
    while not stop.wait(wait):
        try:
            uptime_ms = pump.heartbeat().uptime_ms
        except PumpguardError as exc:
            pump.keepalive_error = exc
            continue
        now = clock()
        if last is not None and now > last[1]:
            rate = (uptime_ms - last[0]) / 1000 / (now - last[1])  # device s per host s
            wait = interval_s / max(1.0, rate)
        last = (uptime_ms, now)
