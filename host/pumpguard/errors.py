"""The errors of the pumpguard host tool, one class per layer.

The CLI catches PumpguardError in one place, prints "pumpguard: <message>" and exits
with the class's exit code.
"""


class PumpguardError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class LinkError(PumpguardError):
    """No valid answer over the link. `may_have_run` says whether the device may have
    executed the request (True: a request went out and no answer came back; False: it
    certainly did not run)."""

    exit_code = 3

    def __init__(self, message, may_have_run):
        super().__init__(message)
        self.may_have_run = may_have_run


class DeviceReset(LinkError):
    """The device rebooted (it asks for a new HELLO); `may_have_run` as for LinkError:
    True when an earlier attempt may have run before the reset."""


class ProtocolMismatch(PumpguardError):
    """HELLO found a device this host must not talk to. `differences` lists
    (what, host's value, device's value)."""

    exit_code = 4

    def __init__(self, differences):
        self.differences = differences
        parts = [f"{what}: host {host}, device {device}" for what, host, device in differences]
        super().__init__("protocol mismatch, refusing to talk: " + "; ".join(parts))


class DeviceError(PumpguardError):
    """The device answered ERROR: the request never reached the safety core."""

    exit_code = 3

    def __init__(self, code, name, message):
        super().__init__(f"device error {name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message


class RefusedError(PumpguardError):
    """The safety core refused the command; nothing changed on the device.
    `code` is the reason's wire number (firmware/reasons.py), `allowed` is
    (lo, hi, unit) in micro-units or None, `next_at_ms` the earliest device time the
    command would be allowed or None."""

    exit_code = 2

    def __init__(self, code, message, allowed=None, next_at_ms=None):
        super().__init__(f"refused (reason {code}): {message}")
        self.code = code
        self.message = message
        self.allowed = allowed
        self.next_at_ms = next_at_ms


class DeviceAlarm(PumpguardError):
    """An alarm the device raised; `alarm` holds its fields (id, ch, code, priority,
    acked, at_ms, message) as decoded from EV_ALARM or ALARMS_R."""

    exit_code = 5

    def __init__(self, alarm):
        super().__init__(
            f"alarm {alarm['id']} on channel {alarm['ch']} (priority {alarm['priority']}): "
            + alarm["message"]
        )
        self.alarm = alarm
