"""DTMF detector micro benchmarks (pytest-benchmark). Run: python -m pytest benchmarks/test_dtmf_micro.py

Cost of the in-band detector per channel per 20 ms frame (160 samples at 8 kHz) on the
three kinds of audio a leg carries: speech (the common case: most blocks fail the first
checks), DTMF tones (every block runs the candidate checks: detuned and harmonic
filters) and silence. The `_160` variants feed one frame per Python call (call overhead
included); the `_1s` variants feed 50 frames in one call, i.e. the C loop the relay will
run, and record `us_per_frame` and `channels_per_core` (20 ms / cost) as extra info."""
import numpy as np
import pytest

from tests import audioutil
from vosmedia import _dtmf

RATE = 8000
FRAME = 160

SIGNALS = {
    "speech": audioutil.speechlike(1.0, seed=5, peak=12000),
    "tones": np.frombuffer(_dtmf.DtmfGenerator(tone_ms=100, gap_ms=100).generate("12345"),
                           dtype=np.int16),
    "silence": np.zeros(RATE, dtype=np.int16),
}


@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_detect_160(benchmark, kind):
    frames = [SIGNALS[kind][i:i + FRAME].tobytes() for i in range(0, RATE, FRAME)]
    det = _dtmf.DtmfDetector()
    state = {"i": 0}

    def one_frame():
        k = state["i"]
        state["i"] = (k + 1) % len(frames)
        return det.feed(frames[k])

    benchmark(one_frame)
    assert det.blocks > 0


@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_detect_1s(benchmark, kind):
    data = SIGNALS[kind][:RATE].tobytes()
    det = _dtmf.DtmfDetector()
    digits = benchmark(det.feed, data)
    if kind == "tones":
        # five 100 ms tones per second; a detector carried across rounds may see a
        # digit split by the round boundary only once
        assert len(digits) >= 4
    else:
        assert digits == ""
    per_frame = benchmark.stats.stats.mean / (RATE // FRAME) * 1e6
    benchmark.extra_info["us_per_frame"] = round(per_frame, 3)
    benchmark.extra_info["channels_per_core"] = int(20000 / per_frame)
