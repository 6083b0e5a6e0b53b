"""The account record and the fixed vocabularies of SPEC §4.

Records are frozen dataclasses of plain values so the store can persist them as they are
and nobody can change one without going through :class:`~control.accounts.AccountDirectory`,
which validates and audits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import Enum

# The spec's "never expires" date; later dates are refused rather than given a meaning.
NEVER_EXPIRES = date(2099, 12, 31)


class Status(str, Enum):
    ACTIVE = "Active"
    LOCKED = "Locked"
    INACTIVE = "Inactive"
    EXPIRED = "Expired"


class Kind(str, Enum):
    CUSTOMER = "customer"
    VENDOR = "vendor"


class BillingModel(str, Enum):
    STANDARD = "Standard"
    FLOW = "Flow"        # callback business


class Category(str, Enum):
    """Derived from the tree, never stored: "Agent" iff the account has sub-accounts."""

    ACCOUNT = "Account"
    AGENT = "Agent"


class Authorization(str, Enum):
    """The eight agent authorizations; values are the spec's names, shown to users as-is."""

    ADD_DELETE_MODIFY_ACCOUNT = "Add/delete/modify account"
    ADD_DELETE_MODIFY_PHONE = "Add/delete/modify phone"
    ADD_DELETE_MODIFY_PHONE_CARD = "Add/delete/modify phone card"
    ADD_DELETE_GATEWAY = "Add/delete gateway"
    MODIFY_GATEWAY_INFORMATION = "Modify gateway information"
    MODIFY_GATEWAY_CAPACITY = "Modify gateway capacity"
    PAYMENT_FOR_THIS_ACCOUNT = "Payment for this account"
    PAYMENT_FOR_SUB_ACCOUNTS = "Payment for sub accounts"


@dataclass(frozen=True)
class Account:
    """One customer or vendor account. ``agent_id`` is the parent in the agent tree."""

    id: str
    name: str
    kind: Kind = Kind.CUSTOMER
    status: Status = Status.ACTIVE
    expiry: date = NEVER_EXPIRES
    balance: Decimal = Decimal(0)
    credit_limit: Decimal = Decimal(0)          # how far below zero the balance may go
    concurrent_limit: int | None = None         # None: no limit; 0: no calls at all
    rate_table: str = ""                        # default rate table name
    period_rate: str = ""                       # package period rate name
    work_calendar: str = ""
    number_sections: tuple[str, ...] = ()       # allowed number prefixes; empty: no limitation
    blocked_sections: tuple[str, ...] = ()      # number prefixes never allowed
    billing_model: BillingModel = BillingModel.STANDARD
    agent_id: str | None = None
    authorizations: frozenset[Authorization] = frozenset()

    def allows_number(self, number: str) -> bool:
        """Number section limitation: with allowed sections set, only numbers starting with
        one pass; a number starting with a blocked section never passes."""
        if self.blocked_sections and number.startswith(self.blocked_sections):
            return False
        return not self.number_sections or number.startswith(self.number_sections)
