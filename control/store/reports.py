"""Traffic and money reports over the stored CDRs (SPEC §7), one SQL aggregate each, the
same on SQLite and PostgreSQL.

* ASR: answered calls / all calls, in percent.
* ACD: the average hold time of answered calls, in seconds.
* PDD: the average post-dial delay of calls that got one, in milliseconds.
* Money: fee (what customers pay), cost (what vendors charge), profit.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, case, func, select

from control.store.engine import Store, transaction
from control.store.schema import cdrs

GROUPS = {"customer": cdrs.c.customer, "gateway": cdrs.c.routing_gateway}


def traffic(db: Store | Connection, by: str, since: float, until: float,
            customer_ids: list[str] | None = None) -> list[dict]:
    """ASR, ACD and PDD per customer or per gateway (the vendor-side gateway) for calls
    that started in [since, until), busiest first; ``customer_ids``: only these
    accounts' calls (an agent's subtree)."""
    key = GROUPS[by]
    answered = case((cdrs.c.answer_time.is_not(None), 1), else_=0)
    stmt = (select(key.label("name"), func.count().label("calls"), func.sum(answered).label("answered"),
                   func.sum(case((cdrs.c.answer_time.is_not(None), cdrs.c.hold_time), else_=0)).label("held"),
                   func.avg(cdrs.c.pdd_ms).label("pdd"))
            .where(cdrs.c.start_time >= since, cdrs.c.start_time < until, *_scope(customer_ids))
            .group_by(key).order_by(func.count().desc(), key))
    with transaction(db, write=False) as conn:
        rows = conn.execute(stmt).all()
    out = []
    for name, calls, answered_calls, held, pdd in rows:
        answered_calls = int(answered_calls or 0)
        out.append({
            by: name, "calls": int(calls), "answered": answered_calls,
            "asr": round(100.0 * answered_calls / calls, 2) if calls else 0.0,
            "acd_s": round(float(held or 0) / answered_calls, 1) if answered_calls else 0.0,
            "pdd_ms": round(float(pdd), 0) if pdd is not None else None,
        })
    return out


def income(db: Store | Connection, since: float, until: float, top: int | None = None,
           customer_ids: list[str] | None = None) -> list[dict]:
    """Fee, cost and profit per customer for calls that started in [since, until), largest
    fee first (``top`` limits the list: the top-10 report)."""
    stmt = (select(cdrs.c.customer, func.count().label("calls"), func.sum(cdrs.c.fee).label("fee"),
                   func.sum(cdrs.c.cost).label("cost"), func.sum(cdrs.c.profit).label("profit"))
            .where(cdrs.c.start_time >= since, cdrs.c.start_time < until, *_scope(customer_ids))
            .group_by(cdrs.c.customer).order_by(func.sum(cdrs.c.fee).desc(), cdrs.c.customer))
    if top is not None:
        stmt = stmt.limit(top)
    with transaction(db, write=False) as conn:
        rows = conn.execute(stmt).all()

    def amount(value) -> Decimal:
        # a sum keeps the column's Money type, so it already arrives as an exact Decimal
        return Decimal(value) if value is not None else Decimal(0)

    return [{"customer": customer, "calls": int(calls), "fee": amount(fee), "cost": amount(cost),
             "profit": amount(profit)} for customer, calls, fee, cost, profit in rows]


def _scope(customer_ids: list[str] | None) -> tuple:
    return () if customer_ids is None else (cdrs.c.customer_id.in_(list(customer_ids)),)
