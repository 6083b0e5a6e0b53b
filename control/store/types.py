"""Column types shared by the schema: exact money and prices.

Money is stored as a whole number of ten-thousandths (``BIGINT``), handed to Python as
:class:`~decimal.Decimal`. SQLite has no exact decimal type (a ``NUMERIC`` column keeps a
fraction as a binary float, and ``SUM`` over it is a float sum), so integer minor units are
the only representation that is exact and identical on SQLite and PostgreSQL; four places
match the finest fee precision the switch offers (``SERVER_BILLING_FEE_PRECISTION`` 0–4).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy import BigInteger
from sqlalchemy.types import TypeDecorator


class Fixed(TypeDecorator):
    """An exact decimal with ``scale`` places, stored as an integer of ``10**-scale`` units.

    A value with more places than the column keeps is rejected, never rounded: rounding
    money is the billing module's decision (fee precision, fee unit), not the store's.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, scale: int = 4):
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value, dialect):
        return to_units(value, self.scale)

    def process_result_value(self, value, dialect):
        return from_units(value, self.scale)

    def process_literal_param(self, value, dialect):
        return str(to_units(value, self.scale))

    @property
    def python_type(self):
        return Decimal


MAX_UNITS = 2 ** 63 - 1        # a signed BIGINT on both backends


def to_units(value, scale: int) -> int | None:
    """``Decimal('1.25')`` at scale 4 -> ``12500``; ints and decimal strings are accepted,
    floats are not (they are not exact)."""
    if value is None:
        return None
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"money must be Decimal, int or a decimal string, not {type(value).__name__}: {value!r}")
    try:
        exact = Decimal(value)
    except (InvalidOperation, TypeError):
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not exact.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    units = exact.scaleb(scale)
    if units != units.to_integral_value():
        raise ValueError(f"{value} has more than {scale} decimal places")
    if abs(units) > MAX_UNITS:
        raise ValueError(f"{value} is out of range (at most {MAX_UNITS // 10 ** scale} in magnitude)")
    return int(units)


def from_units(value, scale: int) -> Decimal | None:
    if value is None:
        return None
    return Decimal(int(value)).scaleb(-scale).quantize(Decimal(1).scaleb(-scale))


def Money() -> Fixed:
    """Balances, credit limits, fees, costs: four decimal places."""
    return Fixed(4)


def Price() -> Fixed:
    """Prices per minute: six places, since wholesale rates are quoted to five or six
    (0.00875/min)."""
    return Fixed(6)
