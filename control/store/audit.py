"""Audit log: who changed what, when. Repository functions that change data append to it
in the same transaction as the change, so a change is never without its entry."""
from __future__ import annotations

from sqlalchemy import Connection, func, insert, select

from control.store.engine import Store, transaction
from control.store.rows import jsonable, newest_first, now
from control.store.schema import audit_log


def append(db: Store | Connection, operator: str, action: str, entity: str, entity_id="",
           detail: dict | None = None, *, source_ip: str = "", time: float | None = None) -> int:
    """Record one change; returns the entry's id."""
    with transaction(db) as conn:
        return conn.execute(insert(audit_log).returning(audit_log.c.id), {
            "time": now() if time is None else time,
            "operator": operator or "",
            "action": action,
            "entity": entity,
            "entity_id": "" if entity_id is None else str(entity_id),
            "detail": jsonable(detail or {}),
            "source_ip": source_ip or "",
        }).scalar_one()


def query(db: Store | Connection, *, entity: str | None = None, entity_id=None,
          operator: str | None = None, since: float | None = None, until: float | None = None,
          limit: int = 100, offset: int = 0) -> list[dict]:
    """Entries newest first, filtered; ``since`` <= time < ``until``."""
    return newest_first(db, audit_log, since=since, until=until, limit=limit, offset=offset,
                        equal={"entity": entity, "operator": operator,
                               "entity_id": None if entity_id is None else str(entity_id)})


def count(db: Store | Connection) -> int:
    with transaction(db, write=False) as conn:
        return conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
