"""Accounts, agents and payments for operators and agents: the directory's rules and rights
(:mod:`control.accounts`), the store's rows and ledger, and the call path's funds
(:class:`~control.billing.reservations.Reservations`) kept in step.

Every change goes: directory (validate, check the actor's scope and rights) -> store (one
transaction, audited under the actor's label) -> memory. Money is the exception that
proves the order: the in-memory funds are the live figure (calls in progress hold
reservations against them, charges reach the store a moment later through the durable
writer), so a payment is checked and applied there first and undone if the store refuses.
"""
from __future__ import annotations

import dataclasses
from decimal import Decimal

from control.accounts import (Account, AccountDirectory, AccountError, Actor, Authorization,
                              BillingModel, Kind, Module, OperatorDirectory, Right, Status)
from control.accounts.validation import clean_money, clean_text
from control.billing.reservations import InsufficientBalance, Reservations
from control.store import transaction
from control.store import accounts as store_accounts
from control.store import ledger as store_ledger
from control.store.schema import AGENT_AUTHORIZATIONS

# the directory's authorization <-> the store's flag column (same order as the spec)
AUTH_COLUMNS = dict(zip(Authorization, AGENT_AUTHORIZATIONS))
PAYMENT_KINDS = ("recharge", "deduct", "adjust")


class AccountService:
    def __init__(self, store, tariffs, funds: Reservations, operators: OperatorDirectory):
        self.store = store
        self.tariffs = tariffs
        self.funds = funds
        self.directory = AccountDirectory(operators, balance_of=lambda account_id: funds.funds(account_id).balance)

    # ------------------------------------------------------------------ start

    def load(self) -> None:
        """Every account from the store into the directory and the funds."""
        rows = store_accounts.list_accounts(self.store)
        self.directory.load(self._record(row) for row in rows)
        for row in rows:
            self.funds.load(row["id"], row["balance"], row["credit_limit"])

    def _record(self, row: dict) -> Account:
        return Account(
            id=row["id"], name=row["name"], kind=Kind(row["kind"]), status=Status(row["status"]),
            expiry=row["expiry_date"], balance=row["balance"], credit_limit=row["credit_limit"],
            concurrent_limit=row["concurrent_call_limit"],
            rate_table=self.tariffs.name_of("rate_tables", row["rate_table_id"]),
            period_rate=self.tariffs.name_of("period_rates", row["period_rate_id"]),
            work_calendar=self.tariffs.name_of("work_calendars", row["work_calendar_id"]),
            number_sections=tuple(row["number_section_allow"]),
            blocked_sections=tuple(row["number_section_block"]),
            billing_model=BillingModel(row["billing_model"]), agent_id=row["agent_id"],
            authorizations=frozenset(a for a, column in AUTH_COLUMNS.items() if row[column]))

    def _columns(self, account: Account) -> dict:
        """The store's columns for a directory record (balance and credit limit excluded:
        they belong to the ledger)."""
        return {
            "name": account.name, "kind": account.kind.value, "status": account.status.value,
            "expiry_date": account.expiry, "concurrent_call_limit": account.concurrent_limit,
            "rate_table_id": self.tariffs.id_of("rate_tables", account.rate_table),
            "period_rate_id": self.tariffs.id_of("period_rates", account.period_rate),
            "work_calendar_id": self.tariffs.id_of("work_calendars", account.work_calendar),
            "number_section_allow": list(account.number_sections),
            "number_section_block": list(account.blocked_sections),
            "billing_model": account.billing_model.value, "agent_id": account.agent_id,
            **{column: auth in account.authorizations for auth, column in AUTH_COLUMNS.items()},
        }

    # ------------------------------------------------------------------ the call path

    def record(self, account_id: str) -> Account | None:
        """The account as the call path needs it (no actor: the switch on its own behalf)."""
        return self.directory.peek(account_id)

    def number_blocked(self, account_id: str, number: str) -> str:
        """Number Section Limitation up the agent chain: "" when ``number`` passes the
        account's and every agent's lists, else which account's list stops it."""
        for account in self.directory.chain(account_id):
            if not account.allows_number(number):
                return f"outside the number sections of account {account.id}"
        return ""

    # ------------------------------------------------------------------ reads

    def view(self, actor: Actor, account_id: str) -> dict:
        return self._shown(actor, self.directory.get(actor, account_id))

    def visible(self, actor: Actor) -> list[dict]:
        return [self._shown(actor, a) for a in self.directory.visible(actor)]

    def sub_accounts(self, actor: Actor, account_id: str, scope: str = "direct") -> list[dict]:
        """An agent's sub-accounts: ``direct`` (Agent ID is this account) or ``all``."""
        if scope not in ("direct", "all"):
            raise AccountError("scope", "is 'direct' or 'all'")
        found = (self.directory.direct if scope == "direct" else self.directory.all)(actor, account_id)
        return [self._shown(actor, a) for a in found]

    def _shown(self, actor: Actor, account: Account) -> dict:
        shown = {f.name: getattr(account, f.name) for f in dataclasses.fields(account)}
        shown["authorizations"] = sorted(a.value for a in account.authorizations)
        shown["category"] = self.directory.category(actor, account.id).value
        funds = self.funds.funds(account.id)
        shown.update(balance=funds.balance, credit_limit=funds.credit_limit, reserved=funds.reserved)
        return shown

    # ------------------------------------------------------------------ changes

    def create(self, actor: Actor, account_id: str, fields: dict) -> dict:
        fields = dict(fields)
        for name in ("rate_table", "period_rate", "work_calendar"):
            self.tariffs.id_of(_KIND_OF[name], fields.get(name) or "")     # names must exist
        change = self.directory.create(actor, account_id, **fields)
        account = change.saved[0]
        try:
            store_accounts.create_account(self.store, {
                "id": account.id, **self._columns(account), "credit_limit": account.credit_limit},
                operator=actor.label)
        except Exception:
            self.directory.revert([(account.id, None)])
            raise
        self.funds.load(account.id, Decimal(0), account.credit_limit)
        return self.view(actor, account.id)

    def update(self, actor: Actor, account_id: str, fields: dict) -> dict:
        for name in ("rate_table", "period_rate", "work_calendar"):
            if name in fields:
                self.tariffs.id_of(_KIND_OF[name], fields[name] or "")
        before = [(a.id, self.directory.peek(a.id)) for a in self._affected(account_id)]
        change = self.directory.update(actor, account_id, **fields)
        try:
            with transaction(self.store) as conn:     # the account and any trimmed sub-accounts
                for account in change.saved:
                    store_accounts.update_account(conn, account.id, self._columns(account),
                                                  operator=actor.label)
                new_limit = change.saved[0].credit_limit if change.saved else None
                if "credit_limit" in fields and new_limit is not None:
                    store_ledger.set_credit_limit(conn, account_id, new_limit, operator=actor.label,
                                                  memo="credit limit changed with the account")
        except Exception:
            self.directory.revert(before)
            raise
        if "credit_limit" in fields and change.saved:
            funds = self.funds.funds(account_id)
            self.funds.load(account_id, funds.balance, change.saved[0].credit_limit)
        return self.view(actor, account_id)

    def _affected(self, account_id: str) -> list[Account]:
        """The account and its whole subtree: what an update may touch (trimming)."""
        system = Actor.system("rollback")
        try:
            return [self.directory.get(system, account_id), *self.directory.all(system, account_id)]
        except AccountError:
            return []

    def delete(self, actor: Actor, account_id: str) -> None:
        self.directory.require(actor, Module.ACCOUNTS, Right.DELETE, account_id, include_self=False)
        if self.funds.funds(account_id).reserved:
            raise AccountError("id", f"account {account_id!r} has calls in progress")
        before = self.directory.peek(account_id)
        self.directory.delete(actor, account_id)
        try:
            store_accounts.delete_account(self.store, account_id, operator=actor.label)
        except Exception:
            self.directory.revert([(account_id, before)])
            raise
        self.funds.forget(account_id)

    def directory_has(self, account_id: str) -> bool:
        return self.record(account_id) is not None

    # ------------------------------------------------------------------ payments

    def pay(self, actor: Actor, account_id: str, kind: str, amount, memo: str = "") -> dict:
        """A recharge (adds), deduct (takes; never beyond the free funds) or adjust
        (signed correction). Returns the ledger entry."""
        if kind not in PAYMENT_KINDS:
            raise AccountError("kind", f"is one of {', '.join(PAYMENT_KINDS)}")
        self.directory.require(actor, Module.PAYMENTS, Right.ADD, account_id)
        amount = clean_money("amount", amount)
        memo = clean_text("memo", memo, required=False)
        if amount == 0 or (kind != "adjust" and amount < 0):
            raise AccountError("amount", "must be positive" if kind != "adjust" else "must not be 0")
        delta = -amount if kind == "deduct" else amount
        self._move(account_id, delta, keep_free=kind == "deduct")
        try:
            return store_ledger.append(self.store, account_id, delta, kind, operator=actor.label, memo=memo)
        except Exception:
            self._move(account_id, -delta)
            raise

    def transfer(self, actor: Actor, from_id: str, to_id: str, amount, memo: str = "") -> tuple[dict, dict]:
        """Move money between two accounts the actor may pay; the source keeps its
        reservations covered."""
        self.directory.require(actor, Module.PAYMENTS, Right.ADD, from_id, field="from")
        self.directory.require(actor, Module.PAYMENTS, Right.ADD, to_id, field="to")
        if from_id == to_id:
            raise AccountError("to", "a transfer needs two different accounts")
        amount = clean_money("amount", amount)
        memo = clean_text("memo", memo, required=False)
        if amount <= 0:
            raise AccountError("amount", "must be positive")
        self._move(from_id, -amount, keep_free=True, field="from")
        self._move(to_id, amount)
        try:
            return store_ledger.transfer(self.store, from_id, to_id, amount, operator=actor.label,
                                         memo=memo, require_funds=False)
        except Exception:
            self._move(to_id, -amount)
            self._move(from_id, amount)
            raise

    def set_credit_limit(self, actor: Actor, account_id: str, credit_limit, memo: str = "") -> dict:
        """A credit limit is a payment (SPEC §5): the directory's update checks the right."""
        self.update(actor, account_id, {"credit_limit": credit_limit})
        return store_ledger.entries(self.store, account_id, kind="credit_limit", limit=1)[0]

    def ledger(self, actor: Actor, account_id: str, *, limit: int = 100, offset: int = 0) -> list[dict]:
        self.directory.require(actor, Module.PAYMENTS, Right.VIEW, account_id)
        return store_ledger.entries(self.store, account_id, limit=limit, offset=offset)

    def _move(self, account_id: str, delta: Decimal, *, keep_free: bool = False, field: str = "amount") -> None:
        try:
            self.funds.add_to_balance(account_id, delta, keep_free=keep_free)
        except InsufficientBalance as exc:
            raise AccountError(field, f"{-delta} exceeds the free funds {exc.free} of account "
                                      f"{account_id!r} (balance + credit limit - reservations)") from None


_KIND_OF = {"rate_table": "rate_tables", "period_rate": "period_rates", "work_calendar": "work_calendars"}

