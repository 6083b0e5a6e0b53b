"""SIP dialogs (RFC 3261 §12), sans-I/O: the state both ends share and the requests
sent inside it."""
from __future__ import annotations

from control.sip.message import Headers, Request, Response, new_branch, parse_name_addr

def _strip_tag(value: str) -> str:
    """A From/To value without its tag parameter (the tag is kept separately)."""
    addr = parse_name_addr(value)
    addr.params.pop("tag", None)
    return str(addr)


class Dialog:
    """One side's view of a dialog.

    ``local_uri``/``remote_uri`` are From/To values without tags; ``remote_target`` is the
    peer's Contact URI; ``route_set`` the Route values to put on requests (already in the
    order to send them)."""

    __slots__ = ("call_id", "local_tag", "remote_tag", "local_uri", "remote_uri", "local_seq",
                 "remote_seq", "remote_target", "route_set", "flow", "contact", "via_host",
                 "state", "rseq")

    def __init__(self, call_id: str, local_tag: str, remote_tag: str | None, local_uri: str,
                 remote_uri: str, local_seq: int, remote_seq: int | None, remote_target: str,
                 route_set: list[str], flow, contact: str, via_host: str):
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.remote_target = remote_target
        self.route_set = route_set
        self.flow = flow                    # where in-dialog requests go
        self.contact = contact              # our Contact header value
        self.via_host = via_host            # "host:port" for our Via
        self.state = "early"
        self.rseq = 0                       # last RSeq we sent (reliable provisionals)

    @classmethod
    def as_uas(cls, request: Request, local_tag: str, flow, contact: str, via_host: str) -> "Dialog":
        """Our side of a dialog created by a request we received (we are the callee)."""
        headers = request.headers
        frm = parse_name_addr(headers.get("From"))
        remote_tag = frm.params.get("tag")
        contacts = headers.get_all("Contact")
        target = str(parse_name_addr(contacts[0]).uri) if contacts else request.uri
        return cls(request.call_id, local_tag, remote_tag, _strip_tag(headers.get("To")),
                   _strip_tag(headers.get("From")), 0, request.cseq[0],
                   target, headers.get_all("Record-Route"), flow, contact, via_host)

    @classmethod
    def as_uac(cls, request: Request, response: Response, flow, contact: str, via_host: str) -> "Dialog":
        """Our side of a dialog created by a response to our request (we are the caller)."""
        headers = response.headers
        to = parse_name_addr(headers.get("To"))
        contacts = headers.get_all("Contact")
        target = str(parse_name_addr(contacts[0]).uri) if contacts else request.uri
        routes = list(reversed(headers.get_all("Record-Route")))
        frm = parse_name_addr(request.headers.get("From"))
        return cls(request.call_id, frm.params.get("tag"), to.params.get("tag"),
                   _strip_tag(request.headers.get("From")), _strip_tag(headers.get("To")),
                   request.cseq[0], None, target, routes, flow, contact, via_host)

    def update_target(self, message) -> None:
        """A target refresh (re-INVITE, UPDATE or their 2xx) may move the peer's Contact."""
        contacts = message.headers.get_all("Contact")
        if contacts:
            self.remote_target = str(parse_name_addr(contacts[0]).uri)

    def accept_remote_cseq(self, request: Request) -> bool:
        """RFC 3261 §12.2.2: an in-dialog request with a lower CSeq than the last is out of order."""
        seq = request.cseq[0]
        if self.remote_seq is not None and seq < self.remote_seq and request.method not in ("ACK", "CANCEL"):
            return False
        if request.method not in ("ACK", "CANCEL"):
            self.remote_seq = seq
        return True

    def request(self, method: str, *, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                cseq: int | None = None, branch: str | None = None) -> Request:
        """A new in-dialog request: fresh branch, next CSeq (ACK takes the INVITE's)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        h = Headers()
        h.add("Via", f"SIP/2.0/{self.flow[0].upper()} {self.via_host};branch={branch or new_branch()};rport")
        h.add("Max-Forwards", "70")
        for route in self.route_set:
            h.add("Route", route)
        remote = self.remote_uri + (f";tag={self.remote_tag}" if self.remote_tag else "")
        h.add("From", f"{self.local_uri};tag={self.local_tag}")
        h.add("To", remote)
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if method in ("INVITE", "UPDATE", "SUBSCRIBE", "REFER", "NOTIFY"):
            h.add("Contact", self.contact)
        for name, value in headers or ():
            h.add(name, value)
        return Request(method, self.remote_target, h, body)
