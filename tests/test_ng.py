"""NG control protocol against the real engine: real UDP on 127.0.0.1, real relayed RTP."""
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from rtputil import Peer, rtp, seq_of, wait_for
from vosmedia import bencode, sdp
from vosmedia.engine import EngineEvent, MediaEngine
from vosmedia.ng import ENDED_BY_TIMEOUT, NgServer

ROOT = Path(__file__).resolve().parent.parent
NG_SETUP = Path(os.environ.get("VOSMEDIA_RELAYBENCH", "/work/shared/tools/relaybench")) / "ng_setup.py"


def make_sdp(port, host="127.0.0.1", version=1, extra="", media_extra="", codec=(8, "PCMA/8000")):
    family = "IP6" if ":" in host else "IP4"
    return (f"v=0\r\no=- 4711 {version} IN {family} {host}\r\ns=-\r\nc=IN {family} {host}\r\nt=0 0\r\n{extra}"
            f"m=audio {port} RTP/AVP {codec[0]} 101\r\na=rtpmap:{codec[0]} {codec[1]}\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n{media_extra}a=sendrecv\r\n")


class NgClient:
    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(3)

    def raw(self, datagram: bytes, timeout=3.0) -> bytes | None:
        self.sock.settimeout(timeout)
        self.sock.sendto(datagram, self.address)
        try:
            return self.sock.recvfrom(65536)[0]
        except socket.timeout:
            return None

    def call(self, message: dict, cookie: bytes | None = None) -> dict:
        cookie = cookie or b"%08x" % random.getrandbits(32)
        data = self.raw(cookie + b" " + bencode.encode(message))
        assert data is not None, f"no reply to {message.get('command')}"
        head, _, body = data.partition(b" ")
        assert head == cookie
        return decode_reply(body)

    def close(self):
        self.sock.close()


def decode_reply(body: bytes) -> dict:
    reply = bencode.decode(body, str_keys=True)
    assert isinstance(reply, dict) and "result" in reply
    return reply


class Node:
    """An NgServer on an asyncio loop in a background thread, with its engine and a client."""

    def __init__(self, engine, **kwargs):
        self.engine = engine
        self.server = NgServer(engine, **kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.address = asyncio.run_coroutine_threadsafe(self.server.start("127.0.0.1", 0), self.loop).result(5)
        self.client = NgClient(self.address)

    def close(self):
        self.client.close()
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def engine():
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61000, port_max=61199, rtp_timeout=30)
    eng.start()
    yield eng
    eng.close()


@pytest.fixture
def node(engine):
    n = Node(engine)
    yield n
    n.close()


@pytest.fixture
def peers():
    a, b = Peer.pair(), Peer.pair()
    yield a, b
    a.close()
    b.close()


def recv_from(sock, timeout=2.0):
    sock.settimeout(timeout)
    try:
        return sock.recvfrom(4096)
    except socket.timeout:
        return None, None


def media_port(sdp_bytes) -> int:
    return sdp.parse(sdp_bytes).endpoint(0).rtp_port


def setup_call(client, a, b, call_id="call-1", offer_extra=None, answer_extra=None):
    offer = {"command": "offer", "call-id": call_id, "from-tag": "tag-a", "sdp": make_sdp(a.port),
             "flags": ["trust-address", "symmetric"], "replace": ["origin", "session-connection"],
             "received-from": ["IP4", "127.0.0.1"], "via-branch": "z9hG4bK1"}
    offer.update(offer_extra or {})
    r1 = client.call(offer)
    assert r1["result"] == b"ok", r1
    answer = {"command": "answer", "call-id": call_id, "from-tag": "tag-a", "to-tag": "tag-b",
              "sdp": make_sdp(b.port), "flags": ["trust-address"]}
    answer.update(answer_extra or {})
    r2 = client.call(answer)
    assert r2["result"] == b"ok", r2
    return r1, r2


# ------------------------------------------------------------------ offer / answer / relay / delete

def test_ping(node):
    assert node.client.call({"command": "ping"}) == {"result": b"pong"}


def test_offer_answer_relay_query_delete_round_trip(node, peers):
    a, b = peers
    r1, r2 = setup_call(node.client, a, b)
    offer_out, answer_out = sdp.parse(r1["sdp"]), sdp.parse(r2["sdp"])
    pb, pa = offer_out.endpoint(0).rtp_port, answer_out.endpoint(0).rtp_port
    # both rewritten SDPs point at the relay, on distinct even ports of the pool, RTCP = RTP + 1
    for desc, port in ((offer_out, pb), (answer_out, pa)):
        ep = desc.endpoint(0)
        assert ep.address == "127.0.0.1" and 61000 <= port < 61200 and port % 2 == 0
        assert ep.rtcp_port == port + 1
        assert desc.origin.address == "127.0.0.1" and desc.origin.version == 1
        assert [str(x) for x in desc.media[0].attributes] == [
            "rtpmap:8 PCMA/8000", "rtpmap:101 telephone-event/8000", "fmtp:101 0-16", "ptime:20", "sendrecv"]
        assert desc.media[0].formats == ["8", "101"]
    assert pa != pb
    (sid,) = node.engine.sessions()
    assert node.engine.local_endpoint(sid, 0) == ("127.0.0.1", pa)
    assert node.engine.local_endpoint(sid, 1) == ("127.0.0.1", pb)

    # A -> relay(pa) -> B arrives from pb; B -> relay(pb) -> A arrives from pa
    for i in range(10):
        a.rtp.sendto(rtp(100 + i, 160 * i), ("127.0.0.1", pa))
    got = [recv_from(b.rtp) for _ in range(10)]
    assert [seq_of(p) for p, _ in got] == list(range(100, 110))
    assert all(src == ("127.0.0.1", pb) for _, src in got)
    for i in range(7):
        b.rtp.sendto(rtp(900 + i, 160 * i, ssrc=5), ("127.0.0.1", pb))
    got = [recv_from(a.rtp) for _ in range(7)]
    assert [seq_of(p) for p, _ in got] == list(range(900, 907))
    assert all(src == ("127.0.0.1", pa) for _, src in got)
    # RTCP goes through the odd ports
    a.rtcp.sendto(bytes([0x80, 201, 0, 1]) + b"\x00\x00\x00\x09", ("127.0.0.1", pa + 1))
    packet, src = recv_from(b.rtcp)
    assert packet is not None and src == ("127.0.0.1", pb + 1)

    q = node.client.call({"command": "query", "call-id": "call-1"})
    assert q["result"] == b"ok"
    assert q["totals"]["RTP"] == {"packets": 17, "bytes": 17 * 172, "errors": 0}
    assert q["totals"]["RTCP"]["packets"] == 1
    assert set(q["tags"]) == {"tag-a", "tag-b"}
    tag_a, tag_b = q["tags"]["tag-a"], q["tags"]["tag-b"]
    assert tag_a["tag"] == b"tag-a" and tag_a["in dialogue with"] == b"tag-b"
    (media,) = tag_a["medias"]
    assert media["index"] == 1 and media["type"] == b"audio" and media["protocol"] == b"RTP/AVP"
    rtp_stream, rtcp_stream = media["streams"]
    assert rtp_stream["local port"] == pa and rtcp_stream["local port"] == pa + 1
    assert rtp_stream["endpoint"] == {"family": b"IPv4", "address": b"127.0.0.1", "port": a.port}
    assert rtp_stream["advertised endpoint"]["port"] == a.port
    assert rtp_stream["stats"] == {"packets": 10, "bytes": 1720, "errors": 0}
    assert b"confirmed" in rtp_stream["flags"]
    assert rtp_stream["sent"]["packets"] == 7
    assert isinstance(rtp_stream["last packet"], int)
    assert tag_b["medias"][0]["streams"][0]["stats"]["packets"] == 7
    assert tag_b["medias"][0]["streams"][0]["local port"] == pb

    assert node.client.call({"command": "list"}) == {"result": b"ok", "calls": [b"call-1"]}
    free_before = node.engine.totals()["ports_free"]
    d = node.client.call({"command": "delete", "call-id": "call-1", "from-tag": "tag-a", "to-tag": "tag-b"})
    assert d["result"] == b"ok"
    assert d["totals"]["RTP"]["packets"] == 17 and set(d["tags"]) == {"tag-a", "tag-b"}
    assert node.engine.sessions() == []
    assert node.engine.totals()["ports_free"] == free_before + 2
    assert node.client.call({"command": "list"})["calls"] == []
    # the relay ports are closed: nothing reaches B any more
    a.rtp.sendto(rtp(500, 0), ("127.0.0.1", pa))
    assert recv_from(b.rtp, 0.3)[0] is None
    q = node.client.call({"command": "query", "call-id": "call-1"})
    assert q["result"] == b"error" and b"Unknown call-id" in q["error-reason"]


def test_reinvite_keeps_ports_and_moves_the_remote(node, peers):
    a, b = peers
    r1, r2 = setup_call(node.client, a, b)
    pb, pa = media_port(r1["sdp"]), media_port(r2["sdp"])
    a.rtp.sendto(rtp(1, 0), ("127.0.0.1", pa))          # latch A
    assert recv_from(b.rtp)[0] is not None
    moved = Peer.pair()
    try:
        # caller re-INVITE: A moved to a new port, SDP version 2
        r = node.client.call({"command": "offer", "call-id": "call-1", "from-tag": "tag-a", "to-tag": "tag-b",
                              "sdp": make_sdp(moved.port, version=2)})
        assert r["result"] == b"ok" and media_port(r["sdp"]) == pb
        assert sdp.parse(r["sdp"]).origin.version == 2
        r = node.client.call({"command": "answer", "call-id": "call-1", "from-tag": "tag-a", "to-tag": "tag-b",
                              "sdp": make_sdp(b.port, version=2)})
        assert r["result"] == b"ok" and media_port(r["sdp"]) == pa
        assert len(node.engine.sessions()) == 1
        b.rtp.sendto(rtp(2, 160, ssrc=9), ("127.0.0.1", pb))
        packet, src = recv_from(moved.rtp)
        assert packet is not None and seq_of(packet) == 2 and src == ("127.0.0.1", pa)
        # callee re-INVITE (From = callee's tag): its SDP is advertised toward the caller on pa
        r = node.client.call({"command": "offer", "call-id": "call-1", "from-tag": "tag-b", "to-tag": "tag-a",
                              "sdp": make_sdp(b.port, version=3)})
        assert r["result"] == b"ok" and media_port(r["sdp"]) == pa
        r = node.client.call({"command": "answer", "call-id": "call-1", "from-tag": "tag-b", "to-tag": "tag-a",
                              "sdp": make_sdp(moved.port, version=3)})
        assert r["result"] == b"ok" and media_port(r["sdp"]) == pb
        assert len(node.engine.sessions()) == 1
        q = node.engine.query(node.engine.sessions()[0])
        assert q["legs"][0]["remote"] == ("127.0.0.1", moved.port)
        assert q["legs"][1]["remote"] == ("127.0.0.1", b.port)
    finally:
        moved.close()


def test_ipv6_call_relays_over_ipv6_and_ipv4_calls_stay_ipv4():
    eng = MediaEngine(interfaces=["127.0.0.1", "::1"], port_min=61200, port_max=61299)
    eng.start()
    n = Node(eng)
    a, b = Peer.pair("::1"), Peer.pair("::1")
    try:
        r1 = n.client.call({"command": "offer", "call-id": "v6", "from-tag": "a", "sdp": make_sdp(a.port, "::1")})
        r2 = n.client.call({"command": "answer", "call-id": "v6", "from-tag": "a", "to-tag": "b",
                            "sdp": make_sdp(b.port, "::1")})
        out1, out2 = sdp.parse(r1["sdp"]), sdp.parse(r2["sdp"])
        assert out1.connection.addrtype == "IP6" and out1.endpoint(0).address == "::1"
        pb, pa = out1.endpoint(0).rtp_port, out2.endpoint(0).rtp_port
        a.rtp.sendto(rtp(1, 0), ("::1", pa))
        packet, src = recv_from(b.rtp)
        assert packet == rtp(1, 0) and src[:2] == ("::1", pb)
        r = n.client.call({"command": "offer", "call-id": "v4", "from-tag": "a", "sdp": make_sdp(4000)})
        assert sdp.parse(r["sdp"]).endpoint(0).address == "127.0.0.1"
        r = n.client.call({"command": "offer", "call-id": "mixed", "from-tag": "a", "sdp": make_sdp(4000)})
        r = n.client.call({"command": "answer", "call-id": "mixed", "from-tag": "a", "to-tag": "b",
                           "sdp": make_sdp(4000, "::1")})
        assert r["result"] == b"error" and b"Cannot relay media line 1" in r["error-reason"]
        r = n.client.call({"command": "offer", "call-id": "bridge", "from-tag": "a", "sdp": make_sdp(4000),
                           "direction": ["127.0.0.1", "::1"]})
        assert r["result"] == b"error" and b"Bridging between different media interfaces" in r["error-reason"]
    finally:
        a.close()
        b.close()
        n.close()
        eng.close()


def test_second_media_line_and_disabled_stream(node, peers):
    a, b = peers
    video = "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=image 6000 TCP/MSRP *\r\n"
    offer = make_sdp(a.port) + video
    r = node.client.call({"command": "offer", "call-id": "c2", "from-tag": "x", "sdp": offer})
    assert r["result"] == b"ok"
    out = sdp.parse(r["sdp"])
    assert out.media[1].port == 0                       # disabled stays disabled, no session
    assert out.media[2].port == 6000 and out.media[2].proto == "TCP/MSRP"   # not relayable, untouched
    assert len(node.engine.sessions()) == 1
    # re-offer enabling video adds exactly one session and keeps the audio port
    audio_port = out.media[0].port
    offer2 = make_sdp(a.port, version=2) + f"m=video {a.port + 2} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
    r = node.client.call({"command": "offer", "call-id": "c2", "from-tag": "x", "sdp": offer2})
    out = sdp.parse(r["sdp"])
    assert out.media[0].port == audio_port and out.media[1].port not in (0, audio_port)
    assert len(node.engine.sessions()) == 2


def test_ice_remove_default_and_optional(node, peers):
    a, _ = peers
    ice = ("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
           "a=candidate:1 1 UDP 2130706431 127.0.0.1 5000 typ host\r\n")
    for key, kept in ((["ICE", "remove"], False), (None, False), (["ICE", "optional"], True)):
        msg = {"command": "offer", "call-id": f"ice-{key}", "from-tag": "x", "sdp": make_sdp(a.port, media_extra=ice)}
        if key:
            msg[key[0]] = key[1]
        out = node.client.call(msg)["sdp"].decode()
        assert ("a=candidate:" in out) == kept and ("a=ice-ufrag" in out) == kept
        assert "a=rtpmap:8 PCMA/8000" in out


def test_replace_origin_and_rtcp_attribute_rewrite(node, peers):
    a, _ = peers
    text = make_sdp(a.port).replace("o=- 4711 1 IN IP4 127.0.0.1", "o=- 4711 1 IN IP4 10.9.8.7") \
        .replace("a=ptime:20\r\n", f"a=ptime:20\r\na=rtcp:{a.port + 1}\r\n")
    r = node.client.call({"command": "offer", "call-id": "o1", "from-tag": "x", "sdp": text})
    out = sdp.parse(r["sdp"])
    assert out.origin.address == "10.9.8.7"           # untouched without replace=origin
    port = out.endpoint(0).rtp_port
    assert out.media[0].attribute_values("rtcp") == [str(port + 1)]
    r = node.client.call({"command": "offer", "call-id": "o2", "from-tag": "x", "sdp": text,
                          "replace": ["origin"], "flags": ["full-rtcp-attribute"]})
    out = sdp.parse(r["sdp"])
    port = out.endpoint(0).rtp_port
    assert out.origin.address == "127.0.0.1"
    assert out.media[0].attribute_values("rtcp") == [f"{port + 1} IN IP4 127.0.0.1"]


def test_sdp_version_control(node, peers):
    a, b = peers
    base = {"command": "offer", "call-id": "v1", "from-tag": "x", "replace": ["SDP-version"]}
    first = sdp.parse(node.client.call({**base, "sdp": make_sdp(a.port, version=5)})["sdp"])
    same = sdp.parse(node.client.call({**base, "sdp": make_sdp(a.port, version=6)})["sdp"])
    changed = sdp.parse(node.client.call({**base, "sdp": make_sdp(a.port, version=6, codec=(0, "PCMU/8000"))})["sdp"])
    assert (first.origin.version, same.origin.version, changed.origin.version) == (5, 5, 6)
    forced = sdp.parse(node.client.call({**base, "replace": ["force-increment-sdp-ver"],
                                         "sdp": make_sdp(a.port, version=6, codec=(0, "PCMU/8000"))})["sdp"])
    assert forced.origin.version == 7


def test_codec_strip_except_offer_mask_and_transcoding_refusal(node, peers):
    a, _ = peers
    offer = make_sdp(a.port).replace("RTP/AVP 8 101", "RTP/AVP 8 0 18 101") \
        .replace("a=ptime:20", "a=fmtp:18 annexb=no\r\na=ptime:20")

    def formats(**extra):
        r = node.client.call({"command": "offer", "call-id": f"codec-{random.getrandbits(32)}", "from-tag": "x",
                              "sdp": offer, **extra})
        if r["result"] != b"ok":
            return r["error-reason"].decode()
        return sdp.parse(r["sdp"]).media[0].formats

    assert formats() == ["8", "0", "18", "101"]
    assert formats(codec={"strip": ["PCMU"]}) == ["8", "18", "101"]
    assert formats(codec={"offer": ["G729"]}) == ["18", "8", "0", "101"]
    assert formats(flags=["codec-strip-all", "codec-except-PCMA", "codec-except-telephone-event"]) == ["8", "101"]
    assert formats(codec={"strip": ["all"]}) == ["8", "0", "18", "101"]      # never strip to nothing
    assert formats(codec={"transcode": ["PCMU"]}) == ["0", "8", "18", "101"]  # present: just preferred
    assert "Cannot transcode to 'G722'" in formats(codec={"transcode": ["G722"]})
    assert formats(codec={"mask": ["PCMA"]}) == ["0", "18", "101"]
    assert "must be a dictionary" in formats(codec="PCMA")
    stripped = node.client.call({"command": "offer", "call-id": "fmtp", "from-tag": "x", "sdp": offer,
                                 "codec": {"strip": ["PCMA", "PCMU"]}})["sdp"].decode()
    assert "a=fmtp:18 annexb=no" in stripped and "a=rtpmap:8" not in stripped


def test_strict_source_flag_drops_foreign_sources(node, peers):
    a, b = peers
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.bind(("127.0.0.1", 0))
    try:
        for call_id, flags, delivered in (("lax", [], True), ("strict", ["strict-source"], False)):
            r1, r2 = setup_call(node.client, a, b, call_id, offer_extra={"flags": flags})
            pa = media_port(r2["sdp"])
            intruder.sendto(rtp(77, 0, ssrc=0xBAD), ("127.0.0.1", pa))
            packet, _ = recv_from(b.rtp, 0.5)
            assert (packet is not None) == delivered, call_id
            sid = node.server.calls[call_id].streams[0].sid
            leg = node.engine.query(sid)["legs"][0]
            assert leg["strict"] == (not delivered)
            assert leg["drops"]["foreign_source"] == (0 if delivered else 1)
            node.client.call({"command": "delete", "call-id": call_id, "from-tag": "tag-a"})
    finally:
        intruder.close()


def test_named_interfaces_for_direction(peers):
    eng = MediaEngine(interfaces=["127.0.0.1", "127.0.0.2"], port_min=61300, port_max=61399)
    eng.start()
    n = Node(eng, interfaces={"pub": "127.0.0.2", "priv": "127.0.0.1"})
    try:
        a, _ = peers
        r = n.client.call({"command": "offer", "call-id": "d", "from-tag": "x", "sdp": make_sdp(a.port),
                           "direction": ["pub", "pub"]})
        assert r["result"] == b"ok" and sdp.parse(r["sdp"]).endpoint(0).address == "127.0.0.2"
        (sid,) = eng.sessions()
        assert eng.local_endpoint(sid, 0)[0] == "127.0.0.2"
        r = n.client.call({"command": "offer", "call-id": "d2", "from-tag": "x", "sdp": make_sdp(a.port)})
        assert sdp.parse(r["sdp"]).endpoint(0).address == "127.0.0.1"      # default: first interface
        r = n.client.call({"command": "offer", "call-id": "e", "from-tag": "x", "sdp": make_sdp(a.port),
                           "direction": ["priv", "dmz"]})
        assert r["result"] == b"error" and b"Unknown interface 'dmz'" in r["error-reason"]
        r = n.client.call({"command": "offer", "call-id": "f", "from-tag": "x", "sdp": make_sdp(a.port),
                           "direction": ["priv", "pub"]})
        assert r["result"] == b"error" and b"Bridging between different media interfaces" in r["error-reason"]
    finally:
        n.close()
        eng.close()


def test_server_wide_strict_source_option(engine, peers):
    n = Node(engine, strict_source=True)
    try:
        a, b = peers
        setup_call(n.client, a, b)
        (sid,) = engine.sessions()
        assert all(leg["strict"] for leg in engine.query(sid)["legs"])
    finally:
        n.close()


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("payload, reason", [
    (b"d7:command", "Failed to decode bencode"),
    (b"li1ee", "not a dictionary"),
    (b"de", "No command"),
    (b"d7:commandi5ee", "'command' must be a string"),
    (bencode.encode({"command": "frobnicate"}), "Unrecognized command 'frobnicate'"),
    (bencode.encode({"command": "offer", "from-tag": "x", "sdp": "v=0"}), "No call-id"),
    (bencode.encode({"command": "offer", "call-id": "c", "sdp": "v=0"}), "No from-tag"),
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x"}), "No sdp"),
    (bencode.encode({"command": "answer", "call-id": "c", "from-tag": "x", "sdp": "v=0"}), "No to-tag"),
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x", "sdp": "garbage"}), "Failed to parse SDP"),
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x",
                     "sdp": make_sdp(5000).replace("c=IN IP4 127.0.0.1", "c=IN IP4 pbx.example")}), "not an IP4 address"),
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x", "sdp": make_sdp(5000),
                     "flags": "strict-source", "direction": ["nowhere", "x"]}), "Unknown interface 'nowhere'"),
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x", "sdp": make_sdp(5000, "::1")}),
     "No media interface for address family IP6"),
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x", "sdp": make_sdp(5000), "flags": [1]}),
     "'flags' must be a list of strings"),
    (bencode.encode({"command": "answer", "call-id": "nope", "from-tag": "x", "to-tag": "y", "sdp": make_sdp(5000)}),
     "Unknown call-id"),
    (bencode.encode({"command": "query", "call-id": "nope"}), "Unknown call-id"),
    # a bad key read after the engine sessions exist must still leave nothing behind
    (bencode.encode({"command": "offer", "call-id": "c", "from-tag": "x", "sdp": make_sdp(5000),
                     "via-branch": [300881]}), "'via-branch'"),
    (bencode.encode({"command": "list", "limit": 0}), "'limit' must be greater than 0"),
])
def test_error_replies(node, payload, reason):
    data = node.client.raw(b"ck1 " + payload)
    assert data.startswith(b"ck1 ")
    reply = decode_reply(data[4:])
    assert reply["result"] == b"error"
    assert reason.encode() in reply["error-reason"], reply
    assert set(reply) == {"result", "error-reason"}
    assert node.engine.sessions() == []
    assert node.server.calls == {}


def test_datagram_without_cookie_is_dropped_and_counted(node):
    for junk in (b"d7:command4:pinge", b" d7:command4:pinge", b"", b"x" * 300 + b" de"):
        if junk:
            assert node.client.raw(junk, timeout=0.3) is None
        assert node.server.handle(junk) is None
    assert node.server.stats["dropped"] == 7
    assert node.client.call({"command": "ping"})["result"] == b"pong"


def test_port_pool_exhaustion_is_an_error_and_leaks_nothing(peers):
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61400, port_max=61404)   # two pairs: one session
    eng.start()
    n = Node(eng)
    try:
        a, b = peers
        assert n.client.call({"command": "offer", "call-id": "one", "from-tag": "x", "sdp": make_sdp(a.port)})["result"] == b"ok"
        two_streams = make_sdp(a.port) + f"m=audio {a.port + 2} RTP/AVP 0\r\n"
        r = n.client.call({"command": "offer", "call-id": "two", "from-tag": "x", "sdp": two_streams})
        assert r["result"] == b"error" and b"Ran out of ports" in r["error-reason"]
        assert n.client.call({"command": "list"})["calls"] == [b"one"]
        assert len(eng.sessions()) == 1
        n.client.call({"command": "delete", "call-id": "one", "from-tag": "x"})
        assert eng.totals()["ports_free"] == 2
        r = n.client.call({"command": "offer", "call-id": "three", "from-tag": "x", "sdp": make_sdp(a.port)})
        assert r["result"] == b"ok"
        assert n.server.stats["port_exhaustion"] == 1
    finally:
        n.close()
        eng.close()


def test_delete_unknown_call_warns_and_fatal_flag_errors(node, peers):
    r = node.client.call({"command": "delete", "call-id": "ghost", "from-tag": "x"})
    assert r["result"] == b"ok" and b"not found" in r["warning"]
    r = node.client.call({"command": "delete", "call-id": "ghost", "from-tag": "x", "flags": ["fatal"]})
    assert r["result"] == b"error"
    a, b = peers
    setup_call(node.client, a, b)
    r = node.client.call({"command": "delete", "call-id": "call-1", "from-tag": "someone-else"})
    assert r["result"] == b"ok" and b"tags didn't match" in r["warning"]
    assert list(node.server.calls) == ["call-1"]


# ------------------------------------------------------------------ retransmissions

def test_retransmitted_offer_returns_cached_reply_without_re_executing(node, peers):
    a, _ = peers
    datagram = b"retx-1 " + bencode.encode({"command": "offer", "call-id": "r", "from-tag": "x", "sdp": make_sdp(a.port)})
    first = node.client.raw(datagram)
    second = node.client.raw(datagram)
    assert first == second and first.startswith(b"retx-1 ")
    assert len(node.engine.sessions()) == 1
    assert node.server.stats["retransmissions"] == 1
    assert node.server.stats["command offer"] == 1
    # the same request with a new cookie is executed again (a re-offer: same ports, no new session)
    third = node.client.raw(datagram.replace(b"retx-1", b"retx-2"))
    assert third[len(b"retx-2 "):] == first[len(b"retx-1 "):]
    assert node.server.stats["command offer"] == 2 and len(node.engine.sessions()) == 1


def test_retransmitted_delete_is_not_executed_twice_and_cache_expires():
    now = [1000.0]
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61500, port_max=61519)
    eng.start()
    try:
        server = NgServer(eng, clock=lambda: now[0])

        def ask(cookie, message):
            out = server.handle(cookie + b" " + bencode.encode(message), ("127.0.0.1", 9))
            assert out.startswith(cookie + b" ")
            return decode_reply(out[len(cookie) + 1:])

        assert ask(b"1", {"command": "offer", "call-id": "c", "from-tag": "f", "sdp": make_sdp(4000)})["result"] == b"ok"
        delete = {"command": "delete", "call-id": "c", "from-tag": "f"}
        first = ask(b"2", delete)
        assert first["result"] == b"ok" and "warning" not in first and "totals" in first
        now[0] += 29
        assert ask(b"2", delete) == first                      # retransmission inside the window
        now[0] += 2
        late = ask(b"2", delete)                               # window over: executed again
        assert late["result"] == b"ok" and b"already ended: delete" in late["warning"]
        # the cache key includes the peer: another client's identical cookie is a new request
        out = server.handle(b"3 " + bencode.encode({"command": "ping"}), ("127.0.0.1", 9))
        other = server.handle(b"3 " + bencode.encode({"command": "list"}), ("127.0.0.1", 10))
        assert out != other
    finally:
        eng.close()


# ------------------------------------------------------------------ timeouts

def test_rtp_timeout_deletes_answered_calls_only(peers):
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61600, port_max=61699, rtp_timeout=0.6)
    eng.start()
    n = Node(eng)
    try:
        a, b = peers
        setup_call(n.client, a, b, "answered")
        r = n.client.call({"command": "offer", "call-id": "ringing", "from-tag": "x", "sdp": make_sdp(a.port)})
        assert r["result"] == b"ok"
        assert wait_for(lambda: "answered" not in n.server.calls, timeout=5)
        assert n.server.ended["answered"] == ENDED_BY_TIMEOUT
        assert "ringing" in n.server.calls                    # no media while ringing is normal
        assert len(eng.sessions()) == 1
        q = n.client.call({"command": "query", "call-id": "answered"})
        assert q["result"] == b"error" and b"RTP timeout" in q["error-reason"]
    finally:
        n.close()
        eng.close()


def test_one_way_media_keeps_the_call(peers):
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61700, port_max=61799, rtp_timeout=0.6)
    eng.start()
    n = Node(eng)
    try:
        a, b = peers
        _, r2 = setup_call(n.client, a, b)
        pa = media_port(r2["sdp"])
        deadline = time.monotonic() + 2.0
        seq = 0
        while time.monotonic() < deadline:                   # only A talks (B on mute / hold)
            a.rtp.sendto(rtp(seq, seq * 160), ("127.0.0.1", pa))
            seq += 1
            time.sleep(0.02)
        assert "call-1" in n.server.calls
        assert n.server.stats["event timeout"] >= 1           # B's leg did time out
        assert wait_for(lambda: "call-1" not in n.server.calls, timeout=5)   # then A stops too
    finally:
        n.close()
        eng.close()


def test_handle_events_ignores_unknown_sessions_and_kinds(engine):
    server = NgServer(engine)
    assert server.handle_events([EngineEvent("timeout", 999, 0, 31.0), EngineEvent("dtmf", 1, 0, 0.0)]) == []
    assert server.stats["event timeout"] == 1 and server.stats["event dtmf"] == 1


def test_offer_timeout_sweep(engine):
    wall = [5000.0]
    server = NgServer(engine, offer_timeout=60, wall_clock=lambda: wall[0])
    server.handle(b"1 " + bencode.encode({"command": "offer", "call-id": "c", "from-tag": "f", "sdp": make_sdp(4000)}))
    wall[0] += 59
    assert server.sweep() == []
    wall[0] += 2
    assert server.sweep() == ["c"] and engine.sessions() == []


# ------------------------------------------------------------------ fuzzing (sans-I/O core, real engine)

@pytest.fixture(scope="module")
def fuzz_engine():
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61800, port_max=61999)
    eng.start()
    yield eng
    eng.close()


def check_reply(datagram, reply):
    if reply is None:
        return
    cookie = datagram.partition(b" ")[0]
    assert reply.startswith(cookie + b" ")
    decoded = decode_reply(reply[len(cookie) + 1:])
    assert decoded["result"] in (b"ok", b"pong", b"error")
    if decoded["result"] == b"error":
        assert isinstance(decoded["error-reason"], bytes) and decoded["error-reason"]


def check_no_leaks(server, engine):
    owned = sorted(s.sid for c in server.calls.values() for s in c.streams if s.sid is not None)
    assert owned == sorted(engine.sessions())


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_datagrams(fuzz_engine, blob):
    server = NgServer(fuzz_engine)
    try:
        reply = server.handle(blob, ("127.0.0.1", 1))
        check_reply(blob, reply)
        assert server.stats["internal_errors"] == 0
        check_no_leaks(server, fuzz_engine)
    finally:
        server.delete_all()


sdp_lines = st.sampled_from([
    "v=0", "o=- 1 1 IN IP4 127.0.0.1", "o=- 1 1 IN IP6 ::1", "s=-", "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0",
    "c=IN IP6 ::1", "c=IN IP4 host.example", "t=0 0", "m=audio 4000 RTP/AVP 0 8", "m=audio 0 RTP/AVP 0",
    "m=video 4002 RTP/AVPF 96", "m=image 4004 udptl t38", "m=audio 99999 RTP/AVP 0", "a=rtpmap:96 VP8/90000",
    "a=rtpmap:0 PCMU/8000", "a=rtcp:4001", "a=rtcp:x", "a=rtcp-mux", "a=sendonly", "a=inactive",
    "a=candidate:1 1 UDP 1 127.0.0.1 4000 typ host", "a=ice-ufrag:u", "a=rtpengine:loop", "junk", "",
])
sdp_text = st.one_of(
    st.lists(sdp_lines, max_size=14).map(lambda ls: "\r\n".join(["v=0", "o=- 1 1 IN IP4 127.0.0.1"] + ls) + "\r\n"),
    st.lists(sdp_lines, max_size=14).map("\n".join),
    st.text(max_size=80),
)
# mostly-valid offers: a real SDP with a few random lines appended (more m= lines, attributes, junk)
good_sdp = st.builds(lambda port, extra: make_sdp(port) + "".join(line + "\r\n" for line in extra),
                     st.integers(1024, 65000), st.lists(sdp_lines, max_size=4))
junk = st.one_of(st.binary(max_size=6), st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=4))
ids = st.sampled_from(["c1", "c2", "c3"])
tags = st.sampled_from(["f", "t", "u", ""])


def mostly(valid, junk=junk):
    """Valid values about nine times in ten, junk otherwise."""
    return st.integers(0, 9).flatmap(lambda roll: junk if roll == 0 else valid)


flag_names = st.sampled_from(["strict-source", "trust-address", "symmetric", "fatal", "loop-protect", "ICE=remove",
                              "replace-origin", "x=y", "full-rtcp-attribute", "no-rtcp-attribute",
                              "SIP-source-address", "codec-strip-PCMU", "codec-offer-PCMA", "codec-mask-all",
                              "codec-transcode-G729", "reject-ICE"])
messages = st.fixed_dictionaries(
    {"command": mostly(st.sampled_from(["offer", "offer", "answer", "answer", "delete", "query", "list", "ping"])),
     "call-id": mostly(ids), "from-tag": mostly(tags), "to-tag": mostly(tags),
     "sdp": mostly(good_sdp, st.one_of(sdp_text, junk))},
    optional={
        "via-branch": mostly(tags),
        "flags": mostly(st.lists(flag_names, max_size=4)),
        "replace": mostly(st.lists(st.sampled_from(["origin", "session-connection", "SDP-version",
                                                    "force-increment-sdp-ver", "zero-address"]), max_size=3)),
        "ICE": mostly(st.sampled_from(["remove", "force", "optional", "default"])),
        "direction": mostly(st.lists(st.sampled_from(["127.0.0.1", "pub", "internal", ""]), max_size=2)),
        "received-from": mostly(st.just(["IP4", "127.0.0.1"])),
        "media address": mostly(st.sampled_from(["127.0.0.1", "::1", "0.0.0.0", "bogus"])),
        "address family": mostly(st.sampled_from(["IP4", "IP6"])),
        "codec": mostly(st.fixed_dictionaries({}, optional={
            "strip": st.lists(st.sampled_from(["PCMU", "all", "8", "telephone-event/8000"]), max_size=2),
            "offer": st.lists(st.sampled_from(["PCMA", "G729", "0"]), max_size=2),
            "transcode": st.lists(st.sampled_from(["PCMA", "G722"]), max_size=1),
            "mask": st.lists(st.sampled_from(["PCMU", "opus"]), max_size=1)})),
        "limit": mostly(st.integers(-2, 40)),
    },
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.lists(messages, min_size=1, max_size=6))
def test_fuzz_ng_requests(fuzz_engine, requests):
    server = NgServer(fuzz_engine)
    try:
        for i, message in enumerate(requests):
            datagram = b"f%d " % i + bencode.encode(message)
            reply = server.handle(datagram, ("127.0.0.1", 1))
            assert reply is not None
            check_reply(datagram, reply)
            check_no_leaks(server, fuzz_engine)
        assert server.stats["internal_errors"] == 0
    finally:
        server.delete_all()
    assert fuzz_engine.sessions() == []


# ------------------------------------------------------------------ the command line node + relaybench tool

def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_media_node(*extra):
    port = free_udp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "control.cli", "media", "--listen-ng", f"127.0.0.1:{port}",
         "--interface", "127.0.0.1", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = NgClient(("127.0.0.1", port))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"media node exited: {proc.communicate()}")
        data = client.raw(b"p " + bencode.encode({"command": "ping"}), timeout=0.2)
        if data == b"p " + bencode.encode({"result": "pong"}):
            return proc, client, port
    proc.kill()
    raise AssertionError("media node did not answer ping")


def bind_block(count):
    """Bind `count` consecutive free UDP ports starting at a multiple of 4; return (base, sockets)."""
    for _ in range(50):
        base = random.randrange(63000, 64900) & ~3
        socks = []
        try:
            for p in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base, socks
        except OSError:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


@pytest.mark.skipif(not NG_SETUP.exists(), reason=f"{NG_SETUP} not present")
def test_relaybench_ng_setup_against_media_node(tmp_path):
    proc, client, port = start_media_node("--port-min", "62000", "--port-max", "62199", "--num-threads", "2")
    n = 5
    base, socks = bind_block(4 * n)
    try:
        out = tmp_path / "streams"
        done = subprocess.run([sys.executable, str(NG_SETUP), "127.0.0.1", str(port), str(n), str(base), str(out)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        rows = [tuple(map(int, line.split())) for line in out.read_text().splitlines()]
        assert len(rows) == n
        relay_ports = set()
        for i, (a, pa, b, pb) in enumerate(rows):
            assert (a, b) == (base + 4 * i, base + 4 * i + 2)
            for p in (pa, pb):
                assert 62000 <= p < 62200 and p % 2 == 0
                relay_ports.add(p)
        assert len(relay_ports) == 2 * n
        listed = client.call({"command": "list"})["calls"]
        assert len(listed) == n and all(c.startswith(b"bench-") for c in listed)
        # every stream relays both ways through the ports in the streams file
        for i, (a, pa, b, pb) in enumerate(rows):
            sock_a, sock_b = socks[4 * i], socks[4 * i + 2]
            sock_a.sendto(rtp(i, 0), ("127.0.0.1", pa))
            packet, src = recv_from(sock_b)
            assert packet == rtp(i, 0) and src == ("127.0.0.1", pb)
            sock_b.sendto(rtp(100 + i, 0, ssrc=3), ("127.0.0.1", pb))
            packet, src = recv_from(sock_a)
            assert packet == rtp(100 + i, 0, ssrc=3) and src == ("127.0.0.1", pa)
        q = client.call({"command": "query", "call-id": listed[0].decode()})
        assert q["totals"]["RTP"]["packets"] == 2
    finally:
        for s in socks:
            s.close()
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert b"media node stopped (5 active call(s) deleted)" in err


@pytest.mark.skipif(not NG_SETUP.exists(), reason=f"{NG_SETUP} not present")
def test_relaybench_transcoded_calls_carry_g729_toward_b(tmp_path):
    """ng_setup.py --transcode G729: A offers PCMA, B is offered and answers G.729 only;
    the node transcodes both ways."""
    proc, client, port = start_media_node("--port-min", "62400", "--port-max", "62499")
    base, socks = bind_block(4)
    try:
        out = tmp_path / "streams"
        done = subprocess.run([sys.executable, str(NG_SETUP), "127.0.0.1", str(port), "1", str(base), str(out),
                               "--transcode", "G729"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        a, pa, b, pb = map(int, out.read_text().split())
        sock_a, sock_b = socks[0], socks[2]
        for i in range(3):
            sock_a.sendto(rtp(i, i * 160, payload=bytes([0xD5]) * 160), ("127.0.0.1", pa))
            packet, _ = recv_from(sock_b)
            assert packet[1] & 0x7F == 18 and len(packet) == 12 + 20       # G.729, 20 ms
        sock_b.sendto(rtp(1, 0, ssrc=3, pt=18, payload=bytes(20)), ("127.0.0.1", pb))
        packet, _ = recv_from(sock_a)
        assert packet[1] & 0x7F == 8 and len(packet) == 12 + 160           # back to PCMA
        call_id = client.call({"command": "list"})["calls"][0].decode()
        tags = client.call({"command": "query", "call-id": call_id})["tags"]
        streams = [s for t in tags.values() for m in t["medias"] for s in m["streams"] if b"RTP" in s["flags"]]
        assert any(s.get("jitter buffer", {}).get("played", 0) >= 3 for s in streams)
        assert any(s.get("transcoding", {}).get("packets out", 0) >= 3 for s in streams)
    finally:
        for s in socks:
            s.close()
        client.close()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_media_node_sigint_shuts_down_cleanly():
    proc, client, _ = start_media_node("--port-min", "62200", "--port-max", "62299")
    client.close()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--tos", "64"], "SS_QOS_RTP"),
    (["--rtp-timeout", "1"], "SS_RTP_TIMEOUT"),
    (["--port-min", "10001"], "SS_MEDIAPROXYPORT_START"),
    (["--port-min", "30000", "--port-max", "20000"], "SS_MEDIAPROXYPORT_START must be less than"),
    (["--port-max", "70000"], "SS_MEDIAPROXYPORT_END"),
    (["--interface", "no-such-if0"], "no-such-if0"),
    (["--interface", "0.0.0.0"], "wildcard"),
    (["--listen-ng", "127.0.0.1:0"], "bad port"),
])
def test_media_node_rejects_bad_options(args, message):
    cmd = [sys.executable, "-m", "control.cli", "media", "--listen-ng", "127.0.0.1:2999"]
    if "--interface" not in args:
        cmd += ["--interface", "127.0.0.1"]
    done = subprocess.run(cmd + args, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_media_node_reports_busy_ng_port():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", 0))
    try:
        port = blocker.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "control.cli", "media", "--listen-ng", f"127.0.0.1:{port}",
                               "--interface", "127.0.0.1", "--port-min", "62300", "--port-max", "62309"],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)
    finally:
        blocker.close()
    assert done.returncode == 1 and "cannot listen for NG" in done.stderr


def test_offer_needing_transcoding_beyond_capacity_fails_clearly(peers):
    a, b = peers
    eng = MediaEngine(interfaces=["127.0.0.1"], port_min=61500, port_max=61599, max_transcoding=2)
    eng.start()
    node = Node(eng)
    try:
        def offer(call_id):
            return node.client.call({"command": "offer", "call-id": call_id, "from-tag": "x",
                                     "sdp": make_sdp(a.port), "codec": {"transcode": ["G729"], "mask": ["PCMA"]}})
        first = offer("t1")
        assert first["result"] == b"ok"
        answer = node.client.call({"command": "answer", "call-id": "t1", "from-tag": "x", "to-tag": "y",
                                   "sdp": make_sdp(b.port, codec=(18, "G729/8000"))})
        assert answer["result"] == b"ok" and b"PCMA/8000" in answer["sdp"]
        assert eng.transcoding_headroom() == 0
        refused = offer("t2")
        assert refused["result"] == b"error" and b"capacity" in refused["error-reason"]
        plain = node.client.call({"command": "offer", "call-id": "t3", "from-tag": "x", "sdp": make_sdp(a.port)})
        assert plain["result"] == b"ok"                       # pass-through calls still go
        node.client.call({"command": "delete", "call-id": "t1"})
        assert eng.transcoding_headroom() == 2 and offer("t4")["result"] == b"ok"
    finally:
        node.close()
        eng.close()
