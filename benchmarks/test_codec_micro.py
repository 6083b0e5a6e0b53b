"""Codec micro benchmarks (pytest-benchmark). Run: python -m pytest benchmarks/test_codec_micro.py

G.711 encode/decode of one 20 ms packet (160 samples) and G.729 encode/decode of one
10 ms frame, each through the Python-facing API (a call costs ~0.1-0.2 µs on top of the
codec). The 1 s variants run 100 frames in one call, i.e. the C loop the relay will use;
their `us_per_frame` extra info is the per-frame codec cost without the Python call."""
import numpy as np
import pytest

from vosmedia import _codec

RATE = 8000


def voice(seconds):
    """Harmonics of a 140 Hz pitch with a syllable-rate envelope: keeps G.729 on its
    full speech path (no silence shortcuts)."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)
    return np.round(x / np.max(np.abs(x)) * 10000).astype(np.int16)


PACKET = voice(0.02)                      # 160 samples
SECOND = voice(1.0)


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_g711_encode_160(benchmark, law):
    encode = getattr(_codec, f"lin2{law}")
    assert len(benchmark(encode, PACKET)) == 160


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_g711_decode_160(benchmark, law):
    data = getattr(_codec, f"lin2{law}")(PACKET)
    decode = getattr(_codec, f"{law}2lin")
    assert len(benchmark(decode, data)) == 320


def test_g729_encode_frame(benchmark):
    encoder = _codec.G729Encoder(vad=False)
    frame = SECOND[:80].copy()
    assert len(benchmark(encoder.encode_frame, frame)) == 10


def test_g729_decode_frame(benchmark):
    frame = _codec.G729Encoder().encode(SECOND)[40]
    decoder = _codec.G729Decoder()
    assert len(benchmark(decoder.decode, frame)) == 160


def test_g729_encode_100_frames(benchmark):
    encoder = _codec.G729Encoder(vad=False)
    frames = benchmark(encoder.encode, SECOND)
    assert len(frames) == 100
    benchmark.extra_info["us_per_frame"] = round(benchmark.stats.stats.mean * 1e6 / 100, 2)


def test_g729_decode_100_frames(benchmark):
    payload = b"".join(_codec.G729Encoder().encode(SECOND))
    decoder = _codec.G729Decoder()
    assert len(benchmark(decoder.decode, payload)) == 2 * len(SECOND)
    benchmark.extra_info["us_per_frame"] = round(benchmark.stats.stats.mean * 1e6 / 100, 2)
