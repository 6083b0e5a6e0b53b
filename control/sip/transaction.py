"""SIP transactions (RFC 3261 §17, with RFC 6026's handling of 2xx), sans-I/O.

The layer sits between the transport adapter and the transaction user (the B2BUA):

* ``receive(message, flow)`` takes a parsed message that arrived on ``flow``;
* ``send(data, flow)`` (given at construction) is how it hands bytes to the adapter;
* time comes from the shared :class:`~control.sip.timer.Timers`.

A *flow* is ``(transport, (host, port), local)``: ``transport`` is ``"udp"`` or ``"tcp"``,
``local`` names our socket so answers leave from the port the request came to.

Retransmissions follow ``SS_SIP_RESEND_INTERVAL`` (seconds between sends; the list running
out ends a non-INVITE transaction, i.e. Timer F), ``SS_SIP_TIMEOUT_INVITE`` bounds an INVITE
that got no provisional response beyond 100 (Timer B). Reliable transports never retransmit.
Retransmitted requests are absorbed here: the last response is sent again and the TU never
sees the duplicate.
"""
from __future__ import annotations

from typing import Callable, Protocol

from control.sip.message import Headers, Request, Response, make_response, new_tag
from control.sip.timer import Timer, Timers

MAGIC = "z9hG4bK"
LINGER = 32.0          # Timers D/H/J (64*T1): how long a finished transaction absorbs duplicates
ACK_WAIT = 5.0         # Timers I/K (T4)
DEFAULT_INTERVALS = (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0)


class TransactionUser(Protocol):
    def on_request(self, request: Request, txn: "ServerTransaction | None", flow) -> None: ...


def _branch(message) -> str | None:
    vias = message.via
    return vias[0].branch if vias else None


def _server_key(request: Request):
    """Matching key of RFC 3261 §17.2.3 (ACK and CANCEL are matched by the layer itself)."""
    via = request.via[0]
    branch = via.branch
    method = "INVITE" if request.method == "ACK" else request.method
    if branch and branch.startswith(MAGIC):
        return (branch, via.host, via.port, method)
    # RFC 2543 peers: no usable branch, fall back to the dialog-identifying headers
    frm = request.from_
    return (request.call_id, frm.params.get("tag") if frm else None, request.cseq[0], method, str(via))


class ClientTransaction:
    """One request we sent and its responses."""

    __slots__ = ("layer", "request", "flow", "data", "is_invite", "state", "on_response",
                 "on_timeout", "_resend", "_resend_index", "_deadline", "_linger", "last_status",
                 "ack_data", "branch")

    def __init__(self, layer: "TransactionLayer", request: Request, flow, on_response, on_timeout,
                 timeout: float | None):
        self.layer = layer
        self.request = request
        self.flow = flow
        self.data = request.serialize()
        self.is_invite = request.method == "INVITE"
        self.state = "calling"
        self.on_response = on_response
        self.on_timeout = on_timeout
        self.last_status = 0
        self.ack_data: bytes | None = None
        self.branch = _branch(request)
        self._resend = None
        self._resend_index = 0
        self._linger = None
        timers = layer.timers
        layer.send(self.data, flow)
        if flow[0] == "udp":
            self._resend = timers.after(layer.intervals[0], self._retransmit)
        if self.is_invite:
            # Timer B runs until a provisional response beyond 100 Trying (a carrier's
            # "no answer from the gateway" limit) or a final response.
            self._deadline = timers.after(timeout if timeout is not None else layer.invite_timeout,
                                          self._timed_out)
        else:
            self._deadline = timers.after(timeout if timeout is not None else layer.request_timeout,
                                          self._timed_out)

    def _retransmit(self) -> None:
        if self.state not in ("calling", "trying", "proceeding"):
            return
        if self.is_invite and self.state == "proceeding":
            return
        self._resend_index += 1
        self._resend = self.layer.resend(self.data, self.flow, self._resend_index, self._retransmit)

    def _timed_out(self) -> None:
        if self.state in ("completed", "terminated", "accepted"):
            return
        self._finish()
        self.layer.stats["timeouts"] += 1
        if self.on_timeout is not None:
            self.on_timeout(self)

    def cancel_timeout(self) -> None:
        """The TU takes over timing (e.g. the ringing timeout after 180)."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _stop_timers(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _finish(self) -> None:
        self._stop_timers()
        self.state = "terminated"
        self.layer._client.pop((self.branch, self.request.method), None)

    def receive(self, response: Response) -> None:
        status = response.status
        state = self.state
        if status < 200:
            if state in ("calling", "trying", "proceeding"):
                self.state = "proceeding"
                if self.is_invite:
                    if self._resend is not None:
                        self._resend.cancel()
                        self._resend = None
                    if status > 100 and self._deadline is not None:
                        self._deadline.cancel()
                        self._deadline = None
                self.last_status = max(self.last_status, status)
                self.on_response(self, response)
            return
        if self.is_invite:
            if status < 300:
                # RFC 6026 "Accepted": every 2xx (retransmissions too) goes to the TU, which ACKs
                first = state != "accepted"
                if first:
                    self._stop_timers()
                    self.state = "accepted"
                    self.last_status = status
                    self._linger = self.layer.timers.after(LINGER, self._finish)
                self.on_response(self, response)
                return
            if state == "completed":
                self.layer.send(self.ack_data, self.flow)      # our ACK was lost
                return
            if state == "accepted":
                return
            self._stop_timers()
            self.state = "completed"
            self.last_status = status
            self.ack_data = self._ack_for(response).serialize()
            self.layer.send(self.ack_data, self.flow)
            self._linger = self.layer.timers.after(LINGER if self.flow[0] == "udp" else 0.0, self._finish)
            self.on_response(self, response)
            return
        if state in ("completed", "terminated"):
            return
        self._stop_timers()
        self.state = "completed"
        self.last_status = status
        self._linger = self.layer.timers.after(ACK_WAIT if self.flow[0] == "udp" else 0.0, self._finish)
        self.on_response(self, response)

    def _ack_for(self, response: Response) -> Request:
        """The hop-by-hop ACK of RFC 3261 §17.1.1.3 for a non-2xx final response."""
        req = self.request
        headers = Headers()
        headers.add("Via", req.headers.get_all("Via")[0])
        for name in ("Route",):
            for value in req.headers.get_all(name):
                headers.add(name, value)
        headers.add("Max-Forwards", "70")
        headers.add("From", req.headers.get("From"))
        headers.add("To", response.headers.get("To"))
        headers.add("Call-ID", req.headers.get("Call-ID"))
        headers.add("CSeq", f"{req.cseq[0]} ACK")
        return Request("ACK", req.uri, headers, b"")


class ServerTransaction:
    """A request we received and the responses we send to it."""

    __slots__ = ("layer", "request", "flow", "key", "is_invite", "state", "last_data", "last_status",
                 "_resend", "_resend_index", "_linger", "on_ack_timeout", "to_tag", "call")

    def __init__(self, layer: "TransactionLayer", request: Request, flow, key):
        self.layer = layer
        self.request = request
        self.flow = flow
        self.key = key
        self.is_invite = request.method == "INVITE"
        self.state = "proceeding" if self.is_invite else "trying"
        self.last_data: bytes | None = None
        self.last_status = 0
        self._resend = None
        self._resend_index = 0
        self._linger = None
        self.on_ack_timeout: Callable | None = None
        self.to_tag: str | None = None
        self.call = None                 # the transaction user's object (the B2BUA's call)

    def respond(self, status: int, reason: str | None = None, *, headers=None, body: bytes = b"",
                to_tag: str | None = None) -> Response:
        """Build a response to this request (RFC 3261 §8.2.6) and send it."""
        tag = to_tag if to_tag is not None else (self.to_tag if status > 100 else None)
        response = make_response(self.request, status, reason, to_tag=tag, headers=headers, body=body)
        self.send_response(response)
        return response

    def send_response(self, response: Response) -> None:
        if self.state in ("completed", "confirmed", "terminated", "accepted"):
            return
        layer = self.layer
        status = response.status
        data = response.serialize()
        self.last_data = data
        self.last_status = status
        layer.send(data, self.flow)
        if status < 200:
            return
        udp = self.flow[0] == "udp"
        if not self.is_invite:
            self.state = "completed"
            self._linger = layer.timers.after(LINGER if udp else 0.0, self._finish)
            return
        if status < 300:
            # RFC 6026: resend the 2xx until the ACK (a new transaction) arrives
            self.state = "accepted"
            layer._accepted[(self.request.call_id, self.request.cseq[0])] = self
        else:
            self.state = "completed"
        if udp:                 # a reliable transport delivers the response; only wait for the ACK
            self._resend = layer.timers.after(layer.intervals[0], self._retransmit)
        self._linger = layer.timers.after(LINGER, self._no_ack)

    def _retransmit(self) -> None:
        if self.state not in ("completed", "accepted"):
            return
        self._resend_index += 1
        self._resend = self.layer.resend(self.last_data, self.flow, self._resend_index, self._retransmit)

    def _no_ack(self) -> None:
        accepted = self.state == "accepted"
        self._finish()
        if accepted and self.on_ack_timeout is not None:
            self.on_ack_timeout(self)

    def acked(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None
        if self._linger is not None:
            self._linger.cancel()
        if self.state == "accepted":
            self._finish()
            return
        self.state = "confirmed"
        self._linger = self.layer.timers.after(ACK_WAIT if self.flow[0] == "udp" else 0.0, self._finish)

    def _finish(self) -> None:
        if self._resend is not None:
            self._resend.cancel()
            self._resend = None
        self.state = "terminated"
        layer = self.layer
        layer._server.pop(self.key, None)
        if self.is_invite:
            key = (self.request.call_id, self.request.cseq[0])
            if layer._accepted.get(key) is self:
                del layer._accepted[key]

    def duplicate(self) -> None:
        """The same request arrived again: answer with what we last said."""
        self.layer.stats["absorbed"] += 1
        if self.last_data is not None and self.state != "terminated":
            self.layer.send(self.last_data, self.flow)


class TransactionLayer:
    def __init__(self, timers: Timers, send: Callable[[bytes, tuple], None], tu: TransactionUser, *,
                 intervals=DEFAULT_INTERVALS, invite_timeout: float = 10.0):
        self.timers = timers
        self.send = send
        self.tu = tu
        self.intervals = tuple(intervals)
        self.invite_timeout = invite_timeout
        self._server: dict = {}
        self._client: dict = {}
        self._accepted: dict = {}
        self.stats = {"retransmitted": 0, "absorbed": 0, "timeouts": 0, "stray_responses": 0}

    @property
    def request_timeout(self) -> float:
        """Timer F: a non-INVITE request is given up when the retransmission list runs out."""
        return sum(self.intervals)

    def resend(self, data: bytes, flow, index: int, again) -> "Timer":
        """Send ``data`` again and schedule ``again`` after the ``index``-th interval
        (the last interval repeats once the list runs out)."""
        self.send(data, flow)
        self.stats["retransmitted"] += 1
        intervals = self.intervals
        return self.timers.after(intervals[min(index, len(intervals) - 1)], again)

    def configure(self, intervals=None, invite_timeout: float | None = None) -> None:
        if intervals is not None:
            self.intervals = tuple(intervals)
        if invite_timeout is not None:
            self.invite_timeout = invite_timeout

    # ------------------------------------------------------------------ inbound

    def receive(self, message, flow) -> None:
        if isinstance(message, Response):
            self._receive_response(message)
        else:
            self._receive_request(message, flow)

    def _receive_request(self, request: Request, flow) -> None:
        method = request.method
        if method == "ACK":
            txn = self._accepted.pop((request.call_id, request.cseq[0]), None)
            if txn is not None:
                txn.acked()
                self.tu.on_request(request, None, flow)
                return
            txn = self._server.get(_server_key(request))
            if txn is not None:
                if txn.state == "completed":
                    txn.acked()            # ACK of our non-2xx final: hop-by-hop, ends here
                return
            self.tu.on_request(request, None, flow)   # ACK for a 2xx whose transaction is gone
            return
        key = _server_key(request)
        txn = self._server.get(key)
        if txn is not None:
            txn.duplicate()
            return
        txn = ServerTransaction(self, request, flow, key)
        txn.to_tag = new_tag()          # every final answer carries a To tag (RFC 3261 8.2.6.2)
        self._server[key] = txn
        if method == "INVITE":
            txn.respond(100, "Trying")      # at once: stops the caller's retransmissions
        self.tu.on_request(request, txn, flow)

    def _receive_response(self, response: Response) -> None:
        vias = response.via
        if not vias:
            self.stats["stray_responses"] += 1
            return
        txn = self._client.get((vias[0].branch, response.cseq[1]))
        if txn is None:
            self.stats["stray_responses"] += 1
            return
        txn.receive(response)

    def invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (same branch, RFC 3261 §9.2)."""
        key = list(_server_key(cancel))
        key[3] = "INVITE"           # the method sits at index 3 in both key shapes
        return self._server.get(tuple(key))

    # ------------------------------------------------------------------ outbound

    def request(self, request: Request, flow, on_response, on_timeout=None,
                timeout: float | None = None) -> ClientTransaction:
        """Send a request (its top Via must carry a fresh branch) and track its responses."""
        txn = ClientTransaction(self, request, flow, on_response, on_timeout, timeout)
        self._client[(txn.branch, request.method)] = txn
        return txn

    def send_stateless(self, message, flow) -> None:
        """ACK for 2xx and other messages outside any transaction."""
        self.send(message.serialize() if not isinstance(message, bytes) else message, flow)

    def counts(self) -> dict:
        return {"server": len(self._server), "client": len(self._client), **self.stats}
