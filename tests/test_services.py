"""control/services on SQLite and PostgreSQL: the running switch's memory and the store
stay in step through payments and call charges (a randomized run with concurrent
payments), and a restart loads back exactly what was changed."""
from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest

from control.accounts import AccountError, Actor
from control.cdr import CallRecord
from control.params import ParamStore
from control.services import Services
from control.store import StoreWriter
from control.store import accounts as store_accounts
from control.store import ledger
from tests.test_store import store, url  # noqa: F401  (the two-backend fixtures)

SYSTEM = Actor.system("test")
DECK = "prefix,price,first_unit,next_unit,connection_fee\n1,0.60,6,6,0.01\n"


@pytest.fixture
def services(store, tmp_path):  # noqa: F811
    writer = StoreWriter(store, str(tmp_path / "journal"))
    made = Services.open(store, ParamStore({}), writer)
    made.tariffs.create_rate_table(SYSTEM, "retail")
    made.tariffs.import_rates(SYSTEM, "retail", DECK)
    yield made
    writer.close()


def test_randomized_payments_and_charges_keep_balance_equal_to_ledger(services, store):  # noqa: F811
    """Payments from two threads while calls are admitted and charged: every account's
    live balance equals its stored balance equals the sum of its ledger entries, and no
    account's free funds ever went below zero through a deduct or transfer."""
    ids = [f"R{i}" for i in range(5)]
    for account in ids:
        services.accounts.create(SYSTEM, account, {"name": f"name-{account}", "rate_table": "retail"})
        services.accounts.pay(SYSTEM, account, "recharge", "20")
    charging = services.charging
    errors = []

    def pay(seed):
        rng = random.Random(seed)
        for _ in range(150):
            account, other = rng.sample(ids, 2)
            amount = Decimal(rng.randint(1, 500)) / 100
            try:
                match rng.choice(["recharge", "deduct", "adjust", "transfer", "credit"]):
                    case "transfer":
                        services.accounts.transfer(SYSTEM, account, other, amount)
                    case "credit":
                        services.accounts.set_credit_limit(SYSTEM, account, amount)
                    case "adjust":
                        services.accounts.pay(SYSTEM, account, "adjust", amount * rng.choice([1, -1]))
                    case kind:
                        services.accounts.pay(SYSTEM, account, kind, amount)
            except AccountError as exc:
                assert "free funds" in exc.rule            # the only refusal expected
            except Exception as exc:                       # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=pay, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    rng = random.Random(3)
    for n in range(300):
        account = rng.choice(ids)
        try:
            call = charging.admit(account, "1555", 1_800_000_000.0)
        except Exception as exc:                           # Insufficient Balance is fine
            assert getattr(exc, "reason", None) is not None and exc.reason.name == "Insufficient Balance"
            continue
        record = CallRecord(call_id=f"c{n}", caller="a", callee="1555")
        charging.settle(call, rng.randint(0, 90_000), record.call_id, record)
    for thread in threads:
        thread.join()
    assert not errors
    assert services.charging.writer.flush(30)
    for account in ids:
        funds = services.funds.funds(account)
        stored = store_accounts.get_account(store, account)
        assert funds.reserved == 0
        assert (funds.balance, funds.credit_limit) == (stored["balance"], stored["credit_limit"]), account
    assert ledger.balance_mismatches(store) == []


def test_restart_loads_what_was_changed(services, store, tmp_path):  # noqa: F811
    accounts, tariffs = services.accounts, services.tariffs
    tariffs.save_calendar(SYSTEM, "office", {"work_start": "08:00", "holidays": ["2026-12-25"]})
    tariffs.save_period_rate(SYSTEM, "biz", "office", "retail", "retail")
    accounts.create(SYSTEM, "AG", {"name": "agent", "authorizations": ["Payment for sub accounts"]})
    accounts.create(SYSTEM, "S1", {"name": "sub", "agent_id": "AG", "period_rate": "biz",
                                   "work_calendar": "office", "number_sections": ["1", "44"],
                                   "concurrent_limit": 3, "credit_limit": "2.50"})
    accounts.pay(SYSTEM, "S1", "recharge", "7.25")
    before = {a["id"]: a for a in accounts.visible(SYSTEM)}
    again = Services.open(store, ParamStore({}), services.charging.writer)
    after = {a["id"]: a for a in again.accounts.visible(SYSTEM)}
    assert after == before
    assert after["S1"]["period_rate"] == "biz" and after["AG"]["category"] == "Agent"
    assert again.tariffs.calendars["office"].start == 8 * 60
    assert len(again.tariffs.tables["retail"]) == 1


def test_gateways_phones_and_routing_on_both_backends(services, store):  # noqa: F811
    """Gateways and phones go through the store's JSON, date and foreign-key columns the
    same way on SQLite and PostgreSQL; a restart routes exactly as before."""
    accounts, gateways = services.accounts, services.gateways
    accounts.create(SYSTEM, "C1", {"name": "customer"})
    accounts.create(SYSTEM, "V1", {"name": "vendor", "kind": "vendor"})
    services.tariffs.save_calendar(SYSTEM, "office", {"work_start": "08:00"})
    gateways.create(SYSTEM, "gateway_groups", {"name": "grp", "line_limit": 10, "reserved_lines": 2})
    gateways.create(SYSTEM, "mapping_gateways", {
        "name": "mg", "account_id": "C1", "addresses": ["10.0.0.1"], "callee_dial_plan": [{"strip": 1}],
        "route_extension": True, "expiry_date": "2030-01-01"})
    for name, prefixes, extra in (("rg-long", ["4930"], {"work_calendar": "office", "period": "working"}),
                                  ("rg-short", ["49"], {"gateway_group": "grp", "rate_table": "retail"}),
                                  ("rg-protect", ["49"], {"protect_route": True})):
        gateways.create(SYSTEM, "routing_gateways", {"name": name, "account_id": "V1", "address": "10.1.0.1",
                                                     "prefixes": prefixes, "pai_privacy": {"pai": "caller"},
                                                     "caller_pool": ["111", "222"], **extra})
    services.phones.create(SYSTEM, {"number": "1001", "password": "pw-1001", "account_id": "C1", "line_limit": 2})
    monday_noon = 1_796_644_800.0                      # 2026-12-07 12:00 UTC, a Monday
    mapping = next(iter(gateways.table.mapping.values()))

    def order(router):
        return [g.name for g in router.route(mapping.routed_callee("04930123"), mapping, monday_noon).candidates]

    assert order(gateways.router) == ["rg-long", "rg-short", "rg-protect"]
    again = Services.open(store, ParamStore({}), services.charging.writer)
    assert order(again.gateways.router) == ["rg-long", "rg-short", "rg-protect"]
    shown = again.gateways.get(SYSTEM, "routing_gateways", "rg-short")
    assert (shown["gateway_group"], shown["rate_table"], shown["pai_privacy"]) == ("grp", "retail", {"pai": "caller"})
    assert again.phones.lookup("1001").line_limit == 2 and again.phones.lookup("1001").customer == "customer"
    assert str(again.gateways.get(SYSTEM, "mapping_gateways", "mg")["expiry_date"]) == "2030-01-01"
