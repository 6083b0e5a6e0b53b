"""Prefix index over routing gateways (control/routing/index.py)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control.routing.index import MAX_PREFIX, PrefixIndex

PAIRS = [("49", 3), ("49", 1), ("4930", 2), ("491", 5), ("4930", 1), ("", 9), ("1", 4)]


@pytest.fixture
def index() -> PrefixIndex:
    return PrefixIndex.build(PAIRS)


def test_matches_longest_first_with_sorted_ids(index):
    assert index.matches("4930123456") == [("4930", (1, 2)), ("49", (1, 3)), ("", (9,))]
    assert index.matches("4915112345") == [("491", (5,)), ("49", (1, 3)), ("", (9,))]


def test_empty_prefix_matches_every_number_and_comes_last(index):
    assert index.matches("331234") == [("", (9,))]
    assert index.matches("") == [("", (9,))]
    assert index.longest("331234") == ("", (9,))
    assert index.matches("12")[-1] == ("", (9,))


def test_number_shorter_than_all_prefixes():
    index = PrefixIndex.build([("4930", 1), ("49301", 2)])
    assert index.matches("493") == []
    assert index.matches("") == []
    assert index.longest("49") is None
    assert index.matches("4930") == [("4930", (1,))]


def test_number_longer_than_max_prefix(index):
    number = "4930" + "7" * 40
    assert index.matches(number) == [("4930", (1, 2)), ("49", (1, 3)), ("", (9,))]
    assert index.longest(number) == ("4930", (1, 2))


def test_non_digit_numbers_only_match_the_empty_prefix(index):
    assert index.matches("+4930123") == [("", (9,))]


def test_longest(index):
    assert index.longest("4930999") == ("4930", (1, 2))
    assert index.longest("4915") == ("491", (5,))
    assert index.longest("4931") == ("49", (1, 3))
    assert PrefixIndex.build([("1", 1)]).longest("2") is None


def test_duplicate_pairs_count_once():
    index = PrefixIndex.build([("44", 7), ("44", 2), ("44", 7), ("44", 2), ("4", 7)])
    assert len(index) == 2
    assert index.gateways_for_prefix("44") == (2, 7)
    assert list(index.pairs()) == [("4", 7), ("44", 2), ("44", 7)]


def test_gateways_for_prefix_len_contains(index):
    assert index.gateways_for_prefix("4930") == (1, 2)
    assert index.gateways_for_prefix("") == (9,)
    assert index.gateways_for_prefix("493") == ()
    assert len(index) == 5
    assert "491" in index and "493" not in index


def test_pairs_round_trip(index):
    pairs = list(index.pairs())
    assert pairs == sorted(set(PAIRS))
    assert PrefixIndex.build(pairs) == index


def test_identical_id_tuples_are_shared():
    index = PrefixIndex.build([("1", 2), ("1", 1), ("22", 1), ("22", 2), ("333", 1)])
    assert index.gateways_for_prefix("1") is index.gateways_for_prefix("22")


def test_empty_index():
    for index in (PrefixIndex(), PrefixIndex.build([])):
        assert len(index) == 0
        assert index.matches("4930") == []
        assert index.longest("4930") is None
        assert list(index.pairs()) == []


def test_build_accepts_a_generator_and_max_length_prefix():
    prefix = "9" * MAX_PREFIX
    index = PrefixIndex.build((p, g) for p, g in [(prefix, 1)])
    assert index.longest(prefix + "0") == (prefix, (1,))


@pytest.mark.parametrize("prefix, gateway, problem", [
    ("49a", 3, "not all digits"),
    (" 49", 3, "not all digits"),
    ("+49", 3, "not all digits"),
    ("٤٩", 3, "not all digits"),             # Arabic-Indic digits: isdigit() but not ASCII
    ("1" * (MAX_PREFIX + 1), 3, "33 digits, at most 32"),
    (49, 3, "not text"),
    (None, 3, "not text"),
    ("49", "3", "gateway id '3' is not an int"),
    ("49", True, "gateway id True is not an int"),
    ("49", 3.0, "gateway id 3.0 is not an int"),
])
def test_bad_pairs_are_refused_naming_prefix_and_gateway(prefix, gateway, problem):
    with pytest.raises(ValueError) as err:
        PrefixIndex.build([("1", 1), (prefix, gateway), ("2", 2)])
    message = str(err.value)
    assert problem in message
    assert repr(prefix) in message and repr(gateway) in message


# --- against a brute-force reference --------------------------------------------------

def naive_matches(pairs, number):
    """Scan every pair: the prefixes of number, longest first, with their sorted ids."""
    served: dict[str, set[int]] = {}
    for prefix, gateway in pairs:
        if number.startswith(prefix):
            served.setdefault(prefix, set()).add(gateway)
    return [(p, tuple(sorted(served[p]))) for p in sorted(served, key=len, reverse=True)]


# A small alphabet and short prefixes so that numbers often hit several prefixes.
prefixes = st.text("0123", max_size=6)
pair_lists = st.lists(st.tuples(prefixes, st.integers(0, 20)), max_size=60)
numbers = st.text("0123", max_size=10) | st.text("0123", min_size=33, max_size=40)


@given(pair_lists, st.lists(numbers, min_size=1, max_size=10))
def test_matches_equals_naive_scan(pairs, sample):
    index = PrefixIndex.build(pairs)
    for number in sample:
        expected = naive_matches(pairs, number)
        assert index.matches(number) == expected
        assert index.longest(number) == (expected[0] if expected else None)


@given(pair_lists)
def test_contents_equal_the_pairs(pairs):
    index = PrefixIndex.build(pairs)
    assert list(index.pairs()) == sorted(set(pairs))
    assert len(index) == len({p for p, _ in pairs})
    for prefix, _ in pairs:
        assert index.gateways_for_prefix(prefix) == tuple(sorted({g for p, g in pairs
                                                                  if p == prefix}))
