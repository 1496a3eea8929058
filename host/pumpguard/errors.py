"""The errors of the pumpguard host tool, one class per layer: one tree, under
``PumpguardError``, for everything the package raises on purpose (the API, the CLI,
the emulator, the bundle and the flash).

The CLI catches PumpguardError in one place, prints "pumpguard: <message>" and exits
with the class's exit code: each class carries its documented code (``pumpguard
--help``), the one source of them.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pumpguard._board.protocol import reasons
from pumpguard._board.protocol.text import duration

EXIT_OK = 0  # done
EXIT_ERROR = 1  # anything else
EXIT_USAGE = 2  # bad option or value; nothing was sent
EXIT_REFUSED = 3  # refused by the safety layer
EXIT_LINK = 4  # no answer, or a device that speaks another protocol
EXIT_AUTH = 5  # the board refused the key, or the device failed its proof


def reason_name(number: int) -> str:
    """The stable name of a reason's wire number (protocol/reasons.py), the one place
    the host turns one into the other: "above_hard_max" for 24, "unknown" for
    reasons.UNKNOWN (the device logged a reason its own table lacks: a firmware bug),
    "reason N" for a number this host's table lacks (a newer firmware)."""
    if number == reasons.UNKNOWN:
        return "unknown"
    return reasons.NAME.get(number, f"reason {number}")


class PumpguardError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: int = EXIT_ERROR


class UsageError(PumpguardError):
    """A bad option, argument or value, on the command line or given to the API;
    nothing was sent."""

    exit_code = EXIT_USAGE


class BadValue(UsageError, ValueError):
    """An argument the API was given has the right type but a value it cannot send
    (a dose with seven decimals, channel 300); also a ValueError, as Python's own are."""


class WrongType(UsageError, TypeError):
    """An argument of a type the API does not take (a float for a dose: a float may
    already be inexact); also a TypeError, as Python's own are."""


class KeyFileError(UsageError):
    """A key file missing, unreadable, malformed, readable by others, or without the
    role asked for; or no key at all for a board. The message names the file and what
    is wrong, never a key. Nothing was sent that could run."""


class AuthError(PumpguardError):
    """The link's authentication failed: the board refused the key of the role (wrong
    key, a board without keys), the device failed its own proof (it does not hold the
    key: not the board the key file is for), or the device refused a request's tag.
    `may_have_run` as for LinkError."""

    exit_code = EXIT_AUTH

    def __init__(self, message: str, may_have_run: bool = False) -> None:
        super().__init__(message)
        self.may_have_run = may_have_run


class Forbidden(AuthError):
    """The session's role may not send that request ("role monitor may not send
    START (clinician may)"): it did not run."""


class LinkError(PumpguardError):
    """No valid answer over the link. `may_have_run` says whether the device may have
    executed the request (True: a request went out and no answer came back; False: it
    certainly did not run)."""

    exit_code = EXIT_LINK

    def __init__(self, message: str, may_have_run: bool) -> None:
        super().__init__(message)
        self.may_have_run = may_have_run


class NoAnswer(LinkError):
    """Nothing answered the request in any attempt (a device still booting, a dead
    line); `may_have_run` as for LinkError."""


class Busy(LinkError):
    """HELLO found no session free (every slot authenticated, or a handshake in
    progress, SPEC §3): nothing ran; connect() says HELLO again until boot_wait."""


class DeviceReset(LinkError):
    """The device does not know this host's session (it rebooted, or closed the
    session to make room for newer hosts'): it asks for a new HELLO. `may_have_run` as
    for LinkError: True when an earlier attempt may have run before that, or the answer
    came untagged in an authenticated session (anyone could have sent it);
    `first_attempt`: it answered the request's first attempt."""

    def __init__(self, message: str, may_have_run: bool, first_attempt: bool = False) -> None:
        super().__init__(message, may_have_run)
        self.first_attempt = first_attempt


class ProtocolMismatch(PumpguardError):
    """HELLO found a device this host must not talk to. `differences` lists
    (what, host's value, device's value)."""

    exit_code = EXIT_LINK

    def __init__(self, differences: list[tuple[str, Any, Any]]) -> None:
        self.differences = differences
        parts = [f"{what}: host {host}, device {device}" for what, host, device in differences]
        super().__init__("protocol mismatch, refusing to talk: " + "; ".join(parts))


class DeviceError(PumpguardError):
    """The device answered ERROR: the request never reached the safety core.
    As with RefusedError, `code` is the error's name (protocol/SPEC.md) and `number`
    its wire number."""

    def __init__(self, number: int, code: str, message: str) -> None:
        super().__init__(f"device error {code} ({number}): {message}")
        self.number = number
        self.code = code
        self.message = message


class RefusedError(PumpguardError):
    """The safety core refused the command; nothing changed on the device.

    `code` is the reason's stable name ("above_hard_max", see reason_name()), `number`
    its wire number (protocol/reasons.py), `message` the device's text, `allowed`
    (lo, hi, unit) with lo and hi exact ``Decimal`` in unit, as doses are everywhere in
    the API (either may be None), or None when the refusal has no range; `next_at_ms`
    the earliest device uptime the command would be allowed or None, `uptime_ms` the
    device's uptime when it refused. ``str()`` says it all::

        refused (above_hard_max): ... [allowed 0.005 to 0.04 units/min]
    """

    exit_code = EXIT_REFUSED

    def __init__(
        self,
        code: str,
        number: int,
        message: str,
        allowed: tuple[Decimal | None, Decimal | None, str] | None = None,
        next_at_ms: int | None = None,
        uptime_ms: int | None = None,
    ) -> None:
        self.code = code
        self.number = number
        self.message = message
        self.allowed = allowed
        self.next_at_ms = next_at_ms
        self.uptime_ms = uptime_ms
        text = f"refused ({code}): {message}"
        if allowed is not None:
            lo, hi, unit = allowed
            text += f" [allowed {'-' if lo is None else lo} to {'-' if hi is None else hi} {unit}]"
        super().__init__(text + self.when())

    @property
    def wait_ms(self) -> int | None:
        """How long after the refusal the command would be allowed (None: no interval)."""
        if self.next_at_ms is None or self.uptime_ms is None:
            return None
        return max(0, self.next_at_ms - self.uptime_ms)

    def when(self) -> str:
        """ " (next allowed in 1 min 58 s)", or "" when the refusal is not about time."""
        wait = self.wait_ms
        return "" if wait is None else f" (next allowed in {duration(wait)})"


class EmulatorError(PumpguardError):
    """The emulator cannot start (a runtime missing what it needs, a store in use), or
    one of its control commands failed; the message says which and what to do."""


class FirmwareDied(EmulatorError):
    """The firmware stopped running on the emulated board (it raised, a port failed
    under it, or it died on the MicroPython interpreter): as on a board, the watchdog
    then resets it (emulator/server.py)."""


class DeviceAlarm(PumpguardError):
    """An alarm the device raised; `alarm` holds its fields (id, ch, code, priority,
    acked, at_ms, message) as decoded from EV_ALARM or ALARMS_R."""

    def __init__(self, alarm: Mapping[str, Any]) -> None:
        super().__init__(
            f"alarm {alarm['id']} on channel {alarm['ch']} (priority {alarm['priority']}): "
            + alarm["message"]
        )
        self.alarm = alarm
