"""Exact decimal quantities: what a user types, turned into the wire's integers.

Every dose, weight, concentration, volume and rate travels as an integer count of
millionths of its named unit ("micro-scaled", see ARCHITECTURE.md): ``"0.04"`` units/min
is ``40000``, ``"70"`` kg is ``70000000``. The conversion is exact (``decimal``, never
``float``); text with more than six decimals is refused instead of being rounded, since
silently rounding a user's dose is exactly the kind of slip the pump exists to catch.
A value the wire cannot carry (its quantities are i32, protocol/catalog.py) is refused
too, with ``BadValue``, a ``PumpguardError``: the CLI says so and exits 2.
"""

from decimal import Decimal, InvalidOperation

from pumpguard._board.protocol.text import clip, shown

from ..errors import BadValue, UsageError, WrongType

SCALE = 1_000_000
_DECIMALS = 6
# The largest quantity the wire carries: i32 millionths (protocol/catalog.py, type Q).
WIRE_MAX = Decimal(2**31 - 1).scaleb(-_DECIMALS)
_SHOWN = 40  # characters of a value an error message quotes


def to_micro(value: str | Decimal | int, what: str = "quantity") -> int:
    """Return ``value`` (str, Decimal or int) as an integer count of millionths.

    ``what`` names the quantity in error messages ("dose", "weight"...). Raises
    ``WrongType`` (a ``TypeError``) for a float or a bool (a float may already be
    inexact: 0.1 is not 0.1), and ``BadValue`` (a ``ValueError``) for text that is not
    a plain decimal number, is negative or carries more than six decimals; and
    ``UsageError`` for a value above ``WIRE_MAX`` (2147.483647), which the CLI reports
    as its own error line rather than as a bad argument. All three are
    ``UsageError``s (the CLI exits 2).

    >>> to_micro("0.04"), to_micro(8), to_micro(Decimal("2.5"))
    (40000, 8000000, 2500000)
    """
    if isinstance(value, float):
        raise WrongType(
            f"{what} must be given exactly as a str, Decimal or int, not the float {value!r} "
            f"(a float may already be inexact: write it as text, '{value}')"
        )
    if isinstance(value, bool):
        raise WrongType(f"{what} must be a number as a str, Decimal or int, not {value!r}")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise BadValue(
                f"{what} {shown(value, _SHOWN)} is not a decimal number: give one such as '0.1'"
            ) from None
    else:
        raise WrongType(
            f"{what} must be a number as a str, Decimal or int, not a {type(value).__name__}"
        )
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # "n", "N", "F": NaN, signalling NaN, Infinity
        raise BadValue(
            f"{what} {shown(value, _SHOWN)} is not a finite number: allowed 0 to {WIRE_MAX}"
        )
    # The user's text as typed; a number as Decimal writes it (str() of an int past 4300
    # digits raises).
    said = clip(value if isinstance(value, str) else str(number), _SHOWN)
    if number < 0:
        raise BadValue(f"{what} {said} is negative: allowed 0 to {WIRE_MAX}")
    if exponent < -_DECIMALS:
        raise BadValue(
            f"{what} {said} has more than {_DECIMALS} decimals: allowed at most {_DECIMALS} "
            "(a millionth of its unit)"
        )
    if number > WIRE_MAX:
        raise UsageError(
            f"{what} {said} is out of range: allowed 0 to {WIRE_MAX} (the wire's 32 bits)"
        )
    return int(number.scaleb(_DECIMALS))


def from_micro(value: int) -> str:
    """Format a micro-scaled integer as the shortest exact decimal text ("0.04", "8")."""
    text = str(Decimal(value).scaleb(-_DECIMALS).normalize())
    # normalize() writes 100 as 1E+2; quantize to an integer spells it out.
    if "E" in text:
        text = str(Decimal(value).scaleb(-_DECIMALS).quantize(Decimal(1)))
    return text


def micro_to_decimal(value: int) -> Decimal:
    """A micro-scaled integer as an exact ``Decimal`` (for JSON and API results)."""
    return Decimal(from_micro(value))
