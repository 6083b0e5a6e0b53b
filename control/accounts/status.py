"""May this account make calls now? Its own status and expiry, and every agent's above it.

The answer carries the VOS3000 termination reason and SIP code (SPEC §7) so the call path
can put them in the response and the CDR without translating.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable

from control import reasons

from .model import Account, Status

ACCOUNT_LOCKED = reasons.ACCOUNT_LOCKED.name
ACCOUNT_EXPIRED = reasons.ACCOUNT_EXPIRED.name

# Inactive has no reason of its own among the VOS3000 names; like Locked it is an
# administrative stop, so it reports "Account Locked" and the detail says "inactive".
_REASONS = {
    Status.LOCKED: reasons.ACCOUNT_LOCKED,
    Status.INACTIVE: reasons.ACCOUNT_LOCKED,
    Status.EXPIRED: reasons.ACCOUNT_EXPIRED,
}


def _day(now: date | datetime) -> date:
    return now.date() if isinstance(now, datetime) else now


def effective_status(account: Account, now: date | datetime) -> Status:
    """The stored status, except that an Active account past its expiry date is Expired.

    The expiry date is the last usable day, in the calendar of ``now`` as passed.
    An explicit Locked or Inactive wins over expiry: it is the operator's word.
    """
    if account.status is Status.ACTIVE and _day(now) > account.expiry:
        return Status.EXPIRED
    return account.status


@dataclass(frozen=True)
class Usability:
    ok: bool
    reason: str = ""          # VOS3000 termination reason, "" when usable
    sip_code: int = 0
    blocked_by: str = ""      # the account in the chain that blocks
    detail: str = ""          # for people: which account and why

    def __bool__(self) -> bool:
        return self.ok


USABLE = Usability(True)


def check_chain(chain: Iterable[Account], now: date | datetime) -> Usability:
    """The first blocked account, walking from the account itself up through its agents."""
    first = None
    for account in chain:
        first = first or account
        status = effective_status(account, now)
        if status is Status.ACTIVE:
            continue
        if account is first:
            who = f"account {account.id!r}"
        else:
            who = f"agent {account.id!r} of account {first.id!r}"
        state = status.value.lower()
        if status is Status.EXPIRED:
            state = f"expired (last day {account.expiry.isoformat()})"
        reason = _REASONS[status]
        return Usability(False, reason.name, reason.sip_code, account.id, f"{who} is {state}")
    return USABLE
