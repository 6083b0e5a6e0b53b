"""Routing on the wire: the running switch with gateways managed through its services,
sipp callers and sipp vendors answering 503, 486 or 200, and a vendor that never answers.
Failover and stop codes, switch-until-connect, tech prefix and dial plans, PAI/Privacy
and caller pool on the wire, line and CPS limits, Number Section Limitation through an
agent chain, OPTIONS liveness, and a sipvicious scan while calls go on."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
from sqlalchemy import select

from control import config as configuration
from control.accounts import Actor
from control.store.schema import cdr_attempts
from tests.siputil import Peer, RunningSwitch, free_udp_port, render, sipp_args
from tests.test_sip_calls import wait_bound

SYSTEM = Actor.system("test")


@pytest.fixture
def routed(tmp_path):
    """A switch with customer C1 (mapping gateway "acme", 127.0.0.1) and vendor account
    V1; gateways are added by each test. Returns (switch, add_gateway, peer)."""
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "params": {"SS_SIP_TIMEOUT_INVITE": 2, "SS_MEDIAPROXYMODE": 0, "SS_GATEWAY_KEEPALIVE_INTERVAL": 0},
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"], "account": "C1"}],
    })
    switch = RunningSwitch(config, tmp_path, media=False)
    services = switch.switch.services
    switch.call(services.accounts.create, SYSTEM, "V1", {"name": "vendor-1", "kind": "vendor"})
    peers = []

    def add_gateway(name, port, **fields):
        return switch.call(services.gateways.create, SYSTEM, "routing_gateways",
                           {"name": name, "account_id": "V1", "address": "127.0.0.1", "port": port, **fields})

    def peer(name, role, port, scenario=None, calls=1, **values):
        args = (["-sf", str(render(scenario, tmp_path, **values))] if scenario else []) + role
        started = Peer(sipp_args(args, port, tmp_path, name, calls=calls), tmp_path, name)
        peers.append(started)
        return started

    try:
        yield switch, add_gateway, peer
    finally:
        for started in peers:
            started.stop()
        switch.stop()


def uac(peer, switch, name, number="4930123", extra=(), calls=1, scenario=None, **values):
    """A sipp caller (the built-in uac, or a scenario) dialling ``number``."""
    role = ([] if scenario else ["-sn", "uac"]) + ["-s", number, *extra, f"127.0.0.1:{switch.port}"]
    return peer(name, role, free_udp_port(), scenario=scenario, calls=calls, **values)


def attempts(switch):
    def fetch():
        with switch.switch.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(cdr_attempts.c.cdr_id, cdr_attempts.c.routing_gateway, cdr_attempts.c.sip_code,
                       cdr_attempts.c.termination_reason, cdr_attempts.c.callee_sent)
                .order_by(cdr_attempts.c.cdr_id, cdr_attempts.c.seq))]
    switch.switch.cdr.flush(10)
    return switch.call(fetch)


class SilentVendor:
    """A vendor address that takes INVITEs and never answers (a real socket)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def test_failover_chain_and_each_attempt_recorded(routed):
    """503 moves on, no answer in SS_SIP_TIMEOUT_INVITE moves on, 200 connects; the CDR
    has one attempt row per gateway with its code and reason."""
    switch, add_gateway, peer = routed
    p503, p200 = free_udp_port(), free_udp_port()
    silent = SilentVendor()
    try:
        add_gateway("g-503", p503, priority=1)
        add_gateway("g-silent", silent.port, priority=2)
        add_gateway("g-200", p200, priority=3)
        peer("v503", [], p503, scenario="uas-status.xml", status=503)
        peer("v200", ["-sn", "uas"], p200)
        wait_bound(p503)
        wait_bound(p200)
        caller = uac(peer, switch, "caller", extra=["-d", "500"])
        assert caller.wait(40) == 0, caller.report()
    finally:
        silent.close()
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200 and record["attempts"] == 3
    assert [(a["routing_gateway"], a["sip_code"], a["termination_reason"]) for a in attempts(switch)] == [
        ("g-503", 503, "NoAvailableRouter"), ("g-silent", 408, "Response Timeout"), ("g-200", 200, "Normal")]


def test_stop_code_ends_failover_unless_switch_until_connect(routed):
    switch, add_gateway, peer = routed
    busy, good = free_udp_port(), free_udp_port()
    add_gateway("g-busy", busy, priority=1)
    add_gateway("g-good", good, priority=2)
    peer("busy", [], busy, scenario="uas-status.xml", status=486, calls=2)
    peer("good", ["-sn", "uas"], good)
    wait_bound(busy)
    first = uac(peer, switch, "first", scenario="uac-expect.xml", status=486)
    assert first.wait(30) == 0, first.report()
    assert switch.wait_records(1)[0]["reason"] == "User Busy"
    switch.call(switch.switch.services.gateways.update, SYSTEM, "routing_gateways", "g-busy",
                {"switch_until_connect": True})
    second = uac(peer, switch, "second", extra=["-d", "300"])
    assert second.wait(30) == 0, second.report()
    record = switch.wait_records(2)[0]
    assert record["sip_code"] == 200 and record["routing_gateway"] == "g-good" and record["attempts"] == 2
    assert record["vendor"] == "vendor-1"                       # the vendor account's name


def test_egress_numbers_identity_and_caller_pool_on_the_wire(routed, tmp_path):
    """Tech prefix after the callee dial plan; P-Asserted-Identity from the pool number and
    Privacy: id; the pool rotates round-robin across calls."""
    switch, add_gateway, peer = routed
    port = free_udp_port()
    add_gateway("g-id", port, gateway_prefix="777", callee_dial_plan=[{"strip": 2}],
                pai_privacy={"pai": "caller", "privacy": "id"}, caller_pool=["5550001", "5550002"],
                caller_pool_mode="round_robin")
    vendor = peer("vendor", ["-sn", "uas"], port, calls=2)
    wait_bound(port)
    for n in range(2):
        caller = uac(peer, switch, f"caller{n}", extra=["-d", "200"])
        assert caller.wait(30) == 0, caller.report()
    vendor.wait(20)
    invites = [m for m in (tmp_path / "vendor.msg").read_text().split("\n\n") if "INVITE sip:" in m]
    assert len(invites) >= 2
    for invite, pool_number in zip(invites[:2], ["5550001", "5550002"]):
        assert invite.startswith("INVITE sip:77730123@"), invite      # 4930123: strip 2, then 777
        assert f"P-Asserted-Identity: <sip:{pool_number}@" in invite, invite
        assert "Privacy: id" in invite, invite
        assert re.search(rf"^From: .*<sip:{pool_number}@", invite, re.M), invite
    assert [a["callee_sent"] for a in attempts(switch)] == ["77730123", "77730123"]


def test_line_limit_under_concurrent_calls_gives_all_gateway_busy(routed):
    switch, add_gateway, peer = routed
    port = free_udp_port()
    add_gateway("g-two", port, line_limit=2)
    peer("vendor", ["-sn", "uas"], port, calls=2)
    wait_bound(port)
    callers = uac(peer, switch, "callers", extra=["-d", "3000", "-r", "10", "-l", "4"], calls=4)
    callers.wait(40)
    records = switch.wait_records(4, timeout=20)
    reasons = sorted(r["reason"] for r in records)
    assert reasons == ["AllGatewayBusy", "AllGatewayBusy", "Normal", "Normal"], reasons
    assert all(r["sip_code"] == 503 for r in records if r["reason"] == "AllGatewayBusy")


def test_cps_limit_of_the_mapping_gateway(routed):
    """20 calls sent at 20 per second into a mapping gateway limited to 5 per second: 5
    are routed, the rest get 503 Rate Limit (a one-second sliding window)."""
    switch, add_gateway, peer = routed
    switch.call(switch.switch.services.gateways.update, SYSTEM, "mapping_gateways", "acme", {"rate_limit": 5})
    port = free_udp_port()
    add_gateway("g-any", port)
    peer("vendor", [], port, scenario="uas-status.xml", status=486, calls=20)
    wait_bound(port)
    callers = uac(peer, switch, "callers", extra=["-r", "20", "-l", "20"], calls=20)
    callers.wait(40)
    records = switch.wait_records(20, timeout=20)
    limited = [r for r in records if r["reason"] == "Rate Limit"]
    assert len(records) == 20 and len(limited) == 15, sorted(r["reason"] for r in records)
    assert all(r["sip_code"] == 503 for r in limited)


def test_number_section_limitation_up_the_agent_chain(routed):
    switch, add_gateway, peer = routed
    accounts = switch.switch.services.accounts
    switch.call(accounts.create, SYSTEM, "AG", {"name": "agent", "blocked_sections": ["4930"]})
    switch.call(accounts.update, SYSTEM, "C1", {"agent_id": "AG", "number_sections": ["49"]})
    port = free_udp_port()
    add_gateway("g-any", port)
    peer("vendor", ["-sn", "uas"], port)
    wait_bound(port)
    blocked = uac(peer, switch, "blocked", number="4930123", scenario="uac-expect.xml", status=403)
    assert blocked.wait(30) == 0, blocked.report()
    outside = uac(peer, switch, "outside", number="3312345", scenario="uac-expect.xml", status=403)
    assert outside.wait(30) == 0, outside.report()
    allowed = uac(peer, switch, "allowed", number="4940123", extra=["-d", "200"])
    assert allowed.wait(30) == 0, allowed.report()
    reasons = [r["reason"] for r in switch.wait_records(3)]
    assert reasons == ["Normal", "Number Restricted", "Number Restricted"]


class OptionsResponder:
    """A vendor that answers OPTIONS with 200 (a real socket), once started."""

    def __init__(self, port: int):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                data, address = self.sock.recvfrom(65536)
            except OSError:
                continue
            lines = data.decode(errors="replace").split("\r\n")
            keep = [line for line in lines[1:] if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")]
            reply = "\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0", "", ""])
            self.sock.sendto(reply.encode(), address)

    def close(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def test_liveness_takes_a_dead_vendor_out_and_back(routed):
    switch, add_gateway, peer = routed
    params = switch.switch.params
    switch.call(params.set, "SS_GATEWAY_KEEPALIVE_INTERVAL", 1)
    switch.call(params.set, "SS_GATEWAY_KEEPALIVE_FAILURES", 2)
    port = free_udp_port()
    add_gateway("g-dead", port)
    analyse = switch.switch.services.gateways.analyse

    def skipped():
        result = switch.call(lambda: analyse(SYSTEM, "4930123", customer="C1"))
        return {s["gateway"]: s["why"] for s in result["skipped"]}

    deadline = time.monotonic() + 15
    while "g-dead" not in skipped() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "unreachable" in skipped()["g-dead"]
    alarms = switch.call(switch.switch.core.alarms.active)
    assert [a.kind for a in alarms] == ["Vendor Unreachable"] and "g-dead" in alarms[0].text
    responder = OptionsResponder(port)
    try:
        deadline = time.monotonic() + 15
        while "g-dead" in skipped() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "g-dead" not in skipped()
        assert switch.call(switch.switch.core.alarms.active) == []
    finally:
        responder.close()


@pytest.mark.skipif(shutil.which("svmap") is None, reason="sipvicious is not installed (scripts/setup.sh installs it)")
def test_sipvicious_scan_is_throttled_and_blacklisted_while_calls_complete(routed, tmp_path):
    """svmap and svwar scan the switch from 127.0.0.2 while the customer (127.0.0.1, a
    trusted mapping gateway) places calls: the scanner is refused and blocked, the calls
    all complete."""
    switch, add_gateway, peer = routed
    port = free_udp_port()
    add_gateway("g-any", port)
    peer("vendor", ["-sn", "uas"], port, calls=10)
    wait_bound(port)
    callers = uac(peer, switch, "callers", extra=["-d", "500", "-r", "2", "-l", "4"], calls=10)
    scans = [subprocess.run(cmd, capture_output=True, timeout=60, text=True, cwd=tmp_path) for cmd in (
        ["svmap", "-b", "127.0.0.2", "-p", str(switch.port), "--randomize", "127.0.0.1"],
        ["svwar", "-b", "127.0.0.2", "-e", "100-300", "-m", "INVITE", "-p", str(switch.port), "127.0.0.1"])]
    assert callers.wait(60) == 0, callers.report()
    records = switch.wait_records(10)
    assert [r["reason"] for r in records].count("Normal") == 10
    core = switch.switch.core
    assert "127.0.0.2" in switch.call(lambda: core.guard.blocked(core.timers.now)), scans
    assert core.stats["scanner_blocked"] > 0


def test_invite_timeout_stops_failover_when_configured(routed):
    switch, add_gateway, peer = routed
    switch.call(switch.switch.params.set, "SS_SIP_USER_AGENT_STOP_SWITCH_AFTER_INVITE_TIMEOUT", True)
    silent = SilentVendor()
    good = free_udp_port()
    try:
        add_gateway("g-silent", silent.port, priority=1)
        add_gateway("g-good", good, priority=2)
        caller = uac(peer, switch, "caller", scenario="uac-expect.xml", status=408)
        assert caller.wait(30) == 0, caller.report()
    finally:
        silent.close()
    (record,) = switch.wait_records(1)
    assert (record["reason"], record["sip_code"], record["attempts"]) == ("Response Timeout", 408, 1)


def test_route_analysis_command_reads_the_store(routed, tmp_path):
    """`vosmedia route-analysis` prints the same order and skip reasons as live routing."""
    switch, add_gateway, peer = routed
    add_gateway("g-main", free_udp_port(), prefixes=["49"], priority=1)
    add_gateway("g-backup", free_udp_port(), prefixes=["49"], priority=0, protect_route=True)
    add_gateway("g-locked", free_udp_port(), prefixes=["4930"], locked=True)
    add_gateway("g-other", free_udp_port(), prefixes=["33"])
    out = subprocess.run(["vosmedia", "route-analysis", "--data-dir", str(tmp_path), "--customer", "C1",
                          "--number", "4930123"], capture_output=True, text=True, timeout=60)
    assert "NoAvailableRouter" in out.stdout.splitlines()[0]     # 4930 is the longest prefix; no fallback
    switch.call(switch.switch.services.gateways.update, SYSTEM, "mapping_gateways", "acme",
                {"route_extension": True})
    out = subprocess.run(["vosmedia", "route-analysis", "--data-dir", str(tmp_path), "--customer", "C1",
                          "--number", "4930123"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "routable" in lines[0]
    order = [line.split()[1] for line in lines[2:4]]
    assert order == ["g-main", "g-backup"], out.stdout
    assert any(line.startswith("g-locked") and "locked" in line for line in lines), out.stdout
    assert "g-other" not in out.stdout
    bad = subprocess.run(["vosmedia", "route-analysis", "--data-dir", str(tmp_path), "--mapping-gateway", "nope",
                          "--number", "1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no mapping gateway 'nope'" in bad.stderr


def test_routing_gateway_codecs_shape_the_vendor_offer(tmp_path):
    """A routing gateway limited to PCMA is offered only PCMA (the media engine will
    transcode the caller's PCMU); the next gateway, without codec rules, gets the
    caller's own offer."""
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "params": {"SS_SIP_TIMEOUT_INVITE": 2, "SS_MEDIAPROXYMODE": 1, "SS_GATEWAY_KEEPALIVE_INTERVAL": 0},
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"], "account": "C1"}],
    })
    switch = RunningSwitch(config, tmp_path)
    peers = []
    try:
        services = switch.switch.services
        switch.call(services.accounts.create, SYSTEM, "V1", {"name": "vendor-1", "kind": "vendor"})
        alaw, plain = free_udp_port(), free_udp_port()
        for name, port, priority, codecs in (("g-alaw", alaw, 1, ["PCMA"]), ("g-plain", plain, 2, [])):
            switch.call(services.gateways.create, SYSTEM, "routing_gateways", {
                "name": name, "account_id": "V1", "address": "127.0.0.1", "port": port,
                "priority": priority, "codecs": codecs})
        for name, port in (("alaw", alaw), ("plain", plain)):
            args = ["-sf", str(render("uas-status.xml", tmp_path, status=503))]
            peers.append(Peer(sipp_args(args, port, tmp_path, name), tmp_path, name))
            wait_bound(port)
        caller = Peer(sipp_args(["-sn", "uac", "-s", "4930123", f"127.0.0.1:{switch.port}"], free_udp_port(),
                                tmp_path, "caller"), tmp_path, "caller")
        peers.append(caller)
        caller.wait(30)
        for peer in peers:
            peer.stop()
        offered = {}
        for name in ("alaw", "plain"):
            text = (tmp_path / f"{name}.msg").read_text()
            offered[name] = re.findall(r"^m=audio \d+ RTP/AVP ([\d ]+)", text, re.M)[0].split()
        assert offered["alaw"][0] == "8" and "0" not in offered["alaw"], offered
        assert offered["plain"][0] == "0", offered
    finally:
        for peer in peers:
            peer.stop()
        switch.stop()


def test_conversation_limitation_ends_the_call(routed):
    switch, add_gateway, peer = routed
    switch.call(switch.switch.services.gateways.update, SYSTEM, "mapping_gateways", "acme",
                {"conversation_limitation": 2})
    port = free_udp_port()
    add_gateway("g-any", port)
    peer("vendor", ["-sn", "uas"], port)
    wait_bound(port)
    caller = uac(peer, switch, "caller", scenario="uac-wait-bye.xml")
    assert caller.wait(30) == 0, caller.report()
    (record,) = switch.wait_records(1)
    assert record["reason"] == "Max Duration" and "conversation limitation" in record["detail"]
    assert 1.9 <= record["duration_s"] <= 3.0
