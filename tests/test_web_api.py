"""The Web API of a running switch over real HTTP: logins and tokens, accounts and agents,
payments reaching the call path, tariffs in the store and in memory, and agent isolation
on every endpoint."""
from __future__ import annotations

import socket
from decimal import Decimal

import httpx
import pytest

from control import config as configuration
from control.store import accounts as store_accounts
from control.store import ledger as store_ledger
from tests.siputil import Peer, RunningSwitch, free_udp_port, sipp_args

RATES = "prefix,price,first_unit,next_unit,connection_fee\n555,1.20,1,1,0\n"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web(tmp_path):
    """A switch with the Web API, a rated customer C42 (balance 0.01) and a vendor port."""
    rates = tmp_path / "retail.csv"
    rates.write_text(RATES)
    vendor_port = free_udp_port()
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "rate_table": [{"name": "retail", "file": str(rates)}],
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"], "rate_table": "retail",
                      "account": "C42", "balance": "0.01"}],
        "vendor": [{"name": "v", "host": "127.0.0.1", "port": vendor_port}],
    })
    switch = RunningSwitch(config, tmp_path, media=False, web_listen=("127.0.0.1", 0),
                           admin_password="admin-secret")
    host, port = switch.switch.web_address
    client = httpx.Client(base_url=f"http://{host}:{port}", timeout=10)
    client.switch = switch
    client.vendor_port = vendor_port
    try:
        yield client
    finally:
        client.close()
        switch.stop()


def login(client, name, password) -> dict:
    reply = client.post("/api/login", json={"name": name, "password": password})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def test_login_token_and_lockout(web):
    assert web.get("/api/accounts").status_code == 401
    assert web.get("/api/accounts", headers={"Authorization": "Bearer forged.abc"}).status_code == 401
    admin = login(web, "admin", "admin-secret")
    assert [a["id"] for a in web.get("/api/accounts", headers=admin).json()] == ["C42", "v"]   # customer, vendor
    for _ in range(5):
        assert web.post("/api/login", json={"name": "admin", "password": "wrong"}).status_code == 401
    locked = web.post("/api/login", json={"name": "admin", "password": "admin-secret"})
    assert locked.status_code == 401 and "locked" in locked.json()["error"]["rule"]
    assert web.get("/api/accounts", headers=admin).status_code == 200     # issued tokens still work


def test_bad_requests_name_the_field(web):
    admin = login(web, "admin", "admin-secret")
    reply = web.post("/api/accounts", headers=admin, json={"id": "X1", "name": "x", "colour": "red"})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "colour"
    reply = web.post("/api/accounts", headers=admin, json={"id": "X1", "name": "x", "rate_table": "nope"})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "rate_table"
    reply = web.post("/api/accounts/C42/payments", headers=admin, json={"kind": "recharge", "amount": "-1"})
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "amount"
    reply = web.post("/api/accounts/C42/payments", headers=admin, json={"kind": "deduct", "amount": "5"})
    assert reply.status_code == 400 and "free funds" in reply.json()["error"]["rule"]
    reply = web.put("/api/rate-tables/retail/rates", headers=admin, content="prefix,price\nabc,1\n")
    assert reply.status_code == 400
    assert web.get("/api/accounts/NOPE", headers=admin).status_code == 404


def test_payment_through_the_api_admits_the_next_call(web, tmp_path):
    """Balance 0.01 is below the reservation: the call is refused (402); a recharge through
    the Web API reaches the running switch at once and the same call goes through, is
    charged, and the ledger and the balance agree."""
    admin = login(web, "admin", "admin-secret")
    uas = Peer(sipp_args(["-sn", "uas"], web.vendor_port, tmp_path, "uas", calls=1), tmp_path, "uas")
    port = web.switch.port
    try:
        refused = Peer(sipp_args(["-sn", "uac", "-s", "5551234", f"127.0.0.1:{port}"], free_udp_port(),
                                 tmp_path, "refused"), tmp_path, "refused")
        assert refused.wait(30) != 0
        assert web.switch.wait_records(1)[-1]["reason"] == "Insufficient Balance"
        paid = web.post("/api/accounts/C42/payments", headers=admin,
                        json={"kind": "recharge", "amount": "5.00", "memo": "wire 1234"})
        assert paid.status_code == 201, paid.text
        assert Decimal(paid.json()["balance_after"]) == Decimal("5.01")
        uac = Peer(sipp_args(["-sn", "uac", "-s", "5551234", "-d", "1000", f"127.0.0.1:{port}"],
                             free_udp_port(), tmp_path, "uac"), tmp_path, "uac")
        assert uac.wait(30) == 0, uac.report() + uas.report()
    finally:
        uas.stop()
    record = web.switch.wait_records(2)[0]          # newest first
    assert record["answer"] is not None, record
    fee = Decimal(str(record["fee"]))
    assert fee > 0
    web.switch.switch.cdr.flush(10)
    shown = web.get("/api/accounts/C42", headers=admin).json()
    assert Decimal(shown["balance"]) == Decimal("5.01") - fee
    kinds = [e["kind"] for e in web.get("/api/accounts/C42/ledger", headers=admin).json()]
    assert kinds[:2] == ["charge", "recharge"]
    store = web.switch.switch.store
    assert store_accounts.get_account(store, "C42")["balance"] == Decimal("5.01") - fee
    assert store_ledger.balance_mismatches(store) == []


def test_rate_table_import_applies_to_the_next_call(web):
    admin = login(web, "admin", "admin-secret")
    reply = web.put("/api/rate-tables/retail/rates", headers=admin,
                    content="prefix,price,first_unit,next_unit\n555,0.50,60,60\n5556,2.00,1,1\n")
    assert reply.status_code == 200 and reply.json() == {"rates": 2}
    assert web.get("/api/rate-tables/retail/lookup?number=5556000", headers=admin).json()["rate"]["price"] == "2.00"
    exported = web.get("/api/rate-tables/retail/rates", headers=admin).text
    assert exported.splitlines()[1:] == ["555,0.50,60,60,0,", "5556,2.00,1,1,0,"]
    tables = web.switch.call(lambda: web.switch.switch.services.tariffs.tables)
    assert tables["retail"].rate_for("5551").price == Decimal("0.50")


def test_period_rate_by_calendar(web):
    """A period rate picks the working or non-working table by the call's start time,
    the table the call path uses: 17:59 working, 18:00 and 18:01 not, a holiday never."""
    admin = login(web, "admin", "admin-secret")
    assert web.post("/api/rate-tables", headers=admin, json={"name": "night"}).status_code == 201
    web.put("/api/rate-tables/night/rates", headers=admin, content="prefix,price,first_unit,next_unit\n555,0.10,60,60\n")
    cal = web.put("/api/work-calendars/office", headers=admin, json={
        "working_weekdays": [1, 2, 3, 4, 5], "work_start": "09:00", "work_end": "18:00",
        "holidays": ["2026-12-25"], "time_zone": "Europe/Berlin"})
    assert cal.status_code == 200, cal.text
    bad = web.put("/api/work-calendars/bad", headers=admin, json={"work_start": "25:00"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "work_start"
    assert web.put("/api/period-rates/biz", headers=admin, json={
        "work_calendar": "office", "working_rate_table": "retail", "non_working_rate_table": "night"}).status_code == 200
    assert web.patch("/api/accounts/C42", headers=admin, json={"period_rate": "biz"}).status_code == 200
    tariffs = web.switch.switch.services.tariffs
    account = web.switch.switch.services.accounts.record("C42")
    from datetime import datetime
    from zoneinfo import ZoneInfo
    berlin = ZoneInfo("Europe/Berlin")

    def table_at(text):
        start = datetime.fromisoformat(text).replace(tzinfo=berlin).timestamp()
        return tariffs.table_for(account.rate_table, account.period_rate, start).name

    assert table_at("2026-12-07 17:59") == "retail"      # a Monday
    assert table_at("2026-12-07 18:00") == "night"
    assert table_at("2026-12-07 18:01") == "night"
    assert table_at("2026-12-25 10:00") == "night"      # a Friday, but a holiday
    # the store holds the same: a restart would load this period rate for C42
    row = store_accounts.get_account(web.switch.switch.store, "C42")
    assert row["period_rate_id"] is not None


# ---------------------------------------------------------------------- agent isolation

def build_tree(web):
    """Agents A (with every authorization) and B, each with one sub-account; an agent
    login for A. Returns (admin headers, A's headers)."""
    admin = login(web, "admin", "admin-secret")
    every = [
        "Add/delete/modify account", "Add/delete/modify phone", "Add/delete/modify phone card",
        "Add/delete gateway", "Modify gateway information", "Modify gateway capacity",
        "Payment for this account", "Payment for sub accounts"]
    for account, agent in (("A", None), ("A1", "A"), ("B", None), ("B1", "B")):
        body = {"id": account, "name": f"name-{account}", "authorizations": every if agent is None else []}
        if agent:
            body["agent_id"] = agent
        reply = web.post("/api/accounts", headers=admin, json=body)
        assert reply.status_code == 201, reply.text
    for account in ("A", "A1", "B", "B1"):
        web.post(f"/api/accounts/{account}/payments", headers=admin, json={"kind": "recharge", "amount": "10"})
    assert web.post("/api/accounts", headers=admin, json={"id": "BV", "name": "vendor-b", "kind": "vendor",
                                                          "agent_id": "B"}).status_code == 201
    for kind, body in (("mapping-gateways", {"name": "mg-B1", "account_id": "B1", "addresses": ["10.9.0.1"]}),
                       ("mapping-gateways", {"name": "mg-A1", "account_id": "A1", "addresses": ["10.9.0.2"]}),
                       ("routing-gateways", {"name": "rg-BV", "account_id": "BV", "address": "10.9.1.1"}),
                       ("gateway-groups", {"name": "shared", "line_limit": 10}),
                       ("phones", {"number": "7001", "password": "pw7001", "account_id": "B1"}),
                       ("phones", {"number": "7002", "password": "pw7002", "account_id": "A1"})):
        reply = web.post(f"/api/{kind}", headers=admin, json=body)
        assert reply.status_code == 201, reply.text
    made = web.post("/api/logins", headers=admin, json={"name": "agent-a", "password": "agent-a-pw",
                                                        "account_id": "A"})
    assert made.status_code == 201, made.text
    return admin, login(web, "agent-a", "agent-a-pw")


# Every endpoint with a request aimed outside agent A's subtree (at B's accounts, or at
# something only operators may do). Adding an endpoint without a line here fails
# test_every_endpoint_is_covered.
OUTSIDE = {
    ("GET", "/api/accounts/{account_id}"): lambda c, h: c.get("/api/accounts/B1", headers=h),
    ("PATCH", "/api/accounts/{account_id}"): lambda c, h: c.patch("/api/accounts/B1", headers=h, json={"status": "Locked"}),
    ("DELETE", "/api/accounts/{account_id}"): lambda c, h: c.delete("/api/accounts/B1", headers=h),
    ("POST", "/api/accounts"): lambda c, h: c.post("/api/accounts", headers=h, json={"id": "X", "name": "x", "agent_id": "B"}),
    ("GET", "/api/accounts/{account_id}/sub-accounts"): lambda c, h: c.get("/api/accounts/B/sub-accounts?scope=all", headers=h),
    ("POST", "/api/accounts/{account_id}/payments"): lambda c, h: c.post("/api/accounts/B1/payments", headers=h, json={"kind": "recharge", "amount": "1"}),
    ("PUT", "/api/accounts/{account_id}/credit-limit"): lambda c, h: c.put("/api/accounts/B1/credit-limit", headers=h, json={"credit_limit": "100"}),
    ("POST", "/api/transfers"): lambda c, h: c.post("/api/transfers", headers=h, json={"from": "B1", "to": "A1", "amount": "1"}),
    ("GET", "/api/accounts/{account_id}/ledger"): lambda c, h: c.get("/api/accounts/B1/ledger", headers=h),
    ("GET", "/api/cdrs"): lambda c, h: c.get("/api/cdrs?customer=B1", headers=h),
    ("GET", "/api/audit"): lambda c, h: c.get("/api/audit?entity_id=B1", headers=h),
    ("GET", "/api/rate-tables"): lambda c, h: c.get("/api/rate-tables", headers=h),
    ("POST", "/api/rate-tables"): lambda c, h: c.post("/api/rate-tables", headers=h, json={"name": "mine"}),
    ("PUT", "/api/rate-tables/{name}/rates"): lambda c, h: c.put("/api/rate-tables/retail/rates", headers=h, content="prefix,price,first_unit,next_unit\n1,0,1,1\n"),
    ("GET", "/api/rate-tables/{name}/rates"): lambda c, h: c.get("/api/rate-tables/retail/rates", headers=h),
    ("GET", "/api/rate-tables/{name}/lookup"): lambda c, h: c.get("/api/rate-tables/retail/lookup?number=555", headers=h),
    ("DELETE", "/api/rate-tables/{name}"): lambda c, h: c.delete("/api/rate-tables/retail", headers=h),
    ("GET", "/api/work-calendars"): lambda c, h: c.get("/api/work-calendars", headers=h),
    ("PUT", "/api/work-calendars/{name}"): lambda c, h: c.put("/api/work-calendars/x", headers=h, json={}),
    ("GET", "/api/period-rates"): lambda c, h: c.get("/api/period-rates", headers=h),
    ("PUT", "/api/period-rates/{name}"): lambda c, h: c.put("/api/period-rates/x", headers=h, json={"work_calendar": "a", "working_rate_table": "retail", "non_working_rate_table": "retail"}),
}
for kind, name, body in (("mapping-gateways", "mg-B1", {"name": "x", "account_id": "B1"}),
                         ("routing-gateways", "rg-BV", {"name": "x", "account_id": "BV", "address": "10.0.0.9"}),
                         ("gateway-groups", "shared", {"name": "mine"})):
    OUTSIDE[("POST", f"/api/{kind}")] = lambda c, h, k=kind, b=body: c.post(f"/api/{k}", headers=h, json=b)
    OUTSIDE[("GET", f"/api/{kind}/{{name}}")] = lambda c, h, k=kind, n=name: c.get(f"/api/{k}/{n}", headers=h)
    OUTSIDE[("PATCH", f"/api/{kind}/{{name}}")] = lambda c, h, k=kind, n=name: c.patch(
        f"/api/{k}/{n}", headers=h, json={"locked": True})
    OUTSIDE[("DELETE", f"/api/{kind}/{{name}}")] = lambda c, h, k=kind, n=name: c.delete(f"/api/{k}/{n}", headers=h)
OUTSIDE[("POST", "/api/phones")] = lambda c, h: c.post("/api/phones", headers=h, json={
    "number": "7009", "password": "x1234", "account_id": "B1"})
OUTSIDE[("GET", "/api/phones/{number}")] = lambda c, h: c.get("/api/phones/7001", headers=h)
OUTSIDE[("PATCH", "/api/phones/{number}")] = lambda c, h: c.patch("/api/phones/7001", headers=h, json={"locked": True})
OUTSIDE[("DELETE", "/api/phones/{number}")] = lambda c, h: c.delete("/api/phones/7001", headers=h)
OUTSIDE[("GET", "/api/logins")] = lambda c, h: c.get("/api/logins", headers=h)
OUTSIDE[("POST", "/api/logins")] = lambda c, h: c.post("/api/logins", headers=h, json={
    "name": "b-login", "password": "pw-b-login", "account_id": "B"})
OUTSIDE[("DELETE", "/api/logins/{name}")] = lambda c, h: c.delete("/api/logins/admin", headers=h)
OUTSIDE[("PUT", "/api/logins/{name}/password")] = lambda c, h: c.put("/api/logins/admin/password", headers=h,
                                                                     json={"password": "taken-over"})
OUTSIDE[("GET", "/api/cdrs.csv")] = lambda c, h: c.get("/api/cdrs.csv?customer=B1", headers=h)
# operators only: an agent is refused whatever it asks
for path in ("/api/alarms", "/api/system", "/api/online-phones", "/api/online-gateways", "/api/parameters",
             "/api/web-access"):
    OUTSIDE[("GET", path)] = lambda c, h, p=path: c.get(p, headers=h)
OUTSIDE[("PUT", "/api/parameters/{name}")] = lambda c, h: c.put(
    "/api/parameters/SS_SIP_TIMEOUT_INVITE", headers=h, json={"value": 5})
OUTSIDE[("PUT", "/api/web-access")] = lambda c, h: c.put("/api/web-access", headers=h, json={"allow": ["10.0.0.0/8"]})
OUTSIDE[("GET", "/api/routing-analysis")] = lambda c, h: c.get("/api/routing-analysis?number=4930&customer=B1", headers=h)
# no target: what they return is scoped by the actor (checked in test_agent_cannot_reach_outside_its_subtree)
OPEN = {("POST", "/api/login"), ("GET", "/api/accounts"), ("GET", "/api/mapping-gateways"),
        ("GET", "/api/routing-gateways"), ("GET", "/api/gateway-groups"), ("GET", "/api/dashboard"),
        ("GET", "/api/events"), ("GET", "/api/current-calls"), ("GET", "/api/reports/income"),
        ("GET", "/api/reports/traffic"), ("GET", "/api/phones"),
        ("GET", "/metrics")}      # no token: reachable from the Web access control list only


def test_every_endpoint_is_covered(web):
    paths = web.get("/api/openapi.json").json()["paths"]
    endpoints = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert endpoints == set(OUTSIDE) | OPEN


def test_agent_cannot_reach_outside_its_subtree(web):
    admin, agent = build_tree(web)
    before = {a["id"]: (a["balance"], a["status"], a["credit_limit"])
              for a in web.get("/api/accounts", headers=admin).json()}
    audit_before = len(web.get("/api/audit?limit=1000", headers=admin).json())
    for (method, path), request in OUTSIDE.items():
        reply = request(web, agent)
        assert reply.status_code in (403, 404), (method, path, reply.status_code, reply.text)
        assert "error" in reply.json()
    after = {a["id"]: (a["balance"], a["status"], a["credit_limit"])
             for a in web.get("/api/accounts", headers=admin).json()}
    assert after == before                                   # nothing changed anywhere
    assert len(web.get("/api/audit?limit=1000", headers=admin).json()) == audit_before
    assert {a["id"] for a in web.get("/api/accounts", headers=agent).json()} == {"A", "A1"}
    assert [g["name"] for g in web.get("/api/mapping-gateways", headers=agent).json()] == ["mg-A1"]
    assert web.get("/api/routing-gateways", headers=agent).json() == []
    assert [p["number"] for p in web.get("/api/phones", headers=agent).json()] == ["7002"]
    assert web.get("/api/gateway-groups", headers=agent).json() == []
    assert web.get("/api/mapping-gateways/mg-B1", headers=admin).json()["locked"] is False


def test_agent_works_inside_its_subtree(web):
    admin, agent = build_tree(web)
    assert web.get("/api/accounts/A1", headers=agent).status_code == 200
    assert [a["id"] for a in web.get("/api/accounts/A/sub-accounts", headers=agent).json()] == ["A1"]
    made = web.post("/api/accounts", headers=agent, json={"id": "A2", "name": "second"})
    assert made.status_code == 201 and made.json()["agent_id"] == "A"        # lands in its subtree
    assert made.json()["category"] == "Account"
    assert web.get("/api/accounts/A", headers=admin).json()["category"] == "Agent"
    paid = web.post("/api/accounts/A1/payments", headers=agent, json={"kind": "recharge", "amount": "2"})
    assert paid.status_code == 201 and paid.json()["operator"] == "agent:A"
    moved = web.post("/api/transfers", headers=agent, json={"from": "A1", "to": "A2", "amount": "3"})
    assert moved.status_code == 201, moved.text
    assert Decimal(web.get("/api/accounts/A2", headers=agent).json()["balance"]) == Decimal(3)
    # an agent cannot change its own record (unlock itself, raise its own limit)
    assert web.patch("/api/accounts/A", headers=agent, json={"concurrent_limit": 5}).status_code == 403
    # a locked agent runs no business: its changes are refused, reads still work
    assert web.patch("/api/accounts/A", headers=admin, json={"status": "Locked"}).status_code == 200
    assert web.post("/api/accounts/A1/payments", headers=agent,
                    json={"kind": "recharge", "amount": "1"}).status_code == 403
    assert web.get("/api/accounts/A1", headers=agent).status_code == 200
    entries = web.get("/api/audit?entity_id=A1", headers=agent).json()
    assert entries and all(e["entity_id"] == "A1" for e in entries)


def test_gateways_through_the_api(web):
    """Gateways are validated as the call path would build them, named references
    resolve, capacity changes need their own authorization, and Routing Analysis sees
    the change at once."""
    admin, agent = build_tree(web)
    bad = web.post("/api/routing-gateways", headers=admin, json={
        "name": "rg-A", "account_id": "BV", "address": "10.0.0.5", "callee_dial_plan": [{"regex": "("}]})
    assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("callee_dial_plan[0]")
    bad = web.post("/api/routing-gateways", headers=admin, json={
        "name": "rg-A", "account_id": "BV", "address": "10.0.0.5", "rate_table": "missing"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "rate_table"
    bad = web.post("/api/mapping-gateways", headers=admin, json={"name": "mg-x", "account_id": "BV"})
    assert bad.status_code == 400 and "customer account" in bad.json()["error"]["rule"]
    made = web.post("/api/routing-gateways", headers=admin, json={
        "name": "rg-49", "account_id": "BV", "address": "10.0.0.5", "prefixes": ["49"], "rate_table": "retail",
        "pai_privacy": {"pai": "caller"}})
    assert made.status_code == 201 and made.json()["rate_table"] == "retail"
    analysis = web.get("/api/routing-analysis?number=4930&customer=A1", headers=admin).json()
    assert [c["gateway"] for c in analysis["candidates"]] == ["rg-49"] and analysis["outcome"] == "routable"
    assert web.patch("/api/routing-gateways/rg-49", headers=admin, json={"locked": True}).status_code == 200
    analysis = web.get("/api/routing-analysis?number=4930&customer=A1", headers=admin).json()
    assert analysis["candidates"] == [] and analysis["skipped"] == [{"gateway": "rg-49", "why": "locked"}]
    # an agent edits its own subtree's mapping gateway: capacity needs its own authorization
    assert web.patch("/api/mapping-gateways/mg-A1", headers=agent, json={"rate_limit": 5}).status_code == 200
    web.patch("/api/accounts/A", headers=admin, json={"authorizations": ["Modify gateway information"]})
    denied = web.patch("/api/mapping-gateways/mg-A1", headers=agent, json={"rate_limit": 6})
    assert denied.status_code == 403 and "Modify gateway capacity" in denied.json()["error"]["rule"]
    assert web.patch("/api/mapping-gateways/mg-A1", headers=agent, json={"memo": "ok"}).status_code == 200
    assert web.get("/api/mapping-gateways/mg-A1", headers=agent).json()["rate_limit"] == 5


def test_operator_logins_with_roles_and_rights(web):
    """A read-only clerk sees but cannot change; an operator with only CDR rights sees CDRs
    and nothing else; nobody grants rights they lack; passwords change."""
    admin = login(web, "admin", "admin-secret")
    assert web.post("/api/logins", headers=admin, json={"name": "clerk", "password": "pw-clerk",
                                                        "role": "read-only"}).status_code == 201
    assert web.post("/api/logins", headers=admin, json={"name": "cdr-only", "password": "pw-cdr",
                                                        "rights": {"CDRs": ["view"]}}).status_code == 201
    clerk, cdr_only = login(web, "clerk", "pw-clerk"), login(web, "cdr-only", "pw-cdr")
    assert web.get("/api/accounts", headers=clerk).status_code == 200
    refused = web.post("/api/accounts/C42/payments", headers=clerk, json={"kind": "recharge", "amount": "1"})
    assert refused.status_code == 403
    assert web.get("/api/cdrs", headers=cdr_only).status_code == 200
    assert web.get("/api/accounts", headers=cdr_only).status_code == 403
    beyond = web.post("/api/logins", headers=cdr_only, json={"name": "x", "password": "pw-xxxx"})
    assert beyond.status_code == 403
    names = {row["name"]: row for row in web.get("/api/logins", headers=admin).json()}
    assert names["cdr-only"]["rights"] == {"CDRs": {"view": True, "add": False, "edit": False, "delete": False}}
    assert web.put("/api/logins/clerk/password", headers=clerk, json={"password": "pw-clerk-2"}).status_code == 200
    login(web, "clerk", "pw-clerk-2")
    assert web.delete("/api/logins/admin", headers=admin).status_code == 403      # not oneself
    assert web.delete("/api/logins/clerk", headers=admin).status_code == 204
    assert web.post("/api/login", json={"name": "clerk", "password": "pw-clerk-2"}).status_code == 401
