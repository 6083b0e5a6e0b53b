"""Field rules for accounts: each cleaner takes what a user or the API sent (native values or
text) and returns the canonical value, or raises :class:`AccountError` naming the field.

Kept apart from the directory so the store can run the same rules on rows it loads.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Callable, Iterable, Mapping

from .errors import AccountError
from .model import NEVER_EXPIRES, Account, Authorization, BillingModel, Kind, Status

# Ids travel in SIP headers, CDRs and URLs: no spaces, no separators that need quoting.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SECTION = re.compile(r"\+?[0-9]{1,32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 128


def clean_id(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise AccountError(field, "1-64 characters: letters, digits, '.', '_', '@', '-', "
                                  "starting with a letter or digit")
    return value


def clean_optional_id(field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    return clean_id(field, value)


def clean_text(field: str, value: Any, *, required: bool) -> str:
    if not isinstance(value, str):
        raise AccountError(field, "must be text")
    value = value.strip()
    if required and not value:
        raise AccountError(field, "must not be empty")
    if len(value) > MAX_NAME or _CONTROL.search(value):
        raise AccountError(field, f"at most {MAX_NAME} printable characters")
    return value


MAX_MONEY = Decimal(10) ** 12          # far above any real balance; keeps the store's BIGINT safe
MAX_LIMIT = 10 ** 6


def clean_money(field: str, value: Any, *, minimum: Decimal | None = None) -> Decimal:
    # float is refused outright: 0.1 as a float is not 0.1, and money must be exact.
    if isinstance(value, bool) or isinstance(value, float):
        raise AccountError(field, "must be exact (Decimal, integer or text), never float")
    try:
        amount = Decimal(value) if isinstance(value, (int, str, Decimal)) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise AccountError(field, "must be a finite decimal amount")
    if abs(amount) >= MAX_MONEY or amount != amount.quantize(Decimal("0.0001"), rounding="ROUND_DOWN"):
        raise AccountError(field, f"must be below {MAX_MONEY} in magnitude, with at most 4 decimal places")
    if minimum is not None and amount < minimum:
        raise AccountError(field, f"must be at least {minimum}")
    return amount


def clean_date(field: str, value: Any) -> date:
    # A datetime is a date subclass; refused so a time of day is never silently dropped.
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise AccountError(field, "must be a date YYYY-MM-DD") from None
    if not isinstance(value, date) or isinstance(value, datetime):
        raise AccountError(field, "must be a date YYYY-MM-DD")
    if value > NEVER_EXPIRES:
        raise AccountError(field, f"at most {NEVER_EXPIRES.isoformat()} (never expires)")
    return value


def clean_enum(field: str, kind: type[Enum], value: Any) -> Any:
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        for member in kind:
            if value.strip().lower() in (member.value.lower(), member.name.lower()):
                return member
    choices = ", ".join(member.value for member in kind)
    raise AccountError(field, f"must be one of {choices}")


def clean_limit(field: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT:
        raise AccountError(field, f"must be a whole number >= 0 (at most {MAX_LIMIT}), or empty for no limit")
    return value


def clean_sections(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[\s,;]+", value) if part]
    if not isinstance(value, Iterable):
        raise AccountError(field, "must be a list of number prefixes")
    sections: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _SECTION.fullmatch(item):
            raise AccountError(field, f"{item!r} is not a number prefix (digits, optional '+')")
        if item not in sections:
            sections.append(item)
    return tuple(sections)


def clean_authorizations(field: str, value: Any) -> frozenset[Authorization]:
    if isinstance(value, (str, Authorization)):
        value = [value]
    if not isinstance(value, Iterable):
        raise AccountError(field, "must be a list of authorization names")
    return frozenset(clean_enum(field, Authorization, item) for item in value)


def _money_at_least_zero(field: str, value: Any) -> Decimal:
    return clean_money(field, value, minimum=Decimal(0))


def _name(field: str, value: Any) -> str:
    return clean_text(field, value, required=True)


def _reference(field: str, value: Any) -> str:
    # Rate tables, period rates and calendars live in billing; here only the name's form.
    return clean_text(field, "" if value is None else value, required=False)


CLEANERS: Mapping[str, Callable[[str, Any], Any]] = {
    "id": clean_id,
    "name": _name,
    "kind": lambda f, v: clean_enum(f, Kind, v),
    "status": lambda f, v: clean_enum(f, Status, v),
    "expiry": clean_date,
    "balance": clean_money,
    "credit_limit": _money_at_least_zero,
    "concurrent_limit": clean_limit,
    "rate_table": _reference,
    "period_rate": _reference,
    "work_calendar": _reference,
    "number_sections": clean_sections,
    "blocked_sections": clean_sections,
    "billing_model": lambda f, v: clean_enum(f, BillingModel, v),
    "agent_id": clean_optional_id,
    "authorizations": clean_authorizations,
}

def clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Clean a partial set of account fields; an unknown name is an error, not ignored."""
    cleaned = {}
    for name, value in fields.items():
        cleaner = CLEANERS.get(name)
        if cleaner is None:
            raise AccountError(name, "unknown account field")
        cleaned[name] = cleaner(name, value)
    return cleaned


def fields_of(record: Any) -> dict[str, Any]:
    """A record's fields as they are (not converted for JSON), to run the rules again."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def clean_account(account: Account) -> Account:
    """Run every field rule on a whole record (the store's rows at load time)."""
    return Account(**clean_fields(fields_of(account)))
