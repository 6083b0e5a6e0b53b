"""Bencode: exact encodings, round trips, and one clear error type for every malformed input."""
import pytest
from hypothesis import given, settings, strategies as st

from vosmedia.bencode import MAX_DEPTH, BencodeError, decode, encode


@pytest.mark.parametrize("value, wire", [
    (0, b"i0e"),
    (-42, b"i-42e"),
    (2**70, b"i1180591620717411303424e"),
    (b"", b"0:"),
    (b"spam", b"4:spam"),
    ("h\u00e9", b"3:h\xc3\xa9"),
    ([], b"le"),
    ({}, b"de"),
    ([1, b"a", [b"b"]], b"li1e1:al1:bee"),
    ({"b": 1, "a": b"x", b"c": []}, b"d1:a1:x1:bi1e1:clee"),   # keys sorted as bytes
    ({"command": "ping"}, b"d7:command4:pinge"),
    (True, b"i1e"),
    ((1, 2), b"li1ei2ee"),
])
def test_encode_exact(value, wire):
    assert encode(value) == wire


def test_decode_values_and_key_modes():
    data = b"d7:command5:offer5:flagsl13:trust-addresse3:numi-7ee"
    assert decode(data) == {b"command": b"offer", b"flags": [b"trust-address"], b"num": -7}
    assert decode(data, str_keys=True) == {"command": b"offer", "flags": [b"trust-address"], "num": -7}


def test_unsorted_keys_are_accepted_on_decode():
    # Kamailio's module does not sort keys; the NG server must still understand it
    assert decode(b"d1:bi1e1:ai2ee") == {b"b": 1, b"a": 2}


def test_non_utf8_strings_round_trip_through_str_keys():
    raw = b"d2:\xff\xfe1:xe"
    value = decode(raw, str_keys=True)
    assert encode(value) == raw


def test_depth_limit_is_exact():
    assert decode(b"l" * MAX_DEPTH + b"e" * MAX_DEPTH) is not None
    with pytest.raises(BencodeError, match="nesting deeper than 64"):
        decode(b"l" * (MAX_DEPTH + 1) + b"e" * (MAX_DEPTH + 1))
    with pytest.raises(BencodeError, match="nesting"):
        decode(b"d1:a" * 100 + b"i0e" + b"e" * 100)
    assert decode(b"l" * 3 + b"e" * 3, max_depth=3) == [[[]]]
    with pytest.raises(BencodeError):
        decode(b"l" * 4 + b"e" * 4, max_depth=3)


@pytest.mark.parametrize("data, message", [
    (b"", "empty input"),
    (b"i", "truncated integer"),
    (b"i12", "truncated integer"),
    (b"ie", "bad integer"),
    (b"i-e", "bad integer"),
    (b"i+1e", "bad integer"),
    (b"i 1e", "bad integer"),
    (b"i1.5e", "bad integer"),
    (b"i01e", "leading zero"),
    (b"i-0e", "negative zero"),
    (b"i-01e", "leading zero"),
    (b"i" + b"9" * 100 + b"e", "oversized integer"),
    (b"4:abc", "truncated string"),
    (b"4", "truncated string length"),
    (b"04:abcd", "leading zero"),
    (b"-1:a", "unexpected byte"),
    (b"99999999999999999999:x", "oversized string length"),
    (b"l", "truncated list"),
    (b"li1e", "truncated list"),
    (b"d", "truncated dictionary"),
    (b"d1:a", "truncated input"),
    (b"d1:ai1e", "truncated dictionary"),
    (b"di1ei2ee", "not a string"),
    (b"dlei1ee", "not a string"),
    (b"d1:ai1e1:ai2ee", "duplicate dictionary key"),
    (b"i1ei2e", "trailing data"),
    (b"de ", "trailing data"),
    (b"x", "unexpected byte"),
    (b"e", "unexpected byte"),
])
def test_malformed_inputs_raise_bencode_error(data, message):
    with pytest.raises(BencodeError, match=message):
        decode(data)


def test_bencode_error_is_a_value_error_and_str_input_is_rejected():
    assert issubclass(BencodeError, ValueError)
    with pytest.raises(BencodeError, match="bytes"):
        decode("i1e")
    with pytest.raises(BencodeError, match="bytes"):
        decode(12)


@pytest.mark.parametrize("value", [1.5, None, {1: 2}, object(), {"a": {1.0}}])
def test_encode_rejects_unsupported_types(value):
    with pytest.raises(TypeError):
        encode(value)


def test_encode_rejects_keys_that_collide_as_bytes():
    with pytest.raises(TypeError, match="duplicate key"):
        encode({"a": 1, b"a": 2})


def test_decode_accepts_memoryview_and_bytearray():
    assert decode(bytearray(b"4:spam")) == b"spam"
    assert decode(memoryview(b"li1ee")) == [1]


# ------------------------------------------------------------------ properties

values = st.recursive(
    st.integers() | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.binary(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip(value):
    wire = encode(value)
    assert decode(wire) == value
    assert encode(decode(wire)) == wire


@given(values, st.data())
def test_every_truncation_fails_cleanly(value, data):
    wire = encode(value)
    cut = data.draw(st.integers(0, len(wire) - 1))
    with pytest.raises(BencodeError):
        decode(wire[:cut])
    # (a strict prefix of a bencoded value is never itself complete)


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_bencode_error(blob):
    try:
        value = decode(blob)
    except BencodeError:
        return
    assert decode(encode(value)) == value  # whatever decodes round-trips


@settings(max_examples=300)
@given(values, st.data())
def test_mutated_encodings_only_raise_bencode_error(value, data):
    wire = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.sampled_from(b"0123456789ield:-e x\x00"))
    try:
        decoded = decode(bytes(wire))
    except BencodeError:
        return
    assert decode(encode(decoded)) == decoded
