"""Call detail records: one row per call in ``cdrs``, one per vendor attempt in
``cdr_attempts``; batch insert, queries, CSV export.

A CDR is a dict keyed by ``cdrs`` column names, optionally with ``attempt_details`` (a
list of dicts keyed by ``cdr_attempts`` columns). :func:`cdr_row` also takes a
:class:`control.cdr.CallRecord`: its fields map onto the columns of the same name, or of
the spec's name where the record uses a shorter one (``start`` -> ``start_time``,
``reason`` -> ``termination_reason``, ...), so a field the B2BUA adds later under a column's
name is stored without a change here.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import json
from typing import IO, Iterable

from sqlalchemy import JSON, Connection, Double, Integer, Text, String, func, insert, select

from control.store.engine import Store, transaction
from control.store.rows import as_dict, jsonable
from control.store.schema import cdr_attempts, cdrs
from control.store.types import Fixed

# CallRecord field -> column, where the names differ
RECORD_FIELDS = {
    "start": "start_time", "progress": "progress_time", "answer": "answer_time", "end": "end_time",
    "duration_s": "hold_time", "reason": "termination_reason", "detail": "termination_detail",
    "vendor_codec": "callee_codec",
    "dtmf": "dtmf_digits", "media": "media_stats",
}
COLUMNS = tuple(c.name for c in cdrs.columns if c.name != "id")
ATTEMPT_COLUMNS = tuple(c.name for c in cdr_attempts.columns if c.name not in ("id", "cdr_id"))
REQUIRED = ("call_id", "start_time", "end_time")
TIME_COLUMNS = ("start_time", "progress_time", "answer_time", "end_time")


def cdr_row(record) -> dict:
    """A CallRecord or a dict as a CDR dict (only the columns given; unknown names raise)."""
    if dataclasses.is_dataclass(record):
        row = {RECORD_FIELDS.get(f.name, f.name): getattr(record, f.name) for f in dataclasses.fields(record)}
    else:
        row = dict(record)
    details = row.pop("attempt_details", None)
    unknown = [name for name in row if name not in COLUMNS]
    if unknown:
        raise ValueError(f"a CDR has no field {', '.join(sorted(unknown))}")
    missing = [name for name in REQUIRED if row.get(name) is None]
    if missing:
        raise ValueError(f"a CDR needs {', '.join(missing)}")
    if details:
        for detail in details:
            extra = [name for name in detail if name not in ATTEMPT_COLUMNS]
            if extra:
                raise ValueError(f"a CDR attempt has no field {', '.join(sorted(extra))}")
        row["attempt_details"] = [dict(d) for d in details]
    return row


def insert_cdrs(db: Store | Connection, rows: Iterable[dict]) -> list[int]:
    """Insert CDR dicts (from :func:`cdr_row`) and their attempts in one transaction;
    returns the new ids in the order given."""
    plain, details = [], []
    for row in rows:
        row = dict(row)
        details.append(row.pop("attempt_details", None) or [])
        plain.append(_complete(row, cdrs, COLUMNS))
    if not plain:
        return []
    with transaction(db) as conn:
        stmt = insert(cdrs).returning(cdrs.c.id, sort_by_parameter_order=True)
        ids = list(conn.execute(stmt, plain).scalars())
        attempts = [_complete({**detail, "cdr_id": cdr_id, "seq": detail.get("seq", seq)},
                              cdr_attempts, ATTEMPT_COLUMNS + ("cdr_id",))
                    for cdr_id, rows_of in zip(ids, details) for seq, detail in enumerate(rows_of, 1)]
        if attempts:
            conn.execute(insert(cdr_attempts), attempts)
        return ids


def _filters(stmt, *, since=None, until=None, customer=None, customer_id=None, caller=None,
             callee=None, reason=None, routing_gateway=None, vendor=None, sip_code=None,
             customer_ids=None):
    """``since`` <= start_time < ``until``; numbers match by prefix; ``customer_ids``: only
    records of these accounts (an agent's subtree)."""
    c = cdrs.c
    if customer_ids is not None:
        stmt = stmt.where(c.customer_id.in_(list(customer_ids)))
    if since is not None:
        stmt = stmt.where(c.start_time >= since)
    if until is not None:
        stmt = stmt.where(c.start_time < until)
    for column, value in ((c.customer, customer), (c.customer_id, customer_id), (c.vendor, vendor),
                          (c.termination_reason, reason), (c.routing_gateway, routing_gateway),
                          (c.sip_code, sip_code)):
        if value is not None:
            stmt = stmt.where(column == value)
    for column, prefix in ((c.caller, caller), (c.callee, callee)):
        if prefix:
            stmt = stmt.where(func.substr(column, 1, len(prefix)) == prefix)
    return stmt


def query_cdrs(db: Store | Connection, *, limit: int | None = 100, offset: int = 0,
               newest_first: bool = True, with_attempts: bool = False, **filters) -> list[dict]:
    """CDRs matching the filters (see :func:`_filters`), a page at a time."""
    order = (cdrs.c.start_time.desc(), cdrs.c.id.desc()) if newest_first else (cdrs.c.start_time, cdrs.c.id)
    stmt = _filters(select(cdrs), **filters).order_by(*order).limit(limit).offset(offset)
    with transaction(db, write=False) as conn:
        rows = [as_dict(row) for row in conn.execute(stmt)]
        if with_attempts and rows:
            by_id = {row["id"]: row for row in rows}
            for row in rows:
                row["attempt_details"] = []
            found = conn.execute(select(cdr_attempts).where(cdr_attempts.c.cdr_id.in_(list(by_id)))
                                 .order_by(cdr_attempts.c.cdr_id, cdr_attempts.c.seq))
            for attempt in found:
                by_id[attempt.cdr_id]["attempt_details"].append(as_dict(attempt))
        return rows


def count_cdrs(db: Store | Connection, **filters) -> int:
    with transaction(db, write=False) as conn:
        return conn.execute(_filters(select(func.count()).select_from(cdrs), **filters)).scalar_one()


def latest_records(db: Store | Connection, limit: int = 100) -> list[dict]:
    """The latest CDRs, newest first, keyed like :class:`control.cdr.CallRecord` (the shape
    the first CDR sink returned)."""
    from control.cdr import CallRecord
    stmt = select(cdrs).order_by(cdrs.c.id.desc()).limit(limit)
    names = [f.name for f in dataclasses.fields(CallRecord) if f.name != "attempt_details"]
    with transaction(db, write=False) as conn:
        rows = [as_dict(row) for row in conn.execute(stmt)]
    return [{name: row[RECORD_FIELDS.get(name, name)] for name in names} for row in rows]


def export_csv(db: Store | Connection, out: IO[str], **filters) -> int:
    """Write the matching CDRs, oldest first, as CSV with a header row: times in UTC ISO
    8601, money as exact decimals, media stats as JSON. Returns the number of rows."""
    writer = csv.writer(out)
    writer.writerow(("id",) + COLUMNS)
    stmt = _filters(select(cdrs), **filters).order_by(cdrs.c.start_time, cdrs.c.id)
    count = 0
    with transaction(db, write=False) as conn:
        for row in conn.execution_options(yield_per=2000).execute(stmt):
            row = row._mapping
            writer.writerow([row["id"]] + [_csv_value(name, row[name], name in TIME_COLUMNS) for name in COLUMNS])
            count += 1
    return count


def _csv_value(name: str, value, is_time: bool):
    if value is None:
        return ""
    if is_time:
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).isoformat(timespec="milliseconds")
    if name == "media_stats":
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


def _complete(row: dict, table, columns: tuple[str, ...]) -> dict:
    """Every column present (executemany needs the same keys in every row), missing ones
    at the value their server default would give."""
    full = {}
    for name in columns:
        if name in row:
            value = row[name]
            if name == "media_stats":
                value = jsonable(value)
            full[name] = value
        else:
            full[name] = _DEFAULTS[table.name][name]
    return full


def _python_default(column):
    if column.nullable or column.server_default is None:
        return None
    text = column.server_default.arg
    if isinstance(column.type, JSON):
        return json.loads(text)
    if isinstance(column.type, (Integer, Fixed)):
        return int(text)
    if isinstance(column.type, Double):
        return float(text)
    if isinstance(column.type, (String, Text)):
        return text
    raise TypeError(f"no Python default for {column}")


_DEFAULTS = {table.name: {c.name: _python_default(c) for c in table.columns} for table in (cdrs, cdr_attempts)}
