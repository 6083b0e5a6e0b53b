"""System parameters as stored: only values that differ from the declared default need a
row, but every stored value is validated by :mod:`control.params` on the way in and out.
Values are kept as the text :func:`control.params.format_value` shows, the same form the
CLI and the API take."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from control import params as declared
from control.store import audit
from control.store.engine import Store, transaction
from control.store.rows import now
from control.store.schema import system_parameters

log = logging.getLogger("vosmedia.store")


def load_params(db: Store | Connection) -> dict[str, Any]:
    """The stored values, parsed. A stored name this version no longer declares, or a value
    it rejects, is left out (with a warning): the default applies instead."""
    with transaction(db, write=False) as conn:
        rows = conn.execute(select(system_parameters.c.name, system_parameters.c.value)).all()
    values = {}
    for name, text in rows:
        try:
            values[name] = declared.validate(name, text)
        except declared.ParamError as error:
            log.warning("stored parameter ignored: %s", error)
    return values


def get_param(db: Store | Connection, name: str) -> Any:
    """The stored value, or the declared default."""
    declared.get_default(name)                       # unknown names fail here
    return load_params(db).get(name, declared.get_default(name))


def set_params(db: Store | Connection, changes: dict[str, Any], *, operator: str = "system",
               source_ip: str = "") -> dict[str, Any]:
    """Validate and store several values at once (all or none, cross-parameter rules
    included); returns the parsed values."""
    parsed = {name: declared.validate(name, value) for name, value in changes.items()}
    with transaction(db) as conn:
        current = load_params(conn)
        declared.check_consistency({**current, **parsed})
        rows = [{"name": name, "value": declared.format_value(name, value), "updated_at": now(),
                 "updated_by": operator or ""} for name, value in parsed.items()]
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(system_parameters)
        stmt = stmt.on_conflict_do_update(index_elements=[system_parameters.c.name], set_={
            "value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at,
            "updated_by": stmt.excluded.updated_by})
        if rows:
            conn.execute(stmt, rows)
        changed = {name: [declared.format_value(name, current[name]) if name in current else None,
                          declared.format_value(name, value)] for name, value in parsed.items()}
        audit.append(conn, operator, "update", "system_parameters", ",".join(sorted(parsed)), changed,
                     source_ip=source_ip)
    return parsed


def set_param(db: Store | Connection, name: str, value: Any, *, operator: str = "system",
              source_ip: str = "") -> Any:
    return set_params(db, {name: value}, operator=operator, source_ip=source_ip)[name]


def reset_param(db: Store | Connection, name: str, *, operator: str = "system", source_ip: str = "") -> None:
    """Forget the stored value: the declared default applies again."""
    declared.get_default(name)
    with transaction(db) as conn:
        current = load_params(conn)
        declared.check_consistency({k: v for k, v in current.items() if k != name})
        conn.execute(delete(system_parameters).where(system_parameters.c.name == name))
        audit.append(conn, operator, "reset", "system_parameters", name, {}, source_ip=source_ip)
