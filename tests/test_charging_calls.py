"""Real-time billing through the B2BUA core: admission, the funds limit, the charge in
the call record and in the store's ledger (a real SQLite store and its durable writer)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from control import config as configuration
from control.b2bua import B2BUA
from control.accounts import Actor
from control.params import ParamStore
from control.services import Services
from control.services.bootstrap import bootstrap_customer, bootstrap_vendor
from control.sip.timer import Timers
from control.store import StoreWriter, open_store, upgrade_to_head
from control.store import accounts as store_accounts
from control.store import ledger
from tests.b2bua_driver import CALLER, LOCAL, T0, Sink, caller_peer, establish, invite, requests, responses, take

RATES = [("555", Decimal("1.00"), 60, 60, Decimal(0)), ("5551", Decimal("0.60"), 30, 6, Decimal("0.05"))]
COSTS = [("555", Decimal("0.40"), 60, 60, Decimal(0))]
SYSTEM = Actor.system("test")


@pytest.fixture
def billed(tmp_path):
    store = open_store(str(tmp_path / "v.db"))
    upgrade_to_head(store)
    writer = StoreWriter(store, str(tmp_path / "journal"))
    made = []

    def make(balance="10.00", callee_prefixes=("",), vendor_balance=None, params=None):
        config = configuration.from_dict({
            "customer": [{"name": "acme", "addresses": ["10.0.0.1"]}],
            "vendor": [{"name": "v1", "host": "10.0.0.2", "port": 5060, "prefixes": list(callee_prefixes)}],
        })
        config.customers[0].account = "C1"
        config.customers[0].rate_table = "retail"
        config.customers[0].balance = Decimal(balance)
        config.vendors[0].rate_table = "wholesale"
        if vendor_balance is not None:
            config.vendors[0].account = "V1"
            config.vendors[0].balance = Decimal(vendor_balance)
        params = ParamStore(params or {})
        services = Services.open(store, params, writer)
        for name, rows in (("retail", RATES), ("wholesale", COSTS)):
            if name not in services.tariffs.tables:
                services.tariffs.create_rate_table(SYSTEM, name)
                services.tariffs.import_rates(SYSTEM, name, csv_deck(rows))
        bootstrap_customer(services, config.customers[0])
        bootstrap_vendor(services, config.vendors[0])
        timers = Timers(T0)
        sink = Sink()
        b2b = B2BUA(timers, config, params, None, sink, local={"udp": LOCAL, "tcp": LOCAL},
                    charging=services.charging, router=services.gateways.router)
        made.append(b2b)
        return b2b, timers, sink, services

    yield make, writer, store
    writer.close()
    store.close()


def csv_deck(rows) -> str:
    return "prefix,price,first_unit,next_unit,connection_fee\n" + "".join(
        ",".join(str(v) for v in row) + "\n" for row in rows)


def hang_up(b2b, ok):
    b2b.receive(caller_peer(ok).request("BYE", 2), CALLER)
    return take(b2b)


def test_answered_call_is_charged_in_the_record_and_the_ledger(billed):
    make, writer, store = billed
    b2b, timers, sink, services = make()
    _, ok = establish(b2b, timers)              # callee 5551234: the 5551 rate (0.60/min, 30/6, fee 0.05)
    timers.advance(T0 + 61.2)
    hang_up(b2b, ok)
    (record,) = sink.records
    assert record.rate_prefix == "5551" and record.rate == Decimal("0.60")
    # 61 s held: 30 s first unit + 6 s steps -> 66 s billed at 0.60/min = 0.66, plus 0.05 connection
    assert record.billed_time == 66 and record.fee == Decimal("0.71")
    assert record.cost == Decimal("0.80") and record.profit == Decimal("-0.09")  # 2 min at 0.40
    assert services.funds.funds("C1").balance == Decimal("9.29")
    assert services.funds.funds("C1").reserved == 0
    assert writer.flush(10)                     # the ledger entry went through the durable writer
    entries = ledger.entries(store, "C1")
    assert [e["amount"] for e in entries if e["kind"] == "charge"] == [Decimal("-0.71")]
    assert store_accounts.get_account(store, "C1")["balance"] == Decimal("9.29")
    assert ledger.balance_mismatches(store) == []


def test_rate_not_found_and_insufficient_balance_refuse_the_call(billed):
    make, _, _ = billed
    b2b, timers, sink, _ = make(balance="0.50")
    b2b.receive(invite().replace(b"sip:5551234@", b"sip:4441234@"), CALLER)
    assert [m.status for m, _ in responses(take(b2b))] == [100, 404]
    assert sink.records[-1].reason == "Rate Not Found" and sink.records[-1].attempts == 0
    b2b.receive(invite(branch="z9hG4bKc2", call_id="call-2@10.0.0.1"), CALLER)
    out = take(b2b)
    assert [m.status for m, _ in responses(out)] == [100, 402] and not requests(out, "INVITE")
    assert sink.records[-1].reason == "Insufficient Balance"


def test_call_ends_when_the_funds_run_out(billed):
    make, _, _ = billed
    b2b, timers, sink, services = make(balance="1.00")
    # 1.00 pays the 0.05 connection fee and 0.95 of talk at 0.60/min: 95 s, of which the
    # units (30 s, then 6 s steps) allow 90 s
    _, ok = establish(b2b, timers, vendor_extra="")
    timers.advance(T0 + 89.9)
    assert not requests(take(b2b), "BYE")
    timers.advance(T0 + 90.0)
    out = take(b2b)
    assert len(requests(out, "BYE")) == 2
    (record,) = sink.records
    assert record.reason == "Max Duration" and record.detail == "funds exhausted"
    assert record.billed_time == 90 and record.fee == Decimal("0.95")
    assert services.funds.funds("C1").balance == Decimal("0.05")


def test_unanswered_call_releases_its_reservation(billed):
    make, _, _ = billed
    b2b, timers, sink, services = make()
    b2b.receive(invite(), CALLER)
    take(b2b)
    assert services.funds.funds("C1").reserved == Decimal("0.60")
    timers.advance(T0 + 30)                     # the vendor never answers: Timer B, no more routes
    take(b2b)
    assert sink.records[-1].fee == 0 and services.funds.funds("C1").reserved == 0


def test_locked_agent_and_call_limit_refuse_calls(billed):
    make, _, store = billed
    b2b, timers, sink, services = make()
    services.accounts.create(SYSTEM, "A1", {"name": "agent"})
    services.accounts.update(SYSTEM, "C1", {"agent_id": "A1", "concurrent_limit": 1})
    b2b.receive(invite(), CALLER)                                   # the one call allowed
    assert [m.status for m, _ in responses(take(b2b))] == [100]
    b2b.receive(invite(branch="z9hG4bKc2", call_id="call-2@10.0.0.1"), CALLER)
    assert [m.status for m, _ in responses(take(b2b))] == [100, 503]
    assert sink.records[-1].reason == "Connection Limit"
    services.accounts.update(SYSTEM, "A1", {"status": "Locked"})
    assert store_accounts.get_account(store, "A1")["status"] == "Locked"     # the store follows
    b2b.receive(invite(branch="z9hG4bKc3", call_id="call-3@10.0.0.1"), CALLER)
    assert [m.status for m, _ in responses(take(b2b))] == [100, 403]
    assert sink.records[-1].reason == "Account Locked" and "agent 'A1'" in sink.records[-1].detail


def test_vendor_is_charged_its_cost_and_skipped_once_exhausted(billed):
    """The vendor account pays each answered call's cost; with
    SS_ROUTE_POSITIVE_BALANCE_VENDOR_ONLY, once its balance + credit limit is used up the
    vendor gets no more calls: 503 NoAvailableRouter without an attempt."""
    make, writer, store = billed
    b2b, timers, sink, services = make(vendor_balance="0.50",
                                       params={"SS_ROUTE_POSITIVE_BALANCE_VENDOR_ONLY": True})
    _, ok = establish(b2b, timers)
    timers.advance(T0 + 61.2)                   # 2 minutes at the vendor's 0.40/min = 0.80
    hang_up(b2b, ok)
    assert sink.records[-1].cost == Decimal("0.80")
    assert services.funds.funds("V1").balance == Decimal("-0.30")
    b2b.receive(invite(branch="z9hG4bKv2", call_id="call-v2@10.0.0.1"), CALLER)
    out = take(b2b)
    assert [m.status for m, _ in responses(out)] == [100, 503] and not requests(out, "INVITE")
    assert sink.records[-1].reason == "NoAvailableRouter" and sink.records[-1].attempts == 0
    assert services.funds.funds("C1").reserved == 0
    services.accounts.pay(SYSTEM, "V1", "recharge", "1.00")     # topped up: back in service
    b2b.receive(invite(branch="z9hG4bKv3", call_id="call-v3@10.0.0.1"), CALLER)
    assert requests(take(b2b), "INVITE")
    assert writer.flush(10)
    assert [e["amount"] for e in ledger.entries(store, "V1") if e["kind"] == "charge"] == [Decimal("-0.80")]
    assert ledger.balance_mismatches(store) == []
