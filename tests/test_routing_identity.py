"""Caller identity: caller number sources, privacy, PAI/Privacy/PPI modes, transparent
headers and the pai_privacy JSON validation."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from control.routing.identity import (ANONYMOUS_FROM, CALLER_SOURCES, OWNED_HEADERS,
                                      IdentityError, IdentityPolicy, caller_number,
                                      privacy_requested, vendor_identity)
from control.sip.message import Headers, parse, parse_name_addr

HOST = "10.0.0.1:5060"


def invite(*lines: str, from_: str = '"Alice" <sip:1001@192.0.2.10>;tag=abc') -> Headers:
    """The headers of a real INVITE with ``lines`` added after the mandatory ones."""
    text = ("INVITE sip:15551234567@10.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {from_}\r\n"
            "To: <sip:15551234567@10.0.0.1>\r\n"
            "Call-ID: c1@192.0.2.10\r\n"
            "CSeq: 1 INVITE\r\n"
            "Contact: <sip:1001@192.0.2.10:5060>\r\n"
            + "".join(line + "\r\n" for line in lines)
            + "Content-Length: 0\r\n\r\n")
    return parse(text.encode()).headers


def identity(headers, policy=IdentityPolicy(), caller="1001", display="Alice",
             support_privacy=True):
    return vendor_identity(headers, policy, caller=caller, display=display, host=HOST,
                           support_privacy=support_privacy)


# ---------------------------------------------------------------------------- caller number

def test_source_from_takes_the_from_user():
    assert caller_number(invite(), "From") == "1001"
    assert caller_number(invite()) == "1001"                 # From is the default


def test_source_from_unescapes_and_drops_subscriber_params():
    h = invite(from_="<sip:%2B4930123;npdi@gw.example.com;user=phone>;tag=1")
    assert caller_number(h, "From") == "+4930123"


def test_source_from_tel_uri():
    assert caller_number(invite(from_="<tel:+15550001>;tag=1"), "From") == "+15550001"


def test_source_rpid_takes_the_rpid_user():
    h = invite('Remote-Party-ID: "Bob" <sip:2002@192.0.2.10>;party=calling;screen=yes')
    assert caller_number(h, "Remote-Party-ID") == "2002"


def test_source_rpid_skips_called_party_and_reads_comma_lists():
    h = invite("Remote-Party-ID: <sip:9999@x>;party=called, <sip:3003@192.0.2.10>;party=calling")
    assert caller_number(h, "Remote-Party-ID") == "3003"


@pytest.mark.parametrize("rpid", [None, "Remote-Party-ID: <<garbage", "Remote-Party-ID: <sip:192.0.2.10>",
                                  "Remote-Party-ID: <sip:9999@x>;party=called"])
def test_source_rpid_falls_back_to_from(rpid):
    h = invite(*([rpid] if rpid else []))
    assert caller_number(h, "Remote-Party-ID") == "1001"


@pytest.mark.parametrize("display,expected", [("+4930123456", "+4930123456"), ("5551234", "5551234"),
                                              ("Alice", "1001"), ("555 1234", "1001"),
                                              ("+", "1001"), ("12+34", "1001")])
def test_source_display(display, expected):
    h = invite(from_=f'"{display}" <sip:1001@192.0.2.10>;tag=1')
    assert caller_number(h, "Display") == expected


def test_source_display_without_display_name_uses_from_user():
    assert caller_number(invite(from_="<sip:1001@192.0.2.10>;tag=1"), "Display") == "1001"


def test_source_is_case_insensitive_and_unknown_raises():
    assert caller_number(invite('Remote-Party-ID: <sip:2002@h>'), "remote-party-id") == "2002"
    with pytest.raises(IdentityError) as err:
        caller_number(invite(), "Contact")
    assert err.value.field == "caller_source"


@pytest.mark.parametrize("from_", ["<sip:192.0.2.10>;tag=1", "<<<", '"unterminated <sip:1@h>', ""])
def test_junk_from_gives_empty(from_):
    h = Headers([("From", from_)]) if from_ else Headers()
    for source in CALLER_SOURCES:
        assert caller_number(h, source) == ""


# ---------------------------------------------------------------------------- privacy request

@pytest.mark.parametrize("line,expected", [
    ("Privacy: id", True), ("Privacy: user", True), ("Privacy: header", True),
    ("Privacy: ID", True), ("Privacy: user;id;critical", True), ("Privacy: critical, id", True),
    ("Privacy: none", False), ("Privacy: session", False), ("Privacy: critical", False),
    ("Remote-Party-ID: <sip:1001@h>;privacy=full", True),
    ("Remote-Party-ID: <sip:1001@h>;privacy=name", True),
    ("Remote-Party-ID: <sip:1001@h>;privacy=uri", True),
    ('Remote-Party-ID: <sip:1001@h>;privacy="full"', True),
    ("Remote-Party-ID: <sip:1001@h>;privacy=off", False),
    ("Remote-Party-ID: <sip:1001@h>;party=calling", False),
    ("Remote-Party-ID: <garbage;privacy=full", False),       # unreadable: ignored
    ("X-Privacy: id", False),
])
def test_privacy_requested(line, expected):
    assert privacy_requested(invite(line)) is expected


def test_no_privacy_headers_is_no_request():
    assert privacy_requested(invite()) is False


# ---------------------------------------------------------------------------- From

def test_from_shows_caller_and_display():
    from_value, extra = identity(invite())
    assert from_value == '"Alice" <sip:1001@10.0.0.1:5060>'
    assert extra == []


def test_from_without_display_and_with_quotes_in_display():
    assert identity(invite(), display="")[0] == "<sip:1001@10.0.0.1:5060>"
    from_value = identity(invite(), display='Al "the" Boss')[0]
    assert parse_name_addr(from_value).display == 'Al "the" Boss'


def test_from_escapes_odd_caller_characters():
    from_value = identity(invite(), caller="+1 (555) <x>@y")[0]
    addr = parse_name_addr(from_value)
    assert addr.uri.user_unescaped == "+1 (555) <x>@y"
    assert addr.uri.host == "10.0.0.1" and addr.uri.port == 5060


def test_privacy_with_support_anonymises_from():
    h = invite("Privacy: id")
    from_value, _ = identity(h, support_privacy=True)
    assert from_value == ANONYMOUS_FROM == '"Anonymous" <sip:anonymous@anonymous.invalid>'


def test_privacy_without_support_shows_the_caller():
    h = invite("Privacy: id", "P-Asserted-Identity: <sip:1001@192.0.2.10>")
    policy = IdentityPolicy(pai="passthrough", privacy="passthrough")
    from_value, extra = identity(h, policy, support_privacy=False)
    assert from_value == '"Alice" <sip:1001@10.0.0.1:5060>'
    # the ignored request is not passed on either; the PAI still is
    assert extra == [("P-Asserted-Identity", "<sip:1001@192.0.2.10>")]


def test_rpid_privacy_anonymises_from():
    h = invite("Remote-Party-ID: <sip:1001@192.0.2.10>;privacy=full")
    assert identity(h)[0] == ANONYMOUS_FROM
    assert identity(h, support_privacy=False)[0] == '"Alice" <sip:1001@10.0.0.1:5060>'


def test_anonymous_call_still_asserts_real_identity():
    h = invite("Privacy: id")
    policy = IdentityPolicy(pai="caller", privacy="passthrough")
    from_value, extra = identity(h, policy, caller="4930123")
    assert from_value == ANONYMOUS_FROM
    assert extra == [("P-Asserted-Identity", "<sip:4930123@10.0.0.1:5060>"), ("Privacy", "id")]


def test_empty_caller_is_anonymous_and_asserts_nothing():
    policy = IdentityPolicy(pai="caller", ppi="caller")
    from_value, extra = identity(invite(), policy, caller="")
    assert from_value == ANONYMOUS_FROM
    assert extra == []


# ---------------------------------------------------------------------------- PAI / Privacy / PPI

INCOMING = ("P-Asserted-Identity: <sip:+4930111@carrier.example>, <tel:+4930111>",
            "P-Preferred-Identity: \"Pref\" <sip:7007@192.0.2.10>",
            "Privacy: id;critical")


@pytest.mark.parametrize("mode,expected", [
    ("none", []),
    ("passthrough", [("P-Asserted-Identity", "<sip:+4930111@carrier.example>, <tel:+4930111>")]),
    ("caller", [("P-Asserted-Identity", "<sip:5550100@10.0.0.1:5060>")]),
])
def test_pai_modes(mode, expected):
    _, extra = identity(invite(*INCOMING), IdentityPolicy(pai=mode), caller="5550100")
    assert extra == expected


@pytest.mark.parametrize("mode,expected", [
    ("none", []),
    ("passthrough", [("P-Preferred-Identity", '"Pref" <sip:7007@192.0.2.10>')]),
    ("caller", [("P-Preferred-Identity", "<sip:5550100@10.0.0.1:5060>")]),
])
def test_ppi_modes(mode, expected):
    _, extra = identity(invite(*INCOMING), IdentityPolicy(ppi=mode), caller="5550100")
    assert extra == expected


@pytest.mark.parametrize("mode,expected", [
    ("none", []),
    ("passthrough", [("Privacy", "id;critical")]),
    ("id", [("Privacy", "id")]),
])
def test_privacy_modes(mode, expected):
    _, extra = identity(invite(*INCOMING), IdentityPolicy(privacy=mode))
    assert extra == expected


def test_privacy_id_is_sent_without_a_request_and_without_support():
    _, extra = identity(invite(), IdentityPolicy(privacy="id"), support_privacy=False)
    assert extra == [("Privacy", "id")]


def test_passthrough_with_nothing_incoming_sends_nothing():
    policy = IdentityPolicy(pai="passthrough", privacy="passthrough", ppi="passthrough")
    assert identity(invite(), policy)[1] == []


def test_passthrough_keeps_every_line():
    h = invite("P-Asserted-Identity: <sip:1@a>", "P-Asserted-Identity: <tel:+1>")
    _, extra = identity(h, IdentityPolicy(pai="passthrough"))
    assert extra == [("P-Asserted-Identity", "<sip:1@a>"), ("P-Asserted-Identity", "<tel:+1>")]


def test_identity_headers_come_in_pai_privacy_ppi_then_extra_order():
    h = invite("X-Tenant: 7", *INCOMING)
    policy = IdentityPolicy(pai="caller", privacy="id", ppi="caller", extra_headers="all")
    _, extra = identity(h, policy)
    assert [name for name, _ in extra] == ["P-Asserted-Identity", "Privacy",
                                           "P-Preferred-Identity", "X-Tenant"]


# ---------------------------------------------------------------------------- extra headers

EXTRA_LINES = ("X-Account: 42", "s: hello there", "Diversion: <sip:100@d>;reason=unconditional",
               "x-account: 43", "User-Agent: Softphone 1.0", "Allow: INVITE, ACK",
               "Supported: timer", "Session-Expires: 1800", "Min-SE: 90", "Expires: 60",
               "Route: <sip:p@h;lr>", "Record-Route: <sip:rr@h;lr>",
               "Proxy-Authorization: Digest username=\"a\"", "Authorization: Digest username=\"b\"",
               "Require: 100rel", "Proxy-Require: foo", "Remote-Party-ID: <sip:1@h>",
               "P-Asserted-Identity: <sip:1@h>", "Privacy: none", "P-Preferred-Identity: <sip:1@h>",
               "Content-Type: application/sdp")


def test_extra_headers_all_copies_unowned_in_order():
    _, extra = identity(invite(*EXTRA_LINES), IdentityPolicy(extra_headers="all"))
    assert extra == [("X-Account", "42"), ("Subject", "hello there"),
                     ("Diversion", "<sip:100@d>;reason=unconditional"), ("x-account", "43")]


def test_extra_headers_all_never_copies_owned_headers():
    h = Headers([(name, "x") for name in sorted(OWNED_HEADERS)] + [("X-Keep", "1")])
    _, extra = identity(h, IdentityPolicy(extra_headers="all"))
    assert extra == [("X-Keep", "1")]
    # the spec's list is all there
    spec = {"Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Route",
            "Record-Route", "Content-Length", "Content-Type", "Allow", "Supported", "Require",
            "Proxy-Require", "Session-Expires", "Min-SE", "User-Agent", "Authorization",
            "Proxy-Authorization", "RAck", "RSeq", "Expires", "P-Asserted-Identity",
            "P-Preferred-Identity", "Privacy", "Remote-Party-ID"}
    assert spec <= OWNED_HEADERS


def test_extra_headers_none_copies_nothing():
    assert identity(invite(*EXTRA_LINES), IdentityPolicy(extra_headers="none"))[1] == []


def test_extra_headers_list_is_case_insensitive_and_expands_compact_names():
    policy = IdentityPolicy(extra_headers=("x-ACCOUNT", "s"))
    assert policy.extra_headers == ("x-ACCOUNT", "Subject")     # unknown names keep their spelling
    _, extra = identity(invite(*EXTRA_LINES), policy)
    assert extra == [("X-Account", "42"), ("Subject", "hello there"), ("x-account", "43")]


def test_extra_headers_list_matches_compact_incoming_form():
    # "Subject" listed in full, sent compact as "s": parse() expanded it
    policy = IdentityPolicy.from_json({"extra_headers": ["subject", "DIVERSION"]})
    _, extra = identity(invite(*EXTRA_LINES), policy)
    assert extra == [("Subject", "hello there"), ("Diversion", "<sip:100@d>;reason=unconditional")]


def test_extra_headers_list_drops_duplicates():
    assert IdentityPolicy(extra_headers=["X-A", "x-a", "X-B"]).extra_headers == ("X-A", "X-B")


def test_empty_extra_list_copies_nothing():
    assert identity(invite(*EXTRA_LINES), IdentityPolicy(extra_headers=()))[1] == []


# ---------------------------------------------------------------------------- JSON

def test_from_json_defaults_and_round_trip():
    assert IdentityPolicy.from_json(None) == IdentityPolicy()
    assert IdentityPolicy.from_json({}) == IdentityPolicy()
    assert IdentityPolicy.from_json({"pai": None}).pai == "none"
    data = {"pai": "caller", "privacy": "id", "ppi": "passthrough", "extra_headers": ["X-A", "s"]}
    policy = IdentityPolicy.from_json(data)
    assert policy == IdentityPolicy("caller", "id", "passthrough", ("X-A", "Subject"))
    assert policy.to_json() == {"pai": "caller", "privacy": "id", "ppi": "passthrough",
                                "extra_headers": ["X-A", "Subject"]}
    assert IdentityPolicy.from_json(policy.to_json()) == policy
    assert IdentityPolicy(extra_headers="all").to_json()["extra_headers"] == "all"


@pytest.mark.parametrize("data,field", [
    ({"pai": "assert"}, "pai_privacy.pai"),
    ({"pai": "Caller"}, "pai_privacy.pai"),
    ({"privacy": "caller"}, "pai_privacy.privacy"),
    ({"privacy": 1}, "pai_privacy.privacy"),
    ({"ppi": "id"}, "pai_privacy.ppi"),
    ({"extra_headers": "some"}, "pai_privacy.extra_headers"),
    ({"extra_headers": 5}, "pai_privacy.extra_headers"),
    ({"extra_headers": {"X-A": 1}}, "pai_privacy.extra_headers"),
    ({"extra_headers": ["X-A", 3]}, "pai_privacy.extra_headers[1]"),
    ({"extra_headers": ["bad name"]}, "pai_privacy.extra_headers[0]"),
    ({"extra_headers": ["X-A", "via"]}, "pai_privacy.extra_headers[1]"),
    ({"extra_headers": ["f"]}, "pai_privacy.extra_headers[0]"),          # compact From
    ({"extra_headers": ["P-Asserted-Identity"]}, "pai_privacy.extra_headers[0]"),
    ({"pia": "caller"}, "pai_privacy.pia"),
    (["pai"], "pai_privacy"),
    ("caller", "pai_privacy"),
])
def test_from_json_errors_name_the_field(data, field):
    with pytest.raises(IdentityError) as err:
        IdentityPolicy.from_json(data)
    assert err.value.field == field
    assert str(err.value).startswith(field + ": ")
    assert isinstance(err.value, ValueError) and err.value.rule


def test_from_json_field_prefix():
    with pytest.raises(IdentityError) as err:
        IdentityPolicy.from_json({"ppi": "x"}, field="gateways[3].pai_privacy")
    assert err.value.field == "gateways[3].pai_privacy.ppi"


def test_direct_construction_validates_too():
    with pytest.raises(IdentityError):
        IdentityPolicy(pai="bogus")
    with pytest.raises(IdentityError):
        IdentityPolicy(extra_headers=("Contact",))


# ---------------------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(["From", "f", "Remote-Party-ID", "Privacy", "P-Asserted-Identity",
                         "P-Preferred-Identity", "X-Custom", "Subject", "Via", "Contact"])
# text without line breaks (Headers refuses those), with SIP punctuation made likely
VALUE = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
            max_size=60),
    st.lists(st.sampled_from(['"', "<", ">", "sip:", "tel:", "@", ";", ",", "privacy=full", "id",
                              "party=called", "+", "1001", "h", " ", "\\", "%", "%zz", "=",
                              "\udcff", "Anonymous"]), max_size=12).map("".join),
)


def _headers(pairs) -> Headers:
    h = Headers()
    for name, value in pairs:
        h.add(name, value)
    return h


POLICIES = st.builds(IdentityPolicy, st.sampled_from(["none", "passthrough", "caller"]),
                     st.sampled_from(["none", "passthrough", "id"]),
                     st.sampled_from(["none", "passthrough", "caller"]),
                     st.sampled_from(["all", "none", ("X-Custom", "Subject")]))


@FUZZ
@given(st.lists(st.tuples(NAMES, VALUE), max_size=8), st.sampled_from(CALLER_SOURCES))
def test_fuzz_caller_number_never_raises(pairs, source):
    number = caller_number(_headers(pairs), source)
    assert isinstance(number, str)
    assert ";" not in number


@FUZZ
@given(st.lists(st.tuples(NAMES, VALUE), max_size=8), POLICIES, VALUE, VALUE, st.booleans())
def test_fuzz_vendor_identity_never_raises_and_builds_valid_headers(pairs, policy, caller,
                                                                   display, support):
    h = _headers(pairs)
    from_value, extra = vendor_identity(h, policy, caller=caller, display=display, host=HOST,
                                        support_privacy=support)
    addr = parse_name_addr(from_value)          # our From always parses
    assert addr.params == {}                    # no tag: the caller of this adds it
    if from_value != ANONYMOUS_FROM:
        assert addr.uri.user_unescaped == caller
        assert addr.display == (display or None)
    else:
        assert not caller or (support and privacy_requested(h))
    out = Headers()
    for name, value in extra:                   # every pair is a header we can send
        out.add(name, value)
        assert name.lower() not in {"via", "from", "to", "contact", "call-id", "cseq"}
