"""SIP digest authentication: RFC 7616 vectors, client/server round trips, stale and forged
nonces, replayed nonce counts, and a parser that only ever raises ValueError."""
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.sip.auth import (
    ALGORITHMS, AuthResult, Challenge, Credential, DigestAuthenticator, DigestClient, Outcome,
    compute_ha1, compute_response, parse_auth_header, parse_challenges, select_challenge,
)

REALM = "sip.carrier.example"
SECRET = b"0123456789abcdef0123456789abcdef"
URI = "sip:registrar.carrier.example"
T0 = 1_700_000_000.0

# RFC 7616 §3.9.1
RFC_USER = "Mufasa"
RFC_PASSWORD = "Circle of Life"
RFC_REALM = "http-auth@example.org"
RFC_URI = "/dir/index.html"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}
HASHLIB = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class Clock:
    def __init__(self, now=T0):
        self.now = now

    def __call__(self):
        return self.now


def users(**passwords):
    def lookup(username, realm):
        password = passwords.get(username)
        return Credential(password) if password is not None else None
    return lookup


def make_server(clock=None, **options):
    options.setdefault("clock", clock or Clock())
    return DigestAuthenticator(REALM, SECRET, users(alice="wonderland"), **options)


def login(server, client, method="REGISTER", uri=URI, **kwargs):
    header = client.authorize(server.challenge(), method, uri)
    return header, server.verify(header, method, uri, **kwargs)


def rebuild(params):
    """A Digest header value from params, every value quoted."""
    quoted = ", ".join(
        f'{k}="' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for k, v in params.items())
    return "Digest " + quoted


# ---------------------------------------------------------------------------- RFC 7616 vectors

@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_vectors_by_hand(algorithm):
    h = lambda text: HASHLIB[algorithm](text.encode()).hexdigest()
    ha1 = h(f"{RFC_USER}:{RFC_REALM}:{RFC_PASSWORD}")
    ha2 = h(f"GET:{RFC_URI}")
    response = h(f"{ha1}:{RFC_NONCE}:00000001:{RFC_CNONCE}:auth:{ha2}")
    assert response == RFC_RESPONSES[algorithm]
    assert compute_ha1(RFC_USER, RFC_REALM, RFC_PASSWORD, algorithm) == ha1
    assert compute_response(ha1, algorithm, RFC_NONCE, "GET", RFC_URI, qop="auth",
                            nc="00000001", cnonce=RFC_CNONCE) == response


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_client_answer(algorithm):
    challenge = (f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
                 f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"')
    client = DigestClient(RFC_USER, RFC_PASSWORD, cnonce=lambda: RFC_CNONCE)
    [(scheme, params)] = parse_auth_header(client.authorize(challenge, "GET", RFC_URI))
    assert scheme == "Digest"
    assert params == {
        "username": RFC_USER, "realm": RFC_REALM, "nonce": RFC_NONCE, "uri": RFC_URI,
        "response": RFC_RESPONSES[algorithm], "algorithm": algorithm, "cnonce": RFC_CNONCE,
        "qop": "auth", "nc": "00000001", "opaque": RFC_OPAQUE,
    }


def test_rfc7616_two_challenges_client_takes_sha256():
    # The RFC's own 401 carries SHA-256 first, then MD5; the order must not matter.
    values = [f'Digest realm="{RFC_REALM}", qop="auth", algorithm={a}, nonce="{RFC_NONCE}", '
              f'opaque="{RFC_OPAQUE}"' for a in ("MD5", "SHA-256")]
    for order in (values, values[::-1]):
        client = DigestClient(RFC_USER, RFC_PASSWORD, cnonce=lambda: RFC_CNONCE)
        [(_, params)] = parse_auth_header(client.authorize(order, "GET", RFC_URI))
        assert (params["algorithm"], params["response"]) == ("SHA-256", RFC_RESPONSES["SHA-256"])


def test_sess_formula():
    ha1 = compute_ha1(RFC_USER, RFC_REALM, RFC_PASSWORD, "SHA-256")
    h = lambda text: hashlib.sha256(text.encode()).hexdigest()
    sess = h(f"{ha1}:{RFC_NONCE}:{RFC_CNONCE}")
    expected = h(f"{sess}:{RFC_NONCE}:00000001:{RFC_CNONCE}:auth:{h('GET:' + RFC_URI)}")
    assert compute_response(ha1, "SHA-256-sess", RFC_NONCE, "GET", RFC_URI, qop="auth",
                            nc="00000001", cnonce=RFC_CNONCE) == expected


def test_auth_int_and_rfc2069_formulas():
    h = lambda text: hashlib.md5(text.encode()).hexdigest()
    ha1 = h("a:r:p")
    body = b"v=0\r\n"
    ha2 = h(f"INVITE:sip:b@x:{hashlib.md5(body).hexdigest()}")
    assert compute_response(ha1, "MD5", "n", "INVITE", "sip:b@x", qop="auth-int", nc="00000001",
                            cnonce="c", body=body) == h(f"{ha1}:n:00000001:c:auth-int:{ha2}")
    assert compute_response(ha1, "MD5", "n", "INVITE", "sip:b@x") == h(
        f"{ha1}:n:{h('INVITE:sip:b@x')}")


# ---------------------------------------------------------------------------- challenges

def test_challenge_offers_sha256_then_md5():
    server = make_server()
    assert (server.status, server.challenge_header, server.credentials_header) == (
        401, "WWW-Authenticate", "Authorization")
    values = server.challenge()
    challenges = [c for v in values for c in parse_challenges(v)]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert len({c.nonce for c in challenges}) == 1
    for c in challenges:
        assert (c.realm, c.qop, c.opaque, c.stale) == (REALM, ("auth",), server.opaque, False)
    assert all(parse_challenges(v)[0].stale for v in server.challenge(stale=True))


def test_proxy_challenge_names():
    server = make_server(proxy=True, algorithms=["md5"])
    assert (server.status, server.challenge_header, server.credentials_header) == (
        407, "Proxy-Authenticate", "Proxy-Authorization")
    assert [parse_challenges(v)[0].algorithm for v in server.challenge()] == ["MD5"]


def test_nonces_are_unique_and_verifiable():
    server = make_server()
    nonces = {server.make_nonce(now=T0) for _ in range(100)}
    assert len(nonces) == 100
    assert {server.nonce_stamp(n) for n in nonces} == {int(T0 * 1000)}


@pytest.mark.parametrize("options", [
    {"algorithms": []}, {"algorithms": ["SHA-1"]}, {"qop": ["auth-conf"]}, {"qop": []},
    {"nonce_lifetime": 0}, {"max_nonces": 0},
])
def test_bad_configuration(options):
    with pytest.raises(ValueError):
        make_server(**options)
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, b"", users())
    with pytest.raises(ValueError):
        DigestAuthenticator("bad\r\nrealm", SECRET, users())


# ---------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("algorithms", [
    ("SHA-256", "MD5"), ("MD5",), ("SHA-256",), ("MD5-sess",), ("SHA-256-sess", "MD5-sess"),
] + ([("SHA-512-256",), ("SHA-512-256-sess",)] if "SHA-512-256" in ALGORITHMS else []))
def test_round_trip(algorithms):
    server = make_server(algorithms=algorithms)
    header, result = login(server, DigestClient("alice", "wonderland"))
    assert result == AuthResult(Outcome.OK, "alice") and result and result.ok
    assert parse_auth_header(header)[0][1]["algorithm"] == algorithms[0]


def test_round_trip_with_stored_ha1():
    for algorithm in ("MD5", "SHA-256"):
        ha1 = compute_ha1("alice", REALM, "wonderland", algorithm).upper()
        server = DigestAuthenticator(REALM, SECRET, lambda u, r: Credential(ha1={algorithm: ha1}),
                                     algorithms=[algorithm, algorithm + "-sess"], clock=Clock())
        for offered in ([algorithm], [algorithm + "-sess"]):
            challenge = [v for v in server.challenge() if f"algorithm={offered[0]}," in v]
            header = DigestClient("alice", "wonderland").authorize(challenge, "INVITE", URI)
            assert server.verify(header, "INVITE", URI).outcome is Outcome.OK


def test_ha1_for_other_algorithm_only():
    md5_only = Credential(ha1={"MD5": compute_ha1("alice", REALM, "wonderland")})
    server = DigestAuthenticator(REALM, SECRET, lambda u, r: md5_only, clock=Clock())
    header, result = login(server, DigestClient("alice", "wonderland"))
    assert "algorithm=SHA-256" in header
    assert result.outcome is Outcome.FAILED and "no SHA-256 credential" in result.reason
    with pytest.raises(ValueError):
        Credential()
    with pytest.raises(ValueError):
        Credential(ha1={"MD5-sess": "00"})


def test_auth_int_round_trip():
    server = make_server(qop=["auth-int"])
    body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"
    header = DigestClient("alice", "wonderland").authorize(server.challenge(), "INVITE", URI, body)
    assert "qop=auth-int" in header
    assert server.verify(header, "INVITE", URI, body=body).ok
    assert "wrong password" in server.verify(header, "INVITE", URI, body=b"x").reason


def test_proxy_picks_own_realm_among_several():
    server = make_server(proxy=True)
    other = DigestAuthenticator("upstream.example", SECRET, users(alice="x"), clock=Clock())
    mine = DigestClient("alice", "wonderland").authorize(server.challenge(), "INVITE", URI)
    theirs = DigestClient("alice", "x").authorize(other.challenge(), "INVITE", URI)
    assert server.verify([theirs, "Digest ,,", mine], "INVITE", URI).ok


def test_rfc2069_only_when_allowed():
    server = make_server(algorithms=["MD5"], qop=[], allow_no_qop=True)
    header, result = login(server, DigestClient("alice", "wonderland"))
    assert "nc=" not in header and "cnonce" not in header and result.ok
    strict = make_server(algorithms=["MD5"])
    header = DigestClient("alice", "wonderland").authorize(
        [v.replace(', qop="auth"', "") for v in strict.challenge()], "REGISTER", URI)
    result = strict.verify(header, "REGISTER", URI)
    assert result.outcome is Outcome.FAILED and "qop" in result.reason


def test_client_nonce_count_increments_and_resets():
    server = make_server()
    client = DigestClient("alice", "wonderland")
    challenge = server.challenge()
    counts = []
    for _ in range(3):
        header = client.authorize(challenge, "REGISTER", URI)
        counts.append(parse_auth_header(header)[0][1]["nc"])
        assert server.verify(header, "REGISTER", URI).ok
    assert counts == ["00000001", "00000002", "00000003"]
    header = client.authorize(server.challenge(), "REGISTER", URI)
    assert parse_auth_header(header)[0][1]["nc"] == "00000001"


def test_select_challenge():
    md5 = Challenge("r", "n1", "MD5", ("auth",))
    sha = Challenge("r", "n2", "SHA-256", ("auth",))
    odd = Challenge("r", "n3", "SHA-1", ("auth",))
    conf = Challenge("r", "n4", "SHA-256", ("auth-conf",))
    assert select_challenge([md5, sha, odd, conf]) is sha
    assert select_challenge([odd, md5]) is md5
    with pytest.raises(ValueError):
        select_challenge([odd, conf])
    with pytest.raises(ValueError):
        DigestClient("a", "b").authorize('Basic realm="x"', "REGISTER", URI)


# ---------------------------------------------------------------------------- failures

def test_missing_credentials():
    server = make_server()
    for value in (None, "", "   ", [], [""]):
        assert server.verify(value, "REGISTER", URI).outcome is Outcome.MISSING


def test_wrong_password():
    result = login(make_server(), DigestClient("alice", "looking-glass"))[1]
    assert result == AuthResult(Outcome.FAILED, "alice",
                                "response does not match (wrong password?)")


def test_unknown_user():
    result = login(make_server(), DigestClient("bob", "wonderland"))[1]
    assert result.outcome is Outcome.FAILED and result.reason == "unknown user"


def test_wrong_realm():
    server = make_server()
    other = DigestAuthenticator("elsewhere.example", SECRET, users(alice="wonderland"),
                                clock=Clock())
    header = DigestClient("alice", "wonderland").authorize(other.challenge(), "REGISTER", URI)
    result = server.verify(header, "REGISTER", URI)
    assert result.outcome is Outcome.FAILED and "realm 'elsewhere.example'" in result.reason
    # The realm is also in the hash: relabelling the header does not help.
    _, params = parse_auth_header(header)[0]
    params["realm"] = REALM
    assert server.verify(rebuild(params), "REGISTER", URI).outcome is Outcome.FAILED


def test_uri_and_method_are_covered():
    server = make_server()
    header = DigestClient("alice", "wonderland").authorize(server.challenge(), "REGISTER", URI)
    assert "does not match the request-URI" in server.verify(header, "REGISTER", URI + ";x").reason
    assert "wrong password" in server.verify(header, "INVITE", URI).reason


def test_algorithm_not_offered():
    server = make_server(algorithms=["SHA-256"])
    _, params = parse_auth_header(
        DigestClient("alice", "wonderland").authorize(server.challenge(), "REGISTER", URI))[0]
    for algorithm in ("MD5", "SHA-1", "SHA-256-sess"):
        result = server.verify(rebuild({**params, "algorithm": algorithm}), "REGISTER", URI)
        assert result.outcome is Outcome.FAILED and "was not offered" in result.reason


def test_stale_nonce():
    clock = Clock()
    server = make_server(clock)
    challenge = server.challenge()
    client = DigestClient("alice", "wonderland")
    good = client.authorize(challenge, "REGISTER", URI)
    bad = DigestClient("alice", "nope").authorize(challenge, "REGISTER", URI)
    clock.now += 299
    assert server.verify(good, "REGISTER", URI).ok
    clock.now += 2
    good2 = client.authorize(challenge, "REGISTER", URI)
    stale = server.verify(good2, "REGISTER", URI)
    assert stale == AuthResult(Outcome.STALE, "alice", "nonce expired")
    assert server.verify(bad, "REGISTER", URI).outcome is Outcome.FAILED
    # An explicit time overrides the clock; a nonce from the far future is not accepted either.
    assert server.verify(good2, "REGISTER", URI, now=T0 + 1).ok
    future = server.challenge(now=T0 + 3600)
    header = DigestClient("alice", "wonderland").authorize(future, "REGISTER", URI)
    assert server.verify(header, "REGISTER", URI, now=T0).outcome is Outcome.STALE


def test_configurable_lifetime():
    clock = Clock()
    server = make_server(clock, nonce_lifetime=30)
    challenge = server.challenge()
    clock.now += 31
    header = DigestClient("alice", "wonderland").authorize(challenge, "REGISTER", URI)
    assert server.verify(header, "REGISTER", URI).outcome is Outcome.STALE


def test_forged_nonces():
    server = make_server()
    client = DigestClient("alice", "wonderland")
    stranger = DigestAuthenticator(REALM, b"another secret", users(), clock=Clock())
    genuine = parse_challenges(server.challenge()[0])[0].nonce
    flipped = genuine[:20] + ("A" if genuine[20] != "A" else "B") + genuine[21:]
    for nonce in (stranger.make_nonce(), flipped, genuine + "x", genuine[:-1] + "=", "abc", "",
                  RFC_NONCE):
        header = client.respond(Challenge(REALM, nonce, "SHA-256", ("auth",)), "REGISTER", URI)
        result = server.verify(header, "REGISTER", URI)
        assert result.outcome is Outcome.FAILED and "not issued by this server" in result.reason


def test_non_canonical_nonce_spelling_refused():
    server = make_server()
    nonce = parse_challenges(server.challenge()[0])[0].nonce
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The last base64 character holds 2 unused bits: other spellings decode to the same bytes.
    last = alphabet.index(nonce[-1])
    variant = nonce[:-1] + alphabet[last ^ 1]
    assert server.nonce_stamp(nonce) is not None and server.nonce_stamp(variant) is None


def test_source_binding():
    server = make_server()
    challenge = server.challenge(source="192.0.2.10")
    header = DigestClient("alice", "wonderland").authorize(challenge, "REGISTER", URI)
    assert server.verify(header, "REGISTER", URI, source="192.0.2.10").ok
    for source in ("192.0.2.11", None):
        result = server.verify(header, "REGISTER", URI, source=source)
        assert result.outcome is Outcome.FAILED and "not issued" in result.reason


def test_replayed_nonce_count():
    server = make_server()
    client = DigestClient("alice", "wonderland")
    challenge = server.challenge()
    first = client.authorize(challenge, "REGISTER", URI)
    second = client.authorize(challenge, "REGISTER", URI)
    assert server.verify(first, "REGISTER", URI).ok
    replay = server.verify(first, "REGISTER", URI)
    assert replay.outcome is Outcome.FAILED and "reused" in replay.reason
    assert server.verify(second, "REGISTER", URI).ok
    assert server.verify(first, "REGISTER", URI).outcome is Outcome.FAILED   # went backwards


def test_failed_attempt_does_not_burn_counts():
    server = make_server()
    challenge = server.challenge()
    bad = DigestClient("alice", "nope").authorize(challenge, "REGISTER", URI)
    assert not server.verify(bad, "REGISTER", URI)
    assert server.verify(DigestClient("alice", "wonderland").authorize(challenge, "REGISTER", URI),
                         "REGISTER", URI).ok


def test_nonce_table_is_bounded():
    clock = Clock()
    server = make_server(clock, max_nonces=3)
    client = DigestClient("alice", "wonderland")
    headers = []
    for _ in range(5):
        clock.now += 1
        header = client.authorize(server.challenge(), "REGISTER", URI)
        headers.append(header)
        assert server.verify(header, "REGISTER", URI).ok
    assert len(server._counts) == 3
    # The evicted nonces are still fresh: replaying them must not succeed.
    for header in headers[:2]:
        assert server.verify(header, "REGISTER", URI).outcome is Outcome.STALE
    # Expired entries are dropped as new ones arrive.
    clock.now += 400
    header = client.authorize(server.challenge(), "REGISTER", URI)
    assert server.verify(header, "REGISTER", URI).ok
    assert len(server._counts) == 1


@pytest.mark.parametrize("name", ["username", "nonce", "uri", "response", "nc", "cnonce", "qop"])
def test_missing_parameter(name):
    server = make_server()
    header = DigestClient("alice", "wonderland").authorize(server.challenge(), "REGISTER", URI)
    _, params = parse_auth_header(header)[0]
    del params[name]
    result = server.verify(rebuild(params), "REGISTER", URI)
    assert result.outcome is Outcome.FAILED
    assert f"missing parameter: {name}" in result.reason


@pytest.mark.parametrize("change, reason", [
    ({"nc": "1"}, "8 hex digits"), ({"nc": "00000000"}, "start at"),
    ({"qop": "auth-int"}, "not offered"), ({"opaque": "x"}, "opaque"),
    ({"userhash": "true"}, "userhash"),
])
def test_bad_parameter(change, reason):
    server = make_server()
    header = DigestClient("alice", "wonderland").authorize(server.challenge(), "REGISTER", URI)
    _, params = parse_auth_header(header)[0]
    result = server.verify(rebuild({**params, **change}), "REGISTER", URI)
    assert result.outcome is Outcome.FAILED and reason in result.reason


def test_missing_opaque_tolerated():
    server = make_server()
    header = DigestClient("alice", "wonderland").authorize(server.challenge(), "REGISTER", URI)
    _, params = parse_auth_header(header)[0]
    del params["opaque"]
    assert server.verify(rebuild(params), "REGISTER", URI).ok


def test_non_digest_and_malformed():
    server = make_server()
    for value, reason in [("Basic YWxpY2U6d29uZGVybGFuZA==", "not Digest"),
                          ('Basic realm="x"', "not Digest"),
                          ('Digest username="alice', "unterminated"),
                          ('Digest realm=', "missing value"),
                          ("Digest username=alice", "missing parameter: realm")]:
        result = server.verify(value, "REGISTER", URI)
        assert result.outcome is Outcome.FAILED and reason in result.reason, (value, result)


def test_username_with_quotes_and_backslash():
    name = 'al"ice\\ "o\'hara"\\'
    server = DigestAuthenticator(REALM, SECRET, users(**{name: "pw"}), clock=Clock())
    header = DigestClient(name, "pw").authorize(server.challenge(), "REGISTER", URI)
    assert r'username="al\"ice\\ \"o' in header
    assert parse_auth_header(header)[0][1]["username"] == name
    assert server.verify(header, "REGISTER", URI) == AuthResult(Outcome.OK, name)
    with pytest.raises(ValueError):
        DigestClient("a\r\nVia: x", "pw")


# ---------------------------------------------------------------------------- parser

def test_parser_details():
    value = ('digest  REALM="a, b=\\"c\\"" ,, Nonce=abc/+=, qop="auth,auth-int",'
             'stale=TRUE , Opaque = "" , Basic realm="x", Digest realm=r, nonce=n2')
    assert parse_auth_header(value) == [
        ("digest", {"realm": 'a, b="c"', "nonce": "abc/+=", "qop": "auth,auth-int",
                    "stale": "TRUE", "opaque": ""}),
        ("Basic", {"realm": "x"}),
        ("Digest", {"realm": "r", "nonce": "n2"}),
    ]
    [first, second] = parse_challenges(value)
    assert first == Challenge('a, b="c"', "abc/+=", "MD5", ("auth", "auth-int"), "", True)
    assert second == Challenge("r", "n2")
    assert parse_auth_header("Negotiate") == [("Negotiate", {})]
    # A bare token after a comma starts another challenge rather than being a parameter.
    assert parse_auth_header('Digest realm="x", nonce') == [
        ("Digest", {"realm": "x"}), ("nonce", {})]


@pytest.mark.parametrize("value", [
    "", "   ", '"Digest"', "Digest realm", 'Digest realm="x" nonce="y"', "Digest realm=a b",
    'Digest realm="x", realm="y"', 'Digest realm="x\\', "Digest =x", "Digest realm=\"x\"y",
    "Digest Basic", "Digest realm=x,=y", 'Digest realm="x", nonce realm',
])
def test_parser_rejects(value):
    with pytest.raises(ValueError):
        parse_auth_header(value)


def test_parse_challenges_needs_realm_and_nonce():
    for value in ('Digest nonce="n"', 'Digest realm="r"'):
        with pytest.raises(ValueError):
            parse_challenges(value)
    assert parse_challenges('Basic realm="r"') == []
    [challenge] = parse_challenges('Digest realm="r", nonce="n", algorithm=sha-256-SESS')
    assert challenge.algorithm == "SHA-256-sess"


header_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(['Digest', ' ', ',', '=', '"', '\\', 'realm', 'nonce', 'qop',
                              'auth', 'x"y', '\r\n', 'Basic', 'é', '\udcff']), max_size=40
             ).map("".join),
)


@settings(max_examples=500, deadline=None)
@given(header_text)
def test_fuzz_parser(value):
    try:
        items = parse_auth_header(value)
    except ValueError:
        return
    assert items and all(isinstance(s, str) and isinstance(p, dict) for s, p in items)


@settings(max_examples=500, deadline=None)
@given(header_text)
def test_fuzz_parse_challenges_and_client(value):
    try:
        challenges = parse_challenges(value)
    except ValueError:
        challenges = None
    else:
        assert all(isinstance(c, Challenge) and isinstance(c.realm, str) and isinstance(c.nonce, str)
                   for c in challenges)
    try:
        header = DigestClient("alice", "pw").authorize(value, "REGISTER", URI)
    except ValueError:
        return
    # an answer exists only for a usable challenge, and it names the user and that challenge
    assert challenges
    scheme, params = parse_auth_header(header)[0]
    assert scheme.lower() == "digest" and params["username"] == "alice" and params["uri"] == URI
    assert any(params["realm"] == c.realm and params["nonce"] == c.nonce for c in challenges)


@settings(max_examples=300, deadline=None)
@given(header_text, st.sampled_from(["username", "realm", "nonce", "uri", "response", "nc",
                                     "cnonce", "qop", "algorithm", "opaque"]))
def test_fuzz_verify_never_raises(value, name):
    server = make_server()
    assert isinstance(server.verify(value, "REGISTER", URI), AuthResult)
    # Also with one parameter of an otherwise valid header replaced by garbage.
    header = DigestClient("alice", "wonderland").authorize(server.challenge(), "REGISTER", URI)
    _, params = parse_auth_header(header)[0]
    result = server.verify(rebuild({**params, name: value}), "REGISTER", URI)
    assert isinstance(result, AuthResult)
    # Only spellings the RFCs treat as equal (case of tokens and hex) may still pass.
    if result.ok:
        assert value == params[name] or (
            value.lower() == params[name].lower() and name in ("qop", "algorithm", "response"))


credential_text = st.text(st.characters(blacklist_characters="\r\n\0"), max_size=30)


@settings(max_examples=200, deadline=None)
@given(credential_text, credential_text)
def test_round_trip_any_username_and_password(username, password):
    lookup = lambda u, r: Credential(password) if u == username else None
    server = DigestAuthenticator(REALM, SECRET, lookup, clock=Clock())
    header = DigestClient(username, password).authorize(server.challenge(), "REGISTER", URI)
    assert server.verify(header, "REGISTER", URI) == AuthResult(Outcome.OK, username)
