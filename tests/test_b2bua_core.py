"""The B2BUA core driven directly (sans-I/O): messages in, messages out, time moved by
hand. Covers what is slow or awkward with real peers: session timers that fire after
45 s, retransmission schedules, flood and malformed input, the maximum call duration.
"""
from __future__ import annotations

from control.sip.message import Request, Response
from tests.b2bua_driver import CALLER, VENDOR, answer, establish, invite, make, take


def test_100_trying_at_once_and_invite_retransmissions_absorbed():
    b2b, timers, _ = make()
    b2b.receive(invite(), CALLER)
    first = take(b2b)
    b2b.receive(invite(), CALLER)                 # the caller retransmits
    again = take(b2b)
    assert [m.status for m, _ in again] == [100]  # answered from the transaction, no second call
    assert len(b2b.active) == 1
    assert first[1][0].method == "INVITE"


def test_vendor_invite_retransmitted_on_the_configured_schedule():
    b2b, timers, _ = make({"SS_SIP_RESEND_INTERVAL": "0.5,1,2", "SS_SIP_TIMEOUT_INVITE": 3})
    b2b.receive(invite(), CALLER)
    take(b2b)
    times = []
    for step in range(1, 40):
        timers.advance(1000.0 + step * 0.1)
        for message, _ in take(b2b):
            if isinstance(message, Request) and message.method == "INVITE":
                times.append(round(timers.now - 1000.0, 1))
            elif isinstance(message, Response):
                times.append(("final", message.status))
    # 0.5 s, then 1 s later, then 2 s later would be 3.5 s: Timer B (3 s) ends it first
    assert times[:2] == [0.5, 1.5]
    assert ("final", 408) in times


def test_session_refresh_then_failed_refresh_ends_call():
    b2b, timers, sink = make({"SS_SIP_SESSION_TTL": 90})
    vendor_invite, ok = establish(b2b, timers)
    timers.advance(1000.0 + 44.9)
    assert take(b2b) == []
    timers.advance(1000.0 + 45.0)
    (refresh, flow), = take(b2b)
    assert refresh.method == "INVITE" and refresh.call_id == vendor_invite.call_id
    assert refresh.cseq[0] == 2 and refresh.body == vendor_invite.body    # same session: same SDP
    b2b.receive(answer(refresh, 200, "Session-Expires: 90;refresher=uac\r\n"), VENDOR)
    (ack, _), = take(b2b)
    assert ack.method == "ACK" and ack.cseq == (2, "ACK")
    timers.advance(1000.0 + 90.0)
    (refresh2, _), = take(b2b)
    b2b.receive(answer(refresh2, 481), VENDOR)
    out = take(b2b)
    byes = [(m, f) for m, f in out if isinstance(m, Request) and m.method == "BYE"]
    assert {f[1][0] for _, f in byes} == {"10.0.0.1", "10.0.0.2"}
    (record,) = sink.records
    assert record.reason == "Session Timeout" and record.detail == "refresh answered 481" and record.end_direction == "switch"


def test_caller_that_must_refresh_and_does_not_is_hung_up():
    b2b, timers, sink = make({"SS_SIP_SESSION_TTL": 90})
    _, ok = establish(b2b, timers, caller_extra="Supported: timer\r\nSession-Expires: 120\r\n")
    assert ok.headers.get("Session-Expires") == "120;refresher=uac"
    assert "timer" in ok.headers.get_all("Require")
    timers.advance(1000.0 + 120 - 32 + 0.01)
    out = take(b2b)
    assert sum(1 for m, _ in out if isinstance(m, Request) and m.method == "BYE") == 2
    assert sink.records[0].reason == "Session Timeout"


def test_maximum_call_duration_sends_bye_both_ways():
    b2b, timers, sink = make(max_call_duration=30)
    establish(b2b, timers)
    timers.advance(1000.0 + 30.0)
    out = take(b2b)
    assert sorted(f[1][0] for m, f in out if isinstance(m, Request) and m.method == "BYE") == ["10.0.0.1", "10.0.0.2"]
    assert sink.records[0].reason == "Max Duration" and sink.records[0].duration_s == 30.0


def test_malformed_requests_get_400_with_reason_and_junk_is_dropped():
    b2b, _, _ = make()
    bad = (b"INVITE sip:1@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
           b"From: <sip:a@b>;tag=1\r\nTo: <sip:1@c>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
           b"Content-Length: 999\r\n\r\nshort")
    b2b.receive(bad, CALLER)
    (response, flow), = take(b2b)
    assert response.status == 400 and response.reason and flow == CALLER
    b2b.receive(b"\x00\xffgarbage" * 10, CALLER)
    b2b.receive(b"X" * 70000, CALLER)
    assert take(b2b) == []
    assert b2b.stats["malformed"] >= 2 and b2b.stats["oversized"] == 1


def test_missing_mandatory_header_is_answered():
    b2b, _, _ = make()
    msg = (b"OPTIONS sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKo\r\n"
           b"From: <sip:a@b>;tag=1\r\nTo: <sip:1@c>\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
    b2b.receive(msg, CALLER)
    (data, flow), = b2b.outbox
    assert data.startswith(b"SIP/2.0 400 Missing Call-ID\r\n") and flow == CALLER
    assert b"\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKo\r\n" in data


def test_loop_and_max_forwards():
    b2b, _, _ = make()
    b2b.receive(invite("", branch="z9hG4bKmf").replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), CALLER)
    statuses = [m.status for m, _ in take(b2b)]
    assert statuses[-1] == 483
    looped = invite(branch="z9hG4bKl2").replace(
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKl2\r\n",
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKl2\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"
        + b2b.instance.encode() + b"abc\r\n")
    b2b.receive(looped, CALLER)
    assert [m.status for m, _ in take(b2b)][-1] == 482


def test_flood_from_one_source_is_dropped_before_parsing():
    b2b, timers, _ = make()
    options = (b"OPTIONS sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK%d\r\n"
               b"From: <sip:a@b>;tag=1\r\nTo: <sip:1@c>\r\nCall-ID: f%d\r\nCSeq: 1 OPTIONS\r\n"
               b"Content-Length: 0\r\n\r\n")
    attacker = ("udp", ("10.9.9.9", 5060), ("192.0.2.1", 5060))
    for i in range(1000):
        b2b.receive(options % (i, i), attacker)
    answered = len(take(b2b))
    assert answered == 20                          # the burst, then nothing
    assert b2b.stats["flood_dropped"] == 980
    b2b.receive(invite(), CALLER)                  # a trusted customer is unaffected
    assert take(b2b)[0][0].status == 100


def test_scanner_user_agent_is_blocked():
    b2b, timers, _ = make()
    scan = (b"OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.6.6.6;branch=z9hG4bKs\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:1@c>\r\nCall-ID: s\r\nCSeq: 1 OPTIONS\r\n"
            b"User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n")
    src = ("udp", ("10.6.6.6", 5060), ("192.0.2.1", 5060))
    b2b.receive(scan, src)
    b2b.receive(scan.replace(b"friendly-scanner", b"polite"), src)
    assert take(b2b) == []
    assert "10.6.6.6" in b2b.guard.blocked(timers.now)
