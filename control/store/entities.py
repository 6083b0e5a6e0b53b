"""Create, read, update and delete for the configuration tables (phones, gateways, gateway
groups, rate tables and rates, work calendars, package period rates, operators), with an
audit log entry per change in the same transaction. Accounts have their own module
(:mod:`control.store.accounts`): their balance belongs to the ledger.

Rows go in and come out as plain dicts keyed by column name.
"""
from __future__ import annotations

from sqlalchemy import Connection, delete as sql_delete, exc, insert, select, update as sql_update

from control.store import audit, schema
from control.store.engine import Conflict, NotFound, Store, transaction
from control.store.rows import as_dict, check_values, now, redacted

TABLES = {table.name: table for table in (
    schema.operators, schema.phones, schema.mapping_gateways, schema.routing_gateways,
    schema.gateway_groups, schema.rate_tables, schema.rates, schema.work_calendars,
    schema.period_rates,
)}


def _table(entity: str):
    try:
        return TABLES[entity]
    except KeyError:
        raise ValueError(f"no such entity {entity!r}; one of {', '.join(TABLES)}") from None


def create(db: Store | Connection, entity: str, values: dict, *, operator: str = "system",
           source_ip: str = "") -> dict:
    """Insert one row; returns it as stored (with its id and defaults)."""
    table = _table(entity)
    values = check_values(table, values, read_only=frozenset({"id"}))
    if "created_at" in table.c and "created_at" not in values:
        values = {**values, "created_at": now()}
    with transaction(db) as conn:
        try:
            row = conn.execute(insert(table).returning(*table.c), values).one()
        except exc.IntegrityError as error:
            raise Conflict(f"cannot add to {entity}: {_reason(error)}") from None
        stored = as_dict(row)
        audit.append(conn, operator, "create", entity, _key(table, stored), redacted(values),
                     source_ip=source_ip)
        return stored


def get(db: Store | Connection, entity: str, id) -> dict | None:
    table = _table(entity)
    with transaction(db, write=False) as conn:
        row = conn.execute(select(table).where(table.c.id == id)).one_or_none()
        return as_dict(row) if row is not None else None


def find(db: Store | Connection, entity: str, *, limit: int | None = None, offset: int = 0,
         **equals) -> list[dict]:
    """Rows whose columns equal the given values, in id order."""
    table = _table(entity)
    check_values(table, equals)
    stmt = select(table).where(*(table.c[name] == value for name, value in equals.items()))
    stmt = stmt.order_by(*table.primary_key.columns).limit(limit).offset(offset)
    with transaction(db, write=False) as conn:
        return [as_dict(row) for row in conn.execute(stmt)]


def update(db: Store | Connection, entity: str, id, changes: dict, *, operator: str = "system",
           source_ip: str = "") -> dict:
    """Change some columns of one row; returns the row after the change. The audit entry
    holds the old and new value of each column that changed."""
    table = _table(entity)
    changes = check_values(table, changes, read_only=frozenset({"id", "created_at"}))
    with transaction(db) as conn:
        before = conn.execute(select(table).where(table.c.id == id)).one_or_none()
        if before is None:
            raise NotFound(f"{entity} {id} does not exist")
        before = as_dict(before)
        try:
            after = as_dict(conn.execute(
                sql_update(table).where(table.c.id == id).values(changes).returning(*table.c)).one())
        except exc.IntegrityError as error:
            raise Conflict(f"cannot change {entity} {id}: {_reason(error)}") from None
        changed = {name: [before[name], after[name]] for name in changes if before[name] != after[name]}
        if changed:
            audit.append(conn, operator, "update", entity, id, _redacted_changes(changed),
                         source_ip=source_ip)
        return after


def delete(db: Store | Connection, entity: str, id, *, operator: str = "system",
           source_ip: str = "") -> None:
    table = _table(entity)
    with transaction(db) as conn:
        row = conn.execute(select(table).where(table.c.id == id)).one_or_none()
        if row is None:
            raise NotFound(f"{entity} {id} does not exist")
        try:
            conn.execute(sql_delete(table).where(table.c.id == id))
        except exc.IntegrityError as error:
            raise Conflict(f"cannot delete {entity} {id}: it is still in use ({_reason(error)})") from None
        audit.append(conn, operator, "delete", entity, id, redacted(as_dict(row)), source_ip=source_ip)


def operator_rights(db: Store | Connection, operator_id: int) -> dict[str, dict[str, bool]]:
    """``{module: {"view": .., "add": .., "edit": .., "delete": ..}}`` of one operator."""
    rights = schema.operator_rights
    with transaction(db, write=False) as conn:
        rows = conn.execute(select(rights).where(rights.c.operator_id == operator_id)
                            .order_by(rights.c.module))
        return {row.module: {"view": row.can_view, "add": row.can_add, "edit": row.can_edit,
                             "delete": row.can_delete} for row in rows}


def set_operator_rights(db: Store | Connection, operator_id: int, rights: dict[str, dict[str, bool]],
                        *, operator: str = "system", source_ip: str = "") -> None:
    """Replace an operator's per-module rights with ``rights`` (same shape as returned by
    :func:`operator_rights`; a missing right is off)."""
    table = schema.operator_rights
    rows = [{"operator_id": operator_id, "module": module,
             **{f"can_{right}": bool(flags.get(right, False)) for right in ("view", "add", "edit", "delete")}}
            for module, flags in rights.items()]
    with transaction(db) as conn:
        if get(conn, "operators", operator_id) is None:
            raise NotFound(f"operators {operator_id} does not exist")
        conn.execute(sql_delete(table).where(table.c.operator_id == operator_id))
        if rows:
            conn.execute(insert(table), rows)
        audit.append(conn, operator, "rights", "operators", operator_id, rights, source_ip=source_ip)


def _key(table, row: dict):
    return row.get("id", "")


def _redacted_changes(changed: dict) -> dict:
    return {name: ("***" if name in ("password", "password_hash") else values)
            for name, values in redacted(changed).items()}


def _reason(error: exc.IntegrityError) -> str:
    """The driver's own words (e.g. which unique constraint), without the SQL statement."""
    return str(error.orig).strip().splitlines()[0]
