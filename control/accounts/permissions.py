"""Who is acting, and the one check every read and change goes through.

Three kinds of actor: an operator (admin user, rights from its role and per-module grants),
an agent (an account acting on its own subtree, rights from its eight authorizations) and
the system (the switch's own code, e.g. billing; never reachable from the Web API).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Callable, Protocol

from .errors import NotFound, PermissionDenied
from .model import Account, Authorization
from .status import Usability
from .tree import AccountTree


class Module(str, Enum):
    """Management modules (SPEC §8) that operator rights are granted on."""

    ACCOUNTS = "accounts"
    AGENTS = "agents"
    PAYMENTS = "payments"
    PHONES = "phones"
    PHONE_CARDS = "phone cards"
    GATEWAYS = "gateways"
    RATE_TABLES = "rate tables"
    CALENDARS = "calendars"
    PARAMETERS = "parameters"
    CDRS = "CDRs"
    REPORTS = "reports"
    CURRENT_CALLS = "current calls"
    ROUTING = "routing"
    ALARMS = "alarms"
    OPERATORS = "operators"
    AUDIT_LOG = "audit log"


class Right(str, Enum):
    VIEW = "view"
    ADD = "add"
    EDIT = "edit"
    DELETE = "delete"


class ActorKind(str, Enum):
    OPERATOR = "operator"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Identity only: rights are looked up at each check, so revoking one acts at once."""

    kind: ActorKind
    id: str

    @classmethod
    def operator(cls, name: str) -> Actor:
        return cls(ActorKind.OPERATOR, name)

    @classmethod
    def agent(cls, account_id: str) -> Actor:
        return cls(ActorKind.AGENT, account_id)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(ActorKind.SYSTEM, name)

    @property
    def label(self) -> str:
        return f"{self.kind.value}:{self.id}"


_ACCOUNT = Authorization.ADD_DELETE_MODIFY_ACCOUNT
_PHONE = Authorization.ADD_DELETE_MODIFY_PHONE
_CARD = Authorization.ADD_DELETE_MODIFY_PHONE_CARD

# What an agent needs for each (module, right) inside its subtree. None: scope alone is
# enough (viewing). A pair missing here is never open to agents (operators, parameters...).
AGENT_NEEDS: dict[tuple[Module, Right], Authorization | None] = {
    (Module.ACCOUNTS, Right.VIEW): None,
    (Module.ACCOUNTS, Right.ADD): _ACCOUNT,
    (Module.ACCOUNTS, Right.EDIT): _ACCOUNT,
    (Module.ACCOUNTS, Right.DELETE): _ACCOUNT,
    # Placing sub-accounts and setting their authorizations is modifying accounts.
    (Module.AGENTS, Right.VIEW): None,
    (Module.AGENTS, Right.EDIT): _ACCOUNT,
    (Module.PHONES, Right.VIEW): None,
    (Module.PHONES, Right.ADD): _PHONE,
    (Module.PHONES, Right.EDIT): _PHONE,
    (Module.PHONES, Right.DELETE): _PHONE,
    (Module.PHONE_CARDS, Right.VIEW): None,
    (Module.PHONE_CARDS, Right.ADD): _CARD,
    (Module.PHONE_CARDS, Right.EDIT): _CARD,
    (Module.PHONE_CARDS, Right.DELETE): _CARD,
    (Module.GATEWAYS, Right.VIEW): None,
    (Module.GATEWAYS, Right.ADD): Authorization.ADD_DELETE_GATEWAY,
    (Module.GATEWAYS, Right.DELETE): Authorization.ADD_DELETE_GATEWAY,
    # A capacity change passes MODIFY_GATEWAY_CAPACITY explicitly; other edits need this.
    (Module.GATEWAYS, Right.EDIT): Authorization.MODIFY_GATEWAY_INFORMATION,
    (Module.PAYMENTS, Right.VIEW): None,
    (Module.PAYMENTS, Right.ADD): Authorization.PAYMENT_FOR_SUB_ACCOUNTS,
    (Module.PAYMENTS, Right.EDIT): Authorization.PAYMENT_FOR_SUB_ACCOUNTS,
    (Module.CDRS, Right.VIEW): None,
    (Module.REPORTS, Right.VIEW): None,
    (Module.CURRENT_CALLS, Right.VIEW): None,
    (Module.AUDIT_LOG, Right.VIEW): None,
}


def require_operator(actor: Actor, field: str = "actor", rule: str = "for operators only") -> None:
    """Things shared by the whole switch (alarms, system figures, gateway groups, the online
    lists) are not any one subtree's: agents are refused whatever their authorizations."""
    if actor.kind is ActorKind.AGENT:
        raise PermissionDenied(field, rule)


class OperatorRights(Protocol):
    def permits(self, name: str, module: Module, right: Right) -> bool: ...


class Guard:
    """Decides whether an actor may do something to an account's data.

    For an agent the target must lie in its subtree; outside it the answer is the same
    NotFound a missing id gets. ``include_self=False`` (changes to account records) also
    keeps an agent off its own record: it cannot unlock itself, raise its own credit limit
    or widen its own authorizations.
    """

    def __init__(self, operators: OperatorRights, tree: AccountTree,
                 account: Callable[[str], Account],
                 usable: Callable[[str, datetime], Usability],
                 clock: Callable[[], datetime]) -> None:
        self._operators = operators
        self._tree = tree
        self._account = account
        self._usable = usable
        self._clock = clock

    def in_scope(self, actor: Actor, target: str, *, include_self: bool = True) -> bool:
        if target not in self._tree:
            return False
        if actor.kind is not ActorKind.AGENT:
            return True
        if target == actor.id:
            return include_self
        return self._tree.is_within(target, actor.id)

    def require(self, actor: Actor, module: Module, right: Right, target: str | None = None, *,
                authorization: Authorization | None = None, include_self: bool = True,
                field: str = "account") -> None:
        """Return if allowed, else raise NotFound or PermissionDenied naming the rule."""
        if actor.kind is ActorKind.SYSTEM:
            if target is not None and target not in self._tree:
                raise NotFound(field, "account", target)
            return
        if actor.kind is ActorKind.OPERATOR:
            if not self._operators.permits(actor.id, module, right):
                raise PermissionDenied(module.value, f"operator {actor.id!r} has no "
                                                     f"{right.value} right on {module.value}")
            if target is not None and target not in self._tree:
                raise NotFound(field, "account", target)
            return
        self._require_agent(actor, module, right, target, authorization, include_self, field)

    def _require_agent(self, actor: Actor, module: Module, right: Right, target: str | None,
                       authorization: Authorization | None, include_self: bool, field: str) -> None:
        if actor.id not in self._tree:
            raise PermissionDenied("actor", f"agent {actor.id!r} does not exist")
        if target == actor.id and not include_self:
            raise PermissionDenied(field, "an agent cannot change its own account; its agent "
                                          "or an operator does")
        if target is not None and not self.in_scope(actor, target):
            raise NotFound(field, "account", target)
        if authorization is None:
            if (module, right) not in AGENT_NEEDS:
                raise PermissionDenied(module.value, f"agents have no {right.value} right "
                                                     f"on {module.value}")
            authorization = AGENT_NEEDS[module, right]
            if module is Module.PAYMENTS and target == actor.id and authorization is not None:
                authorization = Authorization.PAYMENT_FOR_THIS_ACCOUNT
        held = self._account(actor.id).authorizations
        if authorization is not None and authorization not in held:
            raise PermissionDenied("authorizations", f"agent {actor.id!r} lacks the "
                                                     f"authorization {authorization.value!r}")
        if right is not Right.VIEW:
            # A blocked agent blocks its subtree's calls; it should not run its business either.
            verdict = self._usable(actor.id, self._clock())
            if not verdict:
                raise PermissionDenied("actor", f"{verdict.reason}: {verdict.detail}")
