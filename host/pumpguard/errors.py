"""The errors of the pumpguard host tool, one class per layer.

The CLI catches PumpguardError in one place, prints "pumpguard: <message>" and exits
with the class's exit code: each class carries its documented code (``pumpguard
--help``), the one source of them.
"""

from .quantity import duration_text

EXIT_OK = 0  # done
EXIT_ERROR = 1  # anything else
EXIT_USAGE = 2  # bad option or value; nothing was sent
EXIT_REFUSED = 3  # refused by the safety layer
EXIT_LINK = 4  # no answer, or a device that speaks another protocol


class PumpguardError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = EXIT_ERROR


class UsageError(PumpguardError):
    """Bad command-line input found after parsing; nothing was sent."""

    exit_code = EXIT_USAGE


class LinkError(PumpguardError):
    """No valid answer over the link. `may_have_run` says whether the device may have
    executed the request (True: a request went out and no answer came back; False: it
    certainly did not run)."""

    exit_code = EXIT_LINK

    def __init__(self, message, may_have_run):
        super().__init__(message)
        self.may_have_run = may_have_run


class DeviceReset(LinkError):
    """The device rebooted (it asks for a new HELLO); `may_have_run` as for LinkError:
    True when an earlier attempt may have run before the reset."""


class ProtocolMismatch(PumpguardError):
    """HELLO found a device this host must not talk to. `differences` lists
    (what, host's value, device's value)."""

    exit_code = EXIT_LINK

    def __init__(self, differences):
        self.differences = differences
        parts = [f"{what}: host {host}, device {device}" for what, host, device in differences]
        super().__init__("protocol mismatch, refusing to talk: " + "; ".join(parts))


class DeviceError(PumpguardError):
    """The device answered ERROR: the request never reached the safety core."""

    def __init__(self, code, name, message):
        super().__init__(f"device error {name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message


class RefusedError(PumpguardError):
    """The safety core refused the command; nothing changed on the device.
    `code` is the reason's wire number (firmware/reasons.py), `allowed` is
    (lo, hi, unit) in micro-units or None, `next_at_ms` the earliest device uptime the
    command would be allowed or None, `uptime_ms` the device's uptime when it refused."""

    exit_code = EXIT_REFUSED

    def __init__(self, code, message, allowed=None, next_at_ms=None, uptime_ms=None):
        self.code = code
        self.message = message
        self.allowed = allowed
        self.next_at_ms = next_at_ms
        self.uptime_ms = uptime_ms
        super().__init__(f"refused (reason {code}): {message}{self.when()}")

    @property
    def wait_ms(self):
        """How long after the refusal the command would be allowed (None: no interval)."""
        if self.next_at_ms is None or self.uptime_ms is None:
            return None
        return max(0, self.next_at_ms - self.uptime_ms)

    def when(self):
        """ " (next allowed in 1 min 58 s)", or "" when the refusal is not about time."""
        wait = self.wait_ms
        return "" if wait is None else f" (next allowed in {duration_text(wait)})"


class DeviceAlarm(PumpguardError):
    """An alarm the device raised; `alarm` holds its fields (id, ch, code, priority,
    acked, at_ms, message) as decoded from EV_ALARM or ALARMS_R."""

    def __init__(self, alarm):
        super().__init__(
            f"alarm {alarm['id']} on channel {alarm['ch']} (priority {alarm['priority']}): "
            + alarm["message"]
        )
        self.alarm = alarm
