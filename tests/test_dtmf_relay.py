"""DTMF through real engine sessions over real UDP: RFC 2833 events, in-band tones, the
conversions between them, "All" duplicate suppression, send_dtmf, INFO, NG play DTMF."""
import glob
import os
import struct
import time

import numpy as np
import pytest

from audioutil import speechlike
from rtputil import Peer, connect, rtp, wait_for
from test_dtmf import read_pcap
from vosmedia import _codec, _dtmf, bencode
from vosmedia.engine import MediaEngine
from vosmedia.ng import NgServer

CAPTURES = sorted(glob.glob("/usr/share/sip-tester/dtmf_2833_*.pcap"))


@pytest.fixture
def engine():
    with MediaEngine(port_min=24500, port_max=24699) as eng:
        yield eng


@pytest.fixture
def peers():
    a, b = Peer.pair(), Peer.pair()
    yield a, b
    a.close()
    b.close()


# ------------------------------------------------------------------ helpers

def header(packet):
    first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", packet)
    return {"pt": second & 0x7F, "marker": bool(second & 0x80), "seq": seq, "ts": ts, "ssrc": ssrc}


def play(sock, dest, schedule):
    """Send (offset_s, packet) pairs at their offsets (real time), in offset order."""
    start = time.monotonic()
    for offset, packet in sorted(schedule, key=lambda item: item[0]):
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(packet, dest)


def audio(pcm, ssrc=0xA0A0A0A0, pt=8, seq=1000, ts=50000):
    """20 ms G.711 packets of int16 `pcm` (A-law for pt 8, µ-law for pt 0) as a schedule."""
    encode = _codec.lin2alaw if pt == 8 else _codec.lin2ulaw
    data = encode(np.asarray(pcm, dtype=np.int16).tobytes())
    return [(i * 0.02, rtp(seq + i, ts + 160 * i, ssrc=ssrc, pt=pt, payload=data[160 * i:160 * (i + 1)],
                           marker=i == 0))
            for i in range(len(data) // 160)]


def events(digits, at, pt=101, ssrc=0xA0A0A0A0, seq=30000, ts=50000, duration_ms=120, every=0.3):
    """RFC 4733 packets of `digits` as a schedule: digit k starts at `at + k * every` s, with
    the RTP timestamp of that moment on the 8 kHz clock starting at `ts`."""
    out = []
    for k, digit in enumerate(digits):
        start = at + k * every
        for offset_ms, packet in _dtmf.event_packets(digit, duration_ms, pt=pt, seq=seq + 20 * k,
                                                     ts=ts + int(start * 8000), ssrc=ssrc):
            out.append((start + offset_ms / 1000, packet))
    return out


def tones(digits, seconds, at, every=0.3, tone_ms=80, level=-10.0, noise=None):
    """Linear PCM of `seconds` with each digit's tone at `at + k * every` s."""
    pcm = np.zeros(int(seconds * 8000), dtype=np.float64) if noise is None else noise[:int(seconds * 8000)].astype(np.float64)
    gen = _dtmf.DtmfGenerator(level_dbm0=level, tone_ms=tone_ms, gap_ms=0)
    for k, digit in enumerate(digits):
        tone = np.frombuffer(gen.generate(digit), dtype=np.int16)
        start = int((at + k * every) * 8000)
        pcm[start:start + len(tone)] += tone
    return np.clip(pcm, -32768, 32767).astype(np.int16)


def received(peer, quiet=0.4):
    return peer.drain(peer.rtp, quiet)


def decoded_audio(packets, pt=8):
    """The linear audio of G.711 packets placed by RTP timestamp (one SSRC)."""
    voice = [p for p in packets if header(p)["pt"] == pt]
    if not voice:
        return np.zeros(0, dtype=np.int16)
    base = min(header(p)["ts"] for p in voice)
    end = max((header(p)["ts"] - base) & 0xFFFFFFFF for p in voice) + 160
    out = np.zeros(end, dtype=np.int16)
    decode = _codec.alaw2lin if pt == 8 else _codec.ulaw2lin
    for p in voice:
        off = (header(p)["ts"] - base) & 0xFFFFFFFF
        pcm = np.frombuffer(decode(p[12:]), dtype=np.int16)
        out[off:off + len(pcm)] = pcm
    return out


def detect(pcm):
    return _dtmf.DtmfDetector().feed(pcm.tobytes())


def event_digits(packets, pt):
    rx = _dtmf.Rfc4733Receiver()
    return "".join(d for d in (rx.receive_packet(p) for p in packets if header(p)["pt"] == pt) if d)


def dtmf_events(engine, count, timeout=3.0):
    got = []

    def enough():
        got.extend(e for e in engine.poll_events() if e.kind == "dtmf")
        return len(got) >= count
    wait_for(enough, timeout)
    time.sleep(0.1)
    got.extend(e for e in engine.poll_events() if e.kind == "dtmf")
    return got


def check_seq_continuity(packets):
    """One SSRC, and sequence numbers that step by one in arrival order (no gap, no reuse)."""
    heads = [header(p) for p in packets]
    assert len({h["ssrc"] for h in heads}) == 1
    seqs = [h["seq"] for h in heads]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == list(range(len(seqs)))


def end_packets(packets, pt):
    """Per event timestamp: (first packet had the marker, end packets' durations)."""
    out = {}
    for p in packets:
        h = header(p)
        if h["pt"] != pt:
            continue
        first = h["ts"] not in out
        marker, ends = out.setdefault(h["ts"], (h["marker"] if first else False, []))
        digit, end, volume, duration = _dtmf.parse_event(p[12:16])
        if end:
            ends.append(duration)
    return out


# ------------------------------------------------------------------ RFC 2833 receive

@pytest.mark.skipif(not CAPTURES, reason="sip-tester captures not installed")
def test_sip_tester_captures_through_a_session(engine, peers):
    a, b = peers
    expected = {f"dtmf_2833_{d}.pcap": d for d in "0123456789"}
    expected.update({"dtmf_2833_pound.pcap": "#", "dtmf_2833_star.pcap": "*"})
    for path in CAPTURES:
        digit = expected[os.path.basename(path)]
        sid = connect(engine, a, b)
        engine.set_dtmf(sid, 0, receive="all", rx_pt=101)
        engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=96)
        packets = [p for _, p in read_pcap(path) if len(p) >= 12 and p[1] & 0x7F == 101]
        play(a.rtp, engine.local_endpoint(sid, 0), [(i * 0.005, p) for i, p in enumerate(packets)])
        got = dtmf_events(engine, 1)
        assert [(e.digit, e.method, e.side, e.session, e.duration_ms) for e in got] == \
            [(digit, "rfc2833", 0, sid, 280)], path
        assert abs(got[0].time - time.time()) < 5
        # a pass-through stream carries the sender's own packets on, renumbered 101 -> 96
        out = received(b, 0.2)
        assert len(out) == len(packets) and {header(p)["pt"] for p in out} == {96}
        assert [p[2:] for p in out] == [p[2:] for p in packets]
        assert engine.query(sid)["legs"][0]["dtmf"]["recent"][0]["digit"] == digit
        engine.delete_session(sid)


def test_lost_end_packets_still_end_the_digit(engine, peers):
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_dtmf(sid, 0, receive="rfc2833", rx_pt=101)
    engine.set_dtmf(sid, 1, send="none", rx_pt=None)
    packets = [p for _, p in _dtmf.event_packets("9", 200, pt=101, ssrc=5, ts=1000)]
    play(a.rtp, engine.local_endpoint(sid, 0), [(i * 0.05, p) for i, p in enumerate(packets[:3])])
    got = dtmf_events(engine, 1)
    assert [(e.digit, e.forward) for e in got] == [("9", "none")]
    assert 90 <= got[0].duration_ms <= 110                 # the last duration seen: 100 ms
    assert received(b, 0.2) == []                          # "none": nothing reaches B


# ------------------------------------------------------------------ conversions

@pytest.mark.parametrize("path", ["passthrough", "transcoded"])
def test_rfc2833_becomes_inband_tones(engine, peers, path):
    a, b = peers
    sid = connect(engine, a, b)
    out_pt = 8
    if path == "transcoded":
        engine.set_transcoding(sid, 0, "PCMA", "PCMU", out_pt=0)
        out_pt = 0
    engine.set_dtmf(sid, 0, receive="all", rx_pt=101)
    engine.set_dtmf(sid, 1, send="inband", rx_pt=None)
    noise = (speechlike(seconds=2.0) * 0.05).astype(np.int16)     # quiet background
    schedule = audio(noise[:int(1.6 * 8000)]) + events("159#", at=0.2, ts=50000)
    play(a.rtp, engine.local_endpoint(sid, 0), schedule)
    out = received(b)
    assert out and {header(p)["pt"] for p in out} == {out_pt}       # no telephone-event at B
    assert detect(decoded_audio(out, out_pt)) == "159#"
    got = dtmf_events(engine, 4)
    assert [(e.digit, e.method, e.forward) for e in got] == [(d, "rfc2833", "inband") for d in "159#"]
    assert engine.query(sid)["legs"][1]["dtmf"]["tones_out"] == 4


def test_inband_becomes_rfc2833_in_the_engines_stream(engine, peers):
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_transcoding(sid, 0, "PCMA", "PCMU", out_pt=0)
    engine.set_dtmf(sid, 0, receive="inband", rx_pt=None)
    engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=96)
    pcm = tones("2580", seconds=1.6, at=0.2, tone_ms=100)
    play(a.rtp, engine.local_endpoint(sid, 0), audio(pcm, ssrc=0xA))
    out = received(b)
    voice = [p for p in out if header(p)["pt"] == 0]
    tel = [p for p in out if header(p)["pt"] == 96]
    assert voice and tel and len(voice) + len(tel) == len(out)
    assert event_digits(out, 96) == "2580"
    # the events are the engine's: its SSRC (not A's), inside its sequence numbering
    check_seq_continuity(out)
    assert header(out[0])["ssrc"] != 0xA
    ends = end_packets(out, 96)
    assert len(ends) == 4
    for marker, durations in ends.values():
        assert marker and len(durations) == 3 and len(set(durations)) == 1
        assert 60 * 8 <= durations[0] <= 160 * 8              # 100 ms tones, as detected
    got = dtmf_events(engine, 4)
    assert [(e.digit, e.method, e.forward) for e in got] == [(d, "inband", "rfc2833") for d in "2580"]
    assert all(60 <= e.duration_ms <= 160 for e in got)


def test_inband_on_g711_passthrough_becomes_rfc2833_with_shifted_sequence(engine, peers):
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_dtmf(sid, 0, receive="inband", rx_pt=None)
    engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=101)
    pcm = tones("37", seconds=1.0, at=0.2, tone_ms=100)
    play(a.rtp, engine.local_endpoint(sid, 0), audio(pcm, ssrc=0xA, pt=0, seq=65500))
    out = received(b)
    assert event_digits(out, 101) == "37"
    # A's stream (its SSRC) with the events inserted: later packets' numbers shift past them
    check_seq_continuity(out)
    assert header(out[0])["ssrc"] == 0xA
    assert sum(header(p)["pt"] == 0 for p in out) == 50
    assert detect(decoded_audio(out, 0)) == "37"           # tones stay (mute_inband off)


def test_mute_inband_silences_detected_tones(engine, peers):
    energies = []
    for mute in (False, True):
        a, b = Peer.pair(), Peer.pair()
        sid = connect(engine, a, b)
        engine.set_transcoding(sid, 0, "PCMA", "PCMA")
        engine.set_dtmf(sid, 0, receive="inband", rx_pt=None)
        engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=101, mute_inband=mute)
        play(a.rtp, engine.local_endpoint(sid, 0), audio(tones("4", seconds=0.6, at=0.2, tone_ms=200)))
        out = received(b)
        assert event_digits(out, 101) == "4"
        energies.append(float(np.sum(decoded_audio(out, 8).astype(np.float64) ** 2)))
        engine.delete_session(sid)
        a.close()
        b.close()
    # unmuted: the whole 200 ms tone; muted: only what passed before it was recognised
    assert energies[1] < 0.3 * energies[0]


def test_rfc2833_renumbered_and_regenerated_on_a_transcoded_leg(engine, peers):
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_transcoding(sid, 0, "PCMA", "PCMU", out_pt=0)
    engine.set_dtmf(sid, 0, receive="rfc2833", rx_pt=101)
    engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=96)
    pcm = (speechlike(seconds=1.4) * 0.1).astype(np.int16)
    # A's events: a lost start packet and a duplicated update must not matter
    ev = events("6*", at=0.3, ssrc=0xA, duration_ms=200, every=0.5)
    ev = [item for k, item in enumerate(ev) if k != 0] + [ev[3]]
    play(a.rtp, engine.local_endpoint(sid, 0), audio(pcm, ssrc=0xA) + ev)
    out = received(b)
    assert {header(p)["pt"] for p in out} == {0, 96}
    assert event_digits(out, 96) == "6*"
    check_seq_continuity(out)                              # the engine's SSRC and numbering
    assert header(out[0])["ssrc"] != 0xA
    voice_ts = [header(p)["ts"] for p in out if header(p)["pt"] == 0]
    ends = end_packets(out, 96)
    assert len(ends) == 2
    for ts, (marker, durations) in ends.items():
        assert marker and len(durations) == 3 and len(set(durations)) == 1
        assert durations[0] == 1600                        # A's 200 ms, carried over
        assert min(voice_ts) <= ts <= max(voice_ts)        # on the engine's timeline
    # updates at least every 50 ms between start and end
    first = [p for p in out if header(p)["pt"] == 96 and header(p)["ts"] == min(ends)]
    assert len(first) >= 1 + 3 + 3


def test_all_locks_to_the_first_method_seen(engine, peers):
    """An endpoint sending RFC 2833 and the same digits in-band: each digit once."""
    a, b = peers
    for lead, method in ((0.0, "rfc2833"), (0.08, "inband")):
        sid = connect(engine, a, b)
        engine.set_dtmf(sid, 0, receive="all", rx_pt=101)
        engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=101)
        # events start at the tone's start, or 80 ms after it (the tone is seen first)
        pcm = tones("846", seconds=1.4, at=0.2, tone_ms=150)
        schedule = audio(pcm, ssrc=0xA) + events("846", at=0.2 + lead, ssrc=0xA, duration_ms=150)
        play(a.rtp, engine.local_endpoint(sid, 0), schedule)
        got = dtmf_events(engine, 3)
        assert [(e.digit, e.method) for e in got] == [(d, method) for d in "846"], method
        out = received(b)
        assert event_digits(out, 101) == "846"
        dtmf = engine.query(sid)["legs"][0]["dtmf"]
        assert dtmf["locked"] == method and dtmf["digits_in"] == 3
        if method == "inband":
            assert dtmf["suppressed"] > 0                  # A's own events were dropped
        engine.delete_session(sid)


# ------------------------------------------------------------------ sending digits

def test_send_dtmf_as_events_into_a_passthrough_stream(engine, peers):
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=101)
    engine.set_dtmf(sid, 0, send="rfc2833", rx_pt=101)
    to_b = engine.local_endpoint(sid, 0)
    schedule = audio(np.zeros(8000, dtype=np.int16), ssrc=0xA)
    play(a.rtp, to_b, schedule[:10])
    engine.send_dtmf(sid, 1, "12", duration_ms=100)
    play(a.rtp, to_b, schedule[10:])
    out = received(b)
    assert event_digits(out, 101) == "12"
    check_seq_continuity(out)
    assert header(out[0])["ssrc"] == 0xA
    ends = end_packets(out, 101)
    assert [len(d) for m, d in ends.values()] == [3, 3] and {d[0] for m, d in ends.values()} == {800}
    assert engine.query(sid)["legs"][1]["dtmf"]["events_out"] == 2


def test_send_dtmf_as_tones_while_the_party_is_silent(engine, peers):
    """Tones toward B on a transcoded leg while A sends nothing: the playout ticks carry them."""
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_transcoding(sid, 0, "PCMA", "PCMU", out_pt=0)
    engine.set_dtmf(sid, 1, send="inband", rx_pt=None, tone_ms=60, gap_ms=60)
    engine.send_dtmf(sid, 1, "90D", duration_ms=80)
    time.sleep(0.6)
    out = received(b)
    assert out and {header(p)["pt"] for p in out} == {0}
    assert detect(decoded_audio(out, 0)) == "90D"


def test_send_dtmf_refuses_what_the_engine_cannot_send(engine):
    sid = engine.create_session()
    with pytest.raises(ValueError, match="not configured"):
        engine.send_dtmf(sid, 0, "1")
    engine.set_dtmf(sid, 0, send="info")
    with pytest.raises(ValueError, match="info"):
        engine.send_dtmf(sid, 0, "1")
    with pytest.raises(ValueError, match="digit"):
        engine.send_dtmf(sid, 1, "x")
    with pytest.raises(ValueError):
        engine.set_dtmf(sid, 0, receive="smoke signals")


def test_sip_info_digit_locks_the_leg_and_is_passed_on(engine, peers):
    a, b = peers
    sid = connect(engine, a, b)
    engine.set_dtmf(sid, 0, receive="all", rx_pt=101)
    engine.set_dtmf(sid, 1, send="rfc2833", rx_pt=97)
    schedule = audio(np.zeros(6400, dtype=np.int16), ssrc=0xA)
    play(a.rtp, engine.local_endpoint(sid, 0), schedule[:5])
    assert engine.dtmf_info(sid, 0, "7", 120)
    # now locked to INFO: the same digit arriving as RFC 2833 is a duplicate
    play(a.rtp, engine.local_endpoint(sid, 0), schedule[5:] + events("7", at=0.05, ssrc=0xA))
    got = dtmf_events(engine, 1)
    assert [(e.digit, e.method, e.forward, e.duration_ms) for e in got] == [("7", "info", "rfc2833", 120)]
    out = received(b)
    assert event_digits(out, 97) == "7"
    assert [d for m, d in end_packets(out, 97).values()] == [[960] * 3]
    assert engine.query(sid)["legs"][0]["dtmf"]["suppressed"] > 0
    # a leg that takes RFC 2833 only refuses INFO
    engine.set_dtmf(sid, 0, receive="rfc2833", rx_pt=101)
    assert not engine.dtmf_info(sid, 0, "1")


def test_no_dtmf_state_without_set_dtmf(engine, peers):
    """Pass-through sessions never touch the DTMF code: events pass untouched."""
    a, b = peers
    sid = connect(engine, a, b)
    packets = [p for _, p in _dtmf.event_packets("5", 100, pt=101, ssrc=3)]
    play(a.rtp, engine.local_endpoint(sid, 0), [(0.0, p) for p in packets])
    assert received(b, 0.2) == packets
    assert engine.poll_events() == [] and engine.query(sid)["legs"][0]["dtmf"] is None
    engine.set_dtmf(sid, 0)
    engine.clear_dtmf(sid)
    assert engine.query(sid)["legs"][1]["dtmf"] is None and engine.dtmf_config(sid, 0) is None


# ------------------------------------------------------------------ NG

def ng(server, message):
    reply = server.handle(b"c%d " % time.monotonic_ns() + bencode.encode(message))
    return text(bencode.decode(reply.partition(b" ")[2], str_keys=True))


def text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [text(v) for v in value]
    if isinstance(value, dict):
        return {k: text(v) for k, v in value.items()}
    return value


def sdp_body(port, pt=101):
    return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 {pt}\r\na=rtpmap:8 PCMA/8000\r\n"
            f"a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\na=ptime:20\r\n")


def media_port(sdp):
    sdp = sdp.decode() if isinstance(sdp, bytes) else sdp
    return int(next(line for line in sdp.split("\r\n") if line.startswith("m=audio")).split()[1])


def test_ng_play_dtmf_and_query(engine, peers):
    a, b = peers
    server = NgServer(engine)
    offer = ng(server, {"command": "offer", "call-id": "c1", "from-tag": "A", "sdp": sdp_body(a.port)})
    answer = ng(server, {"command": "answer", "call-id": "c1", "from-tag": "A", "to-tag": "B",
                         "sdp": sdp_body(b.port)})
    # the answer (toward A) says where A sends, the offer (toward B) where B sends
    to_b, to_a = media_port(answer["sdp"]), media_port(offer["sdp"])
    # A "presses" 3 while talking: it goes to B as telephone-event in A's stream
    schedule = audio(np.zeros(6400, dtype=np.int16), ssrc=0xA)
    play(a.rtp, ("127.0.0.1", to_b), schedule[:5])
    reply = ng(server, {"command": "play DTMF", "call-id": "c1", "from-tag": "A", "code": "3",
                        "duration": 100, "volume": 12})
    assert reply == {"result": "ok"}
    play(a.rtp, ("127.0.0.1", to_b), schedule[5:])
    out = received(b)
    assert event_digits(out, 101) == "3"
    ev = [p for p in out if header(p)["pt"] == 101]
    assert _dtmf.parse_event(ev[-1][12:]) == ("3", True, 12, 800)
    check_seq_continuity(out)
    # B sends a digit by RFC 2833: reported, relayed to A, listed in the query under B's tag
    play(b.rtp, ("127.0.0.1", to_a), events("8", at=0.0, ssrc=0xB))
    assert event_digits(received(a), 101) == "8"
    query = ng(server, {"command": "query", "call-id": "c1"})
    stream = query["tags"]["B"]["medias"][0]["streams"][0]
    assert [(d["digit"], d["method"], d["duration"]) for d in stream["DTMF"]] == [("8", "rfc2833", 120)]
    assert stream["DTMF"][0]["time"] >= int(time.time()) - 5
    assert query["tags"]["A"]["medias"][0]["streams"][0]["DTMF"] == []
    # integer codes, bad codes, unknown parties
    assert ng(server, {"command": "play DTMF", "call-id": "c1", "from-tag": "B", "code": 11})["result"] == "ok"
    assert ng(server, {"command": "play DTMF", "call-id": "c1", "from-tag": "B", "code": "x"})["result"] == "error"
    assert ng(server, {"command": "play DTMF", "call-id": "c1", "from-tag": "Z", "code": "1"})["result"] == "error"
    assert ng(server, {"command": "play DTMF", "call-id": "nope", "from-tag": "A", "code": "1"})["result"] == "error"
    ng(server, {"command": "delete", "call-id": "c1"})
