"""Routing micro benchmarks (pytest-benchmark). Run: python -m pytest benchmarks/test_routing_micro.py

The prefix index holds 100,000 distinct prefixes (random digits, 2–12 long, seeded), each
served by 1–5 of 1,000 gateways: about 300,000 pairs, so every gateway serves about 300
prefixes. Lookups are random 11–15 digit numbers; every one hits a 2-digit prefix (all
100 exist) and most hit a few longer ones, so ``matches`` returns a short fallback chain.
"""
import random

import pytest

from control.routing.index import PrefixIndex

PREFIXES = 100_000
GATEWAYS = 1_000


def routing_pairs(seed: int = 1) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    prefixes: set[str] = set()
    while len(prefixes) < PREFIXES:
        length = rng.randint(2, 12)
        prefixes.add("".join(rng.choices("0123456789", k=length)))
    return [(prefix, gateway)
            for prefix in sorted(prefixes)
            for gateway in rng.sample(range(GATEWAYS), rng.randint(1, 5))]


def random_numbers(count: int, seed: int = 2) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices("0123456789", k=rng.randint(11, 15))) for _ in range(count)]


@pytest.fixture(scope="module")
def pairs():
    pairs = routing_pairs()
    # The data is what the docstring claims (checked here: --benchmark-only skips tests
    # without the benchmark fixture).
    assert 280_000 <= len(pairs) <= 320_000
    assert 280 <= len(pairs) / len({g for _, g in pairs}) <= 320
    return pairs


@pytest.fixture(scope="module")
def index(pairs):
    index = PrefixIndex.build(pairs)
    assert len(index) == PREFIXES
    return index


def test_prefix_matches_one_number(benchmark, index):
    number = random_numbers(1)[0]
    found = benchmark(index.matches, number)
    assert found and found[-1][0] == number[:2]


def test_prefix_matches_1000_numbers(benchmark, index):
    """Per lookup: the mean divided by 1000."""
    sample = random_numbers(1000)
    matches = index.matches
    found = benchmark(lambda: sum(len(matches(n)) for n in sample))
    assert found >= 1000


def test_prefix_longest_1000_numbers(benchmark, index):
    """Per lookup: the mean divided by 1000."""
    sample = random_numbers(1000)
    longest = index.longest
    found = benchmark(lambda: sum(longest(n) is not None for n in sample))
    assert found == 1000


def test_prefix_index_build_300k_pairs(benchmark, pairs):
    index = benchmark.pedantic(PrefixIndex.build, args=(pairs,), rounds=3, iterations=1)
    assert len(index) == PREFIXES
