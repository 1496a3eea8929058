"""Supervision from the host: ``Pump.keepalive()``'s heartbeat thread and the checks of
a heartbeat interval (protocol/SPEC.md §3, "Supervision and link silence")."""

import contextlib
import threading

from ..errors import BadValue, PumpguardError, UsageError, WrongType


def interval(value, least):
    """A heartbeat interval in whole seconds, least..65535, or a UsageError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(f"a heartbeat interval is whole seconds (an int), not {value!r}")
    if not least <= value <= 0xFFFF:
        raise BadValue(f"heartbeat interval {value} s: from {least} to 65535")
    return value


def may_supervise(role, supervise_s):
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
def keepalive(pump, interval_s):
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


def _beat(pump, interval_s, stop):
    # A failed heartbeat is kept for the caller to see and the next one tried: a
    # glitch must not end supervision, and the caller's own requests still report it.
    while not stop.wait(interval_s):
        try:
            pump.heartbeat()
        except PumpguardError as exc:
            pump.keepalive_error = exc
