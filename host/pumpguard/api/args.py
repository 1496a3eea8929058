"""The API's arguments, checked before anything is sent (``Pump``, ``connect()``).

A value of a type the API does not take raises ``WrongType``, one of the right type
outside what is allowed ``BadValue``: both ``UsageError``s, whose message says what was
given and what is allowed. Quantities are quantity.py's. What only the device knows (a
drug's name, a dose unit, an emergency stop's reason, an alarm listed) is the device's
to refuse, with what it allows: here only its type and the wire's size are checked.
"""

import math
import os
from decimal import Decimal
from typing import Any

from pumpguard._board.protocol.text import shown

from ..errors import BadValue, WrongType
from .quantity import to_micro

ATTEMPTS_MAX = 100  # a retry count past this is a typo, not a plan
# The longest wait any call takes (s): select() and pyserial overflow somewhere past it.
SECONDS_MAX = 86400
_SHOWN = 40  # characters of a value an error message quotes


def said(value: object) -> str:
    """A value as a message quotes it: its repr, clipped; an int too long for its repr
    to be worth reading (or made at all: past 4300 digits repr() raises) by its size."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"<an int of {value.bit_length()} bits>"
    return shown(value, _SHOWN)


def given(value: object) -> str:
    """A value as a message quotes it, and its type."""
    return f"{said(value)} (a {type(value).__name__})"


def whole(value: object, what: str, least: int, most: int, of: str = "") -> int:
    """An int (never a bool) from least to most; ``of`` says whose range it is."""
    allowed = f"{least} to {most}{of}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise WrongType(
            f"{what} must be a whole number (an int) from {allowed}, not {given(value)}"
        )
    if not least <= value <= most:
        raise BadValue(f"{what} {said(value)} is out of range: allowed {allowed}")
    return value


def channel(value: object, channels: int) -> int:
    """A channel number of a pump with ``channels`` channels (numbered from 1)."""
    return whole(value, "channel", 1, channels, " (this pump's channels)")


def seconds(value: object, what: str, positive: bool = False) -> float:
    """A duration in seconds (int, float or Decimal: not a dose, so a float is exact
    enough), finite, from 0 (or above it) to SECONDS_MAX."""
    allowed = f"{'above 0' if positive else 'from 0'} to {SECONDS_MAX} s"
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise WrongType(f"{what} must be a number of seconds {allowed}, not {given(value)}")
    # NaN compares with nothing (a Decimal's raises), and math.isfinite() takes no big
    # int nor a signalling NaN: each type is asked in its own way.
    if isinstance(value, Decimal):
        finite = value.is_finite()
    else:
        finite = not isinstance(value, float) or math.isfinite(value)
    if not (finite and 0 <= value <= SECONDS_MAX) or (positive and not value):
        raise BadValue(f"{what} {said(value)} s is out of range: allowed {allowed}")
    return float(value)


def flag(value: object, what: str) -> bool:
    """True or False, never a value taken for one (an override="no" would be true)."""
    if not isinstance(value, bool):
        raise WrongType(f"{what} must be True or False, not {given(value)}")
    return value


def name(value: object, what: str, most: int) -> str:
    """Text the wire carries as an identifier of at most ``most`` UTF-8 bytes."""
    if not isinstance(value, str):
        raise WrongType(f"{what} must be text (a str) of at most {most} bytes, not {given(value)}")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it
        raise BadValue(f"{what} {given(value)} is not valid text: give UTF-8 text") from None
    if size > most:
        raise BadValue(f"{what} {given(value)} is {size} bytes long: allowed at most {most}")
    return value


def one_of(value: object, what: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (a str)."""
    allowed = ", ".join(choices)
    if not isinstance(value, str):
        raise WrongType(f"{what} must be one of {allowed} (a str), not {given(value)}")
    if value not in choices:
        raise BadValue(f"{what} {value!r} is not one of {allowed}")
    return value


def path(value: object, what: str) -> str:
    """A file's path: a str or an os.PathLike (never an int: open() takes one for a file
    descriptor)."""
    if not isinstance(value, (str, os.PathLike)):
        raise WrongType(f"{what} must be a file path (a str or os.PathLike), not {given(value)}")
    text = os.fspath(value)
    if not isinstance(text, str):  # a PathLike of bytes
        raise WrongType(f"{what} must be a file path of text, not {given(value)}")
    return text


def concentration(value: Any, unit_most: int) -> tuple[int | None, str]:
    """``"16 mcg/mL"`` or ``("16", "mcg/mL")`` (None: not given) as the wire's
    (micro-scaled value, unit); the unit is the device's to know."""
    if value is None:
        return None, ""
    allowed = "'VALUE UNIT' or (VALUE, UNIT), e.g. '16 mcg/mL'"
    parts = value.split() if isinstance(value, str) else value
    if not isinstance(parts, (tuple, list)):
        raise WrongType(f"concentration must be {allowed}, not {given(value)}")
    if len(parts) != 2:
        raise BadValue(f"concentration must be {allowed}, not {given(value)}")
    number, unit = parts
    return to_micro(number, "concentration"), name(unit, "concentration unit", unit_most)
