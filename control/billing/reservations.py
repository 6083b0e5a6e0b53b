"""Overdraft prevention: reservations against an account's funds (SPEC §5).

At call setup the switch reserves ``rate × SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME``;
the call is admitted only if ``balance + credit limit − all reservations − this one ≥ 0``.
At answer the call's maximum duration is what the funds left free by the *other* calls
pay for; at the end the real charge replaces the reservation (the balance moves, the
reservation goes). Every check-and-reserve happens under one lock, so hundreds of
simultaneous setups (the event loop, API threads) can never take an account below
−credit limit.

Amounts are ``Decimal``. The ledger (durable payments and charges) lives in the store;
this module keeps the in-memory view the call path reads without waiting on a disk.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from decimal import Decimal

from control.billing.rating import admissible


class InsufficientBalance(Exception):
    """The reservation does not fit in the account's free funds."""

    def __init__(self, account: str, needed: Decimal, free: Decimal):
        super().__init__(f"account {account}: reservation {needed} exceeds free funds {free}")
        self.account = account
        self.needed = needed
        self.free = free


@dataclass
class Funds:
    balance: Decimal
    credit_limit: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    holds: dict = field(default_factory=dict)        # reservation id -> amount

    @property
    def free(self) -> Decimal:
        return self.balance + self.credit_limit - self.reserved


@dataclass(frozen=True)
class Reservation:
    id: int
    account: str
    amount: Decimal


class Reservations:
    def __init__(self):
        self._funds: dict[str, Funds] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ accounts

    def load(self, account: str, balance: Decimal, credit_limit: Decimal = Decimal(0)) -> None:
        """Set an account's balance and credit limit (from the store, or after a payment);
        its reservations stay."""
        with self._lock:
            funds = self._funds.get(account)
            if funds is None:
                self._funds[account] = Funds(Decimal(balance), Decimal(credit_limit))
            else:
                funds.balance = Decimal(balance)
                funds.credit_limit = Decimal(credit_limit)

    def add_to_balance(self, account: str, amount: Decimal, *, keep_free: bool = False) -> Decimal:
        """A payment: add ``amount`` (negative takes) to the balance; with ``keep_free`` a
        debit beyond the free funds raises InsufficientBalance and changes nothing.
        Returns the new balance."""
        amount = Decimal(amount)
        with self._lock:
            funds = self._funds[account]
            if keep_free and amount < 0 and funds.free + amount < 0:
                raise InsufficientBalance(account, -amount, funds.free)
            funds.balance += amount
            return funds.balance

    def forget(self, account: str) -> None:
        """The account is gone (deleted with nothing held)."""
        with self._lock:
            self._funds.pop(account, None)

    def funds(self, account: str) -> Funds:
        with self._lock:
            f = self._funds[account]
            return Funds(f.balance, f.credit_limit, f.reserved, dict(f.holds))

    # ------------------------------------------------------------------ the call path

    def reserve(self, account: str, amount: Decimal) -> Reservation:
        """Admit a call: hold ``amount`` or raise InsufficientBalance (nothing held)."""
        amount = Decimal(amount)
        if amount < 0:
            raise ValueError("a reservation cannot be negative")
        with self._lock:
            funds = self._funds.get(account)
            if funds is None:
                raise KeyError(f"unknown account {account!r}")
            if not admissible(funds.balance, funds.credit_limit, funds.reserved, amount):
                raise InsufficientBalance(account, amount, funds.free)
            reservation = Reservation(next(self._ids), account, amount)
            funds.reserved += amount
            funds.holds[reservation.id] = amount
            return reservation

    def free_for(self, reservation: Reservation) -> Decimal:
        """What this call may spend: the account's free funds plus its own reservation
        (used at answer for the call's maximum duration)."""
        with self._lock:
            funds = self._funds[reservation.account]
            return funds.free + funds.holds.get(reservation.id, Decimal(0))

    def settle(self, reservation: Reservation, charge: Decimal) -> Decimal:
        """The call ended costing ``charge``: release its hold, take the charge from the
        balance; returns the new balance (the caller writes the ledger entry)."""
        charge = Decimal(charge)
        with self._lock:
            funds = self._funds[reservation.account]
            held = funds.holds.pop(reservation.id, None)
            if held is not None:
                funds.reserved -= held
            funds.balance -= charge
            return funds.balance

    def release(self, reservation: Reservation) -> None:
        """The call failed before any charge: drop its hold."""
        with self._lock:
            funds = self._funds.get(reservation.account)
            if funds is None:
                return
            held = funds.holds.pop(reservation.id, None)
            if held is not None:
                funds.reserved -= held
