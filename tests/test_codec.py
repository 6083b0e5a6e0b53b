"""Codecs (vosmedia._codec): G.711 bit-exactness against audioop over every input, and
G.729 through bcg729 — quality, Annex B VAD/SID, erasure concealment, bad payload sizes,
and an independent decode of our frames by bcg729 called through ctypes.

Quality floors (segmental SNR, 10 ms frames, decoded output aligned by bcg729's 5 ms /
40-sample lookahead): a 1 kHz tone measures about 11 dB and the synthetic speech about
5 dB here. The floors are 8 dB and 3 dB; decoding random bytes, or outputting silence,
scores 0 dB or less on both, so a broken encoder, decoder or frame order fails them."""
import warnings

import numpy as np
import pytest

import bcg729ref

from audioutil import FRAME, segmental_snr, speechlike, tone
from vosmedia import _codec

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))
LOOKAHEAD = 40      # samples: the decoded signal lags the input by G.729's 5 ms lookahead
TONE_FLOOR_DB = 8.0
SPEECH_FLOOR_DB = 3.0


# ---------------------------------------------------------------- G.711

@pytest.mark.parametrize("ours, reference", [(_codec.lin2alaw, audioop.lin2alaw),
                                             (_codec.lin2ulaw, audioop.lin2ulaw)])
def test_g711_encode_matches_audioop_for_every_linear_value(ours, reference):
    got = ours(ALL_LINEAR)
    want = reference(ALL_LINEAR.tobytes(), 2)
    assert len(got) == 65536
    bad = [i for i in range(65536) if got[i] != want[i]]
    assert not bad, f"{len(bad)} inputs differ, first {int(ALL_LINEAR[bad[0]])}"


@pytest.mark.parametrize("ours, reference", [(_codec.alaw2lin, audioop.alaw2lin),
                                             (_codec.ulaw2lin, audioop.ulaw2lin)])
def test_g711_decode_matches_audioop_for_every_code(ours, reference):
    got = np.frombuffer(ours(ALL_CODES), np.int16)
    want = np.frombuffer(reference(ALL_CODES, 2), np.int16)
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:10]


def test_g711_known_codes():
    # ITU-T G.711: A-law zero is 0xD5 (positive) / 0x55 (negative); µ-law zero is 0xFF.
    assert _codec.lin2alaw(np.array([0, -1, 32767, -32768], np.int16)) == b"\xd5\x55\xaa\x2a"
    assert _codec.lin2ulaw(np.array([0, 32767, -32768], np.int16)) == b"\xff\x80\x00"
    assert np.frombuffer(_codec.alaw2lin(b"\xd5\xaa"), np.int16).tolist() == [8, 32256]
    assert np.frombuffer(_codec.ulaw2lin(b"\xff\x80\x00"), np.int16).tolist() == [0, 32124, -32124]


def test_g711_round_trip_is_idempotent_on_codes():
    assert _codec.lin2alaw(_codec.alaw2lin(ALL_CODES)) == ALL_CODES
    # µ-law has two zeros (0x7F and 0xFF); every other code must survive decode -> encode.
    mu = bytes(c for c in ALL_CODES if c != 0x7F)
    assert _codec.lin2ulaw(_codec.ulaw2lin(mu)) == mu


def test_g711_accepts_bytes_and_unaligned_buffers():
    pcm = tone(seconds=0.02)
    raw = pcm.tobytes()
    want = _codec.lin2alaw(pcm)
    assert _codec.lin2alaw(raw) == want
    assert _codec.lin2alaw(bytearray(raw)) == want
    shifted = bytearray(b"\x00" + raw)
    assert _codec.lin2alaw(memoryview(shifted)[1:]) == want   # odd address: copied, same result
    assert _codec.lin2ulaw(b"") == b"" and _codec.alaw2lin(b"") == b""
    with pytest.raises(ValueError):
        _codec.lin2alaw(b"\x00\x01\x02")


# ---------------------------------------------------------------- G.729 helpers

def g729_round_trip(pcm, vad=False):
    frames = _codec.G729Encoder(vad=vad).encode(pcm)
    decoder = _codec.G729Decoder()
    out = bytearray()
    for frame in frames:
        out += decoder.decode(frame) if frame else decoder.conceal()
    return frames, np.frombuffer(bytes(out), np.int16)


def best_lag(reference, decoded, max_lag=80):
    scores = [segmental_snr(reference, decoded, lag) for lag in range(max_lag + 1)]
    return int(np.argmax(scores)), max(scores)


# ---------------------------------------------------------------- G.729 quality

def test_g729_tone_quality_and_delay():
    pcm = tone(1000.0, seconds=2.0)
    frames, decoded = g729_round_trip(pcm)
    assert all(len(f) == 10 for f in frames) and len(frames) == 200
    assert len(decoded) == len(pcm)
    snr = segmental_snr(pcm, decoded, LOOKAHEAD)
    assert snr > TONE_FLOOR_DB, snr


def test_g729_speechlike_quality_beats_garbage():
    pcm = speechlike(seconds=3.0)
    _, decoded = g729_round_trip(pcm)
    lag, snr = best_lag(pcm, decoded)
    assert lag == LOOKAHEAD
    assert snr > SPEECH_FLOOR_DB, snr
    garbage = np.random.default_rng(3).integers(0, 256, len(pcm) // 8, dtype=np.uint8).tobytes()
    noise = np.frombuffer(_codec.G729Decoder().decode(garbage), np.int16)
    assert best_lag(pcm, noise)[1] < 0.0
    assert segmental_snr(pcm, np.zeros_like(pcm)) < SPEECH_FLOOR_DB


def test_g729_multi_frame_payload_equals_frame_by_frame():
    pcm = speechlike(seconds=0.5)
    frames = _codec.G729Encoder().encode(pcm)
    one = _codec.G729Decoder()
    by_frame = b"".join(one.decode(f) for f in frames)
    two = _codec.G729Decoder()
    by_payload = b"".join(two.decode(b"".join(frames[i:i + 2])) for i in range(0, len(frames), 2))
    assert by_frame == by_payload


def test_g729_encode_frame_equals_encode():
    pcm = speechlike(seconds=0.3)
    a, b = _codec.G729Encoder(), _codec.G729Encoder()
    assert [a.encode_frame(pcm[i:i + FRAME]) for i in range(0, len(pcm), FRAME)] == b.encode(pcm)


# ---------------------------------------------------------------- Annex B

def test_g729_vad_on_silence_sends_sid_or_nothing():
    pcm = np.concatenate([speechlike(seconds=1.0), np.zeros(8000, np.int16)])
    frames = _codec.G729Encoder(vad=True).encode(pcm)
    lengths = [len(f) for f in frames]
    assert set(lengths) <= {0, 2, 10}
    # The speech's pauses start with a SID frame; unchanging digital silence after that
    # needs no update, so the last 800 ms send nothing at all.
    assert 10 in lengths[:50] and 2 in lengths
    assert lengths[-80:] == [0] * 80, lengths[-80:]
    assert lengths.index(2) < lengths.index(0)


def test_g729_vad_off_always_sends_full_frames():
    pcm = np.concatenate([speechlike(seconds=0.5), np.zeros(8000, np.int16)])
    encoder = _codec.G729Encoder(vad=False)
    assert not encoder.vad and _codec.G729Encoder(vad=True).vad
    assert all(len(f) == 10 for f in encoder.encode(pcm))


def test_g729_sid_decodes_to_comfort_noise():
    rng = np.random.default_rng(5)
    pcm = np.concatenate([speechlike(seconds=0.5),
                          np.round(rng.normal(0, 300, 8000)).astype(np.int16)])
    frames, decoded = g729_round_trip(pcm, vad=True)
    assert any(len(f) == 2 for f in frames)
    assert len(decoded) == len(pcm)
    tail = decoded[-4000:].astype(float)
    rms = np.sqrt(np.mean(tail ** 2))
    assert 30 < rms < 3000, rms          # noise of roughly the input's level, not silence
    # A payload may end with a SID frame after voice frames.
    voice = _codec.G729Encoder().encode(pcm[:160])
    sid = next(f for f in frames if len(f) == 2)
    out = _codec.G729Decoder().decode(b"".join(voice) + sid)
    assert len(out) == 2 * 3 * FRAME


# ---------------------------------------------------------------- erasures and bad input

def test_g729_erasure_concealment():
    pcm = speechlike(seconds=0.5)
    frames = _codec.G729Encoder().encode(pcm)
    decoder = _codec.G729Decoder()
    fresh = decoder.conceal()                # nothing received yet: no crash
    assert len(fresh) == 2 * FRAME
    for frame in frames[:30]:
        decoder.decode(frame)
    concealed = np.frombuffer(decoder.conceal(3), np.int16)
    assert len(concealed) == 3 * FRAME
    assert np.any(concealed != 0)           # extrapolated speech, not silence
    assert decoder.conceal(0) == b""
    assert len(decoder.decode(frames[33])) == 2 * FRAME   # decoding resumes


@pytest.mark.parametrize("size", [1, 3, 5, 9, 11, 13, 14, 19, 21, 24, 31, 39])
def test_g729_impossible_payload_sizes_are_rejected(size):
    assert _codec.g729_frames(size) == -1
    decoder = _codec.G729Decoder()
    with pytest.raises(ValueError, match="G.729 payload"):
        decoder.decode(bytes(size))
    assert len(decoder.decode(bytes(10))) == 2 * FRAME    # the channel still works


@pytest.mark.parametrize("size, frames", [(0, 0), (2, 1), (10, 1), (12, 2), (20, 2), (22, 3),
                                          (30, 3), (40, 4)])
def test_g729_payload_sizes(size, frames):
    assert _codec.g729_frames(size) == frames
    assert len(_codec.G729Decoder().decode(bytes(size))) == 2 * FRAME * frames


def test_g729_encoder_rejects_partial_frames():
    encoder = _codec.G729Encoder()
    with pytest.raises(ValueError):
        encoder.encode_frame(np.zeros(79, np.int16))
    with pytest.raises(ValueError):
        encoder.encode(np.zeros(120, np.int16))
    with pytest.raises(ValueError):
        encoder.encode(b"\x00" * 161)
    assert encoder.encode(b"") == []


# ---------------------------------------------------------------- independent harness

@pytest.fixture(scope="module")
def bcg729():
    return bcg729ref.load()


ctypes_encode, ctypes_decode = bcg729ref.ctypes_encode, bcg729ref.ctypes_decode


@pytest.mark.parametrize("vad", [False, True])
def test_g729_matches_bcg729_called_through_ctypes(bcg729, vad):
    rng = np.random.default_rng(11)
    pcm = np.concatenate([speechlike(seconds=1.0), np.round(rng.normal(0, 200, 8000)).astype(np.int16),
                          speechlike(seconds=0.5, seed=3)])
    ours = _codec.G729Encoder(vad=vad).encode(pcm)
    assert ours == ctypes_encode(bcg729, pcm, vad)
    if vad:
        assert {0, 2, 10} <= {len(f) for f in ours}
    frames, decoded = g729_round_trip(pcm, vad=vad)
    assert frames == ours
    independent = np.frombuffer(ctypes_decode(bcg729, ours), np.int16)
    assert len(independent) == len(decoded)
    diff = np.flatnonzero(independent != decoded)
    assert diff.size == 0, f"{diff.size} samples differ, first at {diff[0]}"
    # Lost packets: every 7th frame missing, concealed by both.
    lossy = [b"" if i % 7 == 3 else f for i, f in enumerate(ours)]
    decoder = _codec.G729Decoder()
    concealed = b"".join(decoder.decode(f) if f else decoder.conceal() for f in lossy)
    assert concealed == ctypes_decode(bcg729, lossy)
