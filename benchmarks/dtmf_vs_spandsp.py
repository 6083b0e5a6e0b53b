"""vosmedia's in-band DTMF detector beside spandsp's (Debian libspandsp-dev), same audio, one run.

    python benchmarks/dtmf_vs_spandsp.py [--seconds 60] [--repeat 21] [--out results.json]

Every signal is 8 kHz int16 after a G.711 A-law round trip (vosmedia._codec), and both
detectors see the same samples.

Speed: µs per 20 ms frame (160 samples) per channel, on `--seconds` of speech-like audio
(tests/audioutil.speechlike) and on as much DTMF tone/gap audio.
* spandsp: a small C harness, compiled here with gcc -O3 into a temporary directory and
  linked with -lspandsp, runs dtmf_rx_init(NULL, NULL, NULL), then dtmf_rx(s, amp, 160)
  and dtmf_rx_get(s, buf, max) for every frame; clock_gettime(CLOCK_MONOTONIC) around the
  frame loop, the best of `--repeat` passes (fresh state each pass, created outside the
  timed loop).
* vosmedia: DtmfDetector.feed() on the whole buffer in one call (its C loop cuts the
  samples into 102-sample blocks whatever the chunk size), timed with perf_counter_ns,
  best of `--repeat`, divided by the number of 160-sample frames. Reported as well: feed()
  called once per 160-sample frame from Python, minus the measured cost of an empty
  feed(b"") call (the Python call overhead), best of `--repeat`.

Detection: the tone suites of tests/test_dtmf.py (ETSI ES 201 235-3 / ITU-T Q.24), each
fed in 160-sample frames to a fresh detector of each kind: per condition the digits
detected correctly (accept conditions) or the tones rejected (reject conditions), and
the false digits on speech (talk-off).
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import audioutil  # noqa: E402
from tests.test_dtmf import KEYS, sequence  # noqa: E402
from vosmedia import _codec, _dtmf  # noqa: E402

RATE = 8000
FRAME = 160

HARNESS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <spandsp.h>

/* usage: harness file.raw repeats
   file.raw: int16 native-endian samples, fed in 160-sample frames.
   prints: line 1 the digits of the first pass, line 2 the best pass in ns, line 3 frames */
int main(int argc, char **argv)
{
    FILE *f = fopen(argv[1], "rb");
    int repeats = atoi(argv[2]);
    if (f == NULL || repeats < 1)
        return 2;
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    long n = bytes / 2;
    int16_t *amp = malloc(bytes > 0 ? bytes : 2);
    if (n > 0 && fread(amp, 2, n, f) != (size_t) n)
        return 2;
    fclose(f);
    long frames = n / 160;
    size_t cap = (size_t) n / 102 + 16;
    char *digits = malloc(cap + 1);
    size_t ndigits = 0;
    char buf[128];
    long long best = -1;
    for (int r = 0; r < repeats; r++) {
        dtmf_rx_state_t *s = dtmf_rx_init(NULL, NULL, NULL);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long k = 0; k < frames; k++) {
            dtmf_rx(s, amp + k * 160, 160);
            size_t m = dtmf_rx_get(s, buf, (int) sizeof(buf) - 1);
            if (r == 0 && m > 0 && ndigits + m <= cap) {
                memcpy(digits + ndigits, buf, m);
                ndigits += m;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long long ns = (long long) (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
        if (best < 0 || ns < best)
            best = ns;
        dtmf_rx_free(s);
    }
    digits[ndigits] = 0;
    printf("%s\n%lld\n%ld\n", digits, best, frames);
    free(digits);
    free(amp);
    return 0;
}
"""


def alaw(x):
    """int16 samples of float (or int) samples after a G.711 A-law round trip."""
    pcm = np.clip(np.round(np.asarray(x, dtype=float)), -32768, 32767).astype(np.int16)
    return np.frombuffer(_codec.alaw2lin(_codec.lin2alaw(pcm)), dtype=np.int16).copy()


def frames_of(pcm):
    """pcm cut to a whole number of 160-sample frames (padded with silence)."""
    pad = (-len(pcm)) % FRAME
    return np.concatenate([pcm, np.zeros(pad, dtype=np.int16)]) if pad else pcm


class Spandsp:
    def __init__(self, workdir):
        self.workdir = workdir
        src = os.path.join(workdir, "harness.c")
        self.exe = os.path.join(workdir, "harness")
        with open(src, "w") as f:
            f.write(HARNESS_C)
        subprocess.run(["gcc", "-O3", "-o", self.exe, src, "-lspandsp", "-lm"], check=True)
        self.count = 0

    def run(self, pcm, repeats=1):
        """(digits, best ns for the whole buffer, frames)"""
        self.count += 1
        path = os.path.join(self.workdir, f"in{self.count}.raw")
        frames_of(pcm).astype(np.int16).tofile(path)
        out = subprocess.run([self.exe, path, str(repeats)], check=True, capture_output=True,
                             text=True).stdout.split("\n")
        os.unlink(path)
        return out[0], int(out[1]), int(out[2])


def ours_detect(pcm):
    det = _dtmf.DtmfDetector()
    pcm = frames_of(pcm)
    return "".join(det.feed(pcm[i:i + FRAME].tobytes()) for i in range(0, len(pcm), FRAME))


def ours_time_whole(pcm, repeats):
    data = frames_of(pcm).tobytes()
    best = digits = None
    for _ in range(repeats):
        det = _dtmf.DtmfDetector()
        t0 = time.perf_counter_ns()
        got = det.feed(data)
        ns = time.perf_counter_ns() - t0
        best = ns if best is None else min(best, ns)
        digits = got if digits is None else digits
    return best, digits


def ours_time_frames(pcm, repeats):
    """(best ns for feeding every frame from Python, best ns for as many empty calls)"""
    pcm = frames_of(pcm)
    frames = [pcm[i:i + FRAME].tobytes() for i in range(0, len(pcm), FRAME)]
    empty = [b""] * len(frames)
    def timed(chunks):
        feed = _dtmf.DtmfDetector().feed
        t0 = time.perf_counter_ns()
        for chunk in chunks:
            feed(chunk)
        return time.perf_counter_ns() - t0

    return (min(timed(frames) for _ in range(repeats)),
            min(timed(empty) for _ in range(repeats)))


def matched(expected, got):
    """Digits of `expected` found in order in `got` (longest common subsequence)."""
    prev = [0] * (len(got) + 1)
    for a in expected:
        cur = [0] * (len(got) + 1)
        for j, b in enumerate(got):
            cur[j + 1] = prev[j] + 1 if a == b else max(prev[j + 1], cur[j])
        prev = cur
    return prev[-1]


def suites(speech_seconds):
    """(name, kind, expected digits, pcm) for every condition; kind is 'accept' (count the
    digits detected), 'reject' (count the tones not detected) or 'talk-off' (false digits)."""
    out = []
    for level in (-3, -6, -10, -15, -20, -23, -26):
        out.append((f"level {level} dBm0, 16 digits", "accept", KEYS,
                    alaw(sequence(KEYS, row_dbm0=level, col_dbm0=level))))
    for dev in (-0.015, 0.015):
        out.append((f"deviation {dev * 100:+.1f} %", "accept", KEYS, alaw(sequence(KEYS, deviation=dev))))
    for dev in (-0.035, 0.035):
        out.append((f"deviation {dev * 100:+.1f} % (reject)", "reject", KEYS,
                    alaw(sequence(KEYS, deviation=dev))))
    for base in (-6.0, -12.0):
        out.append((f"twist: high tone 8 dB weaker (low {base:.0f} dBm0)", "accept", KEYS,
                    alaw(sequence(KEYS, row_dbm0=base, col_dbm0=base - 8))))
        out.append((f"twist: high tone 4 dB stronger (high {base:.0f} dBm0)", "accept", KEYS,
                    alaw(sequence(KEYS, row_dbm0=base - 4, col_dbm0=base))))
    for level in (-10.0, -20.0, -26.0):
        parts = [alaw(sequence(KEYS, snr_db=15, seed=seed, row_dbm0=level, col_dbm0=level))
                 for seed in range(3)]
        # each seed on its own (a detector per seed), concatenated results
        out.append((f"S/N 15 dB, {level:.0f} dBm0, 3 seeds", "accept", KEYS * 3, parts))
    leads = list(range(0, 102, 17))
    out.append((f"40 ms tone / 40 ms gap, {len(leads)} offsets", "accept", KEYS * len(leads),
                [alaw(sequence(KEYS, tone_ms=40, gap_ms=40, lead_ms=lead / 8)) for lead in leads]))
    out.append(("repeats 5555, 40 ms tone / 40 ms gap", "accept", "5555",
                alaw(sequence("5555", tone_ms=40, gap_ms=40))))
    out.append(("15 ms tones (reject)", "reject", "5555", alaw(sequence("5555", tone_ms=15, gap_ms=60))))
    out.append(("level -36 dBm0 (reject)", "reject", KEYS, alaw(sequence(KEYS, row_dbm0=-36, col_dbm0=-36))))
    out.append((f"talk-off: speechlike {speech_seconds:.0f} s", "talk-off", "", speech_talkoff(speech_seconds)))
    return out


def speech_talkoff(seconds):
    """The talk-off signal of tests/test_dtmf.py: four seeds and peaks, seconds in all."""
    quarter = seconds / 4
    return [alaw(audioutil.speechlike(quarter, seed=seed, peak=peak))
            for seed, peak in ((1, 12000), (2, 30000), (3, 4000), (4, 20000))]


def tone_audio(seconds):
    """DTMF tone/gap audio of `seconds`: the 16 digits at -10 dBm0, 50 ms / 50 ms, repeated."""
    one = alaw(sequence(KEYS, lead_ms=0))
    reps = int(np.ceil(seconds * RATE / len(one)))
    return np.tile(one, reps)[:int(seconds * RATE)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio per speed measurement and talk-off")
    ap.add_argument("--repeat", type=int, default=21, help="timed passes, best kept")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if shutil.which("gcc") is None or subprocess.run(["dpkg-query", "-W", "libspandsp-dev"],
                                                     capture_output=True).returncode != 0:
        sys.exit("needs gcc and libspandsp-dev (apt-get install -y libspandsp-dev)")
    spandsp_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "libspandsp-dev"],
                                     capture_output=True, text=True).stdout.strip()

    with tempfile.TemporaryDirectory(prefix="dtmf_spandsp_") as tmp:
        sp = Spandsp(tmp)

        # ------------------------------------------------------------ detection
        rows = []
        talkoff_audio = None
        for name, kind, expected, pcm in suites(args.seconds):
            parts = pcm if isinstance(pcm, list) else [pcm]
            if kind == "talk-off":
                talkoff_audio = np.concatenate(parts)
            got_ours = "".join(ours_detect(p) for p in parts)
            got_sp = "".join(sp.run(p)[0] for p in parts)
            row = {"condition": name, "kind": kind, "expected": expected,
                   "ours": got_ours, "spandsp": got_sp}
            for who, got in (("ours", got_ours), ("spandsp", got_sp)):
                if kind == "accept":
                    row[who + "_correct"] = matched(expected, got)
                    row[who + "_extra"] = len(got) - row[who + "_correct"]
                    row[who + "_ok"] = got == expected
                elif kind == "reject":
                    row[who + "_correct"] = max(0, len(expected) - len(got))
                    row[who + "_extra"] = len(got)
                    row[who + "_ok"] = got == ""
                else:
                    row[who + "_correct"] = 0
                    row[who + "_extra"] = len(got)
                    row[who + "_ok"] = got == ""
            rows.append(row)

        # ------------------------------------------------------------ speed
        speed = {}
        for label, audio in (("speech", talkoff_audio), ("tones", tone_audio(args.seconds))):
            audio = frames_of(audio)
            nframes = len(audio) // FRAME
            # warm up both
            sp.run(audio[:RATE], 1)
            ours_time_whole(audio[:RATE], 1)
            sp_digits, sp_ns, sp_frames = sp.run(audio, args.repeat)
            whole_ns, ours_digits = ours_time_whole(audio, args.repeat)
            full_ns, empty_ns = ours_time_frames(audio, args.repeat)
            assert sp_frames == nframes
            sp_us = sp_ns / nframes / 1000
            ours_us = whole_ns / nframes / 1000
            ours_frame_us = (full_ns - empty_ns) / nframes / 1000
            speed[label] = {
                "seconds": len(audio) / RATE, "frames": nframes,
                "spandsp_us_per_frame": round(sp_us, 4),
                "ours_us_per_frame_one_call": round(ours_us, 4),
                "ours_us_per_frame_160_calls_minus_overhead": round(ours_frame_us, 4),
                "ours_python_call_overhead_us": round(empty_ns / nframes / 1000, 4),
                "ratio_ours_over_spandsp": round(ours_us / sp_us, 3),
                "ratio_ours_160_calls_over_spandsp": round(ours_frame_us / sp_us, 3),
                "spandsp_channels_per_core": int(20000.0 / sp_us),
                "ours_channels_per_core": int(20000.0 / ours_us),
                "spandsp_digits": len(sp_digits),
                "ours_digits": len(ours_digits),
            }

    # ---------------------------------------------------------------- report
    def cell(row, who):
        if row["kind"] == "accept":
            n = len(row["expected"])
            s = f"{row[who + '_correct']}/{n}"
            if row[who + "_extra"]:
                s += f" (+{row[who + '_extra']} wrong/extra)"
        elif row["kind"] == "reject":
            n = len(row["expected"])
            s = f"{n - len(row[who])}/{n} rejected"
        else:
            s = f"{row[who + '_extra']} false digits"
            if row[who]:
                s += f" ({row[who][:20]})"
        return s if row[who + "_ok"] else f"**{s}**"

    lines = ["| condition (A-law, 160-sample frames) | vosmedia | spandsp |", "|---|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['condition']} | {cell(row, 'ours')} | {cell(row, 'spandsp')} |")
    lines += ["", "| speed, µs per 20 ms frame per channel | vosmedia (one call) | vosmedia (per-frame calls − overhead) | spandsp | ratio vosmedia/spandsp | channels per core (vosmedia / spandsp) |",
              "|---|---:|---:|---:|---:|---:|"]
    for label, s in speed.items():
        lines.append(f"| {label}, {s['seconds']:.0f} s | {s['ours_us_per_frame_one_call']:.3f} | "
                     f"{s['ours_us_per_frame_160_calls_minus_overhead']:.3f} | {s['spandsp_us_per_frame']:.3f} | "
                     f"{s['ratio_ours_over_spandsp']:.2f} | {s['ours_channels_per_core']:,} / "
                     f"{s['spandsp_channels_per_core']:,} |")
    print("\n".join(lines))
    worse = [r["condition"] for r in rows if r["spandsp_ok"] and not r["ours_ok"]]
    print(f"\nconditions where vosmedia is wrong and spandsp right: {worse or 'none'}")
    if args.out:
        result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(),
                  "spandsp": spandsp_version, "args": vars(args), "detection": rows, "speed": speed,
                  "table": "\n".join(lines)}
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
