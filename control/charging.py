"""Real-time billing on the call path: admission, the funds limit, the charge.

At setup a customer with a rate table is admitted only if its account and every agent
above it are usable (`Account Locked` / `Account Expired`, the rule of
``control.accounts.status``), it is under its concurrent-call limit (`Connection Limit`),
a rate matches the number (`Rate Not Found`) and the reservation fits its free funds
(`Insufficient Balance`); at
answer the call is limited to what its funds pay for; at the end the charge replaces the
reservation, the ledger entry goes to the durable writer and the call record gets rate,
fee, the vendor's cost and the profit. Everything here runs from memory: rate tables and
balances are loaded at start, the store is written behind.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal

from control import reasons as R
from control.accounts.model import Account
from control.billing import rating
from control.billing.rates import RateNotFound
from control.billing.reservations import InsufficientBalance, Reservation, Reservations
from control.billing.settings import BillingParams

log = logging.getLogger("vosmedia.charging")


class Refused(Exception):
    """The call may not start; ``reason`` says why (a control.reasons entry)."""

    def __init__(self, reason: R.Reason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class CallBilling:
    """What one call holds between setup and end."""
    account: str
    table: str
    rate: object
    reservation: Reservation


class Charging:
    """The call path's side of billing. ``accounts`` answers ``record(account_id)`` (the
    directory's record: status, expiry, agent, limits, tariff names) and ``usable(...)``;
    ``tariffs`` picks the rate table for a call; ``funds`` holds balances and
    reservations. All three are in memory; changes reach them through
    :mod:`control.services` as they reach the store."""

    def __init__(self, params, writer, accounts, tariffs, funds: Reservations):
        self.params = params                    # the ParamStore (billing parameters are hot)
        self.writer = writer                    # the durable writer: charge(account, amount, ...)
        self.accounts = accounts
        self.tariffs = tariffs
        self.reservations = funds
        self.active: Counter = Counter()         # account -> calls admitted and not yet ended

    def billing_params(self) -> BillingParams:
        return BillingParams.from_store(self.params)

    def _check_account(self, account: Account, today: date) -> None:
        usable = self.accounts.directory.usable(account.id, today)
        if not usable:
            raise Refused(R.BY_NAME[usable.reason], usable.detail)
        limit = account.concurrent_limit
        if limit is not None and self.active[account.id] >= limit:
            raise Refused(R.CONNECTION_LIMIT, f"account {account.id} has {self.active[account.id]} of {limit} calls")

    # ------------------------------------------------------------------ the call path

    def admit(self, account_id: str, number: str, start: float) -> CallBilling | None:
        """Admit a call set up at ``start`` (Unix seconds) or raise :class:`Refused`.
        None: the account is unknown to billing or has no tariff (the call is not rated)."""
        account = self.accounts.record(account_id)
        if account is None:
            return None
        self._check_account(account, datetime.fromtimestamp(start, timezone.utc).date())
        table = self.tariffs.table_for(account.rate_table, account.period_rate, start)
        if table is None:
            if account.rate_table or account.period_rate:
                raise Refused(R.RATE_NOT_FOUND, f"account {account_id}'s tariff is not loaded")
            return None
        try:
            rate = table.rate_for(number)
        except RateNotFound:
            raise Refused(R.RATE_NOT_FOUND, f"no rate for {number} in {table.name}") from None
        amount = rating.reservation(rate, self.billing_params())
        try:
            held = self.reservations.reserve(account_id, amount)
        except InsufficientBalance as exc:
            raise Refused(R.INSUFFICIENT_BALANCE, f"reservation {exc.needed} > free funds {exc.free}") from None
        self.active[account_id] += 1
        return CallBilling(account_id, table.name, rate, held)

    def max_duration(self, call: CallBilling) -> int | None:
        """Seconds the call may last, paid by its free funds (None: no limit)."""
        funds = self.reservations.free_for(call.reservation)
        return rating.max_duration(funds, call.rate, self.billing_params())

    def release(self, call: CallBilling) -> None:
        self.reservations.release(call.reservation)
        self._ended(call)

    def _ended(self, call: CallBilling) -> None:
        self.active[call.account] -= 1
        if self.active[call.account] <= 0:
            del self.active[call.account]

    def settle(self, call: CallBilling, duration_ms: int, call_id: str, record) -> None:
        """Charge the call, book the ledger entry, price the call record."""
        params = self.billing_params()
        priced = rating.rate_call(duration_ms, call.rate, params)
        self.reservations.settle(call.reservation, priced.fee)
        self._ended(call)
        record.rate_table = call.table
        record.rate_prefix = call.rate.prefix
        record.rate = call.rate.price
        record.billed_time = priced.billed_time
        record.fee = priced.fee
        if self.writer is not None and priced.fee:
            self.writer.charge(call.account, -priced.fee, call_id=call_id, memo=f"call to {record.callee}")

    def vendor_usable(self, account_id: str) -> bool:
        """Whether calls may go to a vendor: no vendor account (nothing to check), or one
        that is usable (itself and its agents Active, unexpired) and, with
        ``SS_ROUTE_POSITIVE_BALANCE_VENDOR_ONLY``, has money left (balance + credit limit
        > 0). An unusable vendor is skipped without delay."""
        if not account_id:
            return True
        account = self.accounts.record(account_id)
        if account is None:
            return True
        if not self.accounts.directory.usable(account_id, date.today()):
            return False
        if not self.params.get("SS_ROUTE_POSITIVE_BALANCE_VENDOR_ONLY"):
            return True
        funds = self.reservations.funds(account_id)
        return funds.balance + funds.credit_limit > 0

    def vendor_cost(self, vendor, duration_ms: int, record) -> None:
        """The vendor's cost of an answered call (its rate table) and the call's profit;
        a vendor with an account is charged the cost."""
        table_name = getattr(vendor, "rate_table", None)
        table = self.tariffs.tables.get(table_name) if table_name else None
        rate = table.lookup(record.callee) if table is not None else None
        if rate is not None:
            priced = rating.rate_call(duration_ms, rate, self.billing_params())
            record.vendor_rate_table = table_name
            record.vendor_rate_prefix = rate.prefix
            record.vendor_rate = rate.price
            record.cost = priced.fee
            account = getattr(vendor, "account", "")
            if priced.fee and account and self.accounts.record(account) is not None:
                self.reservations.add_to_balance(account, -priced.fee)
                if self.writer is not None:
                    self.writer.charge(account, -priced.fee, call_id=record.call_id,
                                       memo=f"cost of call to {record.callee}")
        record.profit = record.fee - record.cost
