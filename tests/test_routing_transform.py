"""Dial plans (number transforms), tech prefixes and caller number pools."""
import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.routing.transform import (
    IDENTITY,
    MAX_RULES,
    CallerPool,
    CallerPoolError,
    DialPlan,
    DialPlanError,
    compile_dial_plan,
    with_tech_prefix,
)


def plan(*rules):
    return compile_dial_plan(list(rules), "callee_dial_plan")


# --- rule kinds ----------------------------------------------------------------------------


def test_strip_removes_leading_characters():
    assert plan({"strip": 2}).apply("0044123") == "44123"
    assert plan({"strip": 0}).apply("0044123") == "0044123"
    assert plan({"strip": 5}).apply("123") == ""  # shorter than N: nothing left, no error


def test_add_prepends():
    assert plan({"add": "0"}).apply("2071234567") == "02071234567"
    assert plan({"add": "+"}).apply("44") == "+44"


def test_replace_only_a_leading_prefix():
    rule = plan({"replace": "00", "with": "+"})
    assert rule.apply("0044123") == "+44123"
    assert rule.apply("1200") == "1200"  # "00" inside the number is left alone
    assert plan({"replace": "9", "with": ""}).apply("9123") == "123"


def test_regex_fullmatch_with_groups():
    rule = plan({"regex": r"00(\d{2})(\d+)", "sub": r"+\1-\2"})
    assert rule.apply("0044123") == "+44-123"
    # fullmatch, not search: trailing junk means no match, number unchanged
    assert rule.apply("0044123x") == "0044123x"
    assert rule.apply("x0044123") == "x0044123"


def test_regex_named_groups_and_whole_match():
    rule = plan({"regex": r"(?P<cc>1)(?P<rest>\d+)", "sub": r"\g<rest>\g<cc>[\g<0>]"})
    assert rule.apply("1555") == "5551[1555]"


def test_regex_group_that_did_not_take_part_inserts_nothing():
    rule = plan({"regex": r"(\+)?(\d+)", "sub": r"<\1>\2"})
    assert rule.apply("+44") == "<+>44"
    assert rule.apply("44") == "<>44"


@pytest.mark.parametrize(
    "regex, sub, number",
    [
        (r"00(\d+)", r"+\1", "0044123"),
        (r"(a)|(b)", r"x\1\2y", "b"),
        (r"(?P<x>\d)(\d)?", r"\g<x>\g<2>\\\g<0>", "12"),
        (r"(?P<x>\d)(\d)?", r"\g<x>\g<2>\\\g<0>", "1"),
        (r"((\d)(\d))", r"\3\2\1", "78"),
        (r"\d*", r"\g<0>\g<0>", ""),
    ],
)
def test_regex_result_equals_match_expand(regex, sub, number):
    # the precompiled template must give exactly what re itself gives
    expected = re.fullmatch(regex, number).expand(sub)
    assert plan({"regex": regex, "sub": sub}).apply(number) == expected


# --- match, order ----------------------------------------------------------------------------


def test_match_limits_a_rule_to_a_prefix():
    rule = plan({"match": "00", "strip": 2})
    assert rule.apply("0044") == "44"
    assert rule.apply("044") == "044"


def test_match_applies_to_regex_rules_too():
    rule = plan({"match": "9", "regex": r"\d+", "sub": "X"})
    assert rule.apply("912") == "X"
    assert rule.apply("812") == "812"


def test_match_sees_the_current_number_not_the_original():
    rules = plan({"strip": 1}, {"match": "44", "add": "+"})
    assert rules.apply("044123") == "+44123"
    assert rules.apply("44123") == "4123"  # after strip it starts with "4", not "44"


def test_rules_apply_in_order():
    assert plan({"add": "1"}, {"add": "2"}).apply("x") == "21x"
    assert plan({"strip": 1}, {"add": "9"}).apply("012") == "912"
    assert plan({"add": "9"}, {"strip": 1}).apply("012") == "012"


def test_module_docstring_example():
    rules = json.loads(
        r'[{"match": "+44", "replace": "+44", "with": "0"}, {"regex": "\\+(\\d+)", "sub": "\\1"}]'
    )
    carrier = compile_dial_plan(rules, "callee_dial_plan")
    assert carrier.apply("+442071234567") == "02071234567"
    assert carrier.apply("+33123456789") == "33123456789"


# --- identity, normalized rules, immutability -----------------------------------------------


def test_empty_list_and_none_give_the_identity_plan():
    for rules in ([], None):
        empty = compile_dial_plan(rules, "caller_dial_plan")
        assert empty.is_identity
        assert empty.rules == []
        assert empty.apply("0044123") == "0044123"
    assert IDENTITY.apply("") == ""
    assert not plan({"strip": 0}).is_identity


def test_rules_round_trip_through_json():
    original = [
        {"strip": 2, "match": "00"},
        {"add": "+"},
        {"match": "+1", "with": "1", "replace": "+1"},
        {"regex": r"(\d+)", "sub": r"\1"},
    ]
    compiled = plan(*original)
    stored = json.loads(json.dumps(compiled.rules))
    assert stored == [
        {"strip": 2, "match": "00"},
        {"add": "+"},
        {"replace": "+1", "with": "1", "match": "+1"},
        {"regex": r"(\d+)", "sub": r"\1"},
    ]
    again = compile_dial_plan(stored, "callee_dial_plan")
    assert again == compiled
    assert again.apply("00155") == compiled.apply("00155") == "155"


def test_plan_is_immutable():
    compiled = plan({"add": "1"})
    with pytest.raises(AttributeError):
        compiled._rules = ()
    compiled.rules.append({"add": "2"})  # a copy: the plan does not change
    assert compiled.rules == [{"add": "1"}]
    assert compiled.apply("x") == "1x"


def test_apply_does_not_truncate_long_results():
    long = plan({"add": "9" * 64}, {"add": "8" * 64})
    assert long.apply("1") == "8" * 64 + "9" * 64 + "1"


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules, field, words",
    [
        ("[]", "callee_dial_plan", "list"),
        ({"strip": 1}, "callee_dial_plan", "list"),
        ([{"strip": 1}] * (MAX_RULES + 1), "callee_dial_plan", "at most 32"),
        ([{"add": "1"}, "strip"], "callee_dial_plan[1]", "rule object"),
        ([{"add": "1"}, {}], "callee_dial_plan[1]", "empty"),
        ([{"strip": 1, "prefix": "9"}], "callee_dial_plan[0].prefix", "unknown key"),
        ([{"match": "9"}], "callee_dial_plan[0]", "one action"),
        ([{"strip": 1, "add": "2"}], "callee_dial_plan[0]", "more than one"),
        ([{"strip": "2"}], "callee_dial_plan[0].strip", "integer"),
        ([{"strip": True}], "callee_dial_plan[0].strip", "integer"),
        ([{"strip": 2.0}], "callee_dial_plan[0].strip", "integer"),
        ([{"strip": 33}], "callee_dial_plan[0].strip", "0-32"),
        ([{"strip": -1}], "callee_dial_plan[0].strip", "0-32"),
        ([{"add": 9}], "callee_dial_plan[0].add", "string"),
        ([{"add": ""}], "callee_dial_plan[0].add", "empty"),
        ([{"add": "1 2"}], "callee_dial_plan[0].add", "whitespace"),
        ([{"add": "1" * 65}], "callee_dial_plan[0].add", "64"),
        ([{"replace": "00"}], "callee_dial_plan[0].with", "required"),
        ([{"replace": "", "with": "1"}], "callee_dial_plan[0].replace", "empty"),
        ([{"replace": "00", "with": None}], "callee_dial_plan[0].with", "string"),
        ([{"add": "1", "with": "2"}], "callee_dial_plan[0].with", "only allowed with replace"),
        ([{"strip": 1, "sub": "2"}], "callee_dial_plan[0].sub", "only allowed with regex"),
        ([{"strip": 1, "match": 9}], "callee_dial_plan[0].match", "string"),
        ([{"strip": 1, "match": ""}], "callee_dial_plan[0].match", "empty"),
        ([{"regex": "(", "sub": ""}], "callee_dial_plan[0].regex", "does not compile"),
        ([{"regex": "a{1,99999999999}", "sub": ""}], "callee_dial_plan[0].regex", "compile"),
        ([{"regex": "1" * 257, "sub": ""}], "callee_dial_plan[0].regex", "256"),
        ([{"regex": "", "sub": ""}], "callee_dial_plan[0].regex", "empty"),
        ([{"regex": 5, "sub": ""}], "callee_dial_plan[0].regex", "string"),
        ([{"regex": r"\d+"}], "callee_dial_plan[0].sub", "required"),
        ([{"regex": r"(\d)", "sub": r"\2"}], "callee_dial_plan[0].sub", "group reference"),
        ([{"regex": r"(\d)", "sub": r"\g<nope>"}], "callee_dial_plan[0].sub", "bad replacement"),
        ([{"regex": r"\d", "sub": r"\q"}], "callee_dial_plan[0].sub", "bad escape"),
        ([{"regex": r"\d", "sub": r"a\n"}], "callee_dial_plan[0].sub", "whitespace"),
        ([{"regex": r"\d", "sub": "a b"}], "callee_dial_plan[0].sub", "whitespace"),
        ([{"regex": r"\d", "sub": "1" * 257}], "callee_dial_plan[0].sub", "256"),
    ],
)
def test_validation_names_the_field(rules, field, words):
    with pytest.raises(DialPlanError) as caught:
        compile_dial_plan(rules, "callee_dial_plan")
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.field == field
    assert words in error.rule
    assert str(error) == f"{field}: {error.rule}"


def test_limits_themselves_are_allowed():
    rules = [{"strip": 32}] + [{"add": "1" * 64}] * (MAX_RULES - 2) + [{"regex": "1" * 256, "sub": ""}]
    assert len(compile_dial_plan(rules, "callee_dial_plan").rules) == MAX_RULES


def test_error_names_the_field_given_by_the_caller():
    with pytest.raises(DialPlanError) as caught:
        compile_dial_plan([{"add": "1"}, {"add": "2"}, {"regex": "[", "sub": ""}], "caller_dial_plan")
    assert caught.value.field == "caller_dial_plan[2].regex"
    assert str(caught.value).startswith("caller_dial_plan[2].regex: does not compile")


# --- tech prefix -----------------------------------------------------------------------------


def test_tech_prefix():
    assert with_tech_prefix("44123", "1234#") == "1234#44123"
    assert with_tech_prefix("44123", "") == "44123"
    assert with_tech_prefix("44123", None) == "44123"


# --- property tests --------------------------------------------------------------------------

numbers = st.text(alphabet="0123456789", max_size=64)
texts = st.text(alphabet="0123456789+#*", min_size=1, max_size=8)
regexes = st.sampled_from(
    [r"\d+", r"(\d)(\d*)", r"00(\d+)", r"(?P<cc>\d{1,3})?(\d*)", r"(1|12)(3)?", r".*", r"9?"]
)
rule_strategy = st.one_of(
    st.builds(lambda n: {"strip": n}, st.integers(0, 32)),
    st.builds(lambda t: {"add": t}, texts),
    st.builds(lambda old, new: {"replace": old, "with": new}, texts, st.text("0123456789", max_size=4)),
    st.builds(lambda r: {"regex": r, "sub": r"\g<0>"}, regexes),
    st.builds(lambda r: {"regex": r, "sub": r"+"}, regexes),
)
matched_rule = st.builds(
    lambda rule, match: {**rule, "match": match} if match else rule,
    rule_strategy,
    st.one_of(st.none(), texts),
)


@settings(max_examples=300)
@given(st.lists(matched_rule, max_size=MAX_RULES), numbers)
def test_apply_never_raises_and_identity_returns_input(rules, number):
    compiled = compile_dial_plan(rules, "callee_dial_plan")
    result = compiled.apply(number)
    assert isinstance(result, str)
    assert IDENTITY.apply(number) == number
    assert compile_dial_plan([], "callee_dial_plan").apply(number) == number


@given(regexes, st.sampled_from([r"\g<0>", r"[\1]", r"\\x"]), numbers)
def test_regex_rule_agrees_with_re(regex, sub, number):
    try:
        compiled = plan({"regex": regex, "sub": sub})
    except DialPlanError:
        assert re.compile(regex).groups == 0  # \1 on a pattern without groups
        return
    found = re.fullmatch(regex, number)
    assert compiled.apply(number) == (found.expand(sub) if found else number)


# --- caller pools ----------------------------------------------------------------------------


def test_round_robin_rotates_in_list_order():
    pool = CallerPool(["a", "b", "c"], "round_robin", multiplexes=10)
    assert [pool.acquire() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_round_robin_skips_full_numbers_and_continues_after_last():
    pool = CallerPool(["a", "b", "c"], "round_robin", multiplexes=1)
    assert pool.acquire() == "a"
    assert pool.acquire() == "b"
    pool.release("a")
    # the cursor is after "b": "c" is next, then wrap to the free "a"
    assert pool.acquire() == "c"
    assert pool.acquire() == "a"
    assert pool.acquire() is None
    pool.release("b")
    assert pool.acquire() == "b"


def test_multiplexes_limit_and_release_frees_one_slot():
    pool = CallerPool(["100", "200"], "round_robin", multiplexes=2)
    taken = [pool.acquire() for _ in range(4)]
    assert sorted(taken) == ["100", "100", "200", "200"]
    assert pool.acquire() is None
    assert pool.in_use("100") == 2 and pool.in_use("200") == 2

    pool.release("200")
    assert pool.in_use("200") == 1
    assert pool.acquire() == "200"
    assert pool.acquire() is None


def test_random_mode_uses_only_numbers_not_in_full_use():
    pool = CallerPool(["a", "b", "c", "d"], "random", multiplexes=1, rng=random.Random(7))
    first = {pool.acquire(), pool.acquire()}
    assert len(first) == 2  # never the same number twice while it is full
    picks = set()
    for _ in range(50):
        number = pool.acquire()
        assert number is not None and number not in first
        picks.add(number)
        pool.release(number)
    assert picks == {"a", "b", "c", "d"} - first  # both free numbers do get picked


def test_random_mode_is_reproducible_with_a_seeded_rng():
    def picks(seed):
        pool = CallerPool([str(n) for n in range(10)], "random", 3, rng=random.Random(seed))
        return [pool.acquire() for _ in range(30)]

    assert picks(1) == picks(1)
    assert sorted(picks(1)) == sorted(str(n) for n in range(10) for _ in range(3))
    assert picks(1) != picks(2)


def test_random_mode_returns_none_when_all_are_full():
    pool = CallerPool(["a"], "random", 1, rng=random.Random(0))
    assert pool.acquire() == "a"
    assert pool.acquire() is None


def test_empty_pool_gives_nothing():
    for mode in CallerPool.MODES:
        pool = CallerPool([], mode)
        assert len(pool) == 0
        assert pool.acquire() is None


def test_release_is_harmless_for_unknown_and_idle_numbers():
    pool = CallerPool(["a"], "round_robin", 1)
    pool.release("zzz")
    pool.release("a")  # not in use: stays at zero
    assert pool.in_use("a") == 0
    assert pool.in_use("zzz") == 0
    assert pool.acquire() == "a"
    pool.release("a")
    pool.release("a")
    assert pool.in_use("a") == 0
    assert pool.acquire() == "a"
    assert pool.acquire() is None  # the extra release did not create a second slot


def test_pool_len_and_settings():
    pool = CallerPool(("1", "2", "3"), "random", 5)
    assert len(pool) == 3
    assert pool.numbers == ("1", "2", "3")
    assert (pool.mode, pool.multiplexes) == ("random", 5)


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"numbers": "123"}, "caller_pool", "list"),
        ({"numbers": None}, "caller_pool", "list"),
        ({"numbers": ["1", ""]}, "caller_pool[1]", "empty"),
        ({"numbers": ["1", 2]}, "caller_pool[1]", "string"),
        ({"numbers": ["1 2"]}, "caller_pool[0]", "whitespace"),
        ({"numbers": ["1" * 65]}, "caller_pool[0]", "64"),
        ({"numbers": ["1", "2", "1"]}, "caller_pool[2]", "duplicate"),
        ({"mode": "sequential"}, "caller_pool_mode", "round_robin"),
        ({"multiplexes": 0}, "caller_pool_multiplexes", "1-1000"),
        ({"multiplexes": 1001}, "caller_pool_multiplexes", "1-1000"),
        ({"multiplexes": "2"}, "caller_pool_multiplexes", "integer"),
        ({"multiplexes": True}, "caller_pool_multiplexes", "integer"),
    ],
)
def test_pool_validation_names_the_field(kwargs, field, words):
    args = {"numbers": ["1", "2"], "mode": "round_robin", "multiplexes": 1, **kwargs}
    with pytest.raises(CallerPoolError) as caught:
        CallerPool(**args)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert words in caught.value.rule
    assert str(caught.value) == f"{field}: {caught.value.rule}"


def test_pool_limits_themselves_are_allowed():
    pool = CallerPool(["1" * 64], "round_robin", 1000)
    assert [pool.acquire() for _ in range(1000)] == ["1" * 64] * 1000
    assert pool.acquire() is None


def test_dial_plan_type_is_exported():
    assert isinstance(plan({"add": "1"}), DialPlan)
