"""Calls through the switch between real sipp peers (Debian sip-tester).

Every test starts the real switch (B2BUA, in-process media engine, SQLite call records) on
free ports, runs sipp as the caller and as one or more vendor gateways, and checks both
what sipp saw (its exit status: every scenario step matched) and the call record.
"""
from __future__ import annotations

import socket
import time
from decimal import Decimal
from pathlib import Path

import pytest

from control import config as configuration
from tests.siputil import SIPP, Peer, RunningSwitch, free_udp_port, render, sipp_args

pytestmark = pytest.mark.skipif(SIPP is None, reason="needs sipp (Debian package sip-tester)")


def wait_bound(port: int, timeout: float = 5) -> None:
    """Until something (sipp) holds UDP ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing bound UDP port {port}")


def make_switch(tmp_path, vendors, params=None, **sip):
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"], "auth_algorithms": ["MD5"], **sip},
        "params": {"SS_SIP_TIMEOUT_INVITE": 2, "SS_MEDIAPROXYMODE": 1, **(params or {})},
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"]}],
        "phone": [{"user": "1001", "password": "1001"}],
        "vendor": [{"name": name, "host": "127.0.0.1", "port": port} for name, port in vendors],
    })
    return RunningSwitch(config, tmp_path)


@pytest.fixture
def peers(tmp_path):
    started = []

    def start(role_args, port, name, scenario=None, calls=1, timeout=20, **values):
        args = list(role_args)
        if scenario is not None:
            args = ["-sf", str(render(scenario, tmp_path, **values))] + args
        peer = Peer(sipp_args(args, port, tmp_path, name, calls=calls, timeout=timeout), tmp_path, name)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def switch_factory(tmp_path):
    switches = []

    def make(vendors, params=None, **sip):
        sw = make_switch(tmp_path, vendors, params, **sip)
        switches.append(sw)
        return sw

    yield make
    for sw in switches:
        sw.stop()


def run_call(peers, switch, uac_args, uas_list, callee="5551234", calls=1):
    """Start the vendor peers, run the caller to completion, return (uac, uases)."""
    uases = []
    for name, port, args in uas_list:
        uases.append(peers(args["role"], port, name, args.get("scenario"), calls=calls, **args.get("values", {})))
        wait_bound(port)
    uac = peers(["-s", callee, *uac_args["role"], f"127.0.0.1:{switch.port}"], free_udp_port(), "uac",
                uac_args.get("scenario"), calls=calls, **uac_args.get("values", {}))
    code = uac.wait(40)
    assert code == 0, f"caller scenario failed ({code})\n{uac.report()}\n" + "\n".join(u.report() for u in uases)
    return uac, uases


def test_basic_call_completes_and_is_recorded(switch_factory, peers):
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    uac, (uas,) = run_call(peers, switch, {"role": ["-sn", "uac", "-d", "300"]},
                           [("uas", vendor_port, {"role": ["-sn", "uas"]})])
    assert uas.wait(10) == 0, uas.report()
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200
    assert record["vendor"] == "carrier-a" and record["customer"] == "acme"
    assert record["end_direction"] == "caller" and record["reason"] == "Normal"
    assert record["answer"] is not None and record["duration_s"] >= 0.25
    assert record["pdd_ms"] is not None and record["pdd_ms"] < 1000
    assert record["caller_codec"] == "PCMU" and record["vendor_codec"] == "PCMU"
    assert record["callee"] == "5551234" and record["attempts"] == 1


def test_callee_hangs_up(switch_factory, peers):
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    run_call(peers, switch, {"role": [], "scenario": "uac-wait-bye.xml"},
             [("uas", vendor_port, {"role": [], "scenario": "uas-bye.xml"})])
    (record,) = switch.wait_records(1)
    assert record["end_direction"] == "callee" and record["reason"] == "Normal"
    assert record["sip_code"] == 200


def test_cancel_during_ringing(switch_factory, peers):
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    _, (uas,) = run_call(peers, switch, {"role": [], "scenario": "uac-cancel.xml"},
                         [("uas", vendor_port, {"role": [], "scenario": "uas-ring.xml"})])
    assert uas.wait(10) == 0, uas.report()          # the vendor saw our CANCEL and ACKed its 487
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 487 and record["end_direction"] == "caller"
    assert record["answer"] is None and record["progress"] is not None


def test_busy_stops_failover(switch_factory, peers):
    busy_port, spare_port = free_udp_port(), free_udp_port()
    switch = switch_factory([("busy", busy_port), ("spare", spare_port)])
    run_call(peers, switch, {"role": [], "scenario": "uac-expect.xml", "values": {"status": 486}},
             [("busy", busy_port, {"role": [], "scenario": "uas-status.xml", "values": {"status": 486}})])
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 486 and record["attempts"] == 1 and record["vendor"] == "busy"


def test_failover_on_503_then_answer(switch_factory, peers):
    bad_port, good_port = free_udp_port(), free_udp_port()
    switch = switch_factory([("broken", bad_port), ("good", good_port)])
    run_call(peers, switch, {"role": ["-sn", "uac", "-d", "100"]},
             [("broken", bad_port, {"role": [], "scenario": "uas-status.xml", "values": {"status": 503}}),
              ("good", good_port, {"role": ["-sn", "uas"]})])
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200 and record["attempts"] == 2 and record["vendor"] == "good"
    from control.store.schema import cdr_attempts
    from sqlalchemy import select
    stored = switch.call(lambda: [dict(r._mapping) for r in switch.switch.store.engine.connect().execute(
        select(cdr_attempts.c.seq, cdr_attempts.c.vendor, cdr_attempts.c.sip_code).order_by(cdr_attempts.c.seq))])
    assert stored == [{"seq": 1, "vendor": "broken", "sip_code": 503}, {"seq": 2, "vendor": "good", "sip_code": 200}]


def test_silent_vendor_times_out_and_fails_over(switch_factory, peers):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)     # swallows INVITEs, never answers
    silent.bind(("127.0.0.1", 0))
    try:
        good_port = free_udp_port()
        switch = switch_factory([("silent", silent.getsockname()[1]), ("good", good_port)])
        started = time.monotonic()
        run_call(peers, switch, {"role": ["-sn", "uac", "-d", "100"]},
                 [("good", good_port, {"role": ["-sn", "uas"]})])
        elapsed = time.monotonic() - started
        received = 0
        silent.setblocking(False)
        while True:
            try:
                data = silent.recv(65536)
            except BlockingIOError:
                break
            received += data.startswith(b"INVITE ")
    finally:
        silent.close()
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200 and record["attempts"] == 2 and record["vendor"] == "good"
    assert received >= 3              # the INVITE was retransmitted (0.5 s, 1 s) before Timer B (2 s)
    assert elapsed >= 2.0
    assert record["pdd_ms"] >= 2000


def test_hold_and_resume(switch_factory, peers):
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    _, (uas,) = run_call(peers, switch, {"role": [], "scenario": "uac-hold.xml"},
                         [("uas", vendor_port, {"role": [], "scenario": "uas-reinvite.xml"})])
    assert uas.wait(10) == 0, uas.report()
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200 and record["end_direction"] == "caller"


def test_reliable_provisionals_both_ways(switch_factory, peers):
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    _, (uas,) = run_call(peers, switch, {"role": [], "scenario": "uac-100rel.xml"},
                         [("uas", vendor_port, {"role": [], "scenario": "uas-100rel.xml"})])
    assert uas.wait(10) == 0, uas.report()
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200


def test_register_then_call_reaches_the_phone(switch_factory, peers, tmp_path):
    switch = switch_factory([])
    phone_port = free_udp_port()
    reg = peers(["-s", "1001", f"127.0.0.1:{switch.port}"], phone_port, "register", "register.xml")
    assert reg.wait(20) == 0, reg.report()
    online = switch.call(switch.switch.core.registrar.online)
    assert [row["user"] for row in online] == ["1001"]
    assert online[0]["source"] == f"127.0.0.1:{phone_port}" and 0 < online[0]["expires_in"] <= 300
    run_call(peers, switch, {"role": ["-sn", "uac", "-d", "100"]},
             [("phone", phone_port, {"role": ["-sn", "uas"]})], callee="1001")
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200 and record["vendor"] == "phone:1001"


def test_number_without_route_gets_503_no_available_router(switch_factory, peers):
    switch = switch_factory([])
    run_call(peers, switch, {"role": [], "scenario": "uac-expect.xml", "values": {"status": 503}}, [],
             callee="1002")
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 503 and record["attempts"] == 0 and record["reason"] == "NoAvailableRouter"


def test_media_relayed_end_to_end(switch_factory, peers, tmp_path):
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    kam = Path(__file__).parent / "kamailio"
    uac_xml = tmp_path / "uac-pcap.xml"
    uac_xml.write_text((kam / "uac-pcap.xml").read_text().replace("%%PCAP%%", "/usr/share/sip-tester/g711a.pcap"))
    uas_xml = tmp_path / "uas-echo.xml"
    uas_xml.write_text((kam / "uas-echo.xml").read_text())
    uas = peers(["-sf", str(uas_xml), "-rtp_echo"], vendor_port, "uas")
    wait_bound(vendor_port)
    uac = peers(["-sf", str(uac_xml), "-s", "5551234", "-d", "3000", f"127.0.0.1:{switch.port}"],
                free_udp_port(), "uac")
    assert uac.wait(40) == 0, uac.report() + uas.report()
    (record,) = switch.wait_records(1)
    media = record["media"]
    # the pcap holds ~5 s of audio; within the 3 s call, both legs carried packets: the
    # caller's toward the vendor and the vendor's echo back through the relay
    assert media["caller"]["packets"] > 50, media
    assert media["vendor"]["packets"] > 50, media


def _echo_call(peers, switch, tmp_path, vendor_port, uac_scenario: Path, hold_ms: int):
    uas = peers(["-sf", str(Path(__file__).parent / "kamailio" / "uas-echo.xml"), "-rtp_echo"], vendor_port, "uas")
    wait_bound(vendor_port)
    uac = peers(["-sf", str(uac_scenario), "-s", "5551234", "-d", str(hold_ms), f"127.0.0.1:{switch.port}"],
                free_udp_port(), "uac")
    assert uac.wait(40) == 0, uac.report() + uas.report()
    (record,) = switch.wait_records(1)
    return record


def test_rfc2833_digits_cross_the_call(switch_factory, peers, tmp_path):
    """The sip-tester capture of digit 1 (RFC 2833, PT 101) played by the caller reaches the
    vendor: the engine reports the caller's digit and then the vendor's echo of it."""
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    scenario = render("../kamailio/uac-pcap.xml", tmp_path, pcap="/usr/share/sip-tester/dtmf_2833_1.pcap")
    record = _echo_call(peers, switch, tmp_path, vendor_port, scenario, 1500)
    assert record["dtmf"] == "11", record


def test_sip_info_digit_becomes_rfc2833_toward_the_vendor(switch_factory, peers, tmp_path):
    """Digit 5 sent by SIP INFO is answered by the switch and sent to the vendor (which
    negotiated telephone-event) as RFC 2833 events; the vendor's echo of those events comes
    back through the engine as a second 5."""
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)])
    scenario = render("uac-info.xml", tmp_path, pcap="/usr/share/sip-tester/g711a.pcap")
    record = _echo_call(peers, switch, tmp_path, vendor_port, scenario, 1500)
    assert record["dtmf"] == "55", record


def test_session_refresh_reaches_the_vendor(switch_factory, peers):
    """A 47 s call with SS_SIP_SESSION_TTL = 90: the switch refreshes the vendor leg with a
    re-INVITE carrying Session-Expires at 45 s, the vendor answers it, and the call ends
    normally (the refresh left the call up)."""
    vendor_port = free_udp_port()
    # no media flows in this call: keep the RTP timeout out of the way
    switch = switch_factory([("carrier-a", vendor_port)], params={"SS_SIP_SESSION_TTL": 90, "SS_RTP_TIMEOUT": 120})
    uas = peers([], vendor_port, "uas", "uas-refresh.xml", timeout=90)
    wait_bound(vendor_port)
    uac = peers(["-sn", "uac", "-s", "5551234", "-d", "47000", f"127.0.0.1:{switch.port}"], free_udp_port(),
                "uac", timeout=90)
    assert uac.wait(90) == 0, uac.report() + uas.report()
    assert uas.wait(10) == 0, uas.report()
    (record,) = switch.wait_records(1)
    assert record["sip_code"] == 200 and record["reason"] == "Normal"
    assert record["duration_s"] >= 47


def test_rtp_timeout_ends_a_silent_call_both_ways(switch_factory, peers):
    """No media for SS_RTP_TIMEOUT seconds on a relayed call: the engine reports it and the
    switch hangs up both parties."""
    vendor_port = free_udp_port()
    switch = switch_factory([("carrier-a", vendor_port)], params={"SS_RTP_TIMEOUT": 5})
    started = time.monotonic()
    _, (uas,) = run_call(peers, switch, {"role": [], "scenario": "uac-wait-bye.xml"},
                         [("uas", vendor_port, {"role": [], "scenario": "../kamailio/uas-echo.xml"})])
    assert uas.wait(10) == 0, uas.report()
    assert 5 <= time.monotonic() - started < 15
    (record,) = switch.wait_records(1)
    assert record["reason"] == "RTP Timeout" and record["end_direction"] == "switch"


def test_telephone_event_offered_to_a_vendor_the_caller_did_not_offer_it_to(tmp_path, peers):
    """Vendor with use_peer_rfc2833 = false: its INVITE offers telephone-event (payload 101)
    although the caller offered only PCMA. The caller's SIP INFO digit goes to the vendor
    as RFC 2833 (its echo is seen), and digits toward the caller become tones (dtmf_send =
    inband), since it has no telephone-event."""
    vendor_port = free_udp_port()
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "params": {"SS_MEDIAPROXYMODE": 1},
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"], "dtmf_send": "inband"}],
        "vendor": [{"name": "v", "host": "127.0.0.1", "port": vendor_port, "use_peer_rfc2833": False,
                    "dtmf_payload": 101}],
    })
    switch = RunningSwitch(config, tmp_path)
    try:
        uas_xml = render("../kamailio/uas-echo.xml", tmp_path)
        uas_xml.write_text(uas_xml.read_text().replace(
            '<ereg regexp="c=IN IP4',
            '<ereg regexp="a=rtpmap:101 telephone-event/8000" search_in="body" check_it="true" assign_to="te"/>'
            '<log message="[$te]"/><ereg regexp="c=IN IP4', 1))
        uac_xml = render("uac-info.xml", tmp_path, pcap="/usr/share/sip-tester/g711a.pcap")
        text = uac_xml.read_text().replace("RTP/AVP 8 101", "RTP/AVP 8")
        text = "\n".join(line for line in text.split("\n") if ":101 " not in line)
        uac_xml.write_text(text)
        record = _echo_call(peers, switch, tmp_path, vendor_port, uac_xml, 1500)
        assert record["dtmf"] == "55", record
    finally:
        switch.stop()


def test_rated_customer_call_is_charged_end_to_end(tmp_path, peers):
    """vosmedia run with a rate table: a sipp call is admitted, charged by its duration and
    the fee is in the stored call record; the account's balance moved by the fee."""
    rates = tmp_path / "retail.csv"
    rates.write_text("prefix,price,first_unit,next_unit,connection_fee\n555,1.20,1,1,0\n")
    vendor_port = free_udp_port()
    config = configuration.from_dict({
        "sip": {"listen": ["127.0.0.1:0"]},
        "params": {"SS_MEDIAPROXYMODE": 1},
        "rate_table": [{"name": "retail", "file": str(rates)}],
        "customer": [{"name": "acme", "addresses": ["127.0.0.1"], "rate_table": "retail",
                      "account": "C42", "balance": "5.00"}],
        "vendor": [{"name": "v", "host": "127.0.0.1", "port": vendor_port}],
    })
    switch = RunningSwitch(config, tmp_path)
    try:
        uas = peers(["-sn", "uas"], vendor_port, "uas")
        wait_bound(vendor_port)
        uac = peers(["-sn", "uac", "-s", "5551234", "-d", "2000", f"127.0.0.1:{switch.port}"],
                    free_udp_port(), "uac")
        assert uac.wait(30) == 0, uac.report() + uas.report()
        (record,) = switch.wait_records(1)
        assert record["rate_prefix"] == "555" and record["billed_time"] >= 2
        # 1.20/min billed by the second: 0.02 per second, rounded up to the cent
        assert Decimal("0.04") <= Decimal(str(record["fee"])) <= Decimal("0.06"), record
        balance = switch.call(lambda: switch.switch.charging.reservations.funds("C42").balance)
        assert balance == Decimal("5.00") - Decimal(str(record["fee"]))
    finally:
        switch.stop()
