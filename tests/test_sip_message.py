"""SIP message layer: parsing (RFC 4475-style torture cases), headers, URIs, name-addr, Via,
serialization round trips, make_response and stream framing."""
import pytest

from control.sip.message import (Headers, NameAddr, Request, Response, SipParseError, SipUri,
                                 StreamFramer, Via, canonical_name, error_response, is_keepalive,
                                 make_response, new_branch, new_call_id, new_tag, parse,
                                 parse_name_addr, parse_uri, parse_via)

SDP = ("v=0\r\no=- 1 1 IN IP4 203.0.113.10\r\ns=-\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n").encode()


def msg(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def invite(*extra: str, body: bytes = SDP, length: int | None = None) -> bytes:
    return msg(
        "INVITE sip:+15551234567@gw.example.net;user=phone SIP/2.0",
        "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds;rport",
        "Max-Forwards: 70",
        'From: "Alice" <sip:+15550001111@example.com>;tag=1928301774',
        "To: <sip:+15551234567@gw.example.net>",
        "Call-ID: a84b4c76e66710@pc33.example.com",
        "CSeq: 314159 INVITE",
        "Contact: <sip:+15550001111@203.0.113.10:5060>",
        *extra,
        "Content-Type: application/sdp",
        f"Content-Length: {len(body) if length is None else length}",
        body=body)


def request(method="OPTIONS", *extra: str, cseq=None) -> bytes:
    return msg(
        f"{method} sip:bob@example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc",
        "From: <sip:alice@example.com>;tag=a1",
        "To: <sip:bob@example.com>",
        "Call-ID: c1@example.com",
        f"CSeq: {'1 ' + method if cseq is None else cseq}",
        *extra,
        "Content-Length: 0")


def reparse(message):
    again = parse(message.serialize())
    assert again == message
    assert again.serialize() == message.serialize()
    return again


# ---------------------------------------------------------------------------- basics

def test_typical_invite():
    data = invite()
    m = parse(data)
    assert isinstance(m, Request) and m.is_request
    assert (m.method, m.uri) == ("INVITE", "sip:+15551234567@gw.example.net;user=phone")
    assert m.call_id == "a84b4c76e66710@pc33.example.com"
    assert m.cseq == (314159, "INVITE")
    assert m.max_forwards == 70
    assert m.body == SDP
    assert m.content_type == "application/sdp"
    via = m.via[0]
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "203.0.113.10", 5060, "z9hG4bK776asdhds")
    assert via.params == {"branch": "z9hG4bK776asdhds", "rport": None}
    assert m.from_.display == "Alice" and m.from_.tag == "1928301774" and m.from_tag == "1928301774"
    assert m.to.tag is None and m.to_tag is None
    assert m.ruri.user == "+15551234567" and m.ruri.params == {"user": "phone"}
    m.validate()
    assert m.serialize() == data           # canonical input comes back byte for byte


def test_response():
    m = parse(msg("SIP/2.0 183 Session  Progress ", "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
                  "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2", "Call-ID: x", "CSeq: 7 INVITE",
                  "Content-Length: 0"))
    assert isinstance(m, Response) and not m.is_request
    assert (m.status, m.reason) == (183, "Session  Progress")
    assert m.cseq == (7, "INVITE") and m.to_tag == "2" and m.max_forwards is None
    reparse(m)


@pytest.mark.parametrize("start, reason", [("SIP/2.0 100", ""), ("SIP/2.0 100 ", ""),
                                           ("SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое",
                                            "= 2**3 * 5**2 но сто девяносто девять - простое")])
def test_response_reason_phrases(start, reason):
    m = parse(msg(start, "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1",
                  "To: <sip:b@h>", "Call-ID: x", "CSeq: 7 INVITE"))
    assert m.reason == reason
    reparse(m)


# ---------------------------------------------------------------------------- torture cases

def test_whitespace_folding_and_mixed_case():
    body = b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n"
    data = msg(
        "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0",
        "TO :",
        " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
        'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
        "  ;",
        "  tag = 98asjd8",
        "MaX-fOrWaRdS: 0068",
        "Call-ID: wsinv.ndaksdj@192.0.2.1",
        f"Content-Length   : {len(body)}",
        "cseq: 0009",
        "  INVITE",
        "Via  : SIP  /   2.0",
        " /UDP",
        "    192.0.2.2;branch=390skdjuw",
        "s :",
        "NewFangledHeader:   newfangled value",
        " continued newfangled value",
        "UnknownHeaderWithUnusualValue: ;;,,;;,;",
        "Content-Type: application/sdp",
        "Route:",
        " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>",
        "v:  SIP  / 2.0  / TCP     spindle.example.com   ;",
        "  branch  =   z9hG4bK9ikj8  ,",
        " SIP  /    2.0   / UDP  192.168.255.111   ; branch=",
        " z9hG4bK30239",
        'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
        "      newvalue ;",
        "  secondparam ; q = 0.33",
        body=body)
    m = parse(data)
    names = [n for n, _ in m.headers.items()]
    assert names == ["To", "From", "Max-Forwards", "Call-ID", "Content-Length", "CSeq", "Via",
                     "Subject", "NewFangledHeader", "UnknownHeaderWithUnusualValue", "Content-Type",
                     "Route", "Via", "Contact"]
    assert m.max_forwards == 68 and m.cseq == (9, "INVITE")
    assert m.to.uri == parse_uri("sip:vivekg@chair-dnrc.example.com") and m.to.tag == "1918181833n"
    assert m.from_.display == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.headers.get("Subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"), ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239")]
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.display == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert parse_name_addr(m.headers.get("Route")).uri.params == {
        "lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert m.body == body
    m.validate()
    again = reparse(m)
    assert b"\r\n " not in again.serialize().split(b"\r\n\r\n")[0]    # output never folds


def test_compact_forms():
    data = msg(
        "SUBSCRIBE sip:b@example.com SIP/2.0",
        "v: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1",
        "f: <sip:a@example.com>;tag=1", "t: sip:b@example.com", "i: compact@x", "CSeq: 1 SUBSCRIBE",
        "m: <sip:a@192.0.2.1>", "o: presence", "u: presence, dialog", "k: timer", "s: hi",
        "x: 1800;refresher=uac", "r: <sip:c@example.com>", "b: <sip:d@example.com>",
        "e: gzip", "a: *;audio", "c: text/plain", "l: 5", body=b"hello")
    m = parse(data)
    assert [n for n, _ in m.headers.items()] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Event", "Allow-Events", "Supported",
        "Subject", "Session-Expires", "Refer-To", "Referred-By", "Content-Encoding",
        "Accept-Contact", "Content-Type", "Content-Length"]
    assert m.headers.get_all("Allow-Events") == ["presence", "dialog"]
    assert m.headers.get("i") == "compact@x" and m.headers.get("V") == "SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1"
    assert m.body == b"hello"
    out = m.serialize()
    assert b"\r\nCall-ID: compact@x\r\n" in out and b"\r\nSession-Expires: 1800;refresher=uac\r\n" in out
    reparse(m)


def test_escaped_uris():
    data = msg(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
        "To: sip:%75se%72@example.com",
        "From: <sip:I%20have%20spaces@example.net>;tag=938",
        "Max-Forwards: 87",
        "i: esc01.239409asdfakjkn23onasd0-3234",
        "CSeq: 234234 INVITE",
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
        "C: application/sdp",
        "Contact:",
        "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
        "Content-Length: 0")
    m = parse(data)
    assert m.uri == "sip:sips%3Auser%40example.com@example.net"      # Request-URI kept raw
    assert m.ruri.user == "sips%3Auser%40example.com"
    assert m.ruri.user_unescaped == "sips:user@example.com"
    assert m.to.uri.user == "%75se%72" and m.to.uri == parse_uri("sip:user@example.com")
    assert m.from_.uri.user_unescaped == "I have spaces"
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.uri.user_unescaped == "caller"
    assert contact.uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    reparse(m)


def test_unusual_method_and_uri_characters():
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    uri = ("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
           "(doesn't-it)@example.com")
    m = parse(request(method, cseq=f"139122385 {method}").replace(b"sip:bob@example.com SIP", uri.encode() + b" SIP", 1))
    assert m.method == method and m.uri == uri
    assert m.ruri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.ruri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.ruri.host == "example.com"
    assert str(m.ruri) == uri
    reparse(m)


def test_via_in_one_and_several_headers():
    data = request("OPTIONS",
                   "Via: SIP/2.0/TCP p1.example.com:5061;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::7];branch=z9hG4bK3",
                   "Via: SIP/2.0/TLS p3.example.com;branch=z9hG4bK4;received=192.0.2.9")
    m = parse(data)
    assert [(v.transport, v.host, v.port, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.1", 5060, "z9hG4bKabc"), ("TCP", "p1.example.com", 5061, "z9hG4bK2"),
        ("UDP", "[2001:db8::7]", None, "z9hG4bK3"), ("TLS", "p3.example.com", None, "z9hG4bK4")]
    assert m.headers.get("Via") == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc"
    assert len(m.headers.get_all("via")) == 4
    reparse(m)


def test_unknown_headers_keep_order_and_spelling():
    data = request("OPTIONS", "X-Zeta: 1", "x-alpha: 2", "P-Custom-ID: three", "X-ZETA: 4")
    m = parse(data)
    h = m.headers
    assert [n for n, _ in h.items()][-5:] == ["X-Zeta", "x-alpha", "P-Custom-ID", "X-ZETA", "Content-Length"]
    assert h.get("x-zeta") == "1" and h.get_all("X-zeta") == ["1", "4"] and h.get("X-ALPHA") == "2"
    assert "p-custom-id" in h and "X-Missing" not in h
    assert b"\r\nx-alpha: 2\r\nP-Custom-ID: three\r\nX-ZETA: 4\r\n" in m.serialize()
    reparse(m)


def test_ipv6_everywhere():
    data = msg(
        "REGISTER sip:[2001:db8::10]:5070 SIP/2.0",
        "Via: SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bKas3;received=2001:db8::9;rport=5060",
        "From: <sip:user@[2001:db8::10]>;tag=81x2", "To: <sip:user@[2001:db8::10]>",
        "Call-ID: SSG9559905523997077@hlecom", "CSeq: 1 REGISTER", "Max-Forwards: 70",
        "Contact: <sip:user@[2001:db8::9]:5060;transport=udp>;expires=3600", "Content-Length: 0")
    m = parse(data)
    assert (m.ruri.host, m.ruri.port, m.ruri.bare_host) == ("[2001:db8::10]", 5070, "2001:db8::10")
    via = m.via[0]
    assert (via.host, via.port, via.params["received"], via.bare_host) == (
        "[2001:db8::9]", 5060, "2001:db8::9", "2001:db8::9")
    contact = parse_name_addr(m.headers.get("Contact"))
    assert contact.uri.host == "[2001:db8::9]" and contact.uri.transport == "udp"
    assert contact.params == {"expires": "3600"}
    for bad in ("sip:[2001:db8::10", "sip:user@[2001:db8::10]x", "sip:[2001:db8::g]", "sip:[::1]:99999"):
        with pytest.raises(SipParseError):
            parse_uri(bad)
    reparse(m)


def test_body_without_content_length_is_rest_of_datagram():
    data = msg("MESSAGE sip:b@example.com SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
               "From: <sip:a@h>;tag=1", "To: <sip:b@h>", "Call-ID: x", "CSeq: 1 MESSAGE",
               body=b"no length here\r\n\r\nstill body")
    m = parse(data)
    assert m.body == b"no length here\r\n\r\nstill body"
    assert b"\r\nContent-Length: 28\r\n\r\n" in m.serialize()
    reparse(m)


def test_longer_body_is_cut_to_content_length():
    m = parse(invite(length=10))
    assert m.body == SDP[:10]
    assert parse(invite(body=b"", length=0) + b"junk after message").body == b""


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "", "9999999", "+5", "10 10", "٣"])
def test_bad_content_length(value):
    with pytest.raises(SipParseError) as exc:
        parse(invite(body=b"x" * 20, length=value))
    assert exc.value.status == 400 and exc.value.reason


def test_body_shorter_than_content_length():
    with pytest.raises(SipParseError, match="Content-Length"):
        parse(invite(length=len(SDP) + 1))


def test_duplicate_content_length():
    with pytest.raises(SipParseError):
        parse(msg("OPTIONS sip:b@h SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1",
                  "To: <sip:b@h>", "Call-ID: x", "CSeq: 1 OPTIONS", "Content-Length: 0", "l: 0"))


@pytest.mark.parametrize("cseq", ["abc OPTIONS", "1", "1 OPTIONS extra", "4294967296 OPTIONS",
                                  "2147483648 OPTIONS", "-1 OPTIONS", "1 OPT<IONS", ""])
def test_bad_cseq(cseq):
    with pytest.raises(SipParseError, match="CSeq"):
        parse(request("OPTIONS", cseq=cseq))


@pytest.mark.parametrize("method, cseq", [("OPTIONS", "1 INVITE"), ("NEWMETHOD", "8 INVITE"),
                                          ("INVITE", "1 invite")])
def test_cseq_method_mismatch(method, cseq):
    with pytest.raises(SipParseError, match="CSeq Method Mismatch"):
        parse(request(method, cseq=cseq))


def test_cseq_limits():
    assert parse(request("OPTIONS", cseq="2147483647 OPTIONS")).cseq == (2147483647, "OPTIONS")
    assert parse(request("OPTIONS", cseq="0 OPTIONS")).cseq == (0, "OPTIONS")


BAD_START_LINES = [
    "INVITE sip:bob@example.com",                     # no version
    "INVITE  sip:bob@example.com SIP/2.0",            # two SP
    "INVITE sip:bob@example.com; lr SIP/2.0",         # LWS inside the Request-URI
    "INVITE <sip:bob@example.com> SIP/2.0",           # <> around the Request-URI
    "INVITE bob SIP/2.0",                             # not a URI
    "INV(ITE sip:bob@example.com SIP/2.0",            # method not a token
    "INVITE sip:bob@example.com HTTP/1.1",
    "SIP/2.0 99 Too Low", "SIP/2.0 700 Too High", "SIP/2.0 1000 Overlarge", "SIP/2.0 2x0 OK",
    "SIP/2.0", "",
    "\x00\x01garbage",
]


@pytest.mark.parametrize("start", BAD_START_LINES)
def test_bad_start_lines(start):
    data = msg(start, "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1", "To: <sip:b@h>",
               "Call-ID: x", "CSeq: 1 INVITE", "Content-Length: 0")
    with pytest.raises(SipParseError):
        parse(data)


@pytest.mark.parametrize("start", ["INVITE sip:bob@example.com SIP/7.0", "SIP/3.0 200 OK"])
def test_unknown_version_is_505(start):
    data = msg(start, "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1", "To: <sip:b@h>",
               "Call-ID: x", "CSeq: 1 INVITE", "Content-Length: 0")
    with pytest.raises(SipParseError) as exc:
        parse(data)
    assert exc.value.status == 505


def test_trailing_space_after_version_tolerated():
    m = parse(request("OPTIONS").replace(b"SIP/2.0\r\n", b"SIP/2.0 \r\n", 1))
    assert m.method == "OPTIONS"


@pytest.mark.parametrize("line", ["NoColonHere", " : starts with colon", ": x", "Bad Name: x",
                                  "Bad<Name: x"])
def test_bad_header_lines(line):
    with pytest.raises(SipParseError):
        parse(request("OPTIONS", line))


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_missing_mandatory_header(missing):
    lines = ["OPTIONS sip:b@h SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1",
             "To: <sip:b@h>", "Call-ID: x", "CSeq: 1 OPTIONS", "Content-Length: 0"]
    lines = [ln for ln in lines if not ln.startswith(missing + ":")]
    with pytest.raises(SipParseError, match=missing):
        parse(msg(*lines))


def test_max_forwards():
    m = parse(request("OPTIONS"))
    assert m.max_forwards is None              # absent: callers use 70
    assert parse(request("OPTIONS", "Max-Forwards: 0")).max_forwards == 0
    for bad in ("256", "-1", "seventy", "1" * 50):
        with pytest.raises(SipParseError, match="Max-Forwards"):
            parse(request("OPTIONS", f"Max-Forwards: {bad}"))


@pytest.mark.parametrize("name", ["Call-ID", "To", "From", "CSeq", "Max-Forwards"])
def test_duplicate_single_value_headers(name):
    value = {"Call-ID": "other", "To": "<sip:c@h>", "From": "<sip:d@h>;tag=9", "CSeq": "1 OPTIONS",
             "Max-Forwards": "70"}[name]
    extra = [f"{name}: {value}"] + (["Max-Forwards: 70"] if name == "Max-Forwards" else [])
    with pytest.raises(SipParseError, match="Duplicate"):
        parse(request("OPTIONS", *extra))


def test_message_too_large():
    data = invite(body=b"x" * 70000)
    with pytest.raises(SipParseError) as exc:
        parse(data)
    assert exc.value.status == 513 and exc.value.reason == "Message Too Large"


def test_non_utf8_survives_round_trip():
    data = request("OPTIONS", "Subject: caf\xe9").replace(b"caf\xc3\xa9", b"caf\xe9\xff\xfe")
    data = data.replace(b"From: <", b'From: "Jos\xc3\xa9" <')
    m = parse(data)
    assert m.from_.display == "José"
    assert m.serialize() == data
    reparse(m)


def test_leading_crlf_and_bare_lf():
    data = request("OPTIONS")
    assert parse(b"\r\n\r\n" + data) == parse(data)
    lf = data.replace(b"\r\n", b"\n")
    assert parse(lf) == parse(data)
    assert parse(lf).serialize() == data
    # mixed line ends and a folded line in LF form
    mixed = data.replace(b"To: <sip:bob@example.com>\r\n", b"To:\n <sip:bob@example.com>\n")
    assert parse(mixed).headers.get("To") == "<sip:bob@example.com>"


def test_bare_cr_and_missing_empty_line():
    with pytest.raises(SipParseError):
        parse(request("OPTIONS").replace(b"Call-ID: c1", b"Call-ID: c\r1"))
    with pytest.raises(SipParseError):
        parse(request("OPTIONS")[:-4])
    with pytest.raises(SipParseError):
        parse(b"")
    with pytest.raises(SipParseError):
        parse(b"\r\n\r\n")
    assert is_keepalive(b"\r\n\r\n") and not is_keepalive(request("OPTIONS"))


def test_lazy_values_raise_parse_error():
    m = parse(request("OPTIONS", "X: y").replace(b"From: <sip:alice@example.com>;tag=a1",
                                                b'From: "unterminated <sip:a@h>;tag=1'))
    with pytest.raises(SipParseError):
        m.from_
    with pytest.raises(SipParseError):
        m.validate()
    m = parse(request("OPTIONS").replace(b"Via: SIP/2.0/UDP 192.0.2.1:5060", b"Via: SIP/2.0/UDP bad host"))
    with pytest.raises(SipParseError):
        m.via
    m = parse(request("OPTIONS").replace(b"OPTIONS sip:bob@example.com", b"OPTIONS sip:bob@ex%ample", 1))
    with pytest.raises(SipParseError):
        m.ruri


# ---------------------------------------------------------------------------- Headers

def test_headers_api():
    h = Headers([("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Contact", '"Smith, John" <sip:j@x>, <sip:k@y>;q=0.5'),
                 ("supported", "100rel, timer"), ("Supported", "replaces"), ("X-Thing", "1")])
    assert h.items()[0] == ("Via", "SIP/2.0/UDP a;branch=z9hG4bK1")
    assert h.get_all("m") == ['"Smith, John" <sip:j@x>', "<sip:k@y>;q=0.5"]
    assert h.get("Contact") == '"Smith, John" <sip:j@x>'
    assert h.get_all("Supported") == ["100rel", "timer", "replaces"]
    assert h.get("Supported") == "100rel"
    assert h.get("Require") is None and h.get_all("Require") == []
    h.add("Via", "SIP/2.0/UDP top;branch=z9hG4bK0", first=True)
    h.add("Via", "SIP/2.0/UDP bottom;branch=z9hG4bK9")
    assert h.get_all("Via") == ["SIP/2.0/UDP top;branch=z9hG4bK0", "SIP/2.0/UDP a;branch=z9hG4bK1",
                                "SIP/2.0/UDP bottom;branch=z9hG4bK9"]
    assert [n for n, _ in h.items()][:3] == ["Via", "Via", "Via"]
    h.set("supported", "path")
    assert h.get_all("Supported") == ["path"] and [n for n, _ in h.items()].index("Supported") == 4
    h.set("x-thing", "2")                     # same header, the new spelling
    assert h.items()[-1] == ("x-thing", "2") and h.get_all("X-THING") == ["2"]
    assert h.remove("Via") == 3 and "Via" not in h and h.remove("Via") == 0
    copy = h.copy()
    copy.add("Subject", "s")
    assert "Subject" in copy and "Subject" not in h
    assert Headers(h) == h and Headers({"To": "<sip:a@b>"}).items() == [("To", "<sip:a@b>")]
    with pytest.raises(ValueError):
        h.add("X-Inject", "a\r\nVia: evil")
    with pytest.raises(ValueError):
        h.set("X-Inject", "a\nb")
    h.set_first("Contact", "<sip:new@x>")
    assert h.get_all("Contact") == ["<sip:new@x>", "<sip:k@y>;q=0.5"]


def test_canonical_names():
    assert canonical_name("call-id") == "Call-ID" and canonical_name("CSEQ") == "CSeq"
    assert canonical_name("WWW-authenticate") == "WWW-Authenticate" and canonical_name("X-A") == "X-A"
    assert canonical_name("k") == "Supported" and canonical_name("X") == "Session-Expires"
    with pytest.raises(SipParseError):
        canonical_name("Bad Name")


def test_authorization_commas_are_not_split():
    value = 'Digest username="a", realm="r", nonce="n", uri="sip:b@h", response="x"'
    h = Headers([("Authorization", value)])
    assert h.get("Authorization") == value and h.get_all("Authorization") == [value]


def test_parsed_views_follow_header_changes():
    m = parse(request("OPTIONS"))
    assert m.via[0].branch == "z9hG4bKabc" and m.from_tag == "a1" and m.cseq == (1, "OPTIONS")
    m.headers.add("Via", "SIP/2.0/TCP proxy;branch=z9hG4bKnew", first=True)
    m.headers.set("From", "<sip:alice@example.com>;tag=b2")
    m.headers.set("CSeq", "2 OPTIONS")
    assert m.via[0].branch == "z9hG4bKnew" and len(m.via) == 2
    assert m.from_tag == "b2" and m.cseq == (2, "OPTIONS")


def test_stamp_received():
    m = parse(request("OPTIONS").replace(b"branch=z9hG4bKabc", b"branch=z9hG4bKabc;rport"))
    m.stamp_received("198.51.100.7", 40123)
    assert m.via[0].params == {"branch": "z9hG4bKabc", "rport": "40123", "received": "198.51.100.7"}
    r = make_response(m, 200)
    assert r.via[0].params["rport"] == "40123"
    # same host, no rport: nothing to add
    m = parse(request("OPTIONS"))
    m.stamp_received("192.0.2.1", 5060)
    assert m.headers.get("Via") == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc"


def test_build_and_serialize_request():
    h = Headers()
    h.add("Via", f"SIP/2.0/UDP 192.0.2.1;branch={new_branch()}")
    h.add("From", str(NameAddr('Alice "A"', parse_uri("sip:alice@example.com"), {"tag": new_tag()})))
    h.add("To", str(NameAddr(parse_uri("sip:bob@example.com"))))
    h.add("Call-ID", new_call_id("example.com"))
    h.add("CSeq", "1 MESSAGE")
    h.add("Content-Length", "999")                       # wrong on purpose: serialize fixes it
    r = Request("MESSAGE", "sip:bob@example.com", h, b"hi")
    data = r.serialize()
    assert data.endswith(b"\r\nContent-Length: 2\r\n\r\nhi") and data.count(b"Content-Length") == 1
    again = parse(data)
    assert again.from_.display == 'Alice "A"' and again.body == b"hi"
    assert again == r                                     # Content-Length is not compared
    assert bytes(again) == data
    assert Request("OPTIONS", "sip:b@h", [("To", "<sip:b@h>")]).headers.get("To") == "<sip:b@h>"


# ---------------------------------------------------------------------------- URIs

@pytest.mark.parametrize("text", [
    "sip:alice@atlanta.com", "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone", "sips:1212@gateway.com",
    "sip:alice@192.0.2.4", "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com", "sip:[2001:db8::1]:5061;transport=tls;lr",
    "sip:host", "sip:host:5060", "tel:+1-201-555-0123", "tel:7042;phone-context=example.com",
    "sip:user@host;lr;maddr=10.0.0.1;ttl=1", "sip:%61lice@example.com",
])
def test_uri_round_trip(text):
    uri = parse_uri(text)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri
    assert uri.copy() == uri


def test_uri_fields():
    u = parse_uri("sip:alice:pw@atlanta.com:5070;Transport=TCP;lr?Subject=hi&to=a%40b")
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sip", "alice", "pw", "atlanta.com", 5070)
    assert u.params == {"transport": "TCP", "lr": None} and u.transport == "tcp"
    assert u.headers == {"Subject": "hi", "to": "a%40b"}
    t = parse_uri("tel:+358-555-1234567;postd=pp22")
    assert (t.scheme, t.user, t.host, t.params) == ("tel", "+358-555-1234567", "", {"postd": "pp22"})
    u = parse_uri("SIP:Bob@Example.COM")
    assert u.scheme == "sip" and u.host == "Example.COM"
    built = SipUri("sip", "bob", host="[2001:db8::2]", port=5070, params={"lr": None})
    assert str(built) == "sip:bob@[2001:db8::2]:5070;lr" and parse_uri(str(built)) == built


def test_uri_equality_rfc3261_examples():
    equal = [("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
             ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
             ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
             ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
              "sip:alice@atlanta.com?priority=urgent&subject=project%20x")]
    different = [("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
                 ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
                 ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
                 ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
                 ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
                 ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
                 ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off")]
    for a, b in equal:
        assert parse_uri(a) == parse_uri(b) and hash(parse_uri(a)) == hash(parse_uri(b))
    for a, b in different:
        assert parse_uri(a) != parse_uri(b), (a, b)


@pytest.mark.parametrize("text", ["", "alice@example.com", "sip:", "sip:user@", "sip:@host",
                                  "sip:user@ho st", "sip:user@host:port", "sip:user@host:70000",
                                  "sip:a@b;", "sip:a@b;x=", "sip:a@b?h", "sip:us er@host",
                                  "sip:a<b@host", "tel:", "tel:abc?x", "sip:a@b c", "sip:a@host;p=a b"])
def test_bad_uris(text):
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_unsupported_scheme_is_416():
    with pytest.raises(SipParseError) as exc:
        parse_uri("http://example.com/")
    assert exc.value.status == 416


# ---------------------------------------------------------------------------- name-addr

@pytest.mark.parametrize("text, display, uri, params", [
    ('"Alice" <sip:alice@example.com>;tag=1', "Alice", "sip:alice@example.com", {"tag": "1"}),
    ("Bob <sip:bob@example.com>", "Bob", "sip:bob@example.com", {}),
    ("caller<sip:caller@example.com>;tag=323", "caller", "sip:caller@example.com", {"tag": "323"}),
    ("<sip:a@b;lr>", None, "sip:a@b;lr", {}),
    ('"" <sip:a@b>', "", "sip:a@b", {}),
    ("sip:a@b;tag=x", None, "sip:a@b", {"tag": "x"}),
    ("sip:a@b ; tag = x ; flag", None, "sip:a@b", {"tag": "x", "flag": None}),
    ('"J. \\"Rocket\\" Q\\\\ Public" <sip:j@h>;tag=z', 'J. "Rocket" Q\\ Public', "sip:j@h", {"tag": "z"}),
    ('"A <not a uri>;x" <sip:a@h>', "A <not a uri>;x", "sip:a@h", {}),
    ('<sip:a@h>;+sip.instance="<urn:uuid:f81d4fae;x>";expires=60', None, "sip:a@h",
     {"+sip.instance": '"<urn:uuid:f81d4fae;x>"', "expires": "60"}),
    ("Caller Name <tel:+15551234>", "Caller Name", "tel:+15551234", {}),
    ("José <sip:jose@h>", "José", "sip:jose@h", {}),
])
def test_name_addr(text, display, uri, params):
    na = parse_name_addr(text)
    assert na.display == display and str(na.uri) == uri and na.params == params
    assert na.tag == params.get("tag")
    again = parse_name_addr(str(na))
    assert again == na and str(again) == str(na)


def test_name_addr_round_trip_exact_and_tag_setter():
    text = '"Alice" <sip:alice@example.com>;tag=1'
    assert str(parse_name_addr(text)) == text
    na = parse_name_addr("sip:a@b")
    na.tag = "t9"
    assert str(na) == "<sip:a@b>;tag=t9"
    na.tag = None
    assert str(na) == "<sip:a@b>"
    assert str(NameAddr(uri="sip:x@y", params={"tag": "1"})) == "<sip:x@y>;tag=1"


@pytest.mark.parametrize("text", ['"unterminated <sip:a@h>', "Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43",
                                  "sip:a@ho st", "sip:user@example.com extra", "<sip:a@h", "<sip:a@h> junk",
                                  "*", "", '"A" sip:a@h', "<sip:a@h>;tag=a b", "<sip:a@h>;=x", "<>"])
def test_bad_name_addr(text):
    with pytest.raises(SipParseError):
        parse_name_addr(text)


def test_parsed_objects_are_independent():
    a = parse_name_addr("<sip:a@h>;tag=1")
    a.params["tag"] = "2"
    a.uri.params["x"] = None
    b = parse_name_addr("<sip:a@h>;tag=1")
    assert b.tag == "1" and b.uri.params == {}


# ---------------------------------------------------------------------------- Via

def test_via():
    v = parse_via("SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776;rport;received=192.0.2.1")
    assert (v.transport, v.host, v.port, v.branch, v.sent_by) == (
        "UDP", "pc33.atlanta.com", 5066, "z9hG4bK776", ("pc33.atlanta.com", 5066))
    assert v.params == {"branch": "z9hG4bK776", "rport": None, "received": "192.0.2.1"}
    assert str(v) == "SIP/2.0/UDP pc33.atlanta.com:5066;branch=z9hG4bK776;rport;received=192.0.2.1"
    assert parse_via(str(v)) == v
    v2 = parse_via("sip / 2.0 / tcp  example.com : 5060 ; Branch = z9hG4bKx ; ttl=1")
    assert (v2.transport, v2.host, v2.port, v2.params) == ("TCP", "example.com", 5060,
                                                           {"branch": "z9hG4bKx", "ttl": "1"})
    assert str(Via("TLS", "[2001:db8::1]", 5061, {"branch": "z9hG4bKq"})) == \
        "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKq"


@pytest.mark.parametrize("text", ["", "SIP/2.0/UDP", "SIP/2.0 UDP host", "SIP/3.0/UDP host",
                                  "HTTP/2.0/UDP host", "SIP/2.0/UDP host:99999", "SIP/2.0/UDP ho st",
                                  "SIP/2.0/UDP host;branch=a b", "SIP/2.0/UDP host;=x",
                                  "SIP/2.0/UDP host, SIP/2.0/UDP other"])
def test_bad_via(text):
    with pytest.raises(SipParseError):
        parse_via(text)


# ---------------------------------------------------------------------------- make_response

def test_make_response():
    data = msg(
        "INVITE sip:bob@biloxi.com SIP/2.0",
        "Via: SIP/2.0/UDP proxy2.example.com;branch=z9hG4bK2, SIP/2.0/UDP proxy1.example.com;branch=z9hG4bK1",
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK0;received=192.0.2.1",
        "Max-Forwards: 68", "To: Bob <sip:bob@biloxi.com>", "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
        "Call-ID: a84b4c76e66710", "CSeq: 314159 INVITE", "Record-Route: <sip:proxy2.example.com;lr>",
        "Contact: <sip:alice@pc33.atlanta.com>", "Timestamp: 54", "Content-Length: 0")
    req = parse(data)
    r = make_response(req, 180, to_tag="a6c85cf")
    assert (r.status, r.reason) == (180, "Ringing")
    assert [n for n, _ in r.headers.items()] == ["Via", "Via", "To", "From", "Call-ID", "CSeq"]
    assert r.headers.get_all("Via") == req.headers.get_all("Via")
    assert r.headers.get("To") == "Bob <sip:bob@biloxi.com>;tag=a6c85cf"
    assert r.to.tag == "a6c85cf" and r.from_.tag == "1928301774"
    assert r.call_id == req.call_id and r.cseq == (314159, "INVITE")
    wire = r.serialize()
    assert wire.startswith(b"SIP/2.0 180 Ringing\r\n") and wire.endswith(b"Content-Length: 0\r\n\r\n")
    assert parse(wire) == r
    trying = make_response(req, 100)
    assert trying.headers.get("Timestamp") == "54" and trying.to.tag is None
    ok = make_response(req, 200, "Fine", to_tag="x", headers=[("Contact", "<sip:bob@192.0.2.4>")],
                       body=b"v=0\r\n")
    assert ok.reason == "Fine" and ok.headers.get("Contact") == "<sip:bob@192.0.2.4>"
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in ok.serialize()
    assert make_response(req, 486, headers={"Retry-After": "30"}).headers.get("Retry-After") == "30"
    assert make_response(req, 299).reason == "OK" and make_response(req, 699).reason == "Global Failure"


def test_make_response_keeps_existing_to_tag():
    req = parse(request("BYE").replace(b"To: <sip:bob@example.com>", b"To: sip:bob@example.com;tag=orig"))
    r = make_response(req, 200, to_tag="new")
    assert r.headers.get("To") == "sip:bob@example.com;tag=orig" and r.to.tag == "orig"
    # a To that does not parse still gets a tag (this may be the 400 that reports it)
    req = parse(request("BYE").replace(b"To: <sip:bob@example.com>", b'To: "broken <sip:bob@example.com>'))
    assert make_response(req, 400, to_tag="t").headers.get("To").endswith(";tag=t")


def test_error_response():
    data = request("OPTIONS", "Max-Forwards: lots")
    with pytest.raises(SipParseError) as exc:
        parse(data)
    out = error_response(data, exc.value)
    r = parse(out)
    assert (r.status, r.reason) == (400, "Bad Max-Forwards")
    assert r.call_id == "c1@example.com" and r.via[0].branch == "z9hG4bKabc" and r.to.tag
    assert error_response(data.replace(b"OPTIONS sip", b"ACK sip", 1), exc.value) is None
    assert error_response(data.replace(b"Via: ", b"X-Via: "), exc.value) is None
    assert error_response(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", exc.value) is None
    assert error_response(b"\xff\x00garbage", exc.value) is None


# ---------------------------------------------------------------------------- streams

def stream_messages():
    return [invite(), request("OPTIONS"), invite(body=b"", length=0), request("BYE")]


def test_framer_every_split_point():
    messages = stream_messages()[:2]
    stream = b"\r\n\r\n" + messages[0] + b"\r\n" + messages[1] + b"\r\n\r\n"
    for cut in range(len(stream) + 1):
        framer = StreamFramer()
        out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert out == messages, cut
        assert framer.pings == 2, cut


def test_framer_byte_by_byte_and_all_in_one():
    messages = stream_messages()
    stream = b"".join(messages)
    framer = StreamFramer()
    out = []
    for i in range(len(stream)):
        out += framer.feed(stream[i:i + 1])
    assert out == messages
    assert StreamFramer().feed(stream) == messages
    assert [parse(m) for m in out] == [parse(m) for m in messages]


def test_framer_missing_content_length_means_no_body():
    data = request("OPTIONS").replace(b"Content-Length: 0\r\n", b"")
    assert StreamFramer().feed(data + data) == [data, data]


def test_framer_compact_length_and_lf():
    body = b"hello"
    data = msg("MESSAGE sip:b@h SIP/2.0", "Via: SIP/2.0/TCP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1",
               "To: <sip:b@h>", "Call-ID: x", "CSeq: 1 MESSAGE", "l:5", body=body)
    assert StreamFramer().feed(data * 3) == [data] * 3
    lf = data.replace(b"\r\n", b"\n")
    assert StreamFramer().feed(lf + lf) == [lf, lf]


@pytest.mark.parametrize("stream", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 2000,
    msg("OPTIONS sip:b@h SIP/2.0", "Via: SIP/2.0/TCP h;branch=z9hG4bK1", "Content-Length: abc"),
    msg("OPTIONS sip:b@h SIP/2.0", "Content-Length: 70000"),
    b"OPTIONS sip:b@h SIP/2.0\r\n" + b"X-Long: " + b"a" * 70000,
])
def test_framer_garbage(stream):
    with pytest.raises(SipParseError):
        StreamFramer().feed(stream)


def test_framer_garbage_detected_early():
    framer = StreamFramer()
    assert framer.feed(b"INVITE sip:b@h SI") == []
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"hello world\r\n")


# ---------------------------------------------------------------------------- identifiers

def test_identifiers():
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000 and all(b.startswith("z9hG4bK") and len(b) > 16 for b in branches)
    tags = {new_tag() for _ in range(1000)}
    assert len(tags) == 1000 and all(t.isalnum() for t in tags)
    assert new_call_id("h.example").endswith("@h.example") and "@" not in new_call_id()


# ---------------------------------------------------------------------------- round trips

CORPUS = [invite(), invite(body=b"", length=0), request("OPTIONS"), request("BYE", "Reason: Q.850;cause=16"),
          request("REGISTER", 'Contact: "A, B" <sip:a@h>;expires=60, <sip:c@h>;q=0.1', "Expires: 3600"),
          request("OPTIONS", "Accept: application/sdp, text/plain", "Date: Sat, 13 Nov 2010 23:29:00 GMT")]


@pytest.mark.parametrize("data", CORPUS)
def test_round_trip(data):
    m = parse(data)
    assert m.serialize() == data
    again = reparse(m)
    assert again.headers.items() == m.headers.items()
    copy = m.copy()
    assert copy == m
    copy.headers.add("Subject", "changed")
    assert copy != m
