"""Accounts, agents and operators (SPEC §4): the in-memory model and its rules.

:class:`AccountDirectory` and :class:`OperatorDirectory` hold the records, check every
request against the acting :class:`Actor`, and return a :class:`Changeset` (what to save,
what to delete, the audit entries) for the store to persist. See docs/accounts.md.
"""
from .audit import AuditEntry, AuditLog, Changeset, snapshot
from .directory import AccountDirectory
from .errors import AccountError, NotFound, PermissionDenied
from .model import (
    NEVER_EXPIRES, Account, Authorization, BillingModel, Category, Kind, Status,
)
from .operators import Operator, OperatorDirectory, Role, rights_of
from .permissions import AGENT_NEEDS, Actor, ActorKind, Guard, Module, Right
from .status import ACCOUNT_EXPIRED, ACCOUNT_LOCKED, Usability, check_chain, effective_status
from .tree import AccountTree

__all__ = [
    "ACCOUNT_EXPIRED", "ACCOUNT_LOCKED", "AGENT_NEEDS", "NEVER_EXPIRES", "Account",
    "AccountDirectory", "AccountError", "AccountTree", "Actor", "ActorKind", "AuditEntry",
    "AuditLog", "Authorization", "BillingModel", "Category", "Changeset", "Guard", "Kind",
    "Module", "NotFound", "Operator", "OperatorDirectory", "PermissionDenied", "Right", "Role",
    "Status", "Usability", "check_chain", "effective_status", "rights_of", "snapshot",
]
