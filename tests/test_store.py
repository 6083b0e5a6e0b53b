"""The store (control/store) on SQLite and PostgreSQL: migrations from empty, CRUD and
audit, the agent tree's recursive queries, the ledger invariant (balance = sum of entries)
under a randomized run and under concurrent appends, CDR insert/query/CSV export, the
same results on both backends, and CDRs and charges surviving kill -9.

PostgreSQL is reached at VOSMEDIA_TEST_PG_URL (scripts/setup.sh creates the default role
and database); each test gets a schema of its own. When it is unreachable its tests are
skipped, except under CI=true, where they fail.
"""
import csv
import datetime
import functools
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect as sql_inspect, text

from control.cdr import CallRecord
from control.params import ParamError
from control.store import (Conflict, InsufficientFunds, NotFound, StoreWriter, current_revision,
                           head_revision, open_store, store_url, upgrade_to_head)
from control.store import accounts, audit, cdrs, entities, ledger, parameters, rates
from control.store.migrate import downgrade
from control.store.schema import metadata
from control.store.types import from_units, to_units

PG_URL = os.environ.get("VOSMEDIA_TEST_PG_URL",
                        "postgresql+psycopg://vosmedia:vosmedia@127.0.0.1/vosmedia_test")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def _pg_problem() -> str | None:
    try:
        engine = create_engine(store_url(PG_URL), connect_args={"connect_timeout": 5})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        return str(error).strip().splitlines()[0]
    return None


def _require_pg() -> None:
    problem = _pg_problem()
    if problem is None:
        return
    message = (f"PostgreSQL for the store tests is unreachable at {PG_URL}: {problem}. "
               "scripts/setup.sh installs and starts it and creates role vosmedia and database "
               "vosmedia_test; or set VOSMEDIA_TEST_PG_URL.")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class _PgSchema:
    """A fresh PostgreSQL schema for one test, reached through search_path."""

    def __init__(self):
        self.name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin = create_engine(store_url(PG_URL))
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        separator = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{separator}options=-csearch_path%3D{self.name}"

    def drop(self):
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield str(tmp_path / "vosmedia.db")
        return
    _require_pg()
    schema = _PgSchema()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def store(url):
    opened = open_store(url)
    upgrade_to_head(opened)
    yield opened
    opened.close()


def _account(store, account_id, **fields):
    return accounts.create_account(store, {"id": account_id, "kind": "customer", "name": account_id, **fields})


# --- opening and migrating ---------------------------------------------------------------

def test_migrations_from_empty_match_the_schema(url):
    store = open_store(url)
    try:
        assert current_revision(store) is None
        assert upgrade_to_head(store) == head_revision()
        assert upgrade_to_head(store) == head_revision()          # a second run changes nothing
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            tables = set(sql_inspect(conn).get_table_names())
        assert set(metadata.tables) <= tables
        downgrade(store, "base")
        with store.engine.connect() as conn:
            assert set(sql_inspect(conn).get_table_names()) <= {"alembic_version"}
        assert upgrade_to_head(url) == head_revision()             # by URL, as the switch does
    finally:
        store.close()


def test_default_store_is_sqlite_wal_synchronous_full(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store()
    try:
        assert store.backend == "sqlite"
        assert store.url.database == str(tmp_path / "vosmedia-data" / "vosmedia.db")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2        # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_store_urls():
    assert store_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert store_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert store_url("data/x.db") == "sqlite:///" + os.path.abspath("data/x.db")
    assert store_url(None).endswith(os.path.join("vosmedia-data", "vosmedia.db"))


# --- money -------------------------------------------------------------------------------

def test_money_is_exact_and_never_rounded():
    assert to_units(Decimal("1.2345"), 4) == 12345
    assert to_units("-0.0001", 4) == -1
    assert to_units(7, 4) == 70000
    assert from_units(12345, 4) == Decimal("1.2345")
    assert str(from_units(10000, 4)) == "1.0000"
    with pytest.raises(TypeError):
        to_units(0.1, 4)
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        to_units(Decimal("0.00001"), 4)
    with pytest.raises(ValueError):
        to_units("NaN", 4)


# --- accounts and the agent tree ---------------------------------------------------------

def test_account_crud_and_audit(store):
    created = _account(store, "C1", balance=Decimal("12.5"), credit_limit="3", concurrent_call_limit=10,
                       number_section_allow=["44", "33"], expiry_date="2030-01-31", billing_model="Flow",
                       auth_account_edit=True)
    assert created["balance"] == Decimal("12.5000")
    assert created["credit_limit"] == Decimal("3.0000")
    assert created["expiry_date"] == datetime.date(2030, 1, 31)
    assert created["number_section_allow"] == ["44", "33"]
    assert created["status"] == "Active" and created["auth_account_edit"] is True
    assert [e["kind"] for e in ledger.entries(store, "C1")] == ["credit_limit", "adjust"]
    assert accounts.get_account_by_name(store, "C1")["id"] == "C1"

    changed = accounts.update_account(store, "C1", {"status": "Locked", "memo": "unpaid"}, operator="alice")
    assert changed["status"] == "Locked"
    entry = audit.query(store, entity="accounts", entity_id="C1", limit=1)[0]
    assert entry["operator"] == "alice" and entry["action"] == "update"
    assert entry["detail"]["status"] == ["Active", "Locked"]

    with pytest.raises(ValueError, match="balance"):
        accounts.update_account(store, "C1", {"balance": Decimal(100)})
    with pytest.raises(ValueError, match="status must be one of"):
        accounts.update_account(store, "C1", {"status": "Frozen"})
    with pytest.raises(ValueError, match="no column"):
        accounts.update_account(store, "C1", {"colour": "red"})
    with pytest.raises(Conflict):
        _account(store, "C2", name="C1")                       # names are unique
    with pytest.raises(NotFound):
        _account(store, "C3", agent_id="nobody")

    _account(store, "V1", kind="vendor")
    assert [a["id"] for a in accounts.list_accounts(store, kind="vendor")] == ["V1"]
    accounts.delete_account(store, "V1", operator="alice")
    assert accounts.get_account(store, "V1") is None
    with pytest.raises(Conflict):
        accounts.delete_account(store, "C1")                   # its ledger keeps it
    assert audit.query(store, operator="alice", limit=1)[0]["action"] == "delete"


def _random_tree(store, count, seed):
    rng = random.Random(seed)
    parents = {}
    for n in range(count):
        account_id = f"A{n:03d}"
        parent = rng.choice([None] + sorted(parents)) if parents else None
        _account(store, account_id, agent_id=parent)
        parents[account_id] = parent
    return parents


def _expected_subtree(parents, root):
    below, frontier = [], [root]
    while frontier:
        frontier = sorted(a for a, p in parents.items() if p in frontier)
        below.extend(frontier)
    return below


def test_subtree_queries_follow_the_agent_tree(store):
    parents = _random_tree(store, 40, seed=5)
    for root in parents:
        tree = accounts.subtree(store, root)
        assert [row["id"] for row in tree] == _expected_subtree(parents, root)
        assert accounts.subtree_ids(store, root) == set(_expected_subtree(parents, root))
        assert [row["id"] for row in accounts.children(store, root)] == sorted(
            a for a, p in parents.items() if p == root)
        chain, up = [], parents[root]
        while up is not None:
            chain.append(up)
            up = parents[up]
        assert [row["id"] for row in accounts.ancestors(store, root)] == chain
    assert accounts.agent_ids(store) == {p for p in parents.values() if p is not None}
    some = next(a for a in parents if accounts.subtree(store, a))
    deep = accounts.subtree(store, some)[-1]
    assert accounts.in_subtree(store, some, deep["id"]) and not accounts.in_subtree(store, deep["id"], some)
    depths = {row["id"]: row["depth"] for row in accounts.subtree(store, some, include_self=True)}
    assert depths[some] == 0 and depths[deep["id"]] == len(accounts.ancestors(store, deep["id"])) - len(
        accounts.ancestors(store, some))


def test_agent_tree_refuses_cycles(store):
    _account(store, "top")
    _account(store, "mid", agent_id="top")
    _account(store, "leaf", agent_id="mid")
    with pytest.raises(Conflict, match="own subtree"):
        accounts.update_account(store, "top", {"agent_id": "leaf"})
    with pytest.raises(Conflict):
        accounts.update_account(store, "top", {"agent_id": "top"})
    with pytest.raises(Conflict, match="sub-accounts"):
        accounts.delete_account(store, "mid")
    accounts.update_account(store, "leaf", {"agent_id": "top"})
    assert [a["id"] for a in accounts.children(store, "top")] == ["leaf", "mid"]


# --- configuration entities ----------------------------------------------------------------

def test_entities_crud_with_audit(store):
    _account(store, "C1")
    _account(store, "V1", kind="vendor")
    table = entities.create(store, "rate_tables", {"name": "retail"})
    calendar = entities.create(store, "work_calendars", {"name": "office", "holidays": ["2025-12-25"],
                                                         "time_zone": "Europe/London"})
    assert calendar["working_weekdays"] == [1, 2, 3, 4, 5] and calendar["work_end"] == "18:00"
    period = entities.create(store, "period_rates", {"name": "peak", "work_calendar_id": calendar["id"],
                                                     "working_rate_table_id": table["id"],
                                                     "non_working_rate_table_id": table["id"]})
    accounts.update_account(store, "C1", {"rate_table_id": table["id"], "period_rate_id": period["id"],
                                          "work_calendar_id": calendar["id"]})
    group = entities.create(store, "gateway_groups", {"name": "tier1", "line_limit": 100, "reserved_lines": 5})
    gateway = entities.create(store, "routing_gateways", {
        "account_id": "V1", "name": "carrier-a", "address": "192.0.2.10", "prefixes": ["44", "33"],
        "gateway_group_id": group["id"], "caller_pool": ["1000", "1001"], "caller_pool_mode": "round_robin"})
    assert gateway["stop_switch_codes"] == [403, 404, 484, 486, 487, 488]
    assert gateway["port"] == 5060 and gateway["protocol"] == "udp" and gateway["locked"] is False
    mapping = entities.create(store, "mapping_gateways", {"account_id": "C1", "name": "c1-ip",
                                                          "addresses": ["198.51.100.7"]})
    assert mapping["conversation_limitation"] == 3600 and mapping["auth_mode"] == "IP"
    phone = entities.create(store, "phones", {"account_id": "C1", "number": "1001", "password": "s3cret"},
                            operator="bob")
    entities.update(store, "phones", phone["id"], {"password": "other", "line_limit": 2}, operator="bob")
    assert entities.get(store, "phones", phone["id"])["line_limit"] == 2
    assert [p["number"] for p in entities.find(store, "phones", account_id="C1")] == ["1001"]
    trail = audit.query(store, entity="phones", entity_id=phone["id"])
    assert [e["action"] for e in trail] == ["update", "create"]
    assert "s3cret" not in repr(trail) and "other" not in repr(trail)

    boss = entities.create(store, "operators", {"name": "boss", "role": "super admin"})
    entities.set_operator_rights(store, boss["id"], {"CDRs": {"view": True}, "accounts": {"view": True, "edit": True}})
    assert entities.operator_rights(store, boss["id"]) == {
        "CDRs": {"view": True, "add": False, "edit": False, "delete": False},
        "accounts": {"view": True, "add": False, "edit": True, "delete": False}}
    with pytest.raises(ValueError, match="role must be one of"):
        entities.create(store, "operators", {"name": "x", "role": "god"})
    with pytest.raises(Conflict):
        entities.create(store, "phones", {"account_id": "C1", "number": "1001", "password": "x"})
    with pytest.raises(Conflict):
        entities.create(store, "phones", {"account_id": "nobody", "number": "1002", "password": "x"})
    with pytest.raises(Conflict, match="still in use"):
        entities.delete(store, "rate_tables", table["id"])     # the account and period rate use it
    entities.delete(store, "gateway_groups", group["id"])      # the gateway just leaves the group
    assert entities.get(store, "routing_gateways", gateway["id"])["gateway_group_id"] is None
    with pytest.raises(NotFound):
        entities.update(store, "phones", 999, {"line_limit": 1})


def test_rate_table_bulk_replace(store):
    table = entities.create(store, "rate_tables", {"name": "wholesale"})
    deck = [{"prefix": str(4400 + n), "price": Decimal(n).scaleb(-6), "first_unit": 30, "next_unit": 6}
            for n in range(5000)]
    assert rates.replace_rates(store, table["id"], deck) == 5000
    stored = list(rates.rates_of(store, table["id"]))
    assert [r["prefix"] for r in stored] == sorted(r["prefix"] for r in deck)
    assert stored[1]["price"] == Decimal("0.000001") and stored[1]["connection_fee"] == Decimal("0.0000")
    assert rates.replace_rates(store, table["id"], [{"prefix": "1", "price": "0.00875"}]) == 1
    assert rates.count_rates(store, table["id"]) == 1
    with pytest.raises(ValueError):
        rates.replace_rates(store, table["id"], [{"prefix": "1", "price": "0.0000001"}])
    assert rates.count_rates(store, table["id"]) == 1            # all or nothing


def test_parameters_validated_stored_and_audited(store):
    assert parameters.get_param(store, "SS_RTP_TIMEOUT") == 30
    assert parameters.set_param(store, "SS_RTP_TIMEOUT", "120", operator="ops") == 120
    assert parameters.get_param(store, "SS_RTP_TIMEOUT") == 120
    parameters.set_params(store, {"SS_MEDIAPROXYMODE": "Must On", "SS_SIP_STOP_SWITCH_AFTER_SDP": "off"})
    assert parameters.load_params(store) == {"SS_RTP_TIMEOUT": 120, "SS_MEDIAPROXYMODE": 3,
                                             "SS_SIP_STOP_SWITCH_AFTER_SDP": False}
    with pytest.raises(ParamError, match="SS_RTP_TIMEOUT"):
        parameters.set_param(store, "SS_RTP_TIMEOUT", 2)
    with pytest.raises(ParamError):
        parameters.set_params(store, {"SS_MEDIAPROXYPORT_START": 30000, "SS_MEDIAPROXYPORT_END": 20000})
    assert parameters.get_param(store, "SS_MEDIAPROXYPORT_START") == 10000
    parameters.reset_param(store, "SS_RTP_TIMEOUT")
    assert parameters.get_param(store, "SS_RTP_TIMEOUT") == 30
    entry = audit.query(store, entity="system_parameters", operator="ops")[0]
    assert entry["detail"] == {"SS_RTP_TIMEOUT": [None, "120"]}


# --- the ledger ------------------------------------------------------------------------------

def test_ledger_randomized_run_keeps_balance_equal_to_entries(store):
    rng = random.Random(11)
    ids = [f"L{n}" for n in range(5)]
    expected, limits = {}, {}
    for account_id in ids:
        _account(store, account_id)
        expected[account_id], limits[account_id] = Decimal(0), Decimal(0)
    refused = 0
    for _ in range(300):
        account_id = rng.choice(ids)
        amount = Decimal(rng.randint(1, 500_000)).scaleb(-4)
        action = rng.choice(["recharge", "deduct", "adjust", "transfer", "credit_limit", "charge"])
        try:
            if action == "recharge":
                entry = ledger.append(store, account_id, amount, "recharge", operator="ops", memo="wire")
                expected[account_id] += amount
            elif action in ("deduct", "charge"):
                entry = ledger.append(store, account_id, -amount, action, require_funds=action == "deduct")
                expected[account_id] -= amount
            elif action == "adjust":
                signed = amount if rng.random() < 0.5 else -amount
                entry = ledger.append(store, account_id, signed, "adjust")
                expected[account_id] += signed
            elif action == "transfer":
                other = rng.choice([i for i in ids if i != account_id])
                _, entry = ledger.transfer(store, account_id, other, amount, operator="ops")
                expected[account_id] -= amount
                expected[other] += amount
                account_id = other
            else:
                entry = ledger.set_credit_limit(store, account_id, amount)
                limits[account_id] = amount
        except InsufficientFunds:
            refused += 1
            continue
        assert entry["balance_after"] == expected[account_id]
    assert refused > 0
    assert ledger.balance_mismatches(store) == []
    for account_id in ids:
        account = accounts.get_account(store, account_id)
        assert account["balance"] == expected[account_id]
        assert account["credit_limit"] == limits[account_id]
        running = Decimal(0)
        for entry in reversed(ledger.entries(store, account_id, limit=None)):
            running += entry["amount"]
            assert entry["balance_after"] == running


def test_ledger_concurrent_appends_serialise(store):
    _account(store, "X")
    _account(store, "Y")
    amounts = [[Decimal(random.Random(t * 100 + i).randint(-9999, 9999)).scaleb(-4) for i in range(40)]
               for t in range(6)]
    errors = []

    def work(t):
        try:
            for i, amount in enumerate(amounts[t]):
                if i % 5 == 4:
                    source, target = ("X", "Y") if t % 2 else ("Y", "X")
                    ledger.transfer(store, source, target, abs(amount) or Decimal(1), require_funds=False)
                else:
                    ledger.append(store, "X" if (t + i) % 2 else "Y", amount, "adjust")
        except Exception as error:          # reported below, with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert ledger.balance_mismatches(store) == []
    for account_id in ("X", "Y"):
        running = Decimal(0)
        for entry in reversed(ledger.entries(store, account_id, limit=None)):
            running += entry["amount"]
            assert entry["balance_after"] == running       # each append saw the one before
    total = sum(a for t in amounts for i, a in enumerate(t) if i % 5 != 4)
    assert accounts.get_account(store, "X")["balance"] + accounts.get_account(store, "Y")["balance"] == total


# --- CDRs --------------------------------------------------------------------------------------

def _cdr(n, customer="C1", **extra):
    start = 1_700_000_000.0 + n * 60
    return {"call_id": f"call-{n}", "caller": "1001", "callee": f"4420{n:06d}", "customer": customer,
            "customer_id": customer, "start_time": start, "progress_time": start + 0.8,
            "answer_time": start + 2.5, "end_time": start + 62.5, "hold_time": 60.0, "billed_time": 60,
            "pdd_ms": 800, "termination_reason": "Normal", "sip_code": 200, "end_direction": "caller",
            "caller_codec": "PCMU", "callee_codec": "G729", "media_stats": {"a": {"packets": 3000, "loss": 0.5}},
            "rate_table": "retail", "rate": Decimal("0.012500"), "fee": Decimal("0.0125"),
            "cost": Decimal("0.0080"), "profit": Decimal("0.0045"), **extra}


def test_cdr_insert_query_page_and_export(store):
    rows = [_cdr(n, customer="C1" if n % 3 else "C2",
                 attempt_details=[{"vendor": "v1", "start_time": 1.0, "sip_code": 503,
                                   "termination_reason": "NoAvailableRouter"},
                                  {"vendor": "v2", "start_time": 2.0, "sip_code": 200}] if n % 4 == 0 else [])
            for n in range(60)]
    ids = cdrs.insert_cdrs(store, [cdrs.cdr_row(r) for r in rows])
    assert len(ids) == 60 and len(set(ids)) == 60
    assert cdrs.count_cdrs(store) == 60
    window = cdrs.query_cdrs(store, since=rows[10]["start_time"], until=rows[20]["start_time"], limit=None)
    assert [r["call_id"] for r in window] == [f"call-{n}" for n in range(19, 9, -1)]
    assert cdrs.count_cdrs(store, customer="C2") == 20
    assert all(r["customer"] == "C2" for r in cdrs.query_cdrs(store, customer="C2", limit=None))
    assert cdrs.count_cdrs(store, callee="442000001") == 10        # prefix of call-10..19
    pages = [cdrs.query_cdrs(store, limit=25, offset=offset) for offset in (0, 25, 50)]
    assert [len(p) for p in pages] == [25, 25, 10]
    assert [r["call_id"] for p in pages for r in p] == [f"call-{n}" for n in range(59, -1, -1)]
    first = cdrs.query_cdrs(store, newest_first=False, limit=1, with_attempts=True)[0]
    assert first["fee"] == Decimal("0.0125") and first["rate"] == Decimal("0.012500")
    assert first["media_stats"] == {"a": {"packets": 3000, "loss": 0.5}}
    assert [(a["seq"], a["vendor"], a["sip_code"]) for a in first["attempt_details"]] == [
        (1, "v1", 503), (2, "v2", 200)]

    out = io.StringIO()
    assert cdrs.export_csv(store, out, customer="C1") == 40
    table = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(table) == 40 and table[0]["call_id"] == "call-1"
    assert table[0]["fee"] == "0.0125" and table[0]["profit"] == "0.0045"
    assert table[0]["start_time"] == "2023-11-14T22:14:20.000+00:00"
    assert table[0]["media_stats"] == '{"a":{"loss":0.5,"packets":3000}}'
    with pytest.raises(ValueError, match="no field"):
        cdrs.cdr_row({"call_id": "x", "start_time": 1, "end_time": 2, "colour": "red"})
    with pytest.raises(ValueError, match="needs"):
        cdrs.cdr_row({"caller": "1"})


def test_call_record_maps_onto_the_cdr_columns():
    record = CallRecord(call_id="abc", caller="1001", callee="2002", customer="C1", vendor="V1",
                        start=10.0, progress=10.5, answer=12.0, end=72.0, pdd_ms=500, duration_s=60.0,
                        sip_code=200, reason="Normal", detail="BYE from caller", end_direction="caller",
                        caller_codec="PCMU", vendor_codec="PCMA", attempts=2, dtmf="12#",
                        media={"a": {"loss": 0}})
    row = cdrs.cdr_row(record)
    assert row["start_time"] == 10.0 and row["end_time"] == 72.0 and row["hold_time"] == 60.0
    assert row["termination_reason"] == "Normal" and row["termination_detail"] == "BYE from caller"
    assert row["callee_codec"] == "PCMA" and row["dtmf_digits"] == "12#" and row["media_stats"] == {"a": {"loss": 0}}


# --- the writer: batches off the call path, journal, replay ------------------------------------

def test_writer_sink_commits_cdrs_and_charges(store, tmp_path):
    _account(store, "C1", balance=Decimal(5))
    writer = StoreWriter(store, str(tmp_path / "journal"))
    try:
        record = CallRecord(call_id="sink-1", caller="1001", callee="2002", customer="C1", start=100.0,
                            answer=101.0, end=161.0, duration_s=60.0, sip_code=200, reason="Normal",
                            end_direction="callee", media={"a": {"packets": 10}})
        writer.write(record)
        writer.charge("C1", Decimal("-0.0500"), call_id="sink-1", memo="call")
        writer.charge("nobody", Decimal("-1"), call_id="sink-2")        # refused: no such account
        writer.write(cdrs.cdr_row({"call_id": "sink-3", "start_time": 200.0, "end_time": 201.0}))
        assert writer.flush(10)
        assert writer.pending() == 0
        latest = writer.records(2)
        assert [r["call_id"] for r in latest] == ["sink-3", "sink-1"]
        assert {k: latest[1][k] for k in ("start", "answer", "end", "duration_s", "reason", "media")} == {
            "start": 100.0, "answer": 101.0, "end": 161.0, "duration_s": 60.0, "reason": "Normal",
            "media": {"a": {"packets": 10}}}
        assert set(latest[1]) == set(CallRecord.__dataclass_fields__) - {"attempt_details"}   # a child table
        assert accounts.get_account(store, "C1")["balance"] == Decimal("4.9500")
        charge = ledger.entries(store, "C1", kind="charge")[0]
        assert charge["call_id"] == "sink-1" and charge["memo"] == "call"
        assert writer.rejected == 1
        assert "nobody" in (tmp_path / "journal" / "rejected.jsonl").read_text()
        assert ledger.balance_mismatches(store) == []
    finally:
        writer.close()
    with pytest.raises(Exception, match="closed"):
        writer.write(record)


def test_writer_rotates_segments_and_applies_each_record_once(store, tmp_path):
    journal = tmp_path / "journal"
    writer = StoreWriter(store, str(journal), segment_bytes=4096, max_delay=0.001)
    for n in range(300):
        writer.write(_cdr(n))
        if n % 50 == 0:
            writer.flush(10)
    writer.close()
    assert cdrs.count_cdrs(store) == 300
    assert len([p for p in os.listdir(journal) if p.startswith("journal-")]) == 1
    again = StoreWriter(store, str(journal))
    assert again.replayed == 0
    again.close()
    assert cdrs.count_cdrs(store) == 300


def test_one_writer_per_journal(store, tmp_path):
    first = StoreWriter(store, str(tmp_path / "journal"))
    try:
        with pytest.raises(Exception, match="in use"):
            StoreWriter(store, str(tmp_path / "journal"))
    finally:
        first.close()


CHILD = r"""
import sys, time
from decimal import Decimal
from control.cdr import CallRecord
from control.store import StoreWriter, open_store

url, journal, mode, max_delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
writer = StoreWriter(open_store(url), journal, max_delay=max_delay)
n = 0
while True:
    n += 1
    call_id = f"call-{n}"
    writer.write(CallRecord(call_id=call_id, caller="1001", callee="442071234567", customer="C1",
                            start=1000.0 + n, answer=1001.0 + n, end=1061.0 + n, duration_s=60.0,
                            sip_code=200, reason="Normal", end_direction="caller"))
    writer.charge("C1", Decimal("-0.0125"), call_id=call_id)
    print(call_id, flush=True)        # the call is acknowledged: its CDR and charge are accepted
    if mode == "once":
        time.sleep(3600)
    time.sleep(0.002)                 # calls keep ending while earlier batches commit
"""


def _run_and_kill(url, tmp_path, mode, max_delay, wanted):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, str(script), url, str(tmp_path / "journal"), mode, str(max_delay)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    reported = []
    try:
        deadline = time.monotonic() + 60
        while len(reported) < wanted and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            reported.append(line.strip())
        child.send_signal(signal.SIGKILL)               # right after the acknowledgement
    finally:
        child.kill()
        _, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    assert len(reported) == wanted, err
    return reported


def test_kill_9_right_after_a_call_loses_neither_cdr_nor_charge(store, url, tmp_path):
    _account(store, "C1", balance=Decimal(1))
    # the child batches for an hour: nothing reaches the database before the kill
    assert _run_and_kill(url, tmp_path, "once", 3600, 1) == ["call-1"]
    assert cdrs.count_cdrs(store) == 0
    assert accounts.get_account(store, "C1")["balance"] == Decimal("1.0000")

    writer = StoreWriter(store, str(tmp_path / "journal"))      # the next start replays the journal
    writer.close()
    assert writer.replayed == 2
    [found] = cdrs.query_cdrs(store, limit=None)
    assert (found["call_id"], found["termination_reason"], found["hold_time"]) == ("call-1", "Normal", 60.0)
    [charge] = ledger.entries(store, "C1", kind="charge")
    assert charge["call_id"] == "call-1" and charge["amount"] == Decimal("-0.0125")
    assert accounts.get_account(store, "C1")["balance"] == Decimal("0.9875")
    assert ledger.balance_mismatches(store) == []


def test_kill_9_mid_stream_applies_every_record_exactly_once(store, url, tmp_path):
    _account(store, "C1")
    reported = _run_and_kill(url, tmp_path, "stream", 0.002, 150)
    writer = StoreWriter(store, str(tmp_path / "journal"))
    writer.close()
    stored = [r["call_id"] for r in cdrs.query_cdrs(store, limit=None)]
    assert len(stored) == len(set(stored))                      # nothing applied twice
    assert set(reported) <= set(stored)                         # nothing acknowledged was lost
    charges = [e["call_id"] for e in ledger.entries(store, "C1", kind="charge", limit=None)]
    assert len(charges) == len(set(charges)) and set(reported) <= set(charges)
    assert accounts.get_account(store, "C1")["balance"] == Decimal("-0.0125") * len(charges)
    assert ledger.balance_mismatches(store) == []


# --- both backends, one behaviour ------------------------------------------------------------

def _scenario(store, journal):
    """Every repository path once, deterministically; returns what it reads back, without
    wall-clock times."""
    rng = random.Random(3)
    parents = _random_tree(store, 15, seed=9)
    for n in range(80):
        account_id = rng.choice(sorted(parents))
        amount = Decimal(rng.randint(-20000, 20000)).scaleb(-4)
        ledger.append(store, account_id, amount, "adjust", operator="ops")
    ledger.transfer(store, "A000", "A001", "0.3333", require_funds=False)
    ledger.set_credit_limit(store, "A002", "7.5")
    table = entities.create(store, "rate_tables", {"name": "t"})
    rates.replace_rates(store, table["id"], [{"prefix": str(p), "price": Decimal(p).scaleb(-6)} for p in range(200)])
    parameters.set_param(store, "SERVER_BILLING_FEE_PRECISTION", 4)
    writer = StoreWriter(store, journal)
    for n in range(40):
        writer.write(_cdr(n, customer=rng.choice(["A000", "A001"]),
                          attempt_details=[{"vendor": "v", "start_time": float(n), "sip_code": 503}]))
        writer.charge("A000", Decimal("-0.0125"), call_id=f"call-{n}", time=float(n))
    writer.close()
    drop = {"time", "created_at"}
    strip = lambda rows: [{k: v for k, v in row.items() if k not in drop} for row in rows]
    out = io.StringIO()
    cdrs.export_csv(store, out)
    return {
        "accounts": strip(accounts.list_accounts(store)),
        "subtrees": {a: strip(accounts.subtree(store, a)) for a in sorted(parents)},
        "ancestors": {a: [r["id"] for r in accounts.ancestors(store, a)] for a in sorted(parents)},
        "ledger": strip(ledger.entries(store, limit=None)),
        "rates": list(rates.rates_of(store, table["id"])),
        "params": parameters.load_params(store),
        "cdrs": cdrs.query_cdrs(store, limit=None, with_attempts=True),
        "c1": cdrs.query_cdrs(store, customer="A001", since=1_700_000_600.0, until=1_700_001_800.0, limit=None),
        "csv": out.getvalue(),
        "audit": [(e["operator"], e["action"], e["entity"], e["entity_id"]) for e in audit.query(store, limit=None)],
        "mismatches": ledger.balance_mismatches(store),
    }


def test_sqlite_and_postgresql_give_identical_results(tmp_path):
    _require_pg()
    results = []
    for name in ("sqlite", "postgresql"):
        schema = _PgSchema() if name == "postgresql" else None
        store = open_store(schema.url if schema else str(tmp_path / "same.db"))
        try:
            upgrade_to_head(store)
            results.append(_scenario(store, str(tmp_path / f"journal-{name}")))
        finally:
            store.close()
            if schema:
                schema.drop()
    sqlite_result, pg_result = results
    assert sqlite_result["mismatches"] == []
    for key in sqlite_result:
        assert sqlite_result[key] == pg_result[key], key
