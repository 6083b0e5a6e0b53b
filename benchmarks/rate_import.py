"""Rate table import and lookup at carrier scale.

    python benchmarks/rate_import.py [--rows 1000000] [--compare] [--out result.json]

Generates a deck shaped like a wholesale A-Z with number ranges (real country codes, each
with its bare code as the fallback and nested ranges 1–7 digits deeper, a few thousand
distinct prices, 60/60, 1/1 and 30/6 units, areas per country), writes it as CSV, then
reports:

* CSV import seconds (``RateTable.from_csv``) and the table's memory (RSS growth);
* import seconds from a list of tuples (``RateTable(rows)``);
* mean lookup µs over 100,000 E.164 numbers of 11–13 digits (hits) and over numbers no
  prefix matches (misses, the worst case: every prefix length is probed);
* with ``--compare``: the same lookups through a ``sortedcontainers.SortedDict`` index
  (bisect, then shorten to the common prefix and bisect again), the alternative design.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from control.billing.rates import RateTable  # noqa: E402

# Country codes in use (ITU-T E.164), with a rough share of a deck's rows.
COUNTRIES = {
    "1": 40, "7": 12, "20": 4, "27": 4, "30": 2, "31": 3, "32": 3, "33": 6, "34": 5, "36": 2,
    "39": 6, "40": 3, "41": 3, "43": 3, "44": 8, "45": 2, "46": 3, "47": 2, "48": 4, "49": 8,
    "51": 3, "52": 6, "53": 1, "54": 4, "55": 8, "56": 3, "57": 4, "58": 3, "60": 3, "61": 4,
    "62": 8, "63": 5, "64": 2, "65": 2, "66": 4, "81": 5, "82": 3, "84": 5, "86": 12, "90": 4,
    "91": 12, "92": 6, "93": 2, "94": 2, "95": 2, "98": 3, "212": 2, "213": 2, "216": 1,
    "218": 1, "220": 1, "221": 1, "225": 1, "233": 2, "234": 4, "237": 1, "243": 2, "251": 2,
    "254": 2, "255": 2, "256": 2, "260": 1, "263": 1, "351": 2, "352": 1, "353": 2, "354": 1,
    "355": 1, "358": 2, "359": 1, "370": 1, "371": 1, "372": 1, "373": 1, "374": 1, "375": 1,
    "380": 3, "381": 1, "385": 1, "386": 1, "387": 1, "420": 2, "421": 1, "502": 1, "503": 1,
    "504": 1, "505": 1, "506": 1, "507": 1, "591": 1, "593": 2, "595": 1, "598": 1, "852": 2,
    "853": 1, "855": 1, "856": 1, "880": 3, "886": 2, "960": 1, "961": 1, "962": 1, "963": 1,
    "964": 2, "965": 1, "966": 3, "967": 1, "968": 1, "970": 1, "971": 3, "972": 2, "973": 1,
    "974": 1, "976": 1, "977": 1, "992": 1, "993": 1, "994": 1, "995": 1, "996": 1, "998": 2,
}
# How many digits a range adds to its country code, and how often.
DEPTHS = (1, 2, 3, 4, 5, 6, 7)
DEPTH_WEIGHTS = (2, 8, 20, 30, 25, 10, 5)
HEADER = "prefix,price,first_unit,next_unit,connection_fee,area\n"


def deck(rows: int, seed: int = 7) -> list[tuple[str, str, int, int, str, str]]:
    """``rows`` unique, realistic rate rows (prefix, price, first, next, fee, area)."""
    rng = random.Random(seed)
    codes = list(COUNTRIES)
    weights = [COUNTRIES[c] for c in codes]
    base = {c: rng.randint(5, 3000) for c in codes}               # 0.0005–0.3000 per minute
    units = {c: rng.choices([(60, 60), (1, 1), (30, 6)], (80, 15, 5))[0] for c in codes}
    table: dict[str, tuple] = {}
    for code in codes:                                              # the "rest of" fallback
        table[code] = _row(rng, code, code, base[code], units[code], "Fixed")
    while len(table) < rows:
        need = rows - len(table)
        for code, depth in zip(rng.choices(codes, weights, k=need),
                               rng.choices(DEPTHS, DEPTH_WEIGHTS, k=need)):
            prefix = code + str(rng.randrange(10 ** depth)).zfill(depth)
            if prefix not in table:
                kind = "Mobile" if prefix[len(code)] in "6789" else "Fixed"
                table[prefix] = _row(rng, prefix, code, base[code], units[code], kind)
    return list(table.values())


def _row(rng: random.Random, prefix: str, code: str, base: int, units: tuple, kind: str) -> tuple:
    factor = rng.choice((1, 1, 1, 2, 3)) if kind == "Mobile" else 1
    price = f"{base * factor / 10000:.4f}"
    fee = "0.0100" if rng.random() < 0.02 else "0"
    return (prefix, price, units[0], units[1], fee, f"+{code} {kind}")


def numbers(rows: list[tuple], count: int, seed: int = 11) -> list[str]:
    """E.164 numbers of 11–13 digits that start with a prefix of the deck."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        prefix = rng.choice(rows)[0]
        size = max(len(prefix) + 1, rng.randint(11, 13))
        out.append(prefix + "".join(rng.choice("0123456789") for _ in range(size - len(prefix))))
    return out


def misses(count: int, seed: int = 13) -> list[str]:
    """Numbers no prefix matches: no country code starts with 0."""
    rng = random.Random(seed)
    return ["0" + "".join(rng.choice("0123456789") for _ in range(12)) for _ in range(count)]


def write_csv(rows: list[tuple], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(HEADER)
        f.writelines(f"{p},{price},{first},{nxt},{fee},{area}\n" for p, price, first, nxt, fee, area in rows)


def mean_lookup_us(lookup, sample: list[str], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for number in sample:
            lookup(number)
        best = min(best, time.perf_counter() - start)
    return best / len(sample) * 1e6


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class SortedPrefixIndex:
    """The alternative design: prefixes in a SortedDict, longest match by bisection."""

    def __init__(self, table: RateTable):
        from sortedcontainers import SortedDict
        self._rates = SortedDict((rate.prefix, rate) for rate in table)
        self._keys = self._rates.keys()

    def lookup(self, number: str):
        probe = number
        while probe:
            i = self._rates.bisect_right(probe) - 1
            if i < 0:
                return None
            key = self._keys[i]
            if probe.startswith(key):
                return self._rates[key]
            # The longest matching prefix is also a prefix of what probe and key share.
            same = 0
            for a, b in zip(probe, key):
                if a != b:
                    break
                same += 1
            probe = probe[:same]
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=100_000)
    parser.add_argument("--compare", action="store_true", help="also time a SortedDict index")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args(argv)

    rows = deck(args.rows)
    hits, missing = numbers(rows, args.lookups), misses(args.lookups)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rates.csv")
        write_csv(rows, path)
        csv_mb = os.path.getsize(path) / 2**20
        del rows
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        table = RateTable.from_csv(path, "bench")
        csv_seconds = time.perf_counter() - start
        gc.collect()
        table_mb = rss_mb() - before
    tuples = [tuple(rate) for rate in table]     # Decimal amounts, as the store hands them
    start = time.perf_counter()
    again = RateTable(tuples)
    tuple_seconds = time.perf_counter() - start
    assert len(again) == len(table) == args.rows
    del again, tuples
    gc.collect()

    result = {
        "rows": len(table), "csv_mb": round(csv_mb, 1), "prefix_lengths": len(table._lengths),
        "import_csv_s": round(csv_seconds, 2), "import_tuples_s": round(tuple_seconds, 2),
        "table_rss_mb": round(table_mb),
        "lookup_hit_us": round(mean_lookup_us(table.lookup, hits), 2),
        "lookup_miss_us": round(mean_lookup_us(table.lookup, missing), 2),
        "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
    }
    if args.compare:
        start = time.perf_counter()
        index = SortedPrefixIndex(table)
        result["sorted_build_s"] = round(time.perf_counter() - start, 2)
        assert all(index.lookup(n) == table.lookup(n) for n in hits[:2000] + missing[:200])
        result["sorted_lookup_hit_us"] = round(mean_lookup_us(index.lookup, hits), 2)
        result["sorted_lookup_miss_us"] = round(mean_lookup_us(index.lookup, missing), 2)
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
