"""Transcoding on the relay's packet path, over real sockets: G.711 A-law ⇄ G.729."""
import random
import struct
import time

import numpy as np
import pytest

import bcg729ref
from audioutil import segmental_snr, speechlike
from rtputil import Peer, connect, rtp
from vosmedia import _codec
from vosmedia.engine import MediaEngine, TranscodingLimit


def paced(send, count, ptime=0.02):
    """Call send(i) for i in range(count) at the media's own pace (real time)."""
    start = time.monotonic()
    for i in range(count):
        delay = start + i * ptime - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(i)


def header(packet):
    first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    return {"pt": second & 0x7F, "marker": bool(second & 0x80), "seq": seq, "ts": ts, "ssrc": ssrc}


@pytest.fixture
def engine():
    with MediaEngine(port_min=24100, port_max=24299) as eng:
        yield eng


@pytest.fixture
def transcoded(engine):
    """A offers PCMA, B talks G.729 (annexb=no): transcoding both ways, DTMF 101 ⇄ 96."""
    a, b = Peer.pair(), Peer.pair()
    sid = connect(engine, a, b)
    engine.set_transcoding(sid, 0, "PCMA", "G729", out_pt=18, dtmf_pt=101, peer_dtmf_pt=96)
    engine.set_transcoding(sid, 1, "G729", "PCMA", out_pt=8, dtmf_pt=96, peer_dtmf_pt=101)
    yield engine, sid, a, b
    a.close()
    b.close()


def test_pcma_becomes_g729_with_the_engines_own_rtp_timing(transcoded):
    engine, sid, a, b = transcoded
    speech = speechlike(seconds=1.0)
    alaw = _codec.lin2alaw(speech)
    paced(lambda i: a.rtp.sendto(rtp(7000 + i, 1000 + i * 160, ssrc=0xA, pt=8,
                                     payload=alaw[i * 160:(i + 1) * 160], marker=i == 0),
                                 engine.local_endpoint(sid, 0)), 50)
    got = b.recv_all(b.rtp, 50)
    assert len(got) == 50
    heads = [header(p) for p in got]
    assert {h["pt"] for h in heads} == {18}
    assert {len(p) - 12 for p in got} == {20}                      # two 10 ms G.729 frames
    assert len({h["ssrc"] for h in heads}) == 1 and heads[0]["ssrc"] != 0xA
    assert [(h["seq"] - heads[0]["seq"]) & 0xFFFF for h in heads] == list(range(50))
    assert [(h["ts"] - heads[0]["ts"]) & 0xFFFFFFFF for h in heads] == [160 * i for i in range(50)]
    assert heads[0]["marker"] and not any(h["marker"] for h in heads[1:])
    # an independent decoder (bcg729 through ctypes) hears the speech that A sent
    frames = [p[12 + k:22 + k] for p in got for k in (0, 10)]
    pcm = np.frombuffer(bcg729ref.ctypes_decode(bcg729ref.load(), frames), dtype=np.int16)
    reference = np.frombuffer(_codec.alaw2lin(alaw), dtype=np.int16)
    assert segmental_snr(reference[:len(pcm) - 40], pcm[40:]) > 3.0
    leg = engine.query(sid)["legs"][0]
    assert leg["transcoding"]["packets_in"] == 50 and leg["transcoding"]["packets_out"] == 50
    assert engine.query(sid)["legs"][1]["tx"]["packets"] == 50


def test_g729_becomes_pcma(transcoded):
    engine, sid, a, b = transcoded
    encoder = _codec.G729Encoder(False)
    speech = speechlike(seconds=0.6)
    frames = encoder.encode(speech.tobytes())
    paced(lambda i: b.rtp.sendto(rtp(i, i * 160, ssrc=0xB, pt=18, payload=frames[2 * i] + frames[2 * i + 1]),
                                 engine.local_endpoint(sid, 1)), 30)
    got = a.recv_all(a.rtp, 30)
    assert len(got) == 30
    assert {header(p)["pt"] for p in got} == {8} and {len(p) - 12 for p in got} == {160}


def test_telephone_event_passes_with_the_peers_payload_type(transcoded):
    engine, sid, a, b = transcoded
    event = bytes([5, 0x0A, 0x01, 0x40])            # digit 5, volume 10, 320 samples
    a.rtp.sendto(rtp(1, 0, pt=101, payload=event, marker=True), engine.local_endpoint(sid, 0))
    got = b.recv_all(b.rtp, 1)
    assert len(got) == 1
    assert header(got[0])["pt"] == 96 and header(got[0])["marker"] and got[0][12:] == event


def test_unknown_payload_types_and_bad_sizes_are_counted_and_dropped(transcoded):
    engine, sid, a, b = transcoded
    to_b, to_a = engine.local_endpoint(sid, 0), engine.local_endpoint(sid, 1)
    a.rtp.sendto(rtp(1, 0, pt=0), to_b)                                 # PCMU was not negotiated
    b.rtp.sendto(rtp(1, 0, pt=18, payload=bytes(7)), to_a)              # no G.729 payload is 7 bytes
    paced(lambda i: a.rtp.sendto(rtp(2 + i, 160 * (1 + i), pt=8, payload=bytes([0xD5]) * 160), to_b), 5)
    assert len(b.recv_all(b.rtp, 5, timeout=1)) == 5                    # good ones still flow
    assert a.drain(a.rtp) == []
    legs = engine.query(sid)["legs"]
    assert legs[0]["drops"]["unknown_payload_type"] == 1
    assert legs[1]["drops"]["bad_payload"] == 1


def test_repacketising_20_to_30_ms(engine):
    a, b = Peer.pair(), Peer.pair()
    sid = connect(engine, a, b)
    engine.set_transcoding(sid, 0, "PCMA", "PCMU", in_ptime=20, out_ptime=30)
    paced(lambda i: a.rtp.sendto(rtp(i, i * 160, pt=8), engine.local_endpoint(sid, 0)), 6)
    got = b.recv_all(b.rtp, 4)
    assert [len(p) - 12 for p in got] == [240] * 4
    assert [(header(p)["ts"] - header(got[0])["ts"]) & 0xFFFFFFFF for p in got] == [0, 240, 480, 720]
    a.close()
    b.close()


def test_transcoding_capacity_is_admission_controlled():
    with MediaEngine(port_min=24300, port_max=24399, max_transcoding=1) as eng:
        s1, s2 = eng.create_session(), eng.create_session()
        eng.set_transcoding(s1, 0, "PCMA", "G729")
        with pytest.raises(TranscodingLimit, match="capacity"):
            eng.set_transcoding(s2, 0, "PCMA", "G729")
        eng.delete_session(s1)
        eng.set_transcoding(s2, 0, "PCMA", "G729")
        assert eng.totals()["transcoding"] == 1
        eng.clear_transcoding(s2, 0)
        assert eng.totals()["transcoding"] == 0


def test_jitter_buffer_reorders_and_reports(transcoded):
    """Packets that arrive out of order and unevenly leave as an even, ordered stream."""
    engine, sid, a, b = transcoded
    alaw = _codec.lin2alaw(speechlike(seconds=1.2))
    order = list(range(60))
    rng = random.Random(3)
    for i in range(0, 58, 6):                    # swap neighbours now and then
        order[i], order[i + 1] = order[i + 1], order[i]
    def send(k):
        i = order[k]
        time.sleep(rng.uniform(0, 0.008))      # up to 8 ms of extra jitter
        a.rtp.sendto(rtp(i, i * 160, pt=8, payload=alaw[i * 160:(i + 1) * 160]), engine.local_endpoint(sid, 0))
    paced(send, 60)
    got = b.recv_all(b.rtp, 60, timeout=3)
    heads = [header(p) for p in got]
    assert len(got) >= 58
    assert [(h["seq"] - heads[0]["seq"]) & 0xFFFF for h in heads] == list(range(len(got)))
    steps = [(q["ts"] - p["ts"]) & 0xFFFFFFFF for p, q in zip(heads, heads[1:])]
    # an even 20 ms cadence; the adaptive buffer may drop a frame or two to cut its delay
    assert all(d % 160 == 0 and d > 0 for d in steps) and sum(d != 160 for d in steps) <= 2
    jb = engine.query(sid)["legs"][0]["jitter_buffer"]
    assert jb["reorders"] >= 5 and jb["played"] >= 58 and 0 <= jb["target_ms"] <= 200


def test_without_a_jitter_buffer_packets_decode_on_arrival(engine):
    a, b = Peer.pair(), Peer.pair()
    sid = connect(engine, a, b)
    engine.set_transcoding(sid, 0, "PCMA", "PCMU", jitter_buffer=None)
    for i in range(20):                                  # a burst: all at once
        a.rtp.sendto(rtp(i, i * 160, pt=8), engine.local_endpoint(sid, 0))
    assert len(b.recv_all(b.rtp, 20, timeout=1)) == 20
    assert engine.query(sid)["legs"][0]["jitter_buffer"] is None
    a.close()
    b.close()
