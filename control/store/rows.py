"""Helpers shared by the repository modules: rows to dicts, value checks, JSON for the
audit log and the journal."""
from __future__ import annotations

import datetime
import time
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Date, Double, Integer, String, Table, select

from control.store import schema
from control.store.engine import transaction
from control.store.types import Fixed, to_units

# Columns with fixed choices, checked before the database's CHECK constraint so the error
# names the column and the allowed values.
CHOICES = {
    ("accounts", "kind"): schema.ACCOUNT_KINDS,
    ("accounts", "status"): schema.ACCOUNT_STATUSES,
    ("accounts", "billing_model"): schema.BILLING_MODELS,
    ("operators", "role"): schema.OPERATOR_ROLES,
    ("mapping_gateways", "auth_mode"): schema.AUTH_MODES,
    ("routing_gateways", "protocol"): schema.PROTOCOLS,
    ("routing_gateways", "caller_pool_mode"): schema.CALLER_POOL_MODES,
    ("ledger", "kind"): schema.LEDGER_KINDS,
}

INT32 = 2 ** 31

# Never copied into the audit log.
SECRET_COLUMNS = frozenset({"password", "password_hash"})


def now() -> float:
    return time.time()


def as_dict(row) -> dict:
    return dict(row._mapping)


def newest_first(db, table: Table, *, equal: dict, since: float | None, until: float | None,
                 limit: int | None, offset: int) -> list[dict]:
    """Rows of a time-stamped log table (``time``, ``id``) matching the non-None ``equal``
    values, with ``since`` <= time < ``until``, newest first, one page."""
    stmt = select(table)
    for name, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[name] == value)
    if since is not None:
        stmt = stmt.where(table.c.time >= since)
    if until is not None:
        stmt = stmt.where(table.c.time < until)
    stmt = stmt.order_by(table.c.id.desc()).limit(limit).offset(offset)
    with transaction(db, write=False) as conn:
        return [as_dict(row) for row in conn.execute(stmt)]


def check_values(table: Table, values: dict, *, read_only: frozenset[str] = frozenset()) -> dict:
    """Reject unknown or read-only columns and values outside a column's choices."""
    unknown = [name for name in values if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name}: no column {', '.join(sorted(unknown))}")
    fixed = [name for name in values if name in read_only]
    if fixed:
        raise ValueError(f"{table.name}: {', '.join(sorted(fixed))} cannot be set here")
    for name, value in values.items():
        allowed = CHOICES.get((table.name, name))
        if allowed is not None and value not in allowed:
            raise ValueError(f"{table.name}.{name} must be one of {', '.join(allowed)}, got {value!r}")
        column_type = table.c[name].type
        _check_type(table.name, name, column_type, value)
        if isinstance(column_type, Fixed):
            try:
                to_units(value, column_type.scale)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{table.name}.{name}: {error}") from None
    if "expiry_date" in values and isinstance(values["expiry_date"], str):
        values = {**values, "expiry_date": datetime.date.fromisoformat(values["expiry_date"])}
    return values


def _check_type(table: str, name: str, column_type, value) -> None:
    """The value fits the column on both backends (a wrong type is a clear error here, not
    a driver error or a silently stored string on SQLite)."""
    if value is None or isinstance(column_type, Fixed):
        return
    if isinstance(column_type, Boolean):
        ok = isinstance(value, bool)
    elif isinstance(column_type, Integer):
        ok = isinstance(value, int) and not isinstance(value, bool) and -INT32 <= value < INT32
        if isinstance(column_type, BigInteger):
            ok = isinstance(value, int) and not isinstance(value, bool) and -2 ** 63 <= value < 2 ** 63
    elif isinstance(column_type, String):
        ok = isinstance(value, str) and (column_type.length is None or len(value) <= column_type.length)
    elif isinstance(column_type, Double):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(column_type, Date):
        ok = isinstance(value, (datetime.date, str))
    else:
        ok = True
    if not ok:
        raise ValueError(f"{name}: {value!r} does not fit {table}.{name} ({column_type})")


def jsonable(value):
    """A value as JSON can hold it: exact decimals and dates as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def redacted(values: dict) -> dict:
    return {k: ("***" if k in SECRET_COLUMNS else jsonable(v)) for k, v in values.items()}
