"""Call scenarios through the B2BUA core, sans-I/O: raw SIP in through ``B2BUA.receive``,
what the switch sends read from ``B2BUA.outbox``, time moved by hand.

Late offer, re-INVITE/UPDATE/INFO across the legs, CANCEL races, ringing and INVITE
timeouts, failover codes, the registrar with digest authentication, phone calls that must
authenticate, out-of-dialog requests, and a fuzzer over the entry point.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from control.sip.auth import DigestClient
from control.sip.message import Request, Response, parse, parse_name_addr
from tests.b2bua_driver import (CALLER, PHONE, SDP, T0, TWO_VENDORS, VENDOR, VENDOR2, answer, cancel,
                                caller_peer, establish, fresh_branch, invite, make, non2xx_ack, requests,
                                responses, take, vendor_peer)

VENDOR_OFFER = (b"v=0\r\no=v 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
                b"m=audio 6000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
CALLER_ANSWER = (b"v=0\r\no=a 2 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
                 b"m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
HOLD = (b"v=0\r\no=v 7 8 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
        b"m=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendonly\r\n")
HELD = (b"v=0\r\no=a 2 3 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\n")
PHONES = [{"user": "1001", "password": "pw-1001", "customer": "acme"}]
PHONE_CONTACT = "<sip:1001@192.168.1.20:5060>"          # behind NAT: the REGISTER comes from PHONE
SWITCH = "sip:192.0.2.1"


def vendor_invite_of(out, flow=VENDOR):
    (message,) = [m for m, f in requests(out, "INVITE") if f[1] == flow[1]]
    return message


def start_call(b2b, **kwargs):
    b2b.receive(invite(**kwargs), CALLER)
    out = take(b2b)
    assert [m.status for m, _ in responses(out)] == [100]
    return vendor_invite_of(out)


def tick(timers, until: float, step: float = 0.05) -> None:
    """Move the clock to ``until`` in small steps (a timer's successor is scheduled from the
    time the clock shows when it runs)."""
    while timers.now + step < until:
        timers.advance(timers.now + step)
    timers.advance(until)


def hang_up(b2b, ok, cseq=2):
    """The caller ends call-1 with BYE; returns what the switch sent."""
    b2b.receive(caller_peer(ok).request("BYE", cseq), CALLER)
    return take(b2b)


# ============================================================================ 1. late offer

def test_late_offer_vendor_offer_reaches_caller_and_ack_carries_the_answer():
    b2b, timers, sink = make()
    b2b.receive(invite(body=b""), CALLER)
    out = take(b2b)
    vendor_invite = vendor_invite_of(out)
    assert vendor_invite.body == b"" and vendor_invite.headers.get("Content-Type") is None

    b2b.receive(answer(vendor_invite, 200, body=VENDOR_OFFER), VENDOR)
    out = take(b2b)
    assert requests(out, "ACK") == []                 # held until the caller's answer
    (ok, flow), = responses(out)
    assert ok.status == 200 and flow == CALLER
    assert ok.body == VENDOR_OFFER and ok.content_type == "application/sdp"
    assert ok.to.tag and ok.cseq == (1, "INVITE")

    b2b.receive(answer(vendor_invite, 200, body=VENDOR_OFFER), VENDOR)   # vendor retransmits its 200
    assert requests(take(b2b), "ACK") == []           # still no answer to give it

    b2b.receive(caller_peer(ok).ack(1, body=CALLER_ANSWER), CALLER)
    (ack, flow), = take(b2b)
    assert ack.method == "ACK" and flow[1] == ("10.0.0.2", 5060)
    assert ack.cseq == (1, "ACK") and ack.call_id == vendor_invite.call_id
    assert ack.uri == "sip:v@10.0.0.2:5060" and ack.to.tag == "vt"
    assert ack.from_.tag == vendor_invite.from_.tag
    assert ack.body == CALLER_ANSWER and ack.content_type == "application/sdp"

    b2b.receive(answer(vendor_invite, 200, body=VENDOR_OFFER), VENDOR)   # the ACK was lost: sent again
    (again, _), = take(b2b)
    assert again.method == "ACK" and again.body == CALLER_ANSWER

    hang_up(b2b, ok)
    (record,) = sink.records
    assert record.sip_code == 200 and record.vendor_codec == "PCMU"


# ============================================================================ 2. re-INVITE / UPDATE

def test_reinvite_from_vendor_is_bridged_to_caller_and_the_answer_relayed_back():
    b2b, timers, sink = make()
    vendor_invite, ok = establish(b2b, timers)
    vendor, caller = vendor_peer(vendor_invite), caller_peer(ok)

    b2b.receive(vendor.request("INVITE", 101, body=HOLD), VENDOR)
    out = take(b2b)
    assert [(m.status, f) for m, f in responses(out)] == [(100, VENDOR)]
    (forwarded, flow), = requests(out, "INVITE")
    assert flow[1] == ("10.0.0.1", 5060)
    assert forwarded.uri == "sip:100@10.0.0.1:5060" and forwarded.call_id == "call-1@10.0.0.1"
    assert forwarded.from_.tag == ok.to.tag and forwarded.to.tag == "ct"
    assert forwarded.body == HOLD and forwarded.content_type == "application/sdp"
    assert forwarded.headers.get("Contact")

    b2b.receive(caller.reply(forwarded, 200, body=HELD), CALLER)
    out = take(b2b)
    (ack, ack_flow), = requests(out, "ACK")
    assert ack_flow[1] == ("10.0.0.1", 5060) and ack.cseq == (forwarded.cseq[0], "ACK")
    assert ack.body == b""                            # the offer was ours: nothing to add
    (relayed, flow), = responses(out)
    assert flow == VENDOR and relayed.status == 200 and relayed.cseq == (101, "INVITE")
    assert relayed.call_id == vendor_invite.call_id and relayed.to.tag == vendor_invite.from_.tag
    assert relayed.body == HELD and relayed.content_type == "application/sdp"
    assert relayed.headers.get("Contact")

    b2b.receive(vendor.ack(101), VENDOR)
    assert take(b2b) == []
    assert sink.records == [] and len(b2b.active) == 1


def test_reinvite_without_sdp_from_vendor_gets_the_offer_from_caller_and_the_answer_in_its_ack():
    b2b, timers, _ = make()
    vendor_invite, ok = establish(b2b, timers)
    vendor, caller = vendor_peer(vendor_invite), caller_peer(ok)
    b2b.receive(vendor.request("INVITE", 101), VENDOR)
    (forwarded, _), = requests(take(b2b), "INVITE")
    assert forwarded.body == b""
    b2b.receive(caller.reply(forwarded, 200, body=CALLER_ANSWER), CALLER)
    out = take(b2b)
    assert requests(out, "ACK") == []                 # the caller's offer waits for the vendor's answer
    (relayed, flow), = responses(out)
    assert flow == VENDOR and relayed.status == 200 and relayed.body == CALLER_ANSWER
    b2b.receive(vendor.ack(101, body=VENDOR_OFFER), VENDOR)
    (ack, flow), = take(b2b)
    assert ack.method == "ACK" and flow[1] == ("10.0.0.1", 5060)
    assert ack.cseq == (forwarded.cseq[0], "ACK") and ack.body == VENDOR_OFFER


def test_update_from_caller_is_bridged_to_vendor_and_the_answer_relayed_back():
    b2b, timers, _ = make()
    vendor_invite, ok = establish(b2b, timers)
    vendor, caller = vendor_peer(vendor_invite), caller_peer(ok)
    b2b.receive(caller.request("UPDATE", 2, body=CALLER_ANSWER), CALLER)
    (update, flow), = take(b2b)
    assert update.method == "UPDATE" and flow[1] == ("10.0.0.2", 5060)
    assert update.uri == "sip:v@10.0.0.2:5060" and update.call_id == vendor_invite.call_id
    assert update.from_.tag == vendor_invite.from_.tag and update.to.tag == "vt"
    assert update.cseq == (2, "UPDATE")               # after the INVITE's 1 on this leg
    assert update.body == CALLER_ANSWER and update.content_type == "application/sdp"
    b2b.receive(vendor.reply(update, 200, body=VENDOR_OFFER), VENDOR)
    out = take(b2b)
    assert requests(out) == []                        # UPDATE has no ACK
    (relayed, flow), = responses(out)
    assert flow == CALLER and relayed.status == 200 and relayed.cseq == (2, "UPDATE")
    assert relayed.body == VENDOR_OFFER and relayed.content_type == "application/sdp"
    assert relayed.to.tag == ok.to.tag


def test_reinvite_glare_gets_491_while_the_first_completes():
    b2b, timers, _ = make()
    vendor_invite, ok = establish(b2b, timers)
    vendor, caller = vendor_peer(vendor_invite), caller_peer(ok)
    b2b.receive(vendor.request("INVITE", 101, body=HOLD), VENDOR)
    (forwarded, _), = requests(take(b2b), "INVITE")

    second = caller.request("INVITE", 2, body=CALLER_ANSWER)
    b2b.receive(second, CALLER)
    out = take(b2b)
    assert requests(out) == []                        # nothing goes to the vendor
    assert [m.status for m, _ in responses(out)] == [100, 491]
    pending = responses(out, 491)[0][0]
    assert pending.cseq == (2, "INVITE") and pending.to.tag == ok.to.tag
    b2b.receive(non2xx_ack(second, pending), CALLER)
    assert take(b2b) == []

    b2b.receive(caller.reply(forwarded, 200, body=HELD), CALLER)
    out = take(b2b)
    assert [m.method for m, _ in requests(out)] == ["ACK"]
    (relayed, flow), = responses(out)
    assert flow == VENDOR and relayed.status == 200 and relayed.body == HELD


# ============================================================================ 3. INFO

@pytest.mark.parametrize("direction", ["caller-to-vendor", "vendor-to-caller"])
def test_info_dtmf_is_bridged_and_its_200_relayed_back(direction):
    b2b, timers, _ = make()
    vendor_invite, ok = establish(b2b, timers)
    vendor, caller = vendor_peer(vendor_invite), caller_peer(ok)
    sender, receiver = (caller, vendor) if direction == "caller-to-vendor" else (vendor, caller)
    body = b"Signal=5\r\nDuration=160\r\n"
    b2b.receive(sender.request("INFO", 2 if sender is caller else 101, body=body, ctype="application/dtmf-relay"),
                sender.flow)
    (info, flow), = take(b2b)
    assert info.method == "INFO" and flow[1] == receiver.flow[1]
    assert info.body == body and info.headers.get("Content-Type") == "application/dtmf-relay"
    expected_call_id = vendor_invite.call_id if receiver is vendor else "call-1@10.0.0.1"
    assert info.call_id == expected_call_id
    b2b.receive(receiver.reply(info, 200), receiver.flow)
    (relayed, flow), = take(b2b)
    assert relayed.status == 200 and flow == sender.flow
    assert relayed.cseq == (2 if sender is caller else 101, "INFO") and relayed.body == b""


# ============================================================================ 4. CANCEL

def test_cancel_before_any_vendor_provisional_waits_for_one():
    b2b, timers, sink = make()
    original = invite()
    b2b.receive(original, CALLER)
    vendor_invite = vendor_invite_of(take(b2b))

    b2b.receive(cancel(original), CALLER)
    out = take(b2b)
    assert requests(out) == []                        # RFC 3261 9.1: not before a provisional
    assert sorted((m.status, m.cseq[1]) for m, _ in responses(out)) == [(200, "CANCEL"), (487, "INVITE")]
    assert all(f == CALLER for _, f in out)
    (record,) = sink.records
    assert record.sip_code == 487 and record.reason == "Cancelled" and record.end_direction == "caller"

    timers.advance(T0 + 0.4)
    assert requests(take(b2b), "CANCEL") == []

    b2b.receive(answer(vendor_invite, 180), VENDOR)
    out = take(b2b)
    (vendor_cancel, flow), = requests(out, "CANCEL")
    assert responses(out) == []                       # the 180 is not relayed to a cancelled caller
    assert flow[1] == ("10.0.0.2", 5060)
    assert vendor_cancel.uri == vendor_invite.uri and vendor_cancel.call_id == vendor_invite.call_id
    assert vendor_cancel.headers.get_all("Via") == vendor_invite.headers.get_all("Via")[:1]
    assert vendor_cancel.cseq == (vendor_invite.cseq[0], "CANCEL")
    assert vendor_cancel.headers.get("From") == vendor_invite.headers.get("From")
    assert vendor_cancel.to.tag is None

    b2b.receive(answer(vendor_cancel, 200), VENDOR)
    b2b.receive(answer(vendor_invite, 487), VENDOR)
    out = take(b2b)
    (ack, flow), = requests(out)
    assert ack.method == "ACK" and ack.cseq == (1, "ACK") and flow[1] == ("10.0.0.2", 5060)
    assert ack.headers.get_all("Via") == vendor_invite.headers.get_all("Via")[:1]
    assert responses(out) == []
    timers.advance(T0 + 40)
    assert requests(take(b2b), "CANCEL") == []
    assert len(sink.records) == 1 and not b2b.active


def test_vendor_200_racing_the_cancel_is_acked_and_hung_up():
    b2b, timers, sink = make()
    original = invite()
    b2b.receive(original, CALLER)
    vendor_invite = vendor_invite_of(take(b2b))
    b2b.receive(answer(vendor_invite, 183, body=VENDOR_OFFER), VENDOR)
    assert [m.status for m, _ in responses(take(b2b))] == [183]
    b2b.receive(cancel(original), CALLER)
    out = take(b2b)
    (vendor_cancel, _), = requests(out, "CANCEL")
    assert sorted(m.status for m, _ in responses(out)) == [200, 487]

    b2b.receive(answer(vendor_invite, 200), VENDOR)  # the vendor answered before it saw the CANCEL
    out = take(b2b)
    assert responses(out) == []                       # the caller already has its 487
    assert [(m.method, f[1]) for m, f in requests(out)] == [("ACK", ("10.0.0.2", 5060)),
                                                            ("BYE", ("10.0.0.2", 5060))]
    ack, bye = (m for m, _ in requests(out))
    assert ack.cseq == (1, "ACK") and ack.to.tag == "vt" and ack.via[0].branch != vendor_invite.via[0].branch
    assert bye.call_id == vendor_invite.call_id and bye.to.tag == "vt" and bye.cseq[0] > 1
    b2b.receive(answer(vendor_cancel, 200), VENDOR)
    b2b.receive(answer(bye, 200), VENDOR)
    assert take(b2b) == []
    (record,) = sink.records
    assert record.sip_code == 487 and record.reason == "Cancelled"


# ============================================================================ 5. timeouts

def test_ringing_timeout_cancels_the_vendor_and_answers_504():
    b2b, timers, sink = make({"SS_SIP_TIMEOUT_RINGING": 5, "SS_SIP_TIMEOUT_INVITE": 3})
    vendor_invite = start_call(b2b)
    b2b.receive(answer(vendor_invite, 180), VENDOR)
    (ringing, flow), = take(b2b)
    assert ringing.status == 180 and flow == CALLER and ringing.to.tag

    tick(timers, T0 + 4.9)                            # past Timer B (3 s): the 180 stopped it
    assert take(b2b) == []

    timers.advance(T0 + 5.0)
    out = take(b2b)
    (vendor_cancel, cflow), = requests(out, "CANCEL")
    assert cflow[1] == ("10.0.0.2", 5060) and vendor_cancel.cseq == (1, "CANCEL")
    assert vendor_cancel.headers.get_all("Via") == vendor_invite.headers.get_all("Via")[:1]
    (final, fflow), = responses(out)
    assert final.status == 504 and fflow == CALLER and final.to.tag == ringing.to.tag
    (record,) = sink.records
    assert record.sip_code == 504 and record.reason == "Connection Timeout" and record.end_direction == "switch"
    assert record.attempts == 1


def test_invite_timeout_without_provisional_fails_over_to_the_second_vendor():
    b2b, timers, sink = make({"SS_SIP_TIMEOUT_INVITE": 2}, vendors=TWO_VENDORS)
    first = start_call(b2b)
    assert first.uri == "sip:5551234@10.0.0.2:5060"

    tick(timers, T0 + 1.9)
    out = take(b2b)
    assert [(m.method, f[1]) for m, f in out] == [("INVITE", ("10.0.0.2", 5060))] * 2   # at 0.5 and 1.5 s
    assert all(m.via[0].branch == first.via[0].branch for m, _ in out)

    tick(timers, T0 + 2.0)
    out = take(b2b)
    second = vendor_invite_of(out, VENDOR2)
    assert responses(out) == []                       # the caller waits for the second vendor
    assert second.uri == "sip:5551234@10.0.0.3:5060"
    assert second.call_id != first.call_id and second.via[0].branch != first.via[0].branch
    assert second.body == SDP

    b2b.receive(answer(second, 200, contact="<sip:v@10.0.0.3:5060>"), VENDOR2)
    out = take(b2b)
    (ok, _), = responses(out)
    (ack, ack_flow), = requests(out, "ACK")
    assert ok.status == 200 and ack_flow[1] == ("10.0.0.3", 5060)
    b2b.receive(caller_peer(ok).ack(1), CALLER)
    timers.advance(T0 + 40)                           # the first vendor's INVITE is over for good
    assert requests(take(b2b), "INVITE") == []
    out = hang_up(b2b, ok)
    (bye, bye_flow), = requests(out, "BYE")
    assert bye_flow[1] == ("10.0.0.3", 5060)
    (record,) = sink.records
    assert record.attempts == 2 and record.vendor == "v2" and record.vendor_ip == "10.0.0.3"
    assert record.sip_code == 200 and record.reason == "Normal"


def test_no_cancel_to_a_vendor_that_never_answered():
    """RFC 3261 9.1: without a provisional response the CANCEL MUST NOT be sent; an INVITE
    that timed out without one is abandoned."""
    b2b, timers, _ = make({"SS_SIP_TIMEOUT_INVITE": 2}, vendors=TWO_VENDORS)
    start_call(b2b)
    sent = []
    for step in range(1, 120):
        timers.advance(T0 + step * 0.5)
        sent += take(b2b)
    assert [f[1] for m, f in requests(sent, "CANCEL")] == []
    assert requests(sent, "INVITE")                   # the failover did happen


# ============================================================================ 6. failover codes

@pytest.mark.parametrize("status", [486, 404, 603])
def test_stop_codes_end_the_call_without_failover(status):
    b2b, timers, sink = make(vendors=TWO_VENDORS)
    vendor_invite = start_call(b2b)
    b2b.receive(answer(vendor_invite, status), VENDOR)
    out = take(b2b)
    (ack, flow), = requests(out)
    assert ack.method == "ACK" and flow[1] == ("10.0.0.2", 5060) and ack.to.tag == "vt"
    assert ack.via[0].branch == vendor_invite.via[0].branch      # hop-by-hop ACK of a non-2xx
    (final, flow), = responses(out)
    assert final.status == status and flow == CALLER
    (record,) = sink.records
    assert record.sip_code == status and record.attempts == 1 and record.vendor == "v1"
    assert record.end_direction == "callee"


@pytest.mark.parametrize("status", [503, 408, 500])
def test_failover_codes_try_the_next_vendor(status):
    b2b, timers, sink = make(vendors=TWO_VENDORS)
    vendor_invite = start_call(b2b)
    b2b.receive(answer(vendor_invite, status), VENDOR)
    out = take(b2b)
    assert [(m.method, f[1]) for m, f in requests(out)] == [("ACK", ("10.0.0.2", 5060)),
                                                            ("INVITE", ("10.0.0.3", 5060))]
    assert responses(out) == []
    second = vendor_invite_of(out, VENDOR2)
    b2b.receive(answer(second, 486), VENDOR2)
    out = take(b2b)
    (final, flow), = responses(out)
    assert final.status == 486 and flow == CALLER
    (record,) = sink.records
    assert record.attempts == 2 and record.vendor == "v2" and record.sip_code == 486
    first, last = record.attempt_details
    assert (first["seq"], first["vendor"], first["sip_code"]) == (1, "v1", status)
    assert first["termination_reason"] == ("Response Timeout" if status == 408 else "NoAvailableRouter")
    assert (last["seq"], last["vendor_ip"], last["sip_code"], last["termination_reason"]) == (
        2, "10.0.0.3", 486, "User Busy")
    assert first["start_time"] <= first["end_time"] <= last["start_time"] <= last["end_time"]


def test_last_vendor_failing_passes_its_code_to_the_caller():
    b2b, timers, sink = make(vendors=TWO_VENDORS)
    vendor_invite = start_call(b2b)
    b2b.receive(answer(vendor_invite, 503), VENDOR)
    second = vendor_invite_of(take(b2b), VENDOR2)
    b2b.receive(answer(second, 503), VENDOR2)
    (final, flow), = responses(take(b2b))
    assert final.status == 503 and flow == CALLER
    assert sink.records[0].attempts == 2 and sink.records[0].sip_code == 503


# ============================================================================ 7. registrar

def register(cseq: int, *, auth: str | None = None, expires: int | None = None, contact: str = PHONE_CONTACT,
             user: str = "1001", call_id: str = "reg-1@192.168.1.20", extra: str = "") -> bytes:
    lines = [f"REGISTER {SWITCH} SIP/2.0",
             f"Via: SIP/2.0/UDP 192.168.1.20:5060;branch={fresh_branch('reg')};rport",
             f"From: <sip:{user}@192.0.2.1>;tag=r{cseq}", f"To: <sip:{user}@192.0.2.1>",
             f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER", "Max-Forwards: 70",
             f"Contact: {contact}", "User-Agent: deskphone/1.0"]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n").encode()


def challenge(b2b, flow=PHONE):
    b2b.receive(register(1), flow)
    (unauthorized, to), = take(b2b)
    assert unauthorized.status == 401 and to == flow
    return unauthorized.headers.get_all("WWW-Authenticate")


class Phone:
    """A phone that registers with digest credentials, one CSeq after the other."""

    def __init__(self, b2b, password="pw-1001", flow=PHONE):
        self.b2b = b2b
        self.flow = flow
        self.challenges = challenge(b2b, flow)
        self.client = DigestClient("1001", password)
        self.cseq = 1

    def register(self, **kwargs) -> Response:
        """Register (again); a stale nonce is answered with the fresh challenge, as phones do."""
        for _ in range(2):
            self.cseq += 1
            auth = self.client.authorize(self.challenges, "REGISTER", SWITCH)
            self.b2b.receive(register(self.cseq, auth=auth, **kwargs), self.flow)
            (response, to), = take(self.b2b)
            assert to == self.flow
            if response.status != 401:
                break
            self.challenges = response.headers.get_all("WWW-Authenticate")
            assert all("stale=true" in value for value in self.challenges)
        return response


def contacts(response: Response) -> dict[str, str]:
    """Registered contact URI -> expires parameter, from a 200 to REGISTER."""
    out = {}
    for value in response.headers.get_all("Contact"):
        addr = parse_name_addr(value)
        out[str(addr.uri)] = addr.params.get("expires")
    return out


def test_register_challenge_offers_sha256_then_md5_and_sha256_credentials_register():
    b2b, timers, _ = make(phones=PHONES)
    challenges = challenge(b2b)
    assert len(challenges) == 2
    assert "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    for value in challenges:
        assert value.startswith("Digest ") and 'realm="vosmedia"' in value and 'qop="auth"' in value
    auth = DigestClient("1001", "pw-1001").authorize(challenges, "REGISTER", SWITCH)
    assert "algorithm=SHA-256" in auth
    b2b.receive(register(2, auth=auth), PHONE)
    (ok, flow), = take(b2b)
    assert ok.status == 200 and flow == PHONE
    assert contacts(ok) == {"sip:1001@192.168.1.20:5060": "3600"}
    (row,) = b2b.registrar.online()
    assert row["user"] == "1001" and row["contact"] == "sip:1001@192.168.1.20:5060"
    assert row["source"] == "198.51.100.7:5062" and row["transport"] == "udp"
    assert row["expires_in"] == 3600 and row["user_agent"] == "deskphone/1.0"


def test_register_expiry_limits_unregister_and_wildcard():
    b2b, timers, _ = make(phones=PHONES, register_min_expires=60, register_max_expires=7200)
    phone = Phone(b2b)

    brief = phone.register(expires=30)
    assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
    assert b2b.registrar.online() == []
    brief = phone.register(contact=PHONE_CONTACT + ";expires=59")
    assert brief.status == 423

    long = phone.register(expires=99999)
    assert long.status == 200 and contacts(long) == {"sip:1001@192.168.1.20:5060": "7200"}
    assert [row["expires_in"] for row in b2b.registrar.online()] == [7200]

    gone = phone.register(expires=0)
    assert gone.status == 200 and gone.headers.get("Contact") is None
    assert b2b.registrar.online() == []

    phone.register(expires=600)
    both = phone.register(contact="<sip:1001@192.168.1.21:5070>", expires=300)
    assert contacts(both) == {"sip:1001@192.168.1.20:5060": "600", "sip:1001@192.168.1.21:5070": "300"}
    assert sorted(row["contact"] for row in b2b.registrar.online()) == [
        "sip:1001@192.168.1.20:5060", "sip:1001@192.168.1.21:5070"]

    timers.advance(T0 + 301)                          # the second binding runs out
    assert [row["contact"] for row in b2b.registrar.online()] == ["sip:1001@192.168.1.20:5060"]
    take(b2b)

    wildcard = phone.register(contact="*", expires=0)
    assert wildcard.status == 200 and wildcard.headers.get("Contact") is None
    assert b2b.registrar.online() == []


def test_call_to_registered_phone_goes_to_its_registration_source():
    b2b, timers, sink = make(phones=PHONES)
    assert Phone(b2b).register().status == 200
    b2b.receive(invite(user="1001"), CALLER)
    out = take(b2b)
    (to_phone, flow), = requests(out, "INVITE")
    assert flow == PHONE                              # through the NAT binding
    assert to_phone.uri == "sip:1001@192.168.1.20:5060"
    b2b.receive(answer(to_phone, 486, contact=PHONE_CONTACT), PHONE)
    assert [m.status for m, _ in responses(take(b2b))] == [486]
    assert sink.records[0].vendor == "phone:1001" and sink.records[0].vendor_ip == "198.51.100.7"


def test_in_dialog_requests_to_a_registered_phone_follow_its_registration_flow():
    """A phone behind NAT gives its private address as Contact; the ACK and BYE must reach
    it where its REGISTER came from, like the INVITE did."""
    b2b, timers, _ = make(phones=PHONES)
    assert Phone(b2b).register().status == 200
    b2b.receive(invite(user="1001"), CALLER)
    (to_phone, _), = requests(take(b2b), "INVITE")
    b2b.receive(answer(to_phone, 200, contact=PHONE_CONTACT), PHONE)
    out = take(b2b)
    (ok, _), = responses(out)
    assert [f for _, f in requests(out, "ACK")] == [PHONE]
    b2b.receive(caller_peer(ok).ack(1), CALLER)
    out = hang_up(b2b, ok)
    assert [f for _, f in requests(out, "BYE")] == [PHONE]


def test_wrong_password_gets_403_and_five_failures_block_the_source():
    b2b, timers, _ = make(phones=PHONES)
    phone = Phone(b2b, password="not-the-password")
    for attempt in range(5):
        assert "198.51.100.7" not in b2b.guard.blocked(timers.now)
        assert phone.register().status == 403
    assert "198.51.100.7" in b2b.guard.blocked(timers.now)
    assert b2b.stats["auth_failed"] == 5

    good = DigestClient("1001", "pw-1001").authorize(phone.challenges, "REGISTER", SWITCH)
    b2b.receive(register(20, auth=good), PHONE)
    assert take(b2b) == []                            # dropped unheard, even with the right password
    assert b2b.stats["flood_dropped"] >= 1 and b2b.registrar.online() == []

    elsewhere = ("udp", ("198.51.100.8", 5060), PHONE[2])
    assert challenge(b2b, elsewhere)                  # other sources are still answered


# ============================================================================ 8. calls from phones

def phone_invite(cseq: int, branch: str, extra: str = "") -> bytes:
    return invite(extra, branch=branch, call_id="pcall@192.168.1.20", from_user="1001",
                  from_host="192.0.2.1", via="198.51.100.7:5062", tag="pt", cseq=cseq)


def test_call_from_phone_is_challenged_then_proceeds_with_proxy_authorization():
    b2b, timers, sink = make(phones=PHONES)
    first = phone_invite(1, "z9hG4bKp1")
    b2b.receive(first, PHONE)
    out = take(b2b)
    assert requests(out) == []
    assert [m.status for m, _ in responses(out)] == [100, 407]
    (proxy_auth, flow), = responses(out, 407)
    assert flow == PHONE
    challenges = proxy_auth.headers.get_all("Proxy-Authenticate")
    assert len(challenges) == 2 and "algorithm=SHA-256" in challenges[0] and "algorithm=MD5" in challenges[1]
    b2b.receive(non2xx_ack(first, proxy_auth), PHONE)
    assert take(b2b) == []

    credentials = DigestClient("1001", "pw-1001").authorize(challenges, "INVITE", "sip:5551234@192.0.2.1")
    b2b.receive(phone_invite(2, "z9hG4bKp2", f"Proxy-Authorization: {credentials}\r\n"), PHONE)
    out = take(b2b)
    assert [(m.status, f) for m, f in responses(out)] == [(100, PHONE)]
    to_vendor = vendor_invite_of(out)
    assert to_vendor.uri == "sip:5551234@10.0.0.2:5060"
    assert to_vendor.headers.get("Proxy-Authorization") is None
    assert to_vendor.from_.uri.user == "1001"
    b2b.receive(answer(to_vendor, 486), VENDOR)
    assert [m.status for m, _ in responses(take(b2b))] == [486]
    (record,) = sink.records
    assert record.caller == "1001" and record.customer == "acme" and record.caller_ip == "198.51.100.7"


def test_call_from_unknown_source_and_user_is_forbidden():
    b2b, timers, _ = make(phones=PHONES)
    stranger = invite(branch="z9hG4bKs1", from_user="666", via="203.0.113.9:5060")
    b2b.receive(stranger, ("udp", ("203.0.113.9", 5060), PHONE[2]))
    out = take(b2b)
    assert [m.status for m, _ in responses(out)] == [100, 403] and requests(out) == []


# ============================================================================ 9. out of dialog

def oob(method: str, extra: str = "", to_tag: str = "", branch: str | None = None) -> bytes:
    to = "<sip:5551234@192.0.2.1>" + (f";tag={to_tag}" if to_tag else "")
    return (f"{method} sip:5551234@192.0.2.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch or fresh_branch('o')}\r\n"
            f"From: <sip:100@10.0.0.1>;tag=of\r\nTo: {to}\r\nCall-ID: oob-{method}@10.0.0.1\r\n"
            f"CSeq: 7 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def allow_of(response: Response) -> set[str]:
    return {m.strip() for m in response.headers.get_all("Allow")}


def test_options_out_of_dialog_is_answered_with_allow():
    b2b, _, _ = make()
    b2b.receive(oob("OPTIONS"), CALLER)
    (ok, flow), = take(b2b)
    assert ok.status == 200 and flow == CALLER and ok.cseq == (7, "OPTIONS")
    assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "UPDATE", "PRACK", "INFO"} <= allow_of(ok)


def test_unknown_method_gets_405_with_allow():
    b2b, _, _ = make()
    b2b.receive(oob("FROBNICATE"), CALLER)
    (refused, flow), = take(b2b)
    assert refused.status == 405 and flow == CALLER and refused.cseq == (7, "FROBNICATE")
    assert "INVITE" in allow_of(refused) and "FROBNICATE" not in allow_of(refused)


@pytest.mark.parametrize("to_tag", ["nosuchdialog", ""])
def test_bye_for_unknown_dialog_gets_481(to_tag):
    b2b, _, _ = make()
    b2b.receive(oob("BYE", to_tag=to_tag), CALLER)
    (refused, flow), = take(b2b)
    assert refused.status == 481 and flow == CALLER and refused.cseq == (7, "BYE")


def test_invite_requiring_unknown_extension_gets_420_with_unsupported():
    b2b, _, sink = make()
    b2b.receive(invite("Require: 100rel, unknown-ext\r\n"), CALLER)
    out = take(b2b)
    assert requests(out) == []
    (refused, flow), = responses(out, 420)
    assert flow == CALLER
    assert [v.strip() for v in refused.headers.get_all("Unsupported")] == ["unknown-ext"]
    assert not b2b.active


def test_options_requiring_unknown_extension_gets_420_with_unsupported():
    """RFC 3261 8.2.2.3 applies to every request but ACK and CANCEL, not just INVITE."""
    b2b, _, _ = make()
    b2b.receive(oob("OPTIONS", "Require: unknown-ext\r\n"), CALLER)
    (refused, flow), = take(b2b)
    assert refused.status == 420 and flow == CALLER
    assert [v.strip() for v in refused.headers.get_all("Unsupported")] == ["unknown-ext"]


@pytest.mark.parametrize("case", ["OPTIONS", "FROBNICATE", "BYE", "REGISTER", "INVITE-407"])
def test_final_responses_out_of_dialog_carry_a_to_tag(case):
    """RFC 3261 8.2.6.2: the UAS MUST add a To tag to every response but 100."""
    b2b, _, _ = make(phones=PHONES)
    message, flow = {"REGISTER": (register(1), PHONE),
                     "INVITE-407": (phone_invite(1, "z9hG4bKpt"), PHONE)}.get(case, (oob(case), CALLER))
    b2b.receive(message, flow)
    (response, _), = responses(take(b2b))[-1:]
    assert response.status >= 200 and response.to.tag


# ============================================================================ 10. fuzz

class Scene:
    """A switch with an answered call (call-1), a call ringing out to the vendor (call-2),
    a phone that can register, and the seed messages that fit that state."""

    def __init__(self):
        b2b, timers, sink = make(phones=PHONES, vendors=TWO_VENDORS)
        self.b2b, self.timers, self.sink = b2b, timers, sink
        vendor_invite, ok = establish(b2b, timers)
        caller, vendor = caller_peer(ok), vendor_peer(vendor_invite)
        call2 = invite(body=b"", call_id="call-2@10.0.0.1", branch="z9hG4bKc2", tag="c2")
        b2b.receive(call2, CALLER)
        second = vendor_invite_of(take(b2b))
        challenges = challenge(b2b)
        client = DigestClient("1001", "pw-1001")
        self.last_request: tuple[Request, tuple] | None = None
        auth = client.authorize(challenges, "REGISTER", SWITCH)
        proxy = ("Digest username=\"1001\", realm=\"vosmedia\", nonce=\"x\", uri=\"sip:5551234@192.0.2.1\", "
                 "response=\"00\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c\"")
        dtmf = b"Signal=1\r\nDuration=100\r\n"
        self.seeds = [
            (invite(call_id="call-3@10.0.0.1", branch="z9hG4bKc3", tag="c3"), CALLER),
            (invite(body=b"", call_id="call-4@10.0.0.1", branch="z9hG4bKc4", tag="c4"), CALLER),
            (caller.ack(1), CALLER),
            (caller.request("BYE", 9), CALLER),
            (vendor.request("BYE", 109), VENDOR),
            (vendor.request("INVITE", 105, body=HOLD), VENDOR),
            (vendor.request("INVITE", 106), VENDOR),
            (vendor.ack(105, body=VENDOR_OFFER), VENDOR),
            (caller.request("UPDATE", 4, body=CALLER_ANSWER), CALLER),
            (caller.request("INVITE", 5, body=CALLER_ANSWER), CALLER),
            (caller.request("INFO", 6, body=dtmf, ctype="application/dtmf-relay"), CALLER),
            (vendor.request("INFO", 107, body=b"5", ctype="application/dtmf"), VENDOR),
            (caller.request("OPTIONS", 8), CALLER),
            (caller.request("PRACK", 7, extra="RAck: 1 1 INVITE\r\n"), CALLER),
            (cancel(call2), CALLER),
            (register(2, auth=auth), PHONE),
            (register(3), PHONE),
            (phone_invite(1, "z9hG4bKpf", f"Proxy-Authorization: {proxy}\r\n"), PHONE),
            (oob("OPTIONS"), CALLER),
            (oob("BYE", to_tag="zz"), CALLER),
            (answer(second, 100), VENDOR),
            (answer(second, 180), VENDOR),
            (answer(second, 183, body=VENDOR_OFFER), VENDOR),
            (answer(second, 180, extra="Require: 100rel\r\nRSeq: 1\r\n"), VENDOR),
            (answer(second, 200, body=VENDOR_OFFER), VENDOR),
            (answer(second, 486), VENDOR),
            (answer(second, 503), VENDOR),
            (answer(vendor_invite, 200), VENDOR),
            (b"\r\n\r\n", CALLER),
        ]
        self.reply_statuses = [200, 180, 481, 491, 500]

    def message(self, index: int) -> tuple[bytes, tuple]:
        """Seed ``index``; past the fixed seeds, a response to the last request the switch sent."""
        if index < len(self.seeds):
            return self.seeds[index]
        status = self.reply_statuses[(index - len(self.seeds)) % len(self.reply_statuses)]
        if self.last_request is None:
            return self.seeds[0]
        request, flow = self.last_request
        body = CALLER_ANSWER if status == 200 and request.method in ("INVITE", "UPDATE") else b""
        return answer(request, status, body=body, contact=f"<sip:x@{flow[1][0]}:{flow[1][1]}>"), flow

    def note_output(self) -> None:
        for data, flow in self.b2b.outbox:
            if not data.startswith(b"SIP/2.0 "):
                request = parse(data)
                if request.method not in ("ACK", "CANCEL"):
                    self.last_request = (request, ("udp", flow[1], flow[2]))
        self.b2b.outbox.clear()


_POSITION = st.integers(min_value=0, max_value=1 << 16)
_SIP_BITS = st.sampled_from([b";", b"<", b">", b'"', b",", b" ", b"\r\n", b":", b"%", b"@", b"tag=", b"\t",
                             b"\r\n ", b"sip:", b"=", b"\\", b"[", b"]", b"0", b"-1", b"\x00", b"\xff",
                             b"99999999999", b"*", b"Require: x\r\n", b"Content-Length: 5\r\n"])
MUTATION = st.one_of(
    st.tuples(st.just("flip"), _POSITION, st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("truncate"), _POSITION),
    st.tuples(st.just("delete_line"), _POSITION),
    st.tuples(st.just("duplicate_line"), _POSITION),
    st.tuples(st.just("insert"), _POSITION, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("insert"), _POSITION, _SIP_BITS),
)


def mutate(data: bytes, mutations) -> bytes:
    for mutation in mutations:
        kind, position = mutation[0], mutation[1]
        if kind == "flip" and data:
            i = position % len(data)
            data = data[:i] + bytes([data[i] ^ mutation[2]]) + data[i + 1:]
        elif kind == "truncate":
            data = data[:position % (len(data) + 1)]
        elif kind in ("delete_line", "duplicate_line"):
            head, sep, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            i = position % len(lines)
            if kind == "delete_line":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = b"\r\n".join(lines) + sep + body
        elif kind == "insert":
            i = position % (len(data) + 1)
            data = data[:i] + mutation[2] + data[i:]
    return data


FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N_MESSAGES = 29 + 5                                   # seeds plus replies to the switch's last request


@FUZZ
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=N_MESSAGES - 1),
                          st.lists(MUTATION, max_size=3),
                          st.sampled_from([0.0, 0.0, 0.0, 0.6, 5.0, 40.0])),
                min_size=1, max_size=14))
def test_fuzzed_messages_never_break_receive(steps):
    scene = Scene()
    assert len(scene.seeds) + len(scene.reply_statuses) == N_MESSAGES
    b2b, timers = scene.b2b, scene.timers
    for index, mutations, wait in steps:
        data, flow = scene.message(index)
        data = mutate(data, mutations)
        b2b.receive(data, flow)
        assert b2b.stats["internal_errors"] == 0, data
        for sent, to in b2b.outbox:
            assert isinstance(sent, bytes) and to[1] and to[0] in ("udp", "tcp")
        scene.note_output()
        if wait:
            timers.advance(timers.now + wait)         # timer callbacks must cope with any state too
            scene.note_output()
    timers.advance(timers.now + 700)                  # run every timer out
    assert b2b.stats["internal_errors"] == 0


def test_every_reason_is_named_once_with_its_spec_code():
    from control import reasons
    names = [r.name for r in reasons.ALL]
    assert len(names) == len(set(names))
    spec = {"NoAvailableRouter": 503, "Not Found": 404, "Response Timeout": 408, "Connection Timeout": 504,
            "Account Locked": 403, "Account Expired": 403, "Unregistered": 480, "Connection Limit": 503,
            "Rate Limit": 503, "Called Not Online": 480, "Insufficient Balance": 402, "Rate Not Found": 404,
            "Codec Mismatch": 488, "IP Blocked": 403, "User Busy": 486, "Cancelled": 487}
    for name, code in spec.items():
        assert reasons.BY_NAME[name].sip_code == code, name
    assert "Auth Failed" in reasons.BY_NAME and "RTP Timeout" in reasons.BY_NAME and "Normal" in reasons.BY_NAME
    assert reasons.for_vendor_status(486) is reasons.USER_BUSY
    assert reasons.for_vendor_status(503) is reasons.NO_AVAILABLE_ROUTER
    assert reasons.for_vendor_status(403) is reasons.CALLEE_REJECTED


def test_zero_hold_time_calls_leave_no_record_when_the_parameter_says_so():
    b2b, timers, sink = make({"SERVER_BILLING_RECORD_ZERO_HOLD_TIME": False}, vendors=TWO_VENDORS)
    vendor_invite = start_call(b2b)
    b2b.receive(answer(vendor_invite, 486), VENDOR)        # refused: nothing held
    take(b2b)
    assert sink.records == [] and b2b.stats["cdrs_skipped"] == 1
    b2b2, timers2, sink2 = make(vendors=TWO_VENDORS)       # the default: every attempt is recorded
    vendor_invite = start_call(b2b2)
    b2b2.receive(answer(vendor_invite, 486), VENDOR)
    assert len(sink2.records) == 1


def test_phone_line_limit_counts_calls_it_receives():
    """A phone with one line: while a call rings it, a second call to it gets 503
    Connection Limit without reaching it; once the first ends, calls reach it again."""
    b2b, timers, sink = make(phones=[{**PHONES[0], "line_limit": 1}])
    assert Phone(b2b).register().status == 200
    b2b.receive(invite(user="1001"), CALLER)
    (first, _), = requests(take(b2b), "INVITE")
    b2b.receive(invite(user="1001", branch="z9hG4bKc2", call_id="call-2@10.0.0.1"), CALLER)
    out = take(b2b)
    assert not requests(out, "INVITE") and [m.status for m, _ in responses(out)] == [100, 503]
    assert sink.records[-1].reason == "Connection Limit"
    b2b.receive(answer(first, 486, contact=PHONE_CONTACT), PHONE)
    take(b2b)
    b2b.receive(invite(user="1001", branch="z9hG4bKc3", call_id="call-3@10.0.0.1"), CALLER)
    assert requests(take(b2b), "INVITE")
