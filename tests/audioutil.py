"""Test signals and quality measures for the codec and transcoding tests (8 kHz, int16)."""
import numpy as np

RATE = 8000
FRAME = 80          # 10 ms


def tone(freq=1000.0, seconds=1.0, amplitude=8000.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _resonator(x, freq, bandwidth):
    """Two-pole resonance (a formant) at freq Hz with the given bandwidth, unit-ish gain."""
    r = np.exp(-np.pi * bandwidth / RATE)
    c1, c2 = 2 * r * np.cos(2 * np.pi * freq / RATE), -r * r
    y = np.empty(len(x))
    y1 = y2 = 0.0
    gain = 1 - r
    for i, v in enumerate(x):
        y0 = gain * v + c1 * y1 + c2 * y2
        y[i] = y0
        y2, y1 = y1, y0
    return y


def speechlike(seconds=3.0, seed=7, peak=12000):
    """Voiced speech stand-in: a glottal pulse train with a wandering pitch (95-175 Hz)
    through three formants that change vowel every 250 ms, shaped into 250 ms syllables
    separated by pauses (2 Hz envelope), with a little breath noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = 130 + 35 * np.sin(2 * np.pi * 0.7 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    pulses = np.diff(np.floor(np.cumsum(f0 / RATE)), prepend=0.0)
    source = pulses + 0.02 * rng.standard_normal(n)
    vowels = [(730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410),
              (300, 870, 2240)]
    span, warm = RATE // 4, 200
    out = np.zeros(n)
    for k in range(0, n, span):
        f1, f2, f3 = vowels[(k // span) % len(vowels)]
        s = source[max(0, k - warm):k + span]
        y = _resonator(s, f1, 80) + 0.6 * _resonator(s, f2, 100) + 0.3 * _resonator(s, f3, 150)
        out[k:k + span] = y[min(k, warm):]
    out *= np.clip(np.sin(2 * np.pi * 2.0 * t), 0, None) ** 0.7
    return np.round(out / np.max(np.abs(out)) * peak).astype(np.int16)


def segmental_snr(reference, decoded, lag=0, floor_rms=100.0):
    """Mean over 10 ms frames of the SNR in dB (each clamped to [-10, 35], the usual
    convention), comparing reference[i] with decoded[i + lag]; frames of the reference
    quieter than floor_rms are skipped (pauses say nothing about a waveform coder)."""
    a = np.asarray(reference, dtype=float)
    b = np.asarray(decoded, dtype=float)[lag:]
    n = min(len(a), len(b)) // FRAME * FRAME
    a, b = a[:n].reshape(-1, FRAME), b[:n].reshape(-1, FRAME)
    signal = np.sum(a * a, axis=1)
    noise = np.sum((a - b) ** 2, axis=1) + 1e-9
    keep = signal >= FRAME * floor_rms ** 2
    assert keep.sum() >= 10, "too few active frames to measure"
    return float(np.mean(np.clip(10 * np.log10(signal[keep] / noise[keep]), -10, 35)))
