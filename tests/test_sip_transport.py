"""The switch's SIP transports on real sockets: TCP callers, several listening ports,
signalling DSCP, and calls that keep completing while one address floods the switch."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from control import config as configuration
from control.sip.message import parse
from tests.siputil import SIPP, Peer, RunningSwitch, free_udp_port, sipp_args
from tests.test_sip_calls import wait_bound

pytestmark = pytest.mark.skipif(SIPP is None, reason="needs sipp (Debian package sip-tester)")


@pytest.fixture
def running(tmp_path):
    switches, procs = [], []

    def start(vendor_port, listen=("127.0.0.1:0",), params=None):
        config = configuration.from_dict({
            "sip": {"listen": list(listen)},
            "params": {"SS_MEDIAPROXYMODE": 1, **(params or {})},
            "customer": [{"name": "acme", "addresses": ["127.0.0.1"]}],
            "vendor": [{"name": "v", "host": "127.0.0.1", "port": vendor_port}],
        })
        sw = RunningSwitch(config, tmp_path)
        switches.append(sw)
        return sw

    def sipp(args, port, name, calls=1):
        peer = Peer(sipp_args(args, port, tmp_path, name, calls=calls), tmp_path, name)
        procs.append(peer)
        return peer

    yield start, sipp
    for peer in procs:
        peer.stop()
    for sw in switches:
        sw.stop()


def test_call_from_a_tcp_caller(running):
    start, sipp = running
    vendor = free_udp_port()
    sw = start(vendor)
    uas = sipp(["-sn", "uas"], vendor, "uas")
    wait_bound(vendor)
    uac = sipp(["-sn", "uac", "-t", "t1", "-s", "200", "-d", "200", f"127.0.0.1:{sw.port}"], free_udp_port(), "uac")
    assert uac.wait(30) == 0, uac.report() + uas.report()
    (record,) = sw.wait_records(1)
    assert record["sip_code"] == 200 and record["end_direction"] == "caller"


def test_several_listening_ports_answer_from_their_own_port(running):
    start, _ = running
    vendor = free_udp_port()
    second = free_udp_port()
    sw = start(vendor, listen=("127.0.0.1:0", f"127.0.0.1:{second}"))
    options = (b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKp%d\r\n"
               b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: p%d\r\n"
               b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for i, port in enumerate((sw.port, second)):
            s.sendto(options % (i, i), ("127.0.0.1", port))
            data, addr = s.recvfrom(65536)
            assert addr == ("127.0.0.1", port)
            response = parse(data)
            assert response.status == 200 and "INVITE" in response.headers.get("Allow")


def test_signalling_sockets_carry_the_signal_dscp(running):
    start, _ = running
    sw = start(free_udp_port(), params={"SS_QOS_SIGNAL": 24})
    udp = next(iter(sw.switch.transport.udp.values())).transport.get_extra_info("socket")
    assert udp.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 24 << 2
    for server in sw.switch.transport.servers:
        for listener in server.sockets:
            assert listener.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 24 << 2


def test_calls_complete_during_a_flood_from_another_address(running):
    start, sipp = running
    vendor = free_udp_port()
    sw = start(vendor)
    uas = sipp(["-sn", "uas"], vendor, "uas", calls=20)
    wait_bound(vendor)
    stop = threading.Event()
    sent = [0]

    def flood():
        options = (b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bKf\r\n"
                   b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: f\r\nCSeq: 1 OPTIONS\r\n"
                   b"Content-Length: 0\r\n\r\n")
        junk = bytes(range(256)) * 4
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            while not stop.is_set():
                for payload in (options, junk):
                    try:
                        s.sendto(payload, ("127.0.0.1", sw.port))
                        sent[0] += 1
                    except OSError:
                        time.sleep(0.001)       # socket buffer full: the switch is behind

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        uac = sipp(["-sn", "uac", "-s", "300", "-r", "10", "-d", "100", f"127.0.0.1:{sw.port}"],
                   free_udp_port(), "uac", calls=20)
        code = uac.wait(60)
    finally:
        stop.set()
        flooder.join(5)
    assert code == 0, uac.report()
    records = sw.wait_records(20)
    assert len(records) == 20 and all(r["sip_code"] == 200 for r in records)
    blocked = sw.call(lambda: sw.switch.core.guard.blocked(sw.switch.core.timers.now))
    assert sent[0] > 10_000
    assert "127.0.0.2" in blocked                          # then shed in the kernel (BPF)
    assert sw.switch.transport.stats["blocklist_updates"] >= 1
