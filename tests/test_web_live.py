"""The Web API's live side over real HTTP and a real sipp call: current calls with per-leg
media, the dashboard and its server-sent events, CDR filters and CSV, reports, system
parameters (at once or after a restart), Web access control, alarms, system figures and
Prometheus metrics."""
from __future__ import annotations

import csv
import io
import json
import time
from decimal import Decimal

import httpx
import pytest

from control import config as configuration
from tests.siputil import Peer, RunningSwitch, free_udp_port, sipp_args
from tests.test_sip_calls import wait_bound

RATES = "prefix,price,first_unit,next_unit,connection_fee\n49,1.20,1,1,0\n"


@pytest.fixture
def live(tmp_path):
    rates = tmp_path / "retail.csv"
    rates.write_text(RATES)
    vendor_port = free_udp_port()
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"], "auth_algorithms": ["MD5"]},      # sipp answers MD5 only
        "params": {"SS_MEDIAPROXYMODE": 1, "SS_GATEWAY_KEEPALIVE_INTERVAL": 0},
        "rate_table": [{"name": "retail", "file": str(rates)}],
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"], "rate_table": "retail", "account": "C1",
                      "balance": "50"}],
        "vendor": [{"name": "carrier", "host": "127.0.0.1", "port": vendor_port}],
        "phone": [{"user": "1001", "password": "1001", "customer": "acme"}],
    })
    switch = RunningSwitch(config, tmp_path, web_listen=("127.0.0.1", 0), admin_password="pw-admin")
    host, port = switch.switch.web_address
    client = httpx.Client(base_url=f"http://{host}:{port}", timeout=10)
    token = client.post("/api/login", json={"name": "admin", "password": "pw-admin"}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    client.token, client.switch, client.vendor_port, client.folder = token, switch, vendor_port, tmp_path
    try:
        yield client
    finally:
        client.close()
        switch.stop()


def place_call(live, seconds: float) -> tuple[Peer, Peer]:
    vendor = Peer(sipp_args(["-sn", "uas", "-rtp_echo"], live.vendor_port, live.folder, "vendor"), live.folder, "vendor")
    wait_bound(live.vendor_port)
    caller = Peer(sipp_args(["-sn", "uac", "-s", "4930123", "-d", str(int(seconds * 1000)),
                             "-rtp_echo", f"127.0.0.1:{live.switch.port}"], free_udp_port(), live.folder, "caller"),
                  live.folder, "caller")
    return vendor, caller


def test_current_call_dashboard_and_then_the_record(live):
    vendor, caller = place_call(live, 3)
    try:
        deadline = time.monotonic() + 10
        calls = []
        while time.monotonic() < deadline:
            calls = live.get("/api/current-calls").json()
            if calls and calls[0]["state"] == "answered":
                break
            time.sleep(0.2)
        (call,) = calls
        assert (call["caller"], call["callee"], call["customer"], call["vendor"]) == ("sipp", "4930123", "acme", "carrier")
        assert [leg["side"] for leg in call["legs"]] == ["caller", "callee"]
        assert call["legs"][0]["codec"] == "PCMU" and call["duration_s"] >= 0
        board = live.get("/api/dashboard").json()
        assert board["concurrent_calls"] == 1 and board["online_mapping_gateways"] == 1
        assert board["online_routing_gateways"] == 1 and board["cps"] > 0
        assert caller.wait(30) == 0, caller.report()
    finally:
        vendor.stop()
        caller.stop()
    live.switch.wait_records(1)
    assert live.get("/api/current-calls").json() == []
    (record,) = live.get("/api/cdrs?callee=4930").json()
    assert record["termination_reason"] == "Normal" and Decimal(record["fee"]) > 0
    assert live.get("/api/cdrs?callee=5").json() == [] and live.get("/api/cdrs?reason=User%20Busy").json() == []
    rows = list(csv.DictReader(io.StringIO(live.get("/api/cdrs.csv?callee=49").text)))
    assert len(rows) == 1 and rows[0]["callee"] == "4930123"
    (income,) = live.get("/api/reports/income?top=10").json()
    assert income["customer"] == "acme" and Decimal(income["fee"]) == Decimal(record["fee"])
    (traffic,) = live.get("/api/reports/traffic?by=gateway").json()
    assert traffic["gateway"] == "carrier" and traffic["asr"] == 100.0
    assert Decimal(live.get("/api/dashboard").json()["today"]["income"]) == Decimal(record["fee"])


def test_server_sent_events_stream_the_dashboard(live):
    assert live.get(f"/api/events?token=bad.token").status_code == 401
    with live.stream("GET", f"/api/events?token={live.token}") as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        lines = reply.iter_lines()
        assert next(lines) == "event: dashboard"
        data = json.loads(next(lines).removeprefix("data: "))
        assert data["concurrent_calls"] == 0 and "income" in data["today"]


def test_parameters_apply_at_once_or_after_restart(live):
    params = {p["name"]: p for p in live.get("/api/parameters").json()}
    assert params["SS_SIP_TIMEOUT_INVITE"]["value"] == "10"
    hot = live.put("/api/parameters/SS_SIP_TIMEOUT_INVITE", json={"value": 7})
    assert hot.json() == {"name": "SS_SIP_TIMEOUT_INVITE", "value": "7", "applies": "at once"}
    assert live.switch.switch.params.get("SS_SIP_TIMEOUT_INVITE") == 7
    cold = live.put("/api/parameters/SS_MEDIAPROXYPORT_START", json={"value": 20000})
    assert cold.json()["applies"] == "after restart"
    bad = live.put("/api/parameters/SS_SIP_TIMEOUT_INVITE", json={"value": 9999})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "value"
    assert live.put("/api/parameters/NO_SUCH", json={"value": 1}).status_code == 400
    from control.store.parameters import load_params
    assert load_params(live.switch.switch.store)["SS_SIP_TIMEOUT_INVITE"] == 7      # survives a restart


def test_web_access_control_never_locks_out_by_accident(live):
    refused = live.put("/api/web-access", json={"allow": ["10.0.0.0/8"]})
    assert refused.status_code == 400 and "confirm" in refused.json()["error"]["rule"]
    assert live.put("/api/web-access", json={"allow": ["not-a-net"]}).json()["error"]["field"] == "allow[0]"
    kept = live.put("/api/web-access", json={"allow": ["127.0.0.0/8", "10.1.0.0/16"]})
    assert kept.status_code == 200 and kept.json()["warnings"] == []
    assert live.get("/api/accounts").status_code == 200
    gone = live.put("/api/web-access", json={"allow": ["10.1.0.0/16"], "confirm": True})
    assert gone.status_code == 200 and len(gone.json()["warnings"]) == 2
    denied = live.get("/api/accounts")
    assert denied.status_code == 403 and denied.json()["error"]["field"] == "source"
    assert live.get("/metrics").status_code == 403
    live.switch.call(lambda: setattr(live.switch.switch.web_access, "networks", ()))   # undo from inside


def test_alarms_system_and_metrics(live):
    assert live.get("/api/alarms").json() == []
    deadline = time.monotonic() + 10
    while live.get("/api/system").json()["latest"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    system = live.get("/api/system").json()
    assert 0 <= system["latest"]["cpu_percent"] <= 100 and system["history"]
    assert len(system["latest"]["cpu_per_core"]) >= 1
    metrics = live.get("/metrics").text
    for name in ("vosmedia_calls_active 0", "vosmedia_store_queue_depth", "vosmedia_media_sessions",
                 'vosmedia_gateway_reachable{gateway="carrier"} 1', "vosmedia_media_transcoding"):
        assert name in metrics, name


def test_phones_managed_through_the_api_reach_the_registrar(live):
    """The configuration's phone is in the store under its customer's account; locking it
    through the API stops its registration at once, unlocking lets it register, and the
    online list shows it."""
    from tests.siputil import render
    (phone,) = live.get("/api/phones").json()
    assert (phone["number"], phone["account_id"]) == ("1001", "C1") and "password" not in phone
    assert live.patch("/api/phones/1001", json={"locked": True}).status_code == 200

    def register(name):
        scenario = render("register.xml", live.folder)
        peer = Peer(sipp_args(["-sf", str(scenario), "-s", "1001", f"127.0.0.1:{live.switch.port}"],
                              free_udp_port(), live.folder, name), live.folder, name)
        try:
            return peer.wait(20)
        finally:
            peer.stop()

    assert register("locked") != 0
    assert live.get("/api/online-phones").json() == []
    assert live.patch("/api/phones/1001", json={"locked": False}).status_code == 200
    assert register("unlocked") == 0
    assert [p["user"] for p in live.get("/api/online-phones").json()] == ["1001"]
    bad = live.post("/api/phones", json={"number": "1002", "account_id": "C1"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "password"
    made = live.post("/api/phones", json={"number": "1002", "password": "pw1002", "account_id": "C1"})
    assert made.status_code == 201
