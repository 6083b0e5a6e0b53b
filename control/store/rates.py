"""Rate table contents in bulk: a whole table replaced in one transaction (an import of a
carrier's rate deck), and read back in prefix order, streamed."""
from __future__ import annotations

from typing import Iterable, Iterator

from sqlalchemy import Connection, delete, func, insert, select

from control.store import audit
from control.store.engine import NotFound, Store, transaction
from control.store.rows import as_dict, check_values
from control.store.schema import rate_tables, rates

_CHUNK = 20_000     # rows per executemany: bounded memory, few round trips


def replace_rates(db: Store | Connection, rate_table_id: int, rows: Iterable[dict], *,
                  operator: str = "system", source_ip: str = "") -> int:
    """Replace every rate of a table with ``rows`` (dicts of prefix, price, first_unit,
    next_unit, optional area and connection_fee); all or nothing. Returns the count."""
    count = 0
    with transaction(db) as conn:
        if conn.execute(select(rate_tables.c.id).where(rate_tables.c.id == rate_table_id)).first() is None:
            raise NotFound(f"rate table {rate_table_id} does not exist")
        conn.execute(delete(rates).where(rates.c.rate_table_id == rate_table_id))
        chunk: list[dict] = []
        for row in rows:
            chunk.append(_complete(row, rate_table_id))
            if len(chunk) >= _CHUNK:
                conn.execute(insert(rates), chunk)
                count += len(chunk)
                chunk = []
        if chunk:
            conn.execute(insert(rates), chunk)
            count += len(chunk)
        audit.append(conn, operator, "import", "rate_tables", rate_table_id, {"rates": count},
                     source_ip=source_ip)
    return count


def rates_of(db: Store | Connection, rate_table_id: int) -> Iterator[dict]:
    """The table's rates in prefix order, fetched in chunks."""
    stmt = select(rates).where(rates.c.rate_table_id == rate_table_id).order_by(rates.c.prefix)
    with transaction(db, write=False) as conn:
        for row in conn.execution_options(yield_per=_CHUNK).execute(stmt):
            yield as_dict(row)


def count_rates(db: Store | Connection, rate_table_id: int) -> int:
    with transaction(db, write=False) as conn:
        return conn.execute(select(func.count()).select_from(rates)
                            .where(rates.c.rate_table_id == rate_table_id)).scalar_one()


_DEFAULTS = {"area": "", "first_unit": 60, "next_unit": 60, "connection_fee": 0}


def _complete(row: dict, rate_table_id: int) -> dict:
    if "prefix" not in row or "price" not in row:
        raise ValueError(f"a rate needs a prefix and a price: {row!r}")
    full = {**_DEFAULTS, **row, "rate_table_id": rate_table_id}
    return check_values(rates, full, read_only=frozenset({"id"}))
