"""Transcoding unit (vosmedia/_transcode.pyx): one direction's decode -> repacketize ->
encode with the engine's own RTP headers.

Quality floor: PCMA 20 ms -> G.729 20 ms -> PCMA through two Transcoders, aligned by
G.729's 40-sample lookahead, measures about 5 dB segmental SNR on the synthetic speech
(the bare G.729 round trip in test_codec measures about the same), and about 5.2 dB
with Annex B VAD/DTX when the output is placed by its RTP timestamps; the floor is 3 dB,
and the same stream decoded with its packets out of order scores about -0.3 dB."""
import struct
import warnings

import numpy as np
import pytest

from audioutil import FRAME, segmental_snr, speechlike
from vosmedia import _codec
from vosmedia._transcode import G729, PCMA, PCMU, Transcoder

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

LOOKAHEAD = 40
SPEECH_FLOOR_DB = 3.0


def parse(packet):
    first, second, seq, ts, ssrc = struct.unpack("!BBHII", packet[:12])
    return {"version": first >> 6, "marker": second >> 7, "pt": second & 0x7F,
            "seq": seq, "ts": ts, "ssrc": ssrc, "payload": packet[12:]}


def feed_all(tc, payloads, start_ts=0, step=160, ssrc=1):
    out = []
    for i, payload in enumerate(payloads):
        out += tc.feed(payload, start_ts + i * step, marker=(i == 0), ssrc=ssrc)
    return [parse(p) for p in out]


def chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data) - size + 1, size)]


def assert_continuous(packets, first_seq=0):
    assert [p["seq"] for p in packets] == [(first_seq + i) & 0xFFFF for i in range(len(packets))]
    assert all(p["version"] == 2 for p in packets)


# ---------------------------------------------------------------- G.711

def test_pcma_to_pcmu_is_bit_exact_with_audioop():
    rng = np.random.default_rng(11)
    pcm = np.concatenate([speechlike(seconds=1.0),
                          rng.integers(-32768, 32768, 8000).astype(np.int16)])
    alaw = audioop.lin2alaw(pcm.tobytes(), 2)
    expected = audioop.lin2ulaw(audioop.alaw2lin(alaw, 2), 2)
    tc = Transcoder("PCMA", "PCMU", out_ssrc=0x12345678)
    packets = feed_all(tc, chunks(alaw, 160))
    assert b"".join(p["payload"] for p in packets) == expected
    assert_continuous(packets)
    assert [p["ts"] for p in packets] == [160 * i for i in range(len(packets))]
    assert [p["marker"] for p in packets] == [1] + [0] * (len(packets) - 1)
    assert {p["pt"] for p in packets} == {PCMU}
    assert {p["ssrc"] for p in packets} == {0x12345678}
    assert tc.stats["packets_in"] == tc.stats["packets_out"] == len(packets) == 100


def test_pcmu_to_pcma_every_code():
    codes = bytes(range(256)) * 5              # 1280 samples = 8 packets of 20 ms
    tc = Transcoder(PCMU, PCMA, out_pt=101)
    packets = feed_all(tc, chunks(codes, 160))
    expected = audioop.lin2alaw(audioop.ulaw2lin(codes, 2), 2)
    assert b"".join(p["payload"] for p in packets) == expected
    assert {p["pt"] for p in packets} == {101}


# ---------------------------------------------------------------- repacketization

def test_ptime_20_to_30():
    alaw = _codec.lin2alaw(speechlike(seconds=0.06))       # 3 x 20 ms
    tc = Transcoder("PCMA", "PCMA", in_ptime=20, out_ptime=30, out_ssrc=7)
    packets = feed_all(tc, chunks(alaw, 160))
    assert len(packets) == 2
    assert [p["ts"] for p in packets] == [0, 240]
    assert [p["seq"] for p in packets] == [0, 1]
    assert [p["marker"] for p in packets] == [1, 0]
    assert [len(p["payload"]) for p in packets] == [240, 240]
    assert b"".join(p["payload"] for p in packets) == alaw   # A-law -> linear -> A-law is exact
    assert tc.pending == 0


@pytest.mark.parametrize("in_ptime", [10, 20, 30, 40])
@pytest.mark.parametrize("out_ptime", [10, 20, 30, 40])
def test_repacketization_keeps_timing(in_ptime, out_ptime):
    alaw = _codec.lin2alaw(speechlike(seconds=1.2, seed=3))
    n_in = in_ptime * 8
    tc = Transcoder("PCMA", "PCMA", in_ptime=in_ptime, out_ptime=out_ptime, seq=65530, ts=4294967000)
    packets = feed_all(tc, chunks(alaw, n_in), step=n_in)
    n_out = out_ptime * 8
    fed = len(alaw) // n_in * n_in
    assert len(packets) == fed // n_out
    assert_continuous(packets, first_seq=65530)
    assert [p["ts"] for p in packets] == [(4294967000 + n_out * i) & 0xFFFFFFFF
                                          for i in range(len(packets))]
    assert all(len(p["payload"]) == n_out for p in packets)
    assert b"".join(p["payload"] for p in packets) == alaw[:len(packets) * n_out]
    assert tc.pending == fed - len(packets) * n_out


# ---------------------------------------------------------------- gaps, SSRC, late

def test_input_gap_advances_output_timestamps():
    alaw = chunks(_codec.lin2alaw(speechlike(seconds=0.4)), 160)
    tc = Transcoder("PCMA", "PCMU", ts=1000)
    first = feed_all(tc, alaw[:5], start_ts=50000)
    gap = 1600                                         # 200 ms of sender silence (DTX)
    second = feed_all(tc, alaw[5:10], start_ts=50000 + 800 + gap)
    packets = first + second
    assert_continuous(packets)
    assert [p["ts"] for p in first] == [1000 + 160 * i for i in range(5)]
    assert [p["ts"] for p in second] == [1000 + 800 + gap + 160 * i for i in range(5)]
    assert [p["marker"] for p in packets] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert tc.stats["gaps"] == 1


def test_gap_inside_a_repacketized_packet_is_filled_then_skipped():
    alaw = chunks(_codec.lin2alaw(speechlike(seconds=0.2)), 160)
    tc = Transcoder("PCMA", "PCMA", out_ptime=30)
    packets = [parse(p) for p in tc.feed(alaw[0], 0, True) + tc.feed(alaw[1], 160)]
    assert [p["ts"] for p in packets] == [0] and tc.pending == 80
    # 400 samples of silence: 160 complete the pending packet, the other 240 are skipped
    packets += [parse(p) for p in tc.feed(alaw[2], 320 + 400)]
    packets += [parse(p) for p in tc.feed(alaw[3], 320 + 400 + 160)]
    assert [p["ts"] for p in packets] == [0, 240, 720]     # output timestamp == input timestamp
    assert [p["marker"] for p in packets] == [1, 0, 1]
    assert packets[1]["payload"][80:] == _codec.lin2alaw(np.zeros(160, np.int16))
    assert_continuous(packets)


def test_ssrc_change_keeps_output_ssrc_and_timeline():
    alaw = chunks(_codec.lin2alaw(speechlike(seconds=0.4)), 160)
    tc = Transcoder("PCMA", "PCMU", out_ssrc=0xCAFEBABE)
    packets = feed_all(tc, alaw[:5], start_ts=123456, ssrc=0x1111)
    packets += feed_all(tc, alaw[5:10], start_ts=987654321, ssrc=0x2222)
    assert {p["ssrc"] for p in packets} == {0xCAFEBABE}
    assert_continuous(packets)
    assert [p["ts"] for p in packets] == [160 * i for i in range(10)]
    assert [p["marker"] for p in packets] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert tc.stats["ssrc_changes"] == 1 and tc.stats["gaps"] == 0


def test_late_and_duplicate_input_is_dropped_and_backwards_jump_resyncs():
    alaw = chunks(_codec.lin2alaw(speechlike(seconds=0.2)), 160)
    tc = Transcoder("PCMA", "PCMA")
    packets = feed_all(tc, alaw[:3])
    assert tc.feed(alaw[1], 160, ssrc=1) == [] and tc.feed(alaw[2], 320, ssrc=1) == []
    assert tc.stats["late"] == 2
    packets += [parse(p) for p in tc.feed(alaw[3], 480, ssrc=1)]
    packets += [parse(p) for p in tc.feed(alaw[4], 480 - 80000, ssrc=1)]   # sender restarted its clock
    assert [p["ts"] for p in packets] == [0, 160, 320, 480, 640]
    assert [p["marker"] for p in packets] == [1, 0, 0, 0, 1]
    assert tc.stats["resyncs"] == 1
    assert_continuous(packets)


# ---------------------------------------------------------------- concealment

def test_g711_concealment_repeats_and_fades_the_last_frame():
    pcm = speechlike(seconds=0.2, seed=5)
    alaw = chunks(_codec.lin2alaw(pcm), 160)
    tc = Transcoder("PCMA", "PCMA", out_ptime=10)
    packets = feed_all(tc, alaw[:3])
    last = np.frombuffer(_codec.alaw2lin(alaw[2][80:]), np.int16).astype(int)
    assert np.any(last != 0)
    concealed = [parse(p) for p in tc.conceal(7)]
    assert [p["ts"] for p in concealed] == [480 + 80 * i for i in range(7)]
    levels = [np.frombuffer(_codec.alaw2lin(p["payload"]), np.int16).astype(int) for p in concealed]
    for k, level in enumerate(levels[:5]):
        gain = (400 - (80 * k + np.arange(80))) / 400
        assert np.all(np.abs(level - last * gain) <= np.abs(last * gain) / 16 + 16)
    assert np.all(np.abs(levels[5]) <= 8) and np.all(np.abs(levels[6]) <= 8)   # A-law's zero
    # the stream goes on where concealment left it, without a gap or a marker
    after = [parse(p) for p in tc.feed(alaw[6], 480 + 560, ssrc=1)]
    assert [p["ts"] for p in after] == [1040, 1120] and after[0]["marker"] == 0
    assert tc.stats["gaps"] == 0 and tc.stats["concealed"] == 7
    assert_continuous(packets + concealed + after)


def test_g729_concealment_extrapolates_speech():
    frames = _codec.G729Encoder().encode(speechlike(seconds=0.5))
    tc = Transcoder("G729", "PCMU")
    feed_all(tc, [b"".join(frames[i:i + 2]) for i in range(0, 22, 2)])   # mid-syllable
    concealed = [parse(p) for p in tc.conceal()]                  # one 20 ms input packet
    assert len(concealed) == 1 and concealed[0]["ts"] == 11 * 160
    assert len(set(concealed[0]["payload"])) > 4                  # extrapolated speech, not silence


# ---------------------------------------------------------------- G.729

def g711_g729_g711(pcm, annexb=False, shuffle=False):
    alaw = chunks(_codec.lin2alaw(pcm), 160)
    to_g729 = Transcoder("PCMA", "G729", annexb=annexb)
    g729 = feed_all(to_g729, alaw)
    if shuffle:
        order = np.random.default_rng(1).permutation(len(g729))
        g729 = [dict(g729[i], ts=g729[j]["ts"]) for i, j in zip(order, range(len(g729)))]
    back = Transcoder("G729", "PCMA")
    out = []
    for p in g729:
        out += back.feed(p["payload"], p["ts"], p["marker"], p["ssrc"])
    decoded = np.frombuffer(_codec.alaw2lin(b"".join(parse(p)["payload"] for p in out)), np.int16)
    return g729, decoded


def test_g711_g729_g711_round_trip_quality():
    pcm = speechlike(seconds=3.0)
    g729, decoded = g711_g729_g711(pcm)
    assert {len(p["payload"]) for p in g729} == {20} and {p["pt"] for p in g729} == {G729}
    assert len(decoded) == len(pcm)
    scores = [segmental_snr(pcm, decoded, lag) for lag in range(81)]
    assert int(np.argmax(scores)) == LOOKAHEAD
    snr = scores[LOOKAHEAD]
    print(f"PCMA -> G.729 -> PCMA segmental SNR {snr:.2f} dB")
    assert snr > SPEECH_FLOOR_DB, snr
    _, scrambled = g711_g729_g711(pcm, shuffle=True)
    assert segmental_snr(pcm, scrambled, LOOKAHEAD) < SPEECH_FLOOR_DB - 2


def test_g729_dtx_round_trip_keeps_audio_at_its_timestamps():
    # With VAD the G.729 leg skips silent frames; the PCMA leg behind it sends nothing for
    # them either, and each PCMA packet's timestamp says where its audio belongs.
    pcm = speechlike(seconds=3.0)
    to_g729 = Transcoder("PCMA", "G729", annexb=True)
    g729 = feed_all(to_g729, chunks(_codec.lin2alaw(pcm), 160))
    assert to_g729.stats["dtx_frames"] > 0
    back = Transcoder("G729", "PCMA")
    placed = np.zeros(len(pcm) + 800, np.int16)
    for p in g729:
        for q in map(parse, back.feed(p["payload"], p["ts"], p["marker"], p["ssrc"])):
            audio = np.frombuffer(_codec.alaw2lin(q["payload"]), np.int16)
            placed[q["ts"]:q["ts"] + len(audio)] = audio
    assert back.stats["gaps"] > 0
    snr = segmental_snr(pcm, placed, LOOKAHEAD)
    print(f"PCMA -> G.729 (annexb) -> PCMA segmental SNR {snr:.2f} dB")
    assert snr > SPEECH_FLOOR_DB, snr


def test_g729_vad_dtx_and_talkspurt_markers():
    pcm = np.concatenate([speechlike(seconds=1.0), np.zeros(8000, np.int16),
                          speechlike(seconds=1.0, seed=9)])
    tc = Transcoder("PCMA", "G729", annexb=True, out_ssrc=99)
    packets = feed_all(tc, chunks(_codec.lin2alaw(pcm), 160))
    assert_continuous(packets)
    sizes = [len(p["payload"]) for p in packets]
    assert all(s % 10 in (0, 2) and 0 < s <= 22 for s in sizes)
    assert any(s % 10 == 2 for s in sizes)                         # SID frames sent
    in_silence = [p for p in packets if 8000 + 800 <= p["ts"] < 16000]
    assert len(in_silence) <= 2 and all(len(p["payload"]) == 2 for p in in_silence)
    # Marker exactly on the first voice packet of each talkspurt: after a SID or a gap.
    prev_end, prev_sid = None, True
    for p in packets:
        voice = len(p["payload"]) >= 10
        frames = len(p["payload"]) // 10 + (len(p["payload"]) % 10 == 2)
        if voice:
            starts = prev_sid or p["ts"] != prev_end
            assert p["marker"] == int(starts), p
        else:
            assert p["marker"] == 0
        prev_end, prev_sid = p["ts"] + 80 * frames, len(p["payload"]) % 10 == 2
    talk_again = next(p for p in packets if p["ts"] >= 16000 and len(p["payload"]) >= 10)
    assert talk_again["marker"] == 1
    assert tc.stats["dtx_frames"] > 70 and tc.stats["sid_out"] >= 1
    assert tc.stats["talkspurts"] == sum(p["marker"] for p in packets) >= 2


def test_g729_vad_off_sends_every_frame():
    pcm = np.concatenate([speechlike(seconds=0.5), np.zeros(4000, np.int16)])
    tc = Transcoder("PCMA", "G729", annexb=False, out_ptime=40)
    packets = feed_all(tc, chunks(_codec.lin2alaw(pcm), 160))
    assert [len(p["payload"]) for p in packets] == [40] * 25
    assert [p["ts"] for p in packets] == [320 * i for i in range(25)]
    assert [p["marker"] for p in packets] == [1] + [0] * 24


def test_g729_sid_input_decodes_to_comfort_noise():
    rng = np.random.default_rng(5)
    noise = np.round(rng.normal(0, 300, 8000)).astype(np.int16)
    frames = _codec.G729Encoder(vad=True).encode(np.concatenate([speechlike(seconds=0.5), noise]))
    sid = next(f for f in frames if len(f) == 2)
    tc = Transcoder("G729", "PCMU", in_ptime=10, out_ptime=10)
    out = [parse(p) for p in tc.feed(sid, 0, ssrc=3) + tc.conceal(20)]
    assert len(out) == 21
    level = np.frombuffer(_codec.ulaw2lin(b"".join(p["payload"] for p in out)), np.int16)
    assert 30 < np.sqrt(np.mean(level.astype(float) ** 2)) < 3000


@pytest.mark.parametrize("size", [0, 1, 3, 9, 11, 13, 14, 19, 21, 31, 70, 72])
def test_bad_g729_payload_sizes_are_rejected_and_counted(size):
    tc = Transcoder("G729", "PCMA")
    with pytest.raises(ValueError):
        tc.feed(bytes(size), 0, ssrc=1)
    with pytest.raises(ValueError):
        tc.feed(bytes(size), 160, ssrc=1)
    assert tc.stats["bad_payload"] == 2 and tc.stats["packets_in"] == 0
    # nothing else changed: the stream starts normally afterwards
    frames = _codec.G729Encoder().encode(speechlike(seconds=0.02))
    packets = [parse(p) for p in tc.feed(b"".join(frames), 5000, ssrc=1)]
    assert [(p["seq"], p["ts"], p["marker"]) for p in packets] == [(0, 0, 1)]


@pytest.mark.parametrize("size", [0, 481])
def test_bad_g711_payload_sizes_are_rejected_and_counted(size):
    tc = Transcoder("PCMU", "PCMA")
    with pytest.raises(ValueError):
        tc.feed(bytes(size), 0)
    assert tc.stats["bad_payload"] == 1


def test_largest_input_into_smallest_output_fits():
    # 60 ms of A-law into G.729 10 ms packets: six packets from one call
    tc = Transcoder("PCMA", "G729", out_ptime=10)
    packets = [parse(p) for p in tc.feed(_codec.lin2alaw(speechlike(seconds=0.06)), 0)]
    assert [p["ts"] for p in packets] == [80 * i for i in range(6)]


def test_configuration_is_validated():
    for kwargs in ({"out_ptime": 25}, {"in_ptime": 70}, {"out_pt": 128}):
        with pytest.raises(ValueError):
            Transcoder("PCMA", "PCMU", **kwargs)
    with pytest.raises(ValueError):
        Transcoder("OPUS", "PCMU")
