"""Traffic and money reports over stored CDRs, identical on SQLite and PostgreSQL."""
from __future__ import annotations

from decimal import Decimal

from control.cdr import CallRecord
from control.store import reports
from control.store.cdrs import cdr_row, insert_cdrs
from tests.test_store import store, url  # noqa: F401  (the two-backend fixtures)


def _call(customer, vendor, start, *, answered=True, hold=60.0, pdd=800, fee="0", cost="0"):
    record = CallRecord(call_id=f"{customer}-{start}", caller="100", callee="5551234", customer=customer,
                        vendor=vendor, routing_gateway=vendor, start=start, end=start + hold + 5, pdd_ms=pdd,
                        answer=start + 5 if answered else None, duration_s=hold if answered else 0.0,
                        sip_code=200 if answered else 486, reason="Normal" if answered else "User Busy")
    record.fee, record.cost = Decimal(fee), Decimal(cost)
    record.profit = record.fee - record.cost
    return cdr_row(record)


def _load(store):
    insert_cdrs(store, [
        _call("acme", "v1", 1000, hold=60, pdd=500, fee="1.20", cost="0.80"),
        _call("acme", "v1", 1010, hold=120, pdd=700, fee="2.40", cost="1.60"),
        _call("acme", "v2", 1020, answered=False, pdd=None),
        _call("globex", "v2", 1030, hold=30, pdd=900, fee="0.50", cost="0.55"),
        _call("globex", "v2", 5000, hold=30, fee="9.99"),               # outside the window
    ])


def test_asr_acd_pdd_per_customer_and_gateway(store):
    _load(store)
    by_customer = reports.traffic(store, "customer", 0, 2000)
    assert by_customer == [
        {"customer": "acme", "calls": 3, "answered": 2, "asr": 66.67, "acd_s": 90.0, "pdd_ms": 600.0},
        {"customer": "globex", "calls": 1, "answered": 1, "asr": 100.0, "acd_s": 30.0, "pdd_ms": 900.0},
    ]
    by_gateway = reports.traffic(store, "gateway", 0, 2000)
    assert [(r["gateway"], r["calls"], r["asr"]) for r in by_gateway] == [("v1", 2, 100.0), ("v2", 2, 50.0)]


def test_income_cost_profit_and_top(store):
    _load(store)
    rows = reports.income(store, 0, 2000)
    assert rows == [
        {"customer": "acme", "calls": 3, "fee": Decimal("3.60"), "cost": Decimal("2.40"), "profit": Decimal("1.20")},
        {"customer": "globex", "calls": 1, "fee": Decimal("0.50"), "cost": Decimal("0.55"),
         "profit": Decimal("-0.05")},
    ]
    assert [r["customer"] for r in reports.income(store, 0, 10_000, top=1)] == ["globex"]


def test_report_command_prints_the_tables(tmp_path):
    import subprocess
    import sys

    from control.store import open_store, upgrade_to_head
    path = tmp_path / "v.db"
    db = open_store(str(path))
    upgrade_to_head(db)
    _load(db)
    db.close()
    # the calls started at t=1000..5000 s: a window of the last 60 years covers them
    base = [sys.executable, "-m", "control.cli", "report", "--store", str(path), "--hours", str(24 * 365 * 60)]
    traffic = subprocess.run(base[:4] + ["traffic"] + base[4:] + ["--by", "gateway"], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert traffic[0].split() == ["gateway", "calls", "answered", "asr", "acd_s", "pdd_ms"]
    assert traffic[1].split()[:4] == ["v2", "3", "2", "66.67"]
    income = subprocess.run(base[:4] + ["income"] + base[4:] + ["--top", "1"], capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert income[1].split() == ["globex", "2", "10.4900", "0.5500", "9.9400"]
    csv_file = tmp_path / "cdr.csv"
    subprocess.run(base[:4] + ["cdr"] + base[4:] + ["--csv", str(csv_file)], check=True, capture_output=True)
    assert len(csv_file.read_text().splitlines()) == 6      # header + 5 calls
