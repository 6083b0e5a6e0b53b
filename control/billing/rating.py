"""What a call costs, how long free funds last, and what is reserved at setup (SPEC §5).

An answered call is rated in four steps; ``params`` is a
:class:`~control.billing.settings.BillingParams`, ``rate`` a
:class:`~control.billing.rates.Rate`:

1. **Hold time** (whole seconds) from the measured duration in milliseconds: the whole
   seconds, plus one more if the leftover milliseconds are at least
   ``SERVER_BILLING_HOLD_TIME_PRECISION`` (and not zero). 60 049 ms → 60 s, 60 050 ms →
   61 s at the default 50.
2. **Chargeable time**: ``max(0, hold − SERVER_BILLING_FREE_TIME)``.
3. **Billed time** from the rate's units: 0 for 0; ``first_unit`` up to ``first_unit``;
   beyond it ``first_unit + ⌈(c − first_unit) / next_unit⌉ × next_unit``.
   30/6: 1 s → 30, 30 s → 30, 31 s → 36, 61 s → 66.
4. **Fee**: ``connection_fee + price × billed / 60`` rounded up to the fee step
   (:mod:`.money`); 0 when the billed time is 0.

Vendor cost is the same computation with the vendor's rate; profit = fee − cost.

Choices where the spec is silent, made as a carrier expects:

* A call with no billed time costs nothing, connection fee included: unanswered calls,
  calls ended within the hold-time precision and calls within the free time are free.
* ``SERVER_BILLING_RECORD_ZERO_HOLD_TIME`` only decides whether a CDR is written for a
  call whose hold time is 0; it never makes such a call cost anything.
* The reservation is exactly the spec's price × advance time
  (``SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME`` minutes, rounded up to the fee
  step): billing units and the connection fee are not added. The maximum duration at
  answer accounts for both, so a call whose first unit the free funds cannot pay is
  given 0 seconds and ended at once.
* The maximum duration is in whole seconds of hold time, counted from the answer; ending
  the call on time bills at most that (the hold-time precision absorbs timer jitter).
  It is ``None`` (no limit) when the price is 0 and the funds cover the connection fee.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from .money import ZERO, MoneyError, floor_to_step, round_fee
from .rates import Rate
from .settings import BillingParams


@dataclass(frozen=True)
class CallCharge:
    """The billing fields of a CDR."""

    hold_time: int          # seconds, after the hold-time precision
    billed_time: int        # seconds, after free time and billing units
    fee: Decimal
    recorded: bool          # whether a CDR is written (SERVER_BILLING_RECORD_ZERO_HOLD_TIME)


def hold_time(duration_ms: int, params: BillingParams) -> int:
    """Whole seconds of hold time from the measured duration in milliseconds."""
    _whole("duration_ms", duration_ms)
    seconds, rest = divmod(duration_ms, 1000)
    if rest and rest >= params.hold_time_precision:
        seconds += 1
    return seconds


def billed_time(hold: int, rate: Rate, params: BillingParams) -> int:
    """Seconds billed for ``hold`` seconds: free time off, then the rate's units."""
    _whole("hold", hold)
    chargeable = hold - params.free_time
    if chargeable <= 0:
        return 0
    if chargeable <= rate.first_unit:
        return rate.first_unit
    steps = -(-(chargeable - rate.first_unit) // rate.next_unit)     # ceiling division
    return rate.first_unit + steps * rate.next_unit


def fee(billed: int, rate: Rate, params: BillingParams) -> Decimal:
    """The fee for ``billed`` seconds (already in billing units)."""
    if billed == 0:
        return round_fee(ZERO, params.fee_step)
    exact = Fraction(rate.connection_fee) + Fraction(rate.price) * billed / 60
    return round_fee(exact, params.fee_step)


def charge(hold: int, rate: Rate, params: BillingParams) -> Decimal:
    """The fee of a call that was up for ``hold`` whole seconds."""
    return fee(billed_time(hold, rate, params), rate, params)


def records_cdr(hold: int, params: BillingParams) -> bool:
    """Whether a call of ``hold`` seconds gets a CDR."""
    return hold > 0 or params.record_zero_hold_time


def rate_call(duration_ms: int, rate: Rate, params: BillingParams) -> CallCharge:
    """Everything billing puts in the CDR of a call that lasted ``duration_ms``
    (0 for a call that was never answered)."""
    hold = hold_time(duration_ms, params)
    billed = billed_time(hold, rate, params)
    return CallCharge(hold, billed, fee(billed, rate, params), records_cdr(hold, params))


def max_duration(funds: Decimal | int, rate: Rate, params: BillingParams) -> int | None:
    """The longest hold time (whole seconds) that ``funds`` pay for, or None if there is
    no limit. ``charge(d) ≤ funds < charge(d + 1)`` for the returned ``d``."""
    funds = _exact("funds", funds)
    if funds < 0:
        return 0
    # round_fee(x) ≤ funds  ⇔  x ≤ floor_to_step(funds): solve on the unrounded price.
    budget = Fraction(floor_to_step(funds, params.fee_step)) - Fraction(rate.connection_fee)
    price = Fraction(rate.price)
    if price == 0:
        return None if budget >= 0 else params.free_time
    first_cost = price * rate.first_unit / 60
    if budget < first_cost:
        return params.free_time
    more_steps = math.floor((budget - first_cost) / (price * rate.next_unit / 60))
    return params.free_time + rate.first_unit + more_steps * rate.next_unit


def reservation(rate: Rate, params: BillingParams) -> Decimal:
    """What a call reserves at setup: price × advance minutes, rounded up to the step."""
    return round_fee(rate.price * params.advance_time, params.fee_step)


def admissible(balance: Decimal | int, credit_limit: Decimal | int,
               reserved_total: Decimal | int, reservation: Decimal | int) -> bool:
    """The admission rule: balance + credit limit − all reservations − this one ≥ 0.
    Worked check: balance 10, reservations of 5 → the first two calls fit, a third not."""
    for name, value in (("balance", balance), ("credit_limit", credit_limit),
                        ("reserved_total", reserved_total), ("reservation", reservation)):
        _exact(name, value)
    return balance + credit_limit - reserved_total - reservation >= 0


def _exact(name: str, value: Decimal | int) -> Decimal | int:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise MoneyError(f"{name} must be a Decimal or an int, not {type(value).__name__}: "
                         f"{value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise MoneyError(f"{name} must be finite, got {value}")
    return value


def _whole(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
