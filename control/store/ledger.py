"""The ledger: every change of an account's balance or credit limit is one entry (payments,
adjustments, transfers, call charges) with operator, time and memo.

Each append updates the account's balance and inserts the entry in one transaction; the
``UPDATE ... RETURNING`` takes the account row's write lock (a row lock on PostgreSQL,
the database lock on SQLite), so concurrent appends to one account serialise and
``accounts.balance`` always equals the sum of its entries' amounts.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, func, insert, literal, select, update

from control.store import audit
from control.store.engine import InsufficientFunds, NotFound, Store, transaction
from control.store.rows import as_dict, check_values, newest_first, now
from control.store.schema import accounts, ledger
from control.store.types import Money, to_units

ZERO = Decimal("0.0000")


def append(db: Store | Connection, account_id: str, amount, kind: str, *, operator: str = "system",
           memo: str = "", call_id: str | None = None, time: float | None = None,
           require_funds: bool = False, transfer_account_id: str | None = None,
           audited: bool = True) -> dict:
    """Add ``amount`` (signed; negative debits) to the balance and record the entry;
    returns the entry with ``balance_after``. With ``require_funds`` a debit that would
    leave balance + credit limit below zero raises :class:`InsufficientFunds` and
    changes nothing."""
    check_values(ledger, {"kind": kind})
    to_units(amount, 4)                       # reject floats and sub-0.0001 amounts early
    amount = Decimal(amount)
    delta = literal(amount, Money())          # typed, so it is bound in ten-thousandths
    stmt = update(accounts).where(accounts.c.id == account_id)
    if require_funds and amount < 0:
        stmt = stmt.where(accounts.c.balance + accounts.c.credit_limit + delta >= literal(0, Money()))
    stmt = stmt.values(balance=accounts.c.balance + delta).returning(accounts.c.balance)
    with transaction(db) as conn:
        balance = conn.execute(stmt).scalar_one_or_none()
        if balance is None:
            if _exists(conn, account_id):
                raise InsufficientFunds(f"account {account_id}: balance + credit limit does not cover {-amount}")
            raise NotFound(f"account {account_id} does not exist")
        entry = {"account_id": account_id, "time": now() if time is None else time, "kind": kind,
                 "amount": amount, "balance_after": balance, "operator": operator or "",
                 "memo": memo or "", "call_id": call_id, "transfer_account_id": transfer_account_id}
        stored = as_dict(conn.execute(insert(ledger).returning(*ledger.c), entry).one())
        if audited:
            audit.append(conn, operator, kind, "accounts", account_id,
                         {"amount": amount, "balance_after": balance, "memo": memo}, time=stored["time"])
        return stored


def transfer(db: Store | Connection, from_id: str, to_id: str, amount, *, operator: str = "system",
             memo: str = "", require_funds: bool = True) -> tuple[dict, dict]:
    """Move a positive ``amount`` between two accounts in one transaction; returns the
    debit and the credit entries."""
    amount = Decimal(amount)
    if amount <= 0:
        raise ValueError(f"a transfer moves a positive amount, got {amount}")
    if from_id == to_id:
        raise ValueError("a transfer needs two different accounts")
    with transaction(db) as conn:
        # lock order by id: two opposite transfers cannot deadlock on PostgreSQL
        first, second = sorted((from_id, to_id))
        conn.execute(select(accounts.c.id).where(accounts.c.id.in_((first, second)))
                     .order_by(accounts.c.id).with_for_update()).all()
        out = append(conn, from_id, -amount, "transfer", operator=operator, memo=memo,
                     require_funds=require_funds, transfer_account_id=to_id)
        into = append(conn, to_id, amount, "transfer", operator=operator, memo=memo,
                      transfer_account_id=from_id)
        return out, into


def set_credit_limit(db: Store | Connection, account_id: str, credit_limit, *, operator: str = "system",
                     memo: str = "") -> dict:
    """Change the credit limit; recorded as a ``credit_limit`` entry of amount zero."""
    to_units(credit_limit, 4)
    credit_limit = Decimal(credit_limit)
    if credit_limit < 0:
        raise ValueError(f"credit limit cannot be negative, got {credit_limit}")
    with transaction(db) as conn:
        balance = conn.execute(update(accounts).where(accounts.c.id == account_id)
                               .values(credit_limit=credit_limit).returning(accounts.c.balance)
                               ).scalar_one_or_none()
        if balance is None:
            raise NotFound(f"account {account_id} does not exist")
        stored = as_dict(conn.execute(insert(ledger).returning(*ledger.c), {
            "account_id": account_id, "time": now(), "kind": "credit_limit", "amount": ZERO,
            "balance_after": balance, "credit_limit_after": credit_limit,
            "operator": operator or "", "memo": memo or ""}).one())
        audit.append(conn, operator, "credit_limit", "accounts", account_id,
                     {"credit_limit": credit_limit, "memo": memo}, time=stored["time"])
        return stored


def entries(db: Store | Connection, account_id: str | None = None, *, kind: str | None = None,
            since: float | None = None, until: float | None = None, limit: int | None = 100,
            offset: int = 0) -> list[dict]:
    """Entries newest first; ``since`` <= time < ``until``."""
    return newest_first(db, ledger, equal={"account_id": account_id, "kind": kind}, since=since,
                        until=until, limit=limit, offset=offset)


def balance_mismatches(db: Store | Connection) -> list[tuple[str, Decimal, Decimal]]:
    """Accounts whose balance differs from the sum of their entries, as
    ``(account_id, balance, ledger sum)``; empty when the books agree."""
    sums = (select(ledger.c.account_id, func.sum(ledger.c.amount).label("total"))
            .group_by(ledger.c.account_id).subquery())
    stmt = (select(accounts.c.id, accounts.c.balance, func.coalesce(sums.c.total, 0).label("total"))
            .outerjoin(sums, sums.c.account_id == accounts.c.id).order_by(accounts.c.id))
    with transaction(db, write=False) as conn:
        found = []
        for row in conn.execute(stmt):
            # summed in the database over exact ten-thousandths, typed back to Decimal
            if row.total != row.balance:
                found.append((row.id, row.balance, row.total))
        return found


def _exists(conn: Connection, account_id: str) -> bool:
    return conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is not None
