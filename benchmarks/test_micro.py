"""Control-path micro benchmarks (pytest-benchmark). Run: python -m pytest benchmarks/test_micro.py

These time what happens per call, not per packet: SDP parse and rewrite, NG request
decoding and the offer/answer/delete cycle, and a packet's round trip through the relay
seen from Python (a latency figure; the relay's own per-packet CPU is measured by
benchmarks/relay_load.py against the peers)."""
import itertools
import socket
import struct

import pytest

from vosmedia import bencode, sdp
from vosmedia.engine import MediaEngine
from vosmedia.ng import NgServer

OFFER = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         "m=audio 40000 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
         "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
         "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")


@pytest.fixture(scope="module")
def engine():
    with MediaEngine(port_min=23000, port_max=23999) as eng:
        yield eng


def test_sdp_parse_and_serialise(benchmark):
    result = benchmark(lambda: str(sdp.parse(OFFER)))
    assert "m=audio 40000" in result


def test_bencode_decode_ng_request(benchmark):
    data = bencode.encode({"command": "offer", "call-id": "abc@host", "from-tag": "ft",
                           "flags": ["trust-address"], "replace": ["origin"], "sdp": OFFER})
    assert benchmark(bencode.decode, data)[b"command"] == b"offer"


def test_ng_offer_answer_delete_cycle(benchmark, engine):
    server = NgServer(engine)
    ids = itertools.count()

    def cycle():
        call = f"bench-{next(ids)}"
        for message in ({"command": "offer", "call-id": call, "from-tag": "a", "sdp": OFFER},
                        {"command": "answer", "call-id": call, "from-tag": "a", "to-tag": "b",
                         "sdp": OFFER.replace("40000", "40002")},
                        {"command": "delete", "call-id": call, "from-tag": "a"}):
            reply = server.handle(b"c%d " % next(ids) + bencode.encode(message))
            assert b"6:result2:ok" in reply, reply[:200]
    benchmark(cycle)
    assert engine.totals()["sessions"] == 0


def test_relay_round_trip_latency(benchmark, engine):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.bind(("127.0.0.1", 0))
    a.settimeout(1)
    b.settimeout(1)
    sid = engine.create_session()
    engine.set_remote(sid, 0, "127.0.0.1", a.getsockname()[1])
    engine.set_remote(sid, 1, "127.0.0.1", b.getsockname()[1])
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    seq = itertools.count()

    def ping_pong():
        packet = struct.pack("!BBHII", 0x80, 8, next(seq) & 0xFFFF, 0, 1) + bytes(160)
        a.sendto(packet, to_b)
        b.sendto(b.recv(2048), to_a)
        return a.recv(2048)

    assert len(benchmark(ping_pong)) == 172
    engine.delete_session(sid)
    a.close()
    b.close()
