"""Operator (admin) users: roles, per-module rights, login IP allow list (SPEC §4, §8).

Roles rank super admin > admin > operator > read-only. Super admins and admins hold every
right, a read-only user views every module and changes nothing, and an operator holds
exactly the (module, right) pairs granted to it (grants matter for that role only).

Managing operators follows the ranks: an actor manages only roles below its own (a super
admin manages everyone), never grants a right it lacks, never changes its own role, rights
or enabled flag, and the last enabled super admin cannot be removed.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Iterable, Mapping

from .audit import NO_CHANGE, AuditLog, Changeset, snapshot
from .errors import AccountError, NotFound, PermissionDenied
from .permissions import Actor, ActorKind, Module, Right
from .validation import clean_enum, clean_id, fields_of


class Role(str, Enum):
    SUPER_ADMIN = "super admin"
    ADMIN = "admin"
    OPERATOR = "operator"
    READ_ONLY = "read-only"


_RANK = {Role.SUPER_ADMIN: 3, Role.ADMIN: 2, Role.OPERATOR: 1, Role.READ_ONLY: 0}
ALL_RIGHTS = frozenset((module, right) for module in Module for right in Right)
VIEW_RIGHTS = frozenset((module, Right.VIEW) for module in Module)


@dataclass(frozen=True)
class Operator:
    name: str
    role: Role = Role.OPERATOR
    grants: frozenset[tuple[Module, Right]] = frozenset()   # rights of the operator role
    allowed_ips: tuple[str, ...] = ()                       # networks; empty: any address
    enabled: bool = True


def rights_of(operator: Operator) -> frozenset[tuple[Module, Right]]:
    if not operator.enabled:
        return frozenset()
    if operator.role in (Role.SUPER_ADMIN, Role.ADMIN):
        return ALL_RIGHTS
    if operator.role is Role.READ_ONLY:
        return VIEW_RIGHTS
    return operator.grants


def _clean_grants(field: str, value: Any) -> frozenset[tuple[Module, Right]]:
    """Grants as {module: [rights]}, as (module, right) pairs, or as "module:right" text."""
    if isinstance(value, Mapping):
        value = [(module, right) for module, rights in value.items()
                 for right in ([rights] if isinstance(rights, (str, Right)) else rights)]
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise AccountError(field, "must be pairs of (module, right)")
    grants = set()
    for item in value:
        if isinstance(item, str) and ":" in item:
            item = item.rsplit(":", 1)
        if isinstance(item, str) or not isinstance(item, (tuple, list)) or len(item) != 2:
            raise AccountError(field, f"{item!r} is not a (module, right) pair")
        grants.add((clean_enum(field, Module, item[0]), clean_enum(field, Right, item[1])))
    return frozenset(grants)


def _clean_ips(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    networks = []
    for item in value:
        try:
            network = str(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise AccountError(field, f"{item!r} is not an IP address or CIDR network") from None
        if network not in networks:
            networks.append(network)
    return tuple(networks)


def _clean_enabled(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AccountError(field, "must be true or false")
    return value


_CLEANERS: Mapping[str, Callable[[str, Any], Any]] = {
    "name": clean_id,
    "role": lambda f, v: clean_enum(f, Role, v),
    "grants": _clean_grants,
    "allowed_ips": _clean_ips,
    "enabled": _clean_enabled,
}


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {}
    for name, value in fields.items():
        if name not in _CLEANERS:
            raise AccountError(name, "unknown operator field")
        cleaned[name] = _CLEANERS[name](name, value)
    return cleaned


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class OperatorDirectory:
    def __init__(self, audit: AuditLog | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.audit = audit if audit is not None else AuditLog()
        self._clock = clock
        self._operators: dict[str, Operator] = {}
        self._lock = threading.RLock()

    def load(self, operators: Iterable[Operator]) -> None:
        """Fill an empty directory from the store; every record is checked, nothing audited."""
        with self._lock:
            if self._operators:
                raise AccountError("operators", "load only into an empty directory")
            loaded = {}
            for operator in operators:
                operator = Operator(**_clean(fields_of(operator)))
                if operator.name in loaded:
                    raise AccountError("name", f"operator {operator.name!r} appears twice")
                loaded[operator.name] = operator
            self._operators = loaded

    # -- checks used by the rest of the control plane -------------------------------------

    def permits(self, name: str, module: Module, right: Right) -> bool:
        operator = self._operators.get(name)
        return operator is not None and (module, right) in rights_of(operator)

    def login_allowed(self, name: str, address: str) -> bool:
        """Before a password is even checked: enabled, and from an allowed network."""
        operator = self._operators.get(name)
        if operator is None or not operator.enabled:
            return False
        if not operator.allowed_ips:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net) for net in operator.allowed_ips)

    # -- reads -----------------------------------------------------------------------------

    def get(self, actor: Actor, name: str) -> Operator:
        with self._lock:
            if not (actor.kind is ActorKind.OPERATOR and actor.id == name):
                self._require(actor, Right.VIEW)
            if name not in self._operators:
                raise NotFound("name", "operator", name)
            return self._operators[name]

    def list(self, actor: Actor) -> list[Operator]:
        with self._lock:
            self._require(actor, Right.VIEW)
            return [self._operators[name] for name in sorted(self._operators)]

    # -- changes ---------------------------------------------------------------------------

    def create(self, actor: Actor, name: str, **fields: Any) -> Changeset:
        with self._lock:
            self._require(actor, Right.ADD)
            cleaned = _clean({"name": name, **fields})
            if cleaned["name"] in self._operators:
                raise AccountError("name", f"operator {cleaned['name']!r} already exists")
            new = Operator(**cleaned)
            self._check_rank(actor, new.role)
            self._check_grants(actor, new.grants)
            return self._commit(actor, "operator.create", None, new)

    def update(self, actor: Actor, name: str, **fields: Any) -> Changeset:
        with self._lock:
            self._require(actor, Right.EDIT)
            old = self._find(name)
            new = dataclasses.replace(old, **_clean(fields))
            if new == old:
                return NO_CHANGE
            if actor.kind is ActorKind.OPERATOR and actor.id == name and (
                    new.role, new.grants, new.enabled) != (old.role, old.grants, old.enabled):
                raise PermissionDenied("operators", "nobody changes their own role, rights "
                                                    "or enabled flag")
            self._check_rank(actor, old.role)
            self._check_rank(actor, new.role)
            self._check_grants(actor, new.grants - old.grants)
            self._check_super_admin_left(old, new)
            return self._commit(actor, "operator.update", old, new)

    def delete(self, actor: Actor, name: str) -> Changeset:
        with self._lock:
            self._require(actor, Right.DELETE)
            old = self._find(name)
            if actor.kind is ActorKind.OPERATOR and actor.id == name:
                raise PermissionDenied("operators", "nobody deletes their own operator user")
            self._check_rank(actor, old.role)
            self._check_super_admin_left(old, None)
            return self._commit(actor, "operator.delete", old, None)

    # -- rules -----------------------------------------------------------------------------

    def _find(self, name: str) -> Operator:
        if name not in self._operators:
            raise NotFound("name", "operator", name)
        return self._operators[name]

    def _require(self, actor: Actor, right: Right) -> None:
        if actor.kind is ActorKind.SYSTEM:
            return
        if actor.kind is not ActorKind.OPERATOR:
            raise PermissionDenied("operators", "only operators manage operator users")
        if not self.permits(actor.id, Module.OPERATORS, right):
            raise PermissionDenied("operators", f"operator {actor.id!r} has no {right.value} "
                                                f"right on operators")

    def _check_rank(self, actor: Actor, role: Role) -> None:
        if actor.kind is ActorKind.SYSTEM:
            return
        mine = self._operators[actor.id].role
        if mine is not Role.SUPER_ADMIN and _RANK[role] >= _RANK[mine]:
            raise PermissionDenied("role", f"the {mine.value} role manages only roles below "
                                           f"its own, not {role.value}")

    def _check_grants(self, actor: Actor, grants: frozenset[tuple[Module, Right]]) -> None:
        if actor.kind is ActorKind.SYSTEM:
            return
        beyond = grants - rights_of(self._operators[actor.id])
        if beyond:
            shown = ", ".join(sorted(f"{m.value}:{r.value}" for m, r in beyond))
            raise PermissionDenied("grants", f"cannot grant rights you lack: {shown}")

    def _check_super_admin_left(self, old: Operator, new: Operator | None) -> None:
        def counts(operator: Operator | None) -> bool:
            return operator is not None and operator.role is Role.SUPER_ADMIN and operator.enabled
        if counts(old) and not counts(new):
            others = [o for o in self._operators.values() if o.name != old.name and counts(o)]
            if not others:
                raise AccountError("role", "the last enabled super admin cannot be removed, "
                                           "demoted or disabled")

    def _commit(self, actor: Actor, action: str, old: Operator | None,
                new: Operator | None) -> Changeset:
        name = (new or old).name
        if new is None:
            del self._operators[name]
        else:
            self._operators[name] = new
        entry = self.audit.record(self._clock(), actor.label, action, "operator", name,
                                  None if old is None else snapshot(old),
                                  None if new is None else snapshot(new))
        if new is None:
            return Changeset(removed=(name,), audit=(entry,))
        return Changeset(saved=(new,), audit=(entry,))
