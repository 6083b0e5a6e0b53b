"""Drive the B2BUA core sans-I/O: raw SIP bytes into :meth:`B2BUA.receive`, parsed
messages out of :attr:`B2BUA.outbox`, time moved by hand on a :class:`Timers` clock.

Shared by ``test_b2bua_core`` and ``test_b2bua_scenarios``. The switch listens on
192.0.2.1:5060; the caller is a customer gateway at 10.0.0.1, vendors sit at 10.0.0.2 and
10.0.0.3, phones register from 198.51.100.7.
"""
from __future__ import annotations

import itertools

from control import config as configuration
from control.b2bua import B2BUA
from control.params import ParamStore
from control.sip.message import Request, Response, parse, parse_name_addr
from control.sip.timer import Timers

LOCAL = ("192.0.2.1", 5060)
CALLER = ("udp", ("10.0.0.1", 5060), LOCAL)
VENDOR = ("udp", ("10.0.0.2", 5060), LOCAL)
VENDOR2 = ("udp", ("10.0.0.3", 5060), LOCAL)
PHONE = ("udp", ("198.51.100.7", 5062), LOCAL)
T0 = 1000.0

SDP = (b"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
       b"m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")

ONE_VENDOR = [{"name": "v1", "host": "10.0.0.2", "port": 5060}]
TWO_VENDORS = [{"name": "v1", "host": "10.0.0.2", "port": 5060},
               {"name": "v2", "host": "10.0.0.3", "port": 5060}]

_branches = itertools.count(1)


def fresh_branch(prefix: str = "t") -> str:
    return f"z9hG4bK{prefix}{next(_branches)}"


class Sink:
    def __init__(self):
        self.records = []

    def write(self, record):
        self.records.append(record)


def make(params=None, *, vendors=None, phones=None, **sip):
    """A B2BUA with one customer (10.0.0.1), the given vendors (one by default) and phones."""
    config = configuration.from_dict({
        "sip": sip,
        "customer": [{"name": "acme", "addresses": ["10.0.0.1"]}],
        "vendor": ONE_VENDOR if vendors is None else vendors,
        "phone": phones or [],
    })
    timers = Timers(T0)
    sink = Sink()
    b2b = B2BUA(timers, config, ParamStore(params or {}), None, sink,
                local={"udp": LOCAL, "tcp": LOCAL})
    return b2b, timers, sink


def take(b2b):
    """Everything the switch sent since the last call, parsed, with the flows."""
    out = [(parse(data), flow) for data, flow in b2b.outbox]
    b2b.outbox.clear()
    return out


def requests(out, method=None):
    return [(m, f) for m, f in out if isinstance(m, Request) and (method is None or m.method == method)]


def responses(out, status=None):
    return [(m, f) for m, f in out if isinstance(m, Response) and (status is None or m.status == status)]


def invite(extra: str = "", branch: str = "z9hG4bKc1", body: bytes = SDP, *, call_id: str = "call-1@10.0.0.1",
           user: str = "5551234", from_user: str = "100", from_host: str = "10.0.0.1",
           via: str = "10.0.0.1:5060", tag: str = "ct", cseq: int = 1) -> bytes:
    """An initial INVITE (from the customer gateway unless told otherwise)."""
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    head = (f"INVITE sip:{user}@192.0.2.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {via};branch={branch}\r\n"
            f"From: <sip:{from_user}@{from_host}>;tag={tag}\r\nTo: <sip:{user}@192.0.2.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:{from_user}@{via}>\r\n"
            f"Max-Forwards: 70\r\n{extra}{ctype}"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def cancel(invite_bytes: bytes) -> bytes:
    """The CANCEL for an INVITE we built (same Via, From, To, Call-ID, CSeq number)."""
    request = parse(invite_bytes)
    h = request.headers
    text = (f"CANCEL {request.uri} SIP/2.0\r\nVia: {h.get_all('Via')[0]}\r\nFrom: {h.get('From')}\r\n"
            f"To: {h.get('To')}\r\nCall-ID: {request.call_id}\r\nCSeq: {request.cseq[0]} CANCEL\r\n"
            f"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    return text.encode()


def non2xx_ack(invite_bytes: bytes, response: Response) -> bytes:
    """The hop-by-hop ACK for a non-2xx final response to one of our INVITEs."""
    request = parse(invite_bytes)
    h = request.headers
    text = (f"ACK {request.uri} SIP/2.0\r\nVia: {h.get_all('Via')[0]}\r\nFrom: {h.get('From')}\r\n"
            f"To: {response.headers.get('To')}\r\nCall-ID: {request.call_id}\r\n"
            f"CSeq: {request.cseq[0]} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    return text.encode()


def answer(request: Request, status: int = 200, extra: str = "", tag: str = "vt", body: bytes | None = None,
           contact: str = "<sip:v@10.0.0.2:5060>", ctype: str = "application/sdp") -> bytes:
    """A response to a request the switch sent. A 200 to INVITE carries SDP unless ``body``
    says otherwise; ``body`` is sent with any other response when given."""
    h = request.headers
    via = "".join(f"Via: {v}\r\n" for v in h.get_all("Via"))
    to = h.get("To") if ";tag=" in h.get("To") else f"{h.get('To')};tag={tag}"
    if body is None:
        body = SDP if status == 200 and request.method == "INVITE" else b""
    content_type = f"Content-Type: {ctype}\r\n" if body else ""
    text = (f"SIP/2.0 {status} X\r\n{via}From: {h.get('From')}\r\nTo: {to}\r\nCall-ID: {request.call_id}\r\n"
            f"CSeq: {h.get('CSeq')}\r\nContact: {contact}\r\n{extra}{content_type}"
            f"Content-Length: {len(body)}\r\n\r\n")
    return text.encode("utf-8", "surrogateescape") + body


class Peer:
    """One end of an established dialog with the switch (the caller or a vendor), able to
    send in-dialog requests and ACKs in it."""

    def __init__(self, flow, *, local: str, remote: str, call_id: str, target: str, contact: str):
        self.flow = flow
        self.local = local              # our From (with our tag)
        self.remote = remote            # the switch's address in this dialog (with its tag)
        self.call_id = call_id
        self.target = target            # the switch's Contact URI: our request-URI
        self.contact = contact
        host, port = flow[1]
        self.via = f"{host}:{port}"

    def request(self, method: str, cseq: int, body: bytes = b"", ctype: str = "application/sdp",
                extra: str = "", branch: str | None = None) -> bytes:
        content_type = f"Content-Type: {ctype}\r\n" if body else ""
        contact = f"Contact: {self.contact}\r\n" if method in ("INVITE", "UPDATE") else ""
        text = (f"{method} {self.target} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.via};branch={branch or fresh_branch(method.lower())}\r\n"
                f"From: {self.local}\r\nTo: {self.remote}\r\nCall-ID: {self.call_id}\r\n"
                f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{contact}{extra}{content_type}"
                f"Content-Length: {len(body)}\r\n\r\n")
        return text.encode("utf-8", "surrogateescape") + body

    def ack(self, cseq: int, body: bytes = b"") -> bytes:
        return self.request("ACK", cseq, body)

    def reply(self, request: Request, status: int = 200, body: bytes = b"", ctype: str = "application/sdp",
              extra: str = "") -> bytes:
        """Our response to an in-dialog request the switch sent us."""
        return answer(request, status, extra=extra, body=body, contact=self.contact, ctype=ctype)


def caller_peer(ok: Response) -> Peer:
    """The caller's side of call-1, from the switch's 200 to its INVITE."""
    target = str(parse_name_addr(ok.headers.get("Contact")).uri)
    return Peer(CALLER, local=ok.headers.get("From"), remote=ok.headers.get("To"), call_id=ok.call_id,
                target=target, contact="<sip:100@10.0.0.1:5060>")


def vendor_peer(vendor_invite: Request, flow=VENDOR, tag: str = "vt") -> Peer:
    """The vendor's side of the dialog created by its 200 (To tag ``tag``) to ``vendor_invite``."""
    h = vendor_invite.headers
    host, port = flow[1]
    return Peer(flow, local=f"{h.get('To')};tag={tag}", remote=h.get("From"), call_id=vendor_invite.call_id,
                target=str(parse_name_addr(h.get("Contact")).uri), contact=f"<sip:v@{host}:{port}>")


def establish(b2b, timers, vendor_extra="Session-Expires: 90;refresher=uac\r\n", caller_extra=""):
    """Call-1 from the caller through vendor v1, answered and ACKed. Returns the vendor's
    INVITE and the switch's 200 to the caller."""
    b2b.receive(invite(caller_extra), CALLER)
    out = take(b2b)
    assert [type(m).__name__ for m, _ in out] == ["Response", "Request"]
    assert out[0][0].status == 100 and out[0][1] == CALLER
    vendor_invite, flow = out[1]
    assert vendor_invite.method == "INVITE" and flow[1] == ("10.0.0.2", 5060)
    b2b.receive(answer(vendor_invite, 200, vendor_extra), VENDOR)
    out = take(b2b)
    kinds = {(m.method if isinstance(m, Request) else m.status) for m, _ in out}
    assert kinds == {"ACK", 200}
    ok = next(m for m, _ in out if isinstance(m, Response))
    ack = (f"ACK sip:192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKack1\r\n"
           f"From: <sip:100@10.0.0.1>;tag=ct\r\nTo: {ok.headers.get('To')}\r\n"
           f"Call-ID: call-1@10.0.0.1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    b2b.receive(ack.encode(), CALLER)
    assert take(b2b) == []
    return vendor_invite, ok
