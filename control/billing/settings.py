"""The ``SERVER_BILLING_*`` system parameters as one immutable value.

The declarations (names, defaults, ranges) live in :mod:`control.params`; this only
gathers the billing ones so a call is rated with one consistent set, even if an operator
changes a parameter while the call runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Mapping

from control.params import ParamStore, get_default, validate

from .money import fee_step

# attribute -> VOS3000 parameter name
NAMES = {
    "fee_precision": "SERVER_BILLING_FEE_PRECISTION",
    "fee_unit": "SERVER_BILLING_FEE_UNIT",
    "free_time": "SERVER_BILLING_FREE_TIME",
    "hold_time_precision": "SERVER_BILLING_HOLD_TIME_PRECISION",
    "record_zero_hold_time": "SERVER_BILLING_RECORD_ZERO_HOLD_TIME",
    "advance_time": "SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME",
}


def _default(attribute: str) -> Any:
    return field(default=get_default(NAMES[attribute]))


@dataclass(frozen=True)
class BillingParams:
    fee_precision: int = _default("fee_precision")          # decimal places of a fee
    fee_unit: int = _default("fee_unit")                    # fee step in 10^-precision units
    free_time: int = _default("free_time")                  # seconds not billed
    hold_time_precision: int = _default("hold_time_precision")   # ms that round up a second
    record_zero_hold_time: bool = _default("record_zero_hold_time")
    advance_time: int = _default("advance_time")            # minutes reserved at setup

    def __post_init__(self):
        # Same checks and messages as the parameter store: names the parameter and range.
        for f in fields(self):
            object.__setattr__(self, f.name, validate(NAMES[f.name], getattr(self, f.name)))

    @property
    def fee_step(self) -> Decimal:
        return fee_step(self.fee_precision, self.fee_unit)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> BillingParams:
        """From parameter values keyed by their VOS3000 names; others are ignored and
        missing ones take their defaults."""
        return cls(**{attr: values[name] for attr, name in NAMES.items() if name in values})

    @classmethod
    def from_store(cls, store: ParamStore) -> BillingParams:
        """A snapshot of the running values."""
        return cls.from_values(store.values())
