"""Billing micro benchmarks (pytest-benchmark). Run: python -m pytest benchmarks/test_billing_micro.py

Lookups run against a 1,000,000-row deck shaped like a wholesale A-Z (see rate_import.py,
which also times the full 1,000,000-row import); imports here are 100,000 rows so a
round stays short. Rating a call, the maximum duration and admission run once per call.
"""
import io
from decimal import Decimal

import pytest
from rate_import import HEADER, deck, misses, numbers

from control.billing.rates import Rate, RateTable
from control.billing.rating import admissible, max_duration, rate_call, reservation
from control.billing.settings import BillingParams

PARAMS = BillingParams(advance_time=5)
RATE = Rate("4479", Decimal("0.0123"), 30, 6, Decimal("0.01"), "UK Mobile")


@pytest.fixture(scope="module")
def big_table():
    rows = deck(1_000_000)
    return RateTable(rows), numbers(rows, 1000), misses(1000)


@pytest.fixture(scope="module")
def rows_100k():
    return deck(100_000, seed=3)


def test_rate_lookup_hit(benchmark, big_table):
    table, hits, _ = big_table
    assert benchmark(table.lookup, hits[0]) is not None


def test_rate_lookup_miss(benchmark, big_table):
    table, _, missing = big_table
    assert benchmark(table.lookup, missing[0]) is None


def test_rate_lookup_1000_mixed_numbers(benchmark, big_table):
    """Per lookup: the mean divided by 1000 (900 hits, 100 misses)."""
    table, hits, missing = big_table
    sample = hits[:900] + missing[:100]
    lookup = table.lookup
    found = benchmark(lambda: sum(lookup(n) is not None for n in sample))
    assert found == 900


def test_rate_import_100k_tuples(benchmark, rows_100k):
    table = benchmark.pedantic(RateTable, args=(rows_100k,), rounds=5, iterations=1)
    assert len(table) == 100_000


def test_rate_import_100k_csv(benchmark, rows_100k):
    text = HEADER + "".join(",".join(map(str, row)) + "\n" for row in rows_100k)
    table = benchmark.pedantic(lambda: RateTable.from_csv(io.StringIO(text, newline="")),
                               rounds=5, iterations=1)
    assert len(table) == 100_000


def test_rate_call(benchmark):
    assert benchmark(rate_call, 93_456, RATE, PARAMS).fee == Decimal("0.03")


def test_max_duration(benchmark):
    assert benchmark(max_duration, Decimal("12.34"), RATE, PARAMS) == 60144


def test_reservation_and_admission(benchmark):
    def admit():
        return admissible(Decimal("10"), Decimal("0"), Decimal("5"), reservation(RATE, PARAMS))
    assert benchmark(admit) is True
