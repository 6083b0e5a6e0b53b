"""Accounts in memory: validate a request, check who asks, apply it, say what changed.

No database here. The store loads records with :meth:`AccountDirectory.load` at start and
persists what each change returns (a :class:`Changeset`: records to save, ids to delete,
audit entries). Every public method takes the acting :class:`Actor` first and asks the
:class:`Guard` before it reads or changes anything, except :meth:`load` (the store, at
start) and :meth:`usable` (the call path, on its own behalf).
"""
from __future__ import annotations

import dataclasses
import threading
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable

from .audit import NO_CHANGE, AuditEntry, AuditLog, Changeset, snapshot
from .errors import AccountError, NotFound, PermissionDenied
from .model import Account, Authorization, Category
from .operators import OperatorDirectory
from .permissions import Actor, ActorKind, Guard, Module, Right
from .status import Usability, check_chain
from .tree import AccountTree
from .validation import clean_account, clean_fields, clean_money, clean_optional_id, clean_text

# Fields no request may set: derived, permanent, or owned by the payment path.
_READ_ONLY = {
    "category": "derived from sub-accounts; read-only",
    "id": "account ids are permanent; create a new account instead",
    "balance": "changes only through payments",
}


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _names(authorizations: Iterable[Authorization]) -> str:
    return ", ".join(sorted(repr(a.value) for a in authorizations))


class AccountDirectory:
    def __init__(self, operators: OperatorDirectory, audit: AuditLog | None = None,
                 clock: Callable[[], datetime] = _utc_now,
                 balance_of: Callable[[str], Any] | None = None) -> None:
        self.operators = operators
        # The live balance where something else holds it (the switch's funds, which call
        # charges change); by default the record's own figure.
        self._balance_of = balance_of or (lambda account_id: self._accounts[account_id].balance)
        self.audit = audit if audit is not None else operators.audit
        self._clock = clock
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._tree = AccountTree()
        self._guard = self._new_guard()

    def _new_guard(self) -> Guard:
        return Guard(self.operators, self._tree, self._accounts.__getitem__,
                     self._usable, self._clock)

    def load(self, accounts: Iterable[Account]) -> None:
        """Fill an empty directory from the store: every field rule and tree rule is checked."""
        with self._lock:
            if self._accounts:
                raise AccountError("accounts", "load only into an empty directory")
            records: dict[str, Account] = {}
            for account in accounts:
                account = clean_account(account)
                if account.id in records:
                    raise AccountError("id", f"account {account.id!r} appears twice")
                records[account.id] = account
            tree = AccountTree.build((a.id, a.agent_id) for a in records.values())
            for account in records.values():
                if account.agent_id is not None:
                    beyond = account.authorizations - records[account.agent_id].authorizations
                    if beyond:
                        raise AccountError("authorizations", f"account {account.id!r} holds "
                                           f"{_names(beyond)}, which its agent lacks")
            self._accounts.update(records)
            self._tree = tree
            self._guard = self._new_guard()

    # -- the call path ----------------------------------------------------------------------

    def usable(self, account_id: str, now: date | datetime) -> Usability:
        """Whether the account may make calls at ``now``: itself and every agent above it
        Active and unexpired. The answer names the VOS3000 reason and SIP code when not."""
        with self._lock:
            if account_id not in self._accounts:
                raise NotFound("account", "account", account_id)
            return self._usable(account_id, now)

    def _usable(self, account_id: str, now: date | datetime) -> Usability:
        return check_chain((self._accounts[a] for a in self._tree.chain(account_id)), now)

    # -- the permission check, for this package and for phones, gateways, payments ... -------

    def require(self, actor: Actor, module: Module, right: Right, target: str | None = None, *,
                authorization: Authorization | None = None, include_self: bool = True,
                field: str = "account") -> None:
        """Raise NotFound or PermissionDenied unless ``actor`` may use ``right`` on ``module``
        for data belonging to account ``target``; ``field`` is the request field errors name."""
        with self._lock:
            self._guard.require(actor, module, right, target, authorization=authorization,
                                include_self=include_self, field=field)

    def permits(self, actor: Actor, module: Module, right: Right, target: str | None = None) -> bool:
        """:meth:`require` as a yes/no: for filtering lists to what the actor may see."""
        try:
            self.require(actor, module, right, target)
            return True
        except AccountError:
            return False

    # -- reads ------------------------------------------------------------------------------

    def get(self, actor: Actor, account_id: str) -> Account:
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.VIEW, account_id)
            return self._accounts[account_id]

    def category(self, actor: Actor, account_id: str) -> Category:
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.VIEW, account_id)
            return self._tree.category(account_id)

    def direct(self, actor: Actor, account_id: str) -> list[Account]:
        """Sub-account view *Direct*: the accounts whose Agent ID is ``account_id``."""
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.VIEW, account_id)
            return [self._accounts[a] for a in self._tree.children(account_id)]

    def all(self, actor: Actor, account_id: str) -> list[Account]:
        """Sub-account view *All*: the whole subtree below ``account_id``, agents first."""
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.VIEW, account_id)
            return [self._accounts[a] for a in self._tree.descendants(account_id)]

    def visible(self, actor: Actor) -> list[Account]:
        """Every account the actor may see: all for operators, its own subtree for an agent."""
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.VIEW)
            if actor.kind is ActorKind.AGENT:
                ids = [actor.id, *self._tree.descendants(actor.id)]
            else:
                ids = self._tree.nodes()
            return [self._accounts[a] for a in ids]

    def audit_entries(self, actor: Actor, account_id: str | None = None) -> list[AuditEntry]:
        """The audit trail as the actor may read it; an agent sees only entries about
        accounts that were in its subtree when the change was made."""
        with self._lock:
            self._guard.require(actor, Module.AUDIT_LOG, Right.VIEW, account_id)
            entries = self.audit.since(0)
            if account_id is not None:
                entries = [e for e in entries
                           if e.entity == "account" and e.entity_id == account_id]
            if actor.kind is ActorKind.AGENT:
                entries = [e for e in entries if e.entity == "account" and actor.id in e.owners]
            return entries

    # -- changes ----------------------------------------------------------------------------

    def create(self, actor: Actor, account_id: str, **fields: Any) -> Changeset:
        """A new account. An agent's new account lands under the agent unless it names
        another Agent ID inside its subtree; anywhere else is refused."""
        with self._lock:
            parent = clean_optional_id("agent_id", fields.get("agent_id"))
            if actor.kind is ActorKind.AGENT and parent is None:
                parent = fields["agent_id"] = actor.id
            self._guard.require(actor, Module.ACCOUNTS, Right.ADD, parent, field="agent_id")
            for name in ("id", "category"):
                if name in fields:
                    raise AccountError(name, "given as account_id" if name == "id"
                                       else _READ_ONLY[name])
            fields.setdefault("name", account_id)
            new = Account(**clean_fields({"id": account_id, **fields}))
            if new.id in self._accounts:
                raise AccountError("id", f"account {new.id!r} already exists")
            if new.balance != 0:
                raise AccountError("balance", "a new account starts at 0; money comes in "
                                              "through payments")
            if new.credit_limit != 0:
                # Setting a credit limit is a payment (SPEC §5), here one for a sub-account
                # even when the agent itself is the new account's parent.
                self._guard.require(actor, Module.PAYMENTS, Right.EDIT, new.agent_id,
                                    authorization=Authorization.PAYMENT_FOR_SUB_ACCOUNTS,
                                    field="agent_id")
            if new.authorizations:
                self._guard.require(actor, Module.AGENTS, Right.EDIT, new.agent_id,
                                    field="agent_id")
            self._tree.check_parent(new.id, new.agent_id)
            self._check_within_parent(new, new.agent_id)
            self._tree.add(new.id, new.agent_id)
            self._accounts[new.id] = new
            entry = self._record(actor, "account.create", None, new,
                                 frozenset(self._tree.chain(new.id)))
            return Changeset(saved=(new,), audit=(entry,))

    def update(self, actor: Actor, account_id: str, **fields: Any) -> Changeset:
        """Change fields of an account. Moving it (a new Agent ID) or lowering its
        authorizations trims the authorizations of its whole subtree to fit."""
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.EDIT, account_id,
                                include_self=False)
            for name in fields:
                if name in _READ_ONLY:
                    raise AccountError(name, _READ_ONLY[name])
            old = self._accounts[account_id]
            new = dataclasses.replace(old, **clean_fields(fields))
            changed = {f for f in fields if getattr(old, f) != getattr(new, f)}
            if not changed:
                return NO_CHANGE
            if "credit_limit" in changed:
                self._guard.require(actor, Module.PAYMENTS, Right.EDIT, account_id,
                                    include_self=False)
            if changed & {"agent_id", "authorizations"}:
                self._guard.require(actor, Module.AGENTS, Right.EDIT, account_id,
                                    include_self=False)
            moved = "agent_id" in changed
            if moved:
                self._check_destination(actor, new)
            if "authorizations" in changed:
                self._check_within_parent(new, new.agent_id)
            elif moved and new.agent_id is not None:
                new = dataclasses.replace(new, authorizations=new.authorizations
                                          & self._accounts[new.agent_id].authorizations)
            # Only a loss of authorizations can leave a descendant holding more than its agent.
            lost = old.authorizations - new.authorizations
            trimmed = self._trim_subtree(new) if lost else []
            return self._apply_update(actor, old, new, trimmed)

    def delete(self, actor: Actor, account_id: str) -> Changeset:
        """Remove an account that has no sub-accounts and a zero balance."""
        with self._lock:
            self._guard.require(actor, Module.ACCOUNTS, Right.DELETE, account_id,
                                include_self=False)
            old = self._accounts[account_id]
            if self._tree.children(account_id):
                raise AccountError("id", f"account {account_id!r} has sub-accounts; move or "
                                         "delete them first")
            balance = self._balance_of(account_id)
            if balance != 0:
                raise AccountError("balance", f"is {balance}; settle it to 0 with a "
                                              "payment before deleting the account")
            owners = frozenset(self._tree.chain(account_id))
            self._tree.remove(account_id)
            del self._accounts[account_id]
            entry = self._record(actor, "account.delete", old, None, owners)
            return Changeset(removed=(account_id,), audit=(entry,))

    def apply_payment(self, actor: Actor, account_id: str, amount: Any,
                      memo: str = "") -> Changeset:
        """Add ``amount`` (negative: deduct) to the balance. The billing ledger records the
        payment itself; this keeps the account record in step and audits who did it.
        An agent pays its own account with "Payment for this account" and any account
        below it with "Payment for sub accounts"."""
        with self._lock:
            self._guard.require(actor, Module.PAYMENTS, Right.ADD, account_id)
            amount = clean_money("amount", amount)
            if amount == 0:
                raise AccountError("amount", "must not be 0")
            memo = clean_text("memo", memo, required=False)
            old = self._accounts[account_id]
            new = dataclasses.replace(old, balance=old.balance + amount)
            self._accounts[account_id] = new
            entry = self._record(actor, "account.payment", old, new,
                                 frozenset(self._tree.chain(account_id)), memo)
            return Changeset(saved=(new,), audit=(entry,))

    def revert(self, before: Iterable[tuple[str, Account | None]]) -> None:
        """Put records back as they were, ``(id, record or None if it did not exist)``,
        after the store refused to persist a change this directory already applied.
        Not audited: the change never happened as far as anyone can see."""
        with self._lock:
            for account_id, record in before:
                if record is None:
                    if account_id in self._accounts:
                        self._tree.remove(account_id)
                        del self._accounts[account_id]
                    continue
                if account_id in self._accounts:
                    self._tree.move(account_id, record.agent_id)
                else:
                    self._tree.add(account_id, record.agent_id)
                self._accounts[account_id] = record

    def chain(self, account_id: str) -> list[Account]:
        """The account and every agent above it (for the switch's own checks)."""
        with self._lock:
            if account_id not in self._accounts:
                return []
            return [self._accounts[a] for a in self._tree.chain(account_id)]

    def peek(self, account_id: str) -> Account | None:
        """The record without a rights check: for the switch's own code (the call path,
        rollbacks), never for a request."""
        with self._lock:
            return self._accounts.get(account_id)

    # -- rules ------------------------------------------------------------------------------

    def _check_within_parent(self, account: Account, parent: str | None) -> None:
        """A sub-agent never holds an authorization its agent lacks."""
        if parent is None or parent not in self._accounts:
            return
        beyond = account.authorizations - self._accounts[parent].authorizations
        if beyond:
            raise AccountError("authorizations", f"agent {parent!r} lacks {_names(beyond)}; "
                                                 "a sub-account cannot hold more than its agent")

    def _check_destination(self, actor: Actor, account: Account) -> None:
        """A move keeps the tree acyclic and, for an agent, inside the agent's subtree."""
        if actor.kind is ActorKind.AGENT:
            if account.agent_id is None:
                raise PermissionDenied("agent_id", "an agent keeps its accounts inside its "
                                                   "subtree")
            self._guard.require(actor, Module.AGENTS, Right.EDIT, account.agent_id,
                                field="agent_id")
        self._tree.check_parent(account.id, account.agent_id)

    def _trim_subtree(self, top: Account) -> list[Account]:
        """Descendants whose authorizations exceed their (new) agent's, cut down to fit."""
        held = {top.id: top.authorizations}
        trimmed = []
        for node in self._tree.descendants(top.id):
            record = self._accounts[node]
            allowed = held[record.agent_id]
            held[node] = record.authorizations & allowed
            if held[node] != record.authorizations:
                trimmed.append(dataclasses.replace(record, authorizations=held[node]))
        return trimmed

    def _apply_update(self, actor: Actor, old: Account, new: Account,
                      trimmed: list[Account]) -> Changeset:
        owners_before = frozenset(self._tree.chain(old.id))
        self._tree.move(new.id, new.agent_id)
        # Only agents above the record on both sides of a move may read about it.
        owners = owners_before & frozenset(self._tree.chain(new.id))
        self._accounts[new.id] = new
        entries = [self._record(actor, "account.update", old, new, owners)]
        for record in trimmed:
            entries.append(self._record(
                actor, "account.update", self._accounts[record.id], record,
                frozenset(self._tree.chain(record.id)),
                f"authorizations trimmed to those of agent {record.agent_id!r}"))
            self._accounts[record.id] = record
        return Changeset(saved=(new, *trimmed), audit=tuple(entries))

    def _record(self, actor: Actor, action: str, old: Account | None, new: Account | None,
                owners: frozenset[str], memo: str = "") -> AuditEntry:
        entity_id = (new or old).id
        return self.audit.record(self._clock(), actor.label, action, "account", entity_id,
                                 None if old is None else snapshot(old),
                                 None if new is None else snapshot(new), memo, owners)
