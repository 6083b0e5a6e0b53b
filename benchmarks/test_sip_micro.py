"""SIP message layer micro benchmarks (pytest-benchmark). Run: python -m pytest benchmarks/test_sip_micro.py

The control plane's budget is ~500 calls/s on one core at ~14 SIP messages per call, so
what matters is the per-message cost: parsing a typical INVITE with SDP (~800 bytes),
writing it back, the values every transaction and dialog look at, and a response."""
from control.sip.message import make_response, parse

SDP = ("v=0\r\no=- 1 1 IN IP4 203.0.113.10\r\ns=-\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 8 0 18 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\na=rtpmap:101 telephone-event/8000\r\n"
       "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n").encode()
INVITE = (
    "INVITE sip:+15551234567@gw1.example.net:5060;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: \"Alice\" <sip:+15550001111@carrier.example.com>;tag=1928301774\r\n"
    "To: <sip:+15551234567@gw1.example.net>\r\n"
    "Call-ID: a84b4c76e66710@pc33.carrier.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:+15550001111@203.0.113.10:5060>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE\r\n"
    "Supported: 100rel, timer\r\n"
    "Session-Expires: 600\r\n"
    "User-Agent: ExampleSBC/4.2\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n").encode() + SDP


def test_sip_parse_invite(benchmark):
    assert 750 <= len(INVITE) <= 900
    message = benchmark(parse, INVITE)
    assert message.method == "INVITE" and message.body == SDP


def test_sip_serialize_invite(benchmark):
    message = parse(INVITE)
    assert benchmark(message.serialize) == INVITE


def test_sip_parse_and_read_dialog_values(benchmark):
    """What the transaction and dialog layers read from every message (all parsed afresh)."""
    def run():
        m = parse(INVITE)
        return m.via[0].branch, m.from_.params["tag"], m.to.params.get("tag"), m.cseq, m.call_id
    assert benchmark(run)[0] == "z9hG4bK776asdhds"


def test_sip_make_response_and_serialize(benchmark):
    request = parse(INVITE)
    data = benchmark(lambda: make_response(request, 180, to_tag="a6c85cf").serialize())
    assert data.startswith(b"SIP/2.0 180 Ringing\r\n")
