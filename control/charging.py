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
from datetime import date
from decimal import Decimal

from control import reasons as R
from control.accounts.model import Account, Status
from control.accounts.status import check_chain
from control.billing import rating
from control.billing.rates import RateNotFound, RateTable
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
    def __init__(self, params, writer=None):
        self.params = params                    # the ParamStore (billing parameters are hot)
        self.writer = writer                    # the durable writer: charge(account, amount, ...)
        self.reservations = Reservations()
        self.tables: dict[str, RateTable] = {}
        self.accounts: dict[str, Account] = {}
        self.active: Counter = Counter()         # account -> calls admitted and not yet ended

    def billing_params(self) -> BillingParams:
        return BillingParams.from_store(self.params)

    def add_table(self, name: str, table: RateTable) -> None:
        self.tables[name] = table

    def load_account(self, account: str, balance: Decimal, credit_limit: Decimal = Decimal(0)) -> None:
        self.reservations.load(account, balance, credit_limit)

    def load_store_accounts(self, rows) -> None:
        """Accounts as the store holds them (status, expiry, agent, limits, funds)."""
        for row in rows:
            self.accounts[row["id"]] = Account(
                id=row["id"], name=row["name"], status=Status(row["status"]), expiry=row["expiry_date"],
                concurrent_limit=row["concurrent_call_limit"], agent_id=row["agent_id"])
            self.reservations.load(row["id"], row["balance"], row["credit_limit"])

    def _chain(self, account: Account):
        seen = set()
        while account is not None and account.id not in seen:
            seen.add(account.id)
            yield account
            account = self.accounts.get(account.agent_id) if account.agent_id else None

    def _check_account(self, account_id: str, today: date) -> None:
        account = self.accounts.get(account_id)
        if account is None:
            return                               # funds loaded without store details (tests, tools)
        usable = check_chain(self._chain(account), today)
        if not usable:
            raise Refused(R.BY_NAME[usable.reason], usable.detail)
        limit = account.concurrent_limit
        if limit is not None and self.active[account_id] >= limit:
            raise Refused(R.CONNECTION_LIMIT, f"account {account_id} has {self.active[account_id]} of {limit} calls")

    # ------------------------------------------------------------------ the call path

    def admit(self, account: str, table_name: str, number: str, today: date | None = None) -> CallBilling:
        self._check_account(account, today or date.today())
        table = self.tables.get(table_name)
        if table is None:
            raise Refused(R.RATE_NOT_FOUND, f"rate table {table_name!r} is not loaded")
        try:
            rate = table.rate_for(number)
        except RateNotFound:
            raise Refused(R.RATE_NOT_FOUND, f"no rate for {number} in {table_name}") from None
        amount = rating.reservation(rate, self.billing_params())
        try:
            held = self.reservations.reserve(account, amount)
        except InsufficientBalance as exc:
            raise Refused(R.INSUFFICIENT_BALANCE, f"reservation {exc.needed} > free funds {exc.free}") from None
        self.active[account] += 1
        return CallBilling(account, table_name, rate, held)

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

    def vendor_cost(self, table_name: str | None, duration_ms: int, record) -> None:
        """The vendor's cost of an answered call and the call's profit."""
        table = self.tables.get(table_name) if table_name else None
        rate = table.lookup(record.callee) if table is not None else None
        if rate is not None:
            priced = rating.rate_call(duration_ms, rate, self.billing_params())
            record.vendor_rate_table = table_name
            record.vendor_rate_prefix = rate.prefix
            record.vendor_rate = rate.price
            record.cost = priced.fee
        record.profit = record.fee - record.cost
