"""The relay core on real loopback sockets: forwarding, latching, statistics, RTCP, timeouts, bad input."""
import os
import random
import socket
import struct
import time

import pytest

from rtputil import Peer, connect, rtcp_rr, rtcp_sr, rtp, seq_of, wait_for
from vosmedia.engine import MediaEngine, PortPoolExhausted


@pytest.fixture
def engine():
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=21000, port_max=21999, rtp_timeout=30)
    eng.start()
    yield eng
    eng.close()


@pytest.fixture
def call(engine):
    """A session with both parties' SDP addresses known."""
    a, b = Peer.pair(), Peer.pair()
    sid = connect(engine, a, b)
    yield engine, sid, a, b
    a.close()
    b.close()


def test_relays_both_ways_in_order(call):
    engine, sid, a, b = call
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    for i in range(200):
        a.rtp.sendto(rtp(1000 + i, i * 160), to_b)
        b.rtp.sendto(rtp(5000 + i, i * 160, ssrc=7), to_a)
    got_b = b.recv_all(b.rtp, 200)
    got_a = a.recv_all(a.rtp, 200)
    assert [seq_of(p) for p in got_b] == list(range(1000, 1200))
    assert [seq_of(p) for p in got_a] == list(range(5000, 5200))
    assert got_b[0] == rtp(1000, 0)  # bytes untouched on pass-through
    q = engine.query(sid)
    leg_a, leg_b = q["legs"]
    assert leg_a["rx"]["packets"] == 200 and leg_a["rx"]["bytes"] == 200 * 172
    assert leg_b["tx"]["packets"] == 200 and leg_b["tx"]["bytes"] == 200 * 172
    assert leg_b["rx"]["packets"] == 200 and leg_a["tx"]["packets"] == 200
    assert leg_a["rx"]["lost"] == 0 and leg_a["rx"]["errors"] == 0
    assert leg_a["local"] == to_b and leg_a["remote"] == (a.host, a.port)


def test_packets_leave_from_the_relay_port_facing_the_receiver(call):
    engine, sid, a, b = call
    a.rtp.sendto(rtp(1, 0), engine.local_endpoint(sid, 0))
    b.rtp.settimeout(2)
    _, source = b.rtp.recvfrom(2048)
    assert source == engine.local_endpoint(sid, 1)  # symmetric RTP: B replies where it hears from


def test_latching_follows_nat_rebinding(engine):
    """The caller's SDP says one port, the NAT uses another, then rebinds to a third."""
    sdp_peer, nat1, nat2, b = Peer.pair(), Peer.pair(), Peer.pair(), Peer.pair()
    sid = engine.create_session()
    engine.set_remote(sid, 0, "127.0.0.1", sdp_peer.port)
    engine.set_remote(sid, 1, "127.0.0.1", b.port)
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    nat1.rtp.sendto(rtp(1, 0), to_b)
    assert len(b.recv_all(b.rtp, 1)) == 1
    b.rtp.sendto(rtp(1, 0, ssrc=9), to_a)
    assert len(nat1.recv_all(nat1.rtp, 1)) == 1, "reply must go to the latched source, not the SDP port"
    # rebinding: same stream (same SSRC) from a new source port
    nat2.rtp.sendto(rtp(2, 160), to_b)
    assert len(b.recv_all(b.rtp, 1)) == 1
    b.rtp.sendto(rtp(2, 160, ssrc=9), to_a)
    assert len(nat2.recv_all(nat2.rtp, 1)) == 1
    assert nat1.drain(nat1.rtp) == [] and sdp_peer.drain(sdp_peer.rtp) == []
    leg = engine.query(sid)["legs"][0]
    assert leg["latched"] and leg["relatches"] == 1 and leg["remote"] == ("127.0.0.1", nat2.port)
    for p in (sdp_peer, nat1, nat2, b):
        p.close()


def test_foreign_stream_cannot_hijack_a_live_latch(call):
    engine, sid, a, b = call
    intruder = Peer.pair()
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    a.rtp.sendto(rtp(1, 0), to_b)
    assert len(b.recv_all(b.rtp, 1)) == 1
    intruder.rtp.sendto(rtp(77, 0, ssrc=0xBAD), to_b)  # another SSRC while A is active
    assert b.drain(b.rtp) == []
    b.rtp.sendto(rtp(1, 0, ssrc=9), to_a)
    assert len(a.recv_all(a.rtp, 1)) == 1 and intruder.drain(intruder.rtp) == []
    assert engine.query(sid)["legs"][0]["drops"]["foreign_source"] == 1
    intruder.close()


def test_strict_source_accepts_only_the_sdp_address(engine):
    a, other, b = Peer.pair(), Peer.pair(), Peer.pair()
    sid = connect(engine, a, b, strict=True)
    to_b = engine.local_endpoint(sid, 0)
    other.rtp.sendto(rtp(1, 0, ssrc=1), to_b)
    a.rtp.sendto(rtp(10, 0), to_b)
    other.rtp.sendto(rtp(2, 160, ssrc=0x11223344), to_b)  # even with A's SSRC
    got = b.recv_all(b.rtp, 3, timeout=0.5)
    assert [seq_of(p) for p in got] == [10]
    assert engine.query(sid)["legs"][0]["drops"]["foreign_source"] == 2
    for p in (a, other, b):
        p.close()


def test_loss_and_duplicates_follow_rfc3550(call):
    engine, sid, a, b = call
    to_b = engine.local_endpoint(sid, 0)
    sent = [s for s in range(100) if s not in (10, 11, 12, 50, 90)]  # 5 lost
    sent.insert(20, 19)  # a duplicate: RFC 3550 counts it as received, so loss shows 4
    for s in sent:
        a.rtp.sendto(rtp(65500 + s, s * 160), to_b)  # wraps past 65535
    assert len(b.recv_all(b.rtp, len(sent))) == len(sent)
    rx = engine.query(sid)["legs"][0]["rx"]
    assert rx["packets"] == len(sent)
    assert rx["lost"] == 4


def test_jitter_matches_rfc3550_estimate(call):
    engine, sid, a, b = call
    to_b = engine.local_endpoint(sid, 0)
    rng = random.Random(5)
    expected, prev_transit, sends = 0.0, None, []
    for i in range(60):
        delay = rng.choice([0.005, 0.02, 0.035])
        time.sleep(delay)
        sends.append(time.monotonic())
        a.rtp.sendto(rtp(i, i * 160), to_b)
    assert len(b.recv_all(b.rtp, 60)) == 60
    for i, t in enumerate(sends):
        transit = t * 8000 - i * 160
        if prev_transit is not None:
            expected += (abs(transit - prev_transit) - expected) / 16
        prev_transit = transit
    jitter_ms = engine.query(sid)["legs"][0]["rx"]["jitter_ms"]
    assert abs(jitter_ms - expected / 8) < 1.5, (jitter_ms, expected / 8)
    assert jitter_ms > 3


def test_rtcp_is_relayed_and_reports_are_parsed(call):
    engine, sid, a, b = call
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    rtcp_to_b, rtcp_to_a = (to_b[0], to_b[1] + 1), (to_a[0], to_a[1] + 1)
    ntp_sec, ntp_frac = 0x12345678, 0x9ABC0000
    sr = rtcp_sr(0x11223344, ntp_sec, ntp_frac)
    a.rtcp.sendto(sr, rtcp_to_b)
    assert b.recv_all(b.rtcp, 1) == [sr]
    lsr = ((ntp_sec & 0xFFFF) << 16) | (ntp_frac >> 16)
    time.sleep(0.05)
    dlsr = int(0.02 * 65536)  # B held the SR 20 ms before reporting
    rr = rtcp_rr(9, [(0x11223344, 64, 7, 80, lsr, dlsr)])
    b.rtcp.sendto(rr, rtcp_to_a)
    assert a.recv_all(a.rtcp, 1) == [rr]
    leg_b = engine.query(sid)["legs"][1]
    assert leg_b["rtcp"]["rx_packets"] == 1 and leg_b["rtcp"]["reports"] == 1
    assert leg_b["rtcp"]["remote_fraction_lost"] == 0.25
    assert leg_b["rtcp"]["remote_cumulative_lost"] == 7
    assert leg_b["rtcp"]["remote_jitter_ms"] == 10.0
    assert 25 <= leg_b["rtcp"]["rtt_ms"] <= 200  # 50 ms apart less 20 ms held
    assert engine.query(sid)["legs"][0]["tx"]["packets"] == 0
    assert engine.query(sid)["legs"][0]["rtcp"]["tx_packets"] == 1


def test_rtcp_mux_on_the_rtp_port(engine):
    a, b = Peer.pair(), Peer.pair()
    sid = engine.create_session()
    engine.set_remote(sid, 0, a.host, a.port, rtcp_mux=True)
    engine.set_remote(sid, 1, b.host, b.port, rtcp_mux=True)
    rr = rtcp_rr(5, [(6, 0, 0, 0, 0, 0)])
    a.rtp.sendto(rr, engine.local_endpoint(sid, 0))
    assert b.recv_all(b.rtp, 1) == [rr]
    assert engine.query(sid)["legs"][0]["rtcp"]["rx_packets"] == 1
    a.close()
    b.close()


def test_timeout_event_per_direction(engine):
    engine.set_rtp_timeout(0.5)
    a, b = Peer.pair(), Peer.pair()
    sid = connect(engine, a, b)
    to_b = engine.local_endpoint(sid, 0)
    events = []
    deadline = time.monotonic() + 1.5
    i = 0
    while time.monotonic() < deadline:  # A talks, B is silent: one-way media
        a.rtp.sendto(rtp(i, i * 160), to_b)
        i += 1
        time.sleep(0.02)
        events += engine.poll_events()
    assert [(e.kind, e.session, e.side) for e in events] == [("timeout", sid, 1)]
    assert events[0].idle_seconds >= 0.5
    time.sleep(0.9)
    events = engine.poll_events()
    assert [(e.kind, e.side) for e in events] == [("timeout", 0)]
    a.close()
    b.close()


def test_event_fd_wakes_an_asyncio_loop(engine):
    import asyncio

    engine.set_rtp_timeout(0.3)
    sid = engine.create_session()

    async def first_event():
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(engine.event_fd, ready.set)
        try:
            await asyncio.wait_for(ready.wait(), 3)
        finally:
            loop.remove_reader(engine.event_fd)
        return engine.poll_events()

    events = asyncio.run(first_event())
    assert {(e.session, e.side) for e in events} <= {(sid, 0), (sid, 1)} and events


def test_bad_datagrams_are_counted_and_dropped(call):
    engine, sid, a, b = call
    to_b = engine.local_endpoint(sid, 0)
    rtcp_to_b = (to_b[0], to_b[1] + 1)
    a.rtp.sendto(b"\x80\x08\x00", to_b)                # too short
    a.rtp.sendto(b"\x40" + rtp(1, 0)[1:], to_b)        # version 1
    a.rtcp.sendto(b"\x80\xc8\x00\x10garbage", rtcp_to_b)  # length beyond the datagram
    a.rtcp.sendto(b"\x01\x02", rtcp_to_b)
    a.rtp.sendto(rtp(1, 0), to_b)
    got = b.recv_all(b.rtp, 2, timeout=0.5)
    assert got == [rtp(1, 0)]
    assert b.drain(b.rtcp) == []
    leg = engine.query(sid)["legs"][0]
    assert leg["drops"]["too_short"] == 1 and leg["drops"]["bad_version"] == 1
    assert leg["drops"]["rtcp_malformed"] == 2
    assert leg["rx"]["errors"] == 2 and leg["rtcp"]["errors"] == 2


def test_fuzzed_datagrams_never_stall_the_relay(engine):
    rng = random.Random(1234)
    sids = [engine.create_session() for _ in range(4)]
    noise = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3000):
        sid = rng.choice(sids)
        host, port = engine.local_endpoint(sid, rng.randrange(2))
        size = rng.choice([0, 1, 7, 11, 12, 13, 40, 172, 1400, 2047, 2048, 4000, 9000])
        data = bytearray(os.urandom(size))
        if size >= 2 and rng.random() < 0.5:
            data[0] = 0x80 | (data[0] & 0x3F)  # often a plausible RTP/RTCP first byte
        noise.sendto(bytes(data), (host, port + rng.randrange(2)))
    noise.close()
    time.sleep(0.3)  # let the relay drain the noise before the parties' SDP arrives
    # every session still relays real media afterwards
    a, b = Peer.pair(), Peer.pair()
    for sid in sids:
        engine.set_remote(sid, 0, a.host, a.port)
        engine.set_remote(sid, 1, b.host, b.port)
        b.drain(b.rtp, 0.05)
        a.rtp.sendto(rtp(3, 480, ssrc=sid), engine.local_endpoint(sid, 0))
        assert b.recv_all(b.rtp, 1) == [rtp(3, 480, ssrc=sid)]
    totals = engine.totals()
    assert totals["sessions"] == 4
    a.close()
    b.close()


def test_ports_are_even_pairs_freed_on_delete_and_exhaustion_is_clear():
    with MediaEngine(port_min=22000, port_max=22007) as eng:  # 4 pairs: 2 sessions
        s1, s2 = eng.create_session(), eng.create_session()
        ports = [eng.local_endpoint(s, side)[1] for s in (s1, s2) for side in (0, 1)]
        assert sorted(ports) == [22000, 22002, 22004, 22006]
        with pytest.raises(PortPoolExhausted, match="exhausted"):
            eng.create_session()
        stats = eng.delete_session(s1)
        assert stats["session"] == s1 and len(stats["legs"]) == 2
        s3 = eng.create_session()
        assert {eng.local_endpoint(s3, 0)[1], eng.local_endpoint(s3, 1)[1]} == set(ports[:2])
        with pytest.raises(KeyError):
            eng.query(s1)
        assert eng.totals()["sessions"] == 2


def test_ports_used_by_other_programs_are_skipped():
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 22101))  # RTCP half of the first pair
    with MediaEngine(port_min=22100, port_max=22105) as eng:
        sid = eng.create_session()
        assert {eng.local_endpoint(sid, 0)[1], eng.local_endpoint(sid, 1)[1]} == {22102, 22104}
    squatter.close()


def test_ipv6_relay():
    a, b = Peer.pair("::1"), Peer.pair("::1")
    with MediaEngine(interfaces=["::1"], port_min=22200, port_max=22299) as eng:
        sid = eng.create_session()
        eng.set_remote(sid, 0, "::1", a.port)
        eng.set_remote(sid, 1, "::1", b.port)
        a.rtp.sendto(rtp(1, 0), eng.local_endpoint(sid, 0))
        assert b.recv_all(b.rtp, 1) == [rtp(1, 0)]
        with pytest.raises(ValueError, match="IPv4"):
            eng.set_remote(sid, 0, "127.0.0.1", 4000)
    a.close()
    b.close()


def test_several_workers_share_the_sessions():
    with MediaEngine(port_min=22300, port_max=22399, num_threads=2) as eng:
        a, b = Peer.pair(), Peer.pair()
        sids = [eng.create_session() for _ in range(6)]
        for sid in sids:
            eng.set_remote(sid, 0, a.host, a.port)
            eng.set_remote(sid, 1, b.host, b.port)
            a.rtp.sendto(rtp(sid, 0, ssrc=sid), eng.local_endpoint(sid, 0))
        got = b.recv_all(b.rtp, 6)
        assert sorted(seq_of(p) for p in got) == sorted(sids)
        assert eng.totals()["workers"] == 2 and eng.totals()["rtp_relayed"] == 6
        a.close()
        b.close()


def test_dscp_on_engine_sockets_and_hot_change():
    with MediaEngine(port_min=22400, port_max=22499, tos=46) as eng:
        s = eng._socket(socket.AF_INET)
        assert s.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0xB8
        s.close()
        eng.set_tos(24)
        s6 = eng._socket(socket.AF_INET6)
        assert s6.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS) == 0x60
        s6.close()
        with pytest.raises(ValueError, match="0..63"):
            eng.set_tos(64)


def test_dscp_on_the_wire_loopback():
    """Packets the relay sends carry TOS 0xB8, seen by a packet capture on lo."""
    try:
        cap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    except PermissionError:
        pytest.skip("packet capture needs CAP_NET_RAW")
    cap.bind(("lo", 0))
    cap.settimeout(2)
    with MediaEngine(port_min=22500, port_max=22599, tos=46) as eng:
        a, b = Peer.pair(), Peer.pair()
        sid = connect(eng, a, b)
        relay_port = eng.local_endpoint(sid, 1)[1]
        a.rtp.sendto(rtp(1, 0), eng.local_endpoint(sid, 0))
        tos = None
        deadline = time.monotonic() + 2
        while tos is None and time.monotonic() < deadline:
            pkt = cap.recv(65535)
            ihl = (pkt[0] & 0x0F) * 4
            if pkt[9] == 17 and struct.unpack_from("!HH", pkt, ihl) == (relay_port, b.port):
                tos = pkt[1]
        assert tos == 0xB8
        a.close()
        b.close()
    cap.close()


def test_readdressed_leg_drops_its_latch(call):
    """A re-INVITE moving the callee to a new address redirects media at once."""
    engine, sid, a, b = call
    moved = Peer.pair()
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    b.rtp.sendto(rtp(1, 0, ssrc=9), to_a)
    assert len(a.recv_all(a.rtp, 1)) == 1
    engine.set_remote(sid, 1, moved.host, moved.port)
    a.rtp.sendto(rtp(1, 0), to_b)
    assert len(moved.recv_all(moved.rtp, 1)) == 1 and b.drain(b.rtp) == []
    moved.close()
