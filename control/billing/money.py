"""Exact money: reading amounts, the fee step, and the one rounding rule.

Amounts are :class:`decimal.Decimal` from the rate table to the ledger. A binary float
cannot hold 0.01 or 0.1 exactly, and a million rounding errors per day add up to money
that is in no ledger; so floats are refused wherever an amount enters.

The fee step is ``SERVER_BILLING_FEE_UNIT × 10^−SERVER_BILLING_FEE_PRECISTION`` (0.01 by
default). Every fee and reservation is rounded **up** to a multiple of it:

* a call is never billed below its exact price, so a carrier's margin is not eroded by
  rounding, and vendor costs (rated the same way) match what vendors invoice;
* it keeps the charge monotonic in duration and makes "what do these funds pay for"
  exact: ``round_fee(x) ≤ funds`` holds exactly when ``x ≤ floor_to_step(funds)``.

The rounding works on exact fractions (a per-second price such as 1/60 per minute is not
a terminating decimal), so the result never depends on the decimal context's precision.
"""
from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

ZERO = Decimal(0)


class MoneyError(ValueError):
    """An amount was not an exact, finite decimal of the allowed form."""


def to_decimal(value: object, places: int | None = None, negative: bool = False) -> Decimal:
    """``value`` (Decimal, int or decimal text) as a Decimal; refuses floats, NaN,
    infinities, negative values unless ``negative``, and more than ``places`` decimals."""
    if isinstance(value, (float, bool)):
        raise MoneyError(f"{value!r} is a {type(value).__name__}, not an exact amount; "
                         "give a decimal string, an int or a Decimal")
    if isinstance(value, str):
        value = value.strip()
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise MoneyError(f"{value!r} is not a decimal number") from None
    if not amount.is_finite():
        raise MoneyError(f"{value!r} is not a finite amount")
    if amount < 0 and not negative:
        raise MoneyError(f"{value} is negative")
    if places is not None and amount.normalize().as_tuple().exponent < -places:
        raise MoneyError(f"{value} has more than {places} decimal places")
    return amount


def fee_step(precision: int, unit: int = 1) -> Decimal:
    """The smallest fee step: ``unit × 10^−precision`` (precision 2, unit 5 → 0.05)."""
    return Decimal(unit).scaleb(-precision)


def round_fee(amount: Decimal | Fraction | int, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` not below ``amount`` (the only fee rounding)."""
    units = math.ceil(Fraction(amount) / Fraction(step))
    return step * units


def floor_to_step(amount: Decimal | Fraction | int, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` not above ``amount``: what a rounded fee may
    reach when ``amount`` is the money available."""
    units = math.floor(Fraction(amount) / Fraction(step))
    return step * units
