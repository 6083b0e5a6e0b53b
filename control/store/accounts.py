"""Accounts (customers and vendors) and the agent tree they form through ``agent_id``.

Storage only: who may see or change what is :mod:`control.accounts`' business. Two rules
are kept here because the data must never break them: the balance and credit limit
change only through the ledger (so the balance always equals the ledger), and the agent
tree has no cycles (so the recursive tree queries end).
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, Integer, delete, exc, func, insert, literal, select, update

from control.store import audit, ledger
from control.store.engine import Conflict, NotFound, Store, transaction
from control.store.rows import as_dict, check_values, now, redacted
from control.store.schema import accounts

MAX_DEPTH = 64        # deeper than any real reseller chain; stops a runaway recursion


def create_account(db: Store | Connection, values: dict, *, operator: str = "system",
                   source_ip: str = "") -> dict:
    """Insert an account (``id`` is the Account ID, text); an opening ``balance`` or ``credit_limit`` in ``values`` is
    booked as ledger entries in the same transaction. Returns the stored account."""
    values = check_values(accounts, values)
    if not values.get("id") or not isinstance(values["id"], str):
        raise ValueError("an account needs its id (text, chosen once, never changed)")
    opening = Decimal(values.pop("balance", 0) or 0)
    credit_limit = values.pop("credit_limit", None)
    values.setdefault("created_at", now())
    with transaction(db) as conn:
        if values.get("agent_id") is not None and _get(conn, values["agent_id"]) is None:
            raise NotFound(f"agent {values['agent_id']} does not exist")
        try:
            account_id = conn.execute(insert(accounts).returning(accounts.c.id), values).scalar_one()
        except exc.IntegrityError as error:
            raise Conflict(f"cannot add account: {str(error.orig).splitlines()[0]}") from None
        audit.append(conn, operator, "create", "accounts", account_id, redacted(values), source_ip=source_ip)
        if opening:
            ledger.append(conn, account_id, opening, "adjust", operator=operator, memo="opening balance")
        if credit_limit is not None and Decimal(credit_limit) != 0:
            ledger.set_credit_limit(conn, account_id, credit_limit, operator=operator, memo="opening credit limit")
        return _get(conn, account_id)


def get_account(db: Store | Connection, account_id: str) -> dict | None:
    with transaction(db, write=False) as conn:
        return _get(conn, account_id)


def get_account_by_name(db: Store | Connection, name: str) -> dict | None:
    with transaction(db, write=False) as conn:
        row = conn.execute(select(accounts).where(accounts.c.name == name)).one_or_none()
        return as_dict(row) if row is not None else None


def list_accounts(db: Store | Connection, *, kind: str | None = None, status: str | None = None,
                  limit: int | None = None, offset: int = 0) -> list[dict]:
    stmt = select(accounts)
    if kind is not None:
        stmt = stmt.where(accounts.c.kind == kind)
    if status is not None:
        stmt = stmt.where(accounts.c.status == status)
    stmt = stmt.order_by(accounts.c.id).limit(limit).offset(offset)
    with transaction(db, write=False) as conn:
        return [as_dict(row) for row in conn.execute(stmt)]


def update_account(db: Store | Connection, account_id: str, changes: dict, *, operator: str = "system",
                   source_ip: str = "") -> dict:
    """Change account fields other than balance and credit limit (use
    :mod:`control.store.ledger`). Moving an account under a new agent that lies in its
    own subtree raises :class:`Conflict`."""
    changes = check_values(accounts, changes,
                           read_only=frozenset({"id", "created_at", "balance", "credit_limit"}))
    with transaction(db) as conn:
        before = _get(conn, account_id)
        if before is None:
            raise NotFound(f"account {account_id} does not exist")
        agent = changes.get("agent_id")
        if agent is not None and agent != before["agent_id"]:
            if _get(conn, agent) is None:
                raise NotFound(f"agent {agent} does not exist")
            if agent == account_id or agent in subtree_ids(conn, account_id):
                raise Conflict(f"account {account_id} cannot move under {agent}: that is inside its own subtree")
        try:
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(changes))
        except exc.IntegrityError as error:
            raise Conflict(f"cannot change account {account_id}: {str(error.orig).splitlines()[0]}") from None
        after = _get(conn, account_id)
        changed = {k: [before[k], after[k]] for k in changes if before[k] != after[k]}
        if changed:
            audit.append(conn, operator, "update", "accounts", account_id, redacted(changed), source_ip=source_ip)
        return after


def delete_account(db: Store | Connection, account_id: str, *, operator: str = "system",
                   source_ip: str = "") -> None:
    """Delete an account without sub-accounts, phones, gateways or ledger entries (those
    keep it, as history must)."""
    with transaction(db) as conn:
        before = _get(conn, account_id)
        if before is None:
            raise NotFound(f"account {account_id} does not exist")
        if children(conn, account_id):
            raise Conflict(f"account {account_id} still has sub-accounts")
        try:
            conn.execute(delete(accounts).where(accounts.c.id == account_id))
        except exc.IntegrityError as error:
            raise Conflict(f"account {account_id} is still in use: {str(error.orig).splitlines()[0]}") from None
        audit.append(conn, operator, "delete", "accounts", account_id, redacted(before), source_ip=source_ip)


def children(db: Store | Connection, account_id: str) -> list[dict]:
    """The direct sub-accounts (the agent's "Direct" view)."""
    with transaction(db, write=False) as conn:
        rows = conn.execute(select(accounts).where(accounts.c.agent_id == account_id).order_by(accounts.c.id))
        return [as_dict(row) for row in rows]


def subtree(db: Store | Connection, account_id: str, *, include_self: bool = False) -> list[dict]:
    """Every account below ``account_id`` (the "All" view), each with its ``depth`` (1 for
    children), ordered by depth then id; one recursive query on both backends."""
    tree = _descendants(account_id)
    stmt = (select(accounts, tree.c.depth).join(tree, accounts.c.id == tree.c.id)
            .order_by(tree.c.depth, accounts.c.id))
    with transaction(db, write=False) as conn:
        rows = [as_dict(row) for row in conn.execute(stmt)]
        if include_self:
            me = _get(conn, account_id)
            if me is not None:
                rows.insert(0, {**me, "depth": 0})
        return rows


def subtree_ids(db: Store | Connection, account_id: str) -> set[str]:
    tree = _descendants(account_id)
    with transaction(db, write=False) as conn:
        return set(conn.execute(select(tree.c.id)).scalars())


def in_subtree(db: Store | Connection, agent_id: str, account_id: str) -> bool:
    """True when ``account_id`` is ``agent_id`` itself or lies below it."""
    if agent_id == account_id:
        return True
    return any(row["id"] == agent_id for row in ancestors(db, account_id))


def ancestors(db: Store | Connection, account_id: str) -> list[dict]:
    """The agent chain above an account: its agent first, the root last."""
    base = (select(accounts.c.agent_id.label("id"), literal(1, Integer).label("depth"))
            .where(accounts.c.id == account_id, accounts.c.agent_id.is_not(None)))
    chain = base.cte("chain", recursive=True)
    step = (select(accounts.c.agent_id, chain.c.depth + 1)
            .join(chain, accounts.c.id == chain.c.id)
            .where(accounts.c.agent_id.is_not(None), chain.c.depth < MAX_DEPTH))
    chain = chain.union_all(step)
    stmt = select(accounts, chain.c.depth).join(chain, accounts.c.id == chain.c.id).order_by(chain.c.depth)
    with transaction(db, write=False) as conn:
        return [as_dict(row) for row in conn.execute(stmt)]


def agent_ids(db: Store | Connection) -> set[str]:
    """Accounts that have sub-accounts: their category is "Agent", every other's "Account"."""
    with transaction(db, write=False) as conn:
        return set(conn.execute(select(accounts.c.agent_id).where(accounts.c.agent_id.is_not(None))
                                .distinct()).scalars())


def count_accounts(db: Store | Connection) -> int:
    with transaction(db, write=False) as conn:
        return conn.execute(select(func.count()).select_from(accounts)).scalar_one()


def _descendants(account_id: str):
    base = (select(accounts.c.id, literal(1, Integer).label("depth"))
            .where(accounts.c.agent_id == account_id))
    tree = base.cte("tree", recursive=True)
    step = (select(accounts.c.id, tree.c.depth + 1)
            .join(tree, accounts.c.agent_id == tree.c.id)
            .where(tree.c.depth < MAX_DEPTH))
    return tree.union_all(step)


def _get(conn: Connection, account_id: str) -> dict | None:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).one_or_none()
    return as_dict(row) if row is not None else None
