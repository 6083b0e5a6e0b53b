"""The B2BUA: every call is two independent dialogs joined by a media session.

Sans-I/O like the rest of ``control.sip``: :meth:`B2BUA.receive` takes a datagram (or a
framed TCP message) and the flow it came on; everything to send is appended to
:attr:`B2BUA.outbox`; time comes from the shared timers. The asyncio adapter
(``control.transport``) only moves bytes and advances the clock.

Who may call is asked of the routing table (mapping gateways: IP, IP+Port, Password) and
the registrar (phones); where calls go, of :class:`~control.routing.router.Router`;
media goes through :class:`~control.media.MediaControl`.
"""
from __future__ import annotations

import ipaddress
import logging
import uuid
from collections import Counter, deque
from datetime import datetime, timezone

from control import reasons as R
from control.alarms import Alarms
from control.billing.rating import hold_time, records_cdr
from control.billing.settings import BillingParams
from control.call import Call
from control.cdr import CallRecord
from control.config import SwitchConfig
from control.media import MediaControl
from control.params import ParamStore
from control.registrar import Registrar
from control.routing.identity import caller_number
from control.routing.router import Router
from control.routing.state import CallRate, decrement
from control.sip.dialog import Dialog
from control.sip.flood import FloodGuard
from control.sip.message import (Headers, Request, SipParseError, error_response, make_response,
                                 new_tag, parse, parse_name_addr, parse_uri)
from control.sip.timer import Timers
from control.sip.transaction import ServerTransaction, TransactionLayer
from vosmedia import sdp as sdpmod

log = logging.getLogger("vosmedia.b2bua")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO, REGISTER"
SUPPORTED = {"100rel", "timer"}
MAX_MESSAGE = 65536
MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")


class B2BUA:
    def __init__(self, timers: Timers, config: SwitchConfig, params: ParamStore,
                 media: MediaControl | None, cdr_sink, *, local: dict, wall_offset: float = 0.0,
                 user_agent: str = "vosmedia", charging=None, router=None, phones=None):
        self.timers = timers
        self.config = config
        self.params = params
        self.media = media
        self.cdr_sink = cdr_sink
        self.charging = charging                # control.charging.Charging, or None: nothing is rated
        self.local = local                      # transport -> (host, port) we send from
        self.wall_offset = wall_offset
        self.user_agent = user_agent
        self.outbox: list[tuple[bytes, tuple]] = []
        self.layer = TransactionLayer(timers, self._send, self,
                                      intervals=params.get("SS_SIP_RESEND_INTERVAL"),
                                      invite_timeout=params.get("SS_SIP_TIMEOUT_INVITE"))
        params.on_change(self._param_changed)
        self.router = router or Router.from_config(config, params)
        self.phone = phones or config.phone         # user -> phone (store-backed in the switch)
        self.guard = FloodGuard(trusted=self.router.table.trusted_addresses())
        self.registrar = Registrar(self, config)
        self.dialogs: dict[tuple[str, str], tuple[Call, str]] = {}   # (call-id, our tag) -> (call, side)
        self.calls_by_media: dict[str, Call] = {}
        self.active: set[Call] = set()
        self.stats: Counter = Counter()
        self.instance = uuid.uuid4().hex[:8]    # our Via branches carry it: loop detection
        self.alarms = Alarms()
        self.recent_invites: deque[float] = deque()     # INVITE arrival times, last minute
        self.ended_by_reason: Counter = Counter()       # termination reason -> calls
        self.phone_lines: Counter = Counter()            # phone user -> calls it makes or receives
        self._probe_timer = None

    # ------------------------------------------------------------------ plumbing

    def _send(self, data: bytes, flow) -> None:
        self.outbox.append((data, flow))

    def wall(self) -> float:
        return self.timers.now + self.wall_offset

    def _param_changed(self, name: str, value) -> None:
        if name == "SS_SIP_RESEND_INTERVAL":
            self.layer.configure(intervals=value)
        elif name == "SS_SIP_TIMEOUT_INVITE":
            self.layer.configure(invite_timeout=value)

    def via_host(self, transport: str) -> str:
        host, port = self.local.get(transport) or self.local["udp"]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def contact(self, transport: str, user: str = "") -> str:
        at = f"{user}@" if user else ""
        suffix = ";transport=tcp" if transport == "tcp" else ""
        return f"<sip:{at}{self.via_host(transport)}{suffix}>"

    def flow_to(self, host: str, port: int, transport: str = "udp") -> tuple:
        return (transport, (host, port), self.local.get(transport) or self.local["udp"])

    def flow_for_uri(self, uri: str, transport: str | None = None) -> tuple:
        """Where a request to ``uri`` goes (targets are IP addresses or names the OS resolves)."""
        parsed = parse_uri(uri)
        transport = transport or parsed.params.get("transport", "udp").lower()
        if transport not in ("udp", "tcp"):
            transport = "udp"
        return self.flow_to(parsed.host.strip("[]"), parsed.port or 5060, transport)

    def new_branch(self) -> str:
        return f"z9hG4bK{self.instance}{uuid.uuid4().hex[:16]}"

    # ------------------------------------------------------------------ input

    def receive(self, data: bytes, flow) -> None:
        """One datagram (or framed stream message) from ``flow``; never raises."""
        self.stats["received"] += 1
        if len(data) > MAX_MESSAGE:
            self.stats["oversized"] += 1
            return
        stripped = data.strip(b"\r\n")
        if not stripped:
            return                                   # keep-alive
        source = flow[1][0]
        if not stripped.startswith(b"SIP/") and not self.guard.allow(source, self.timers.now):
            self.stats["flood_dropped"] += 1
            return
        try:
            message = parse(data)
            message.validate()           # Via, From, To, URIs: malformed ones are a 400 here, not later
            if isinstance(message, Request):
                if self.guard.is_scanner(message.headers.get("User-Agent")):
                    self.guard.block(source, self.timers.now)
                    self.stats["scanner_blocked"] += 1
                    return
                problem = self._check_request(message)
                if problem is not None:
                    self._reject(message, flow, *problem)
                    return
            elif not message.headers.get("Via") or message.headers.get("CSeq") is None:
                self.stats["malformed"] += 1
                return
        except SipParseError as exc:
            self.stats["malformed"] += 1
            answer = error_response(data, exc)
            if answer is not None:
                self._send(answer, flow)
            return
        try:
            self.layer.receive(message, flow)
        except Exception:
            # a bug must cost one message, not the switch
            self.stats["internal_errors"] += 1
            log.exception("handling %s failed", getattr(message, "method", getattr(message, "status", "?")))
            if isinstance(message, Request) and message.method != "ACK":
                self._reject(message, flow, 500, "Server Internal Error")

    def _check_request(self, request: Request):
        headers = request.headers
        for name in MANDATORY:
            if headers.get(name) is None:
                return 400, f"Missing {name} header"
        if request.cseq[1] != request.method:
            return 400, "CSeq method does not match"
        if not request.via:
            return 400, "Bad Via header"
        return None

    def _reject(self, request: Request, flow, status: int, reason: str, headers=None) -> None:
        """A stateless final answer (the request never becomes a transaction)."""
        if request.method == "ACK":
            return
        response = make_response(request, status, reason, to_tag=uuid.uuid4().hex[:10], headers=headers)
        self._send(response.serialize(), flow)

    # ------------------------------------------------------------------ transaction user

    def on_request(self, request: Request, txn: ServerTransaction | None, flow) -> None:
        if txn is not None and request.method != "CANCEL":
            # RFC 3261 8.2.2.3: an extension we lack, required by any request, is refused
            unsupported = [opt.strip() for opt in request.headers.get_all("Require")
                           if opt.strip().lower() not in SUPPORTED]
            if unsupported:
                txn.respond(420, "Bad Extension", headers=[("Unsupported", ", ".join(unsupported))])
                return
        to_tag = parse_name_addr(request.headers.get("To")).params.get("tag")
        if to_tag is not None:
            entry = self.dialogs.get((request.call_id, to_tag))
            if entry is None:
                if request.method == "ACK":
                    return
                if request.method == "CANCEL":
                    self._cancel(request, txn)
                    return
                txn.respond(481, "Call/Transaction Does Not Exist")
                return
            call, side = entry
            call.in_dialog(side, request, txn, flow)
            return
        method = request.method
        if method == "ACK":
            return
        if method == "INVITE":
            self._invite(request, txn, flow)
        elif method == "CANCEL":
            self._cancel(request, txn)
        elif method == "OPTIONS":
            txn.respond(200, "OK", headers=[("Allow", ALLOW), ("Accept", "application/sdp"),
                                             ("Supported", ", ".join(sorted(SUPPORTED))),
                                             ("User-Agent", self.user_agent)])
        elif method == "REGISTER":
            self.registrar.register(request, txn, flow)
        elif method in ("BYE", "UPDATE", "PRACK", "INFO"):
            txn.respond(481, "Call/Transaction Does Not Exist")
        else:
            txn.respond(405, "Method Not Allowed", headers=[("Allow", ALLOW)])

    # ------------------------------------------------------------------ gateway liveness

    def start_probes(self) -> None:
        """OPTIONS to every routing gateway each SS_GATEWAY_KEEPALIVE_INTERVAL seconds;
        any answer means reachable, SS_GATEWAY_KEEPALIVE_FAILURES unanswered in a row
        mean unreachable (routing skips it, a Vendor Unreachable alarm is raised)."""
        interval = self.params.get("SS_GATEWAY_KEEPALIVE_INTERVAL")
        self._probe_timer = self.timers.after(interval or 5, self._probe_tick)

    def _probe_tick(self) -> None:
        interval = self.params.get("SS_GATEWAY_KEEPALIVE_INTERVAL")
        state = self.router.state
        self._review_alarms()
        if interval:
            for gateway in self.router.table.gateways.values():
                if not gateway.locked:
                    self._probe(gateway, min(5.0, interval * 0.8))
        else:
            for gateway_id in list(state.unreachable):       # probes off: nobody is down
                state.probe_answered(gateway_id)
                self.alarms.clear(f"vendor-unreachable:{gateway_id}")
        self._probe_timer = self.timers.after(interval or 5, self._probe_tick)

    def _review_alarms(self) -> None:
        """Alarms judged over time: Low ASR per routing gateway (the ASR sort's window,
        minimum calls and threshold, also when the sort itself is off) and registration
        failures whose block has run out."""
        _, window, min_calls, threshold = (tuple(self.params.get("SS_GATEWAYASRROUTESORTCONFIG")) + (0, 3600, 10, 30))[:4]
        now_wall = self.wall()
        for gateway in self.router.table.gateways.values():
            calls, asr = self.router.state.asr(gateway.id, now_wall, window)
            key = f"low-asr:{gateway.id}"
            if calls >= min_calls and asr < threshold:
                self.alarms.raise_(key, "Low ASR", "Medium", f"routing gateway {gateway.name}: ASR {asr:.1f}% "
                                   f"over {calls} calls in {window:.0f} s (threshold {threshold:g}%)")
            elif calls < min_calls or asr >= threshold:
                self.alarms.clear(key)
        blocked = self.guard.blocked(self.timers.now)
        for alarm in self.alarms.active():
            if alarm.kind == "SIP Registration Failure" and alarm.key.split(":", 1)[1] not in blocked:
                self.alarms.clear(alarm.key)

    def _probe(self, gateway, timeout: float) -> None:
        flow = self.flow_to(gateway.host, gateway.port, gateway.transport)
        host = self.via_host(flow[0])
        h = Headers()
        h.add("Via", f"SIP/2.0/{flow[0].upper()} {host};branch={self.new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:ping@{host}>;tag={new_tag()}")
        h.add("To", f"<sip:{gateway.host}:{gateway.port}>")
        h.add("Call-ID", f"{uuid.uuid4().hex}@{host.rsplit(':', 1)[0].strip('[]')}")
        h.add("CSeq", "1 OPTIONS")
        h.add("User-Agent", self.user_agent)
        request = Request("OPTIONS", f"sip:{gateway.host}:{gateway.port}", h)
        state, key = self.router.state, f"vendor-unreachable:{gateway.id}"

        def answered(_txn, response) -> None:
            if response.status >= 200 and state.probe_answered(gateway.id):
                self.alarms.clear(key)

        def missed(_txn) -> None:
            if state.probe_missed(gateway.id, self.params.get("SS_GATEWAY_KEEPALIVE_FAILURES")):
                self.alarms.raise_(key, "Vendor Unreachable", "High",
                                   f"routing gateway {gateway.name} ({gateway.host}:{gateway.port}) "
                                   "answers no OPTIONS")

        self.layer.request(request, flow, answered, missed, timeout=timeout)

    def _phone_full(self, phone) -> bool:
        """A phone's line limit counts the calls it makes and receives together."""
        limit = getattr(phone, "line_limit", None)
        return limit is not None and self.phone_lines[phone.user] >= limit

    def admit_ingress(self, gateway) -> tuple[R.Reason, str] | None:
        """A mapping gateway's own limits (SPEC 3.1): lock, expiry, calls per second,
        concurrent calls. None when the call may go on, else (reason, detail)."""
        state = self.router.state
        if gateway.locked:
            return R.GATEWAY_LOCKED, f"mapping gateway {gateway.name} is locked"
        if gateway.expiry < datetime.fromtimestamp(self.wall(), timezone.utc).date():
            return R.GATEWAY_EXPIRED, f"mapping gateway {gateway.name} expired on {gateway.expiry}"
        if gateway.max_concurrent is not None and state.ingress[gateway.id] >= gateway.max_concurrent:
            return R.CONNECTION_LIMIT, f"mapping gateway {gateway.name} has {gateway.max_concurrent} calls"
        if gateway.rate_limit is not None:
            window = state.rates.setdefault(gateway.id, CallRate())
            if not window.admit(self.timers.now, gateway.rate_limit):
                return R.RATE_LIMIT, f"mapping gateway {gateway.name}: over {gateway.rate_limit} calls per second"
        return None

    def _cancel(self, request: Request, txn: ServerTransaction) -> None:
        invite = self.layer.invite_for_cancel(request)
        if invite is None or invite.state != "proceeding":
            txn.respond(481, "Call/Transaction Does Not Exist")
            return
        txn.respond(200, "OK")
        call = getattr(invite, "call", None)
        if call is not None:
            call.caller_cancelled()
        else:
            invite.respond(487, "Request Terminated")

    def account_name(self, account_id: str | None) -> str:
        """An account's name for call records ("" when billing does not know it)."""
        if not account_id or self.charging is None:
            return ""
        record = self.charging.accounts.record(account_id)
        return record.name if record is not None else ""

    def calls_per_second(self, window: float = 10.0) -> float:
        """New calls per second over the last ``window`` seconds."""
        now = self.timers.now
        recent = self.recent_invites
        while recent and recent[0] < now - 60:
            recent.popleft()
        return round(sum(1 for t in recent if t >= now - window) / window, 2)

    def _invite(self, request: Request, txn: ServerTransaction, flow) -> None:
        self.stats["invites"] += 1
        self.recent_invites.append(self.timers.now)
        headers = request.headers
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            txn.respond(483, "Too Many Hops")
            return
        if any(v.branch and v.branch.startswith(f"z9hG4bK{self.instance}") for v in request.via):
            txn.respond(482, "Loop Detected")
            return
        body = request.body
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and content_type not in ("application/sdp", ""):
            txn.respond(415, "Unsupported Media Type", headers=[("Accept", "application/sdp")])
            return
        source, source_port = flow[1][0], flow[1][1]
        callee = parse_uri(request.uri).user_unescaped or ""
        table = self.router.table
        customer = table.identify(source, source_port, callee)
        phone = None
        if customer is None:
            user = parse_name_addr(headers.get("From")).uri.user or ""
            customer = table.password_gateway(user)
            phone = None if customer is not None else self.phone(user)
            if customer is None and phone is None:
                self.stats["rejected_unknown_source"] += 1
                txn.respond(403, R.IP_BLOCKED.name)          # neither a gateway nor a phone
                return
            if not self.registrar.authorize_call(request, txn, user, source):
                return
        refused, targets, no_route = None, [], R.NO_AVAILABLE_ROUTER
        caller = caller_number(headers, customer.caller_number_source if customer is not None else "From")
        if customer is not None:
            self.router.state.last_seen[customer.id] = self.timers.now
            refused = self.admit_ingress(customer)
            caller = customer.caller_dial_plan.apply(caller)
            callee = customer.routed_callee(callee)
        account = customer.account if customer is not None else getattr(phone, "account", None)
        if refused is None and account and self.charging is not None:
            blocked = self.charging.accounts.number_blocked(account, callee)
            if blocked:
                refused = R.NUMBER_RESTRICTED, blocked
        if refused is None and phone is not None and self._phone_full(phone):
            refused = R.CONNECTION_LIMIT, f"phone {phone.user} has {phone.line_limit} calls"
        called_phone = None
        if refused is None:
            targets = self.registrar.targets_for(callee)
            if targets:
                called_phone = self.phone(callee)
                if called_phone is not None and self._phone_full(called_phone):
                    targets, no_route = [], R.CONNECTION_LIMIT   # the called phone's lines are all in use
            else:
                routes = self.router.route(callee, customer, self.wall())
                targets = [("vendor", gateway) for gateway in routes.candidates]
                if routes.all_busy:
                    no_route = R.ALL_GATEWAY_BUSY
        call = Call(self, request, txn, flow, customer=customer, phone=phone, caller=caller,
                    callee=callee, targets=targets, no_route=no_route)
        if refused is not None:
            txn.call = call
            call.fail(refused[0], "switch", detail=refused[1])
            return
        if customer is not None:
            self.router.state.ingress[customer.id] += 1
            call.on_end.append(lambda: decrement(self.router.state.ingress, customer.id))
        for user in {p.user for p in (phone, called_phone if targets else None) if p is not None}:
            self.phone_lines[user] += 1                       # a phone's lines: calls made and received
            call.on_end.append(lambda user=user: decrement(self.phone_lines, user))
        txn.call = call
        self.active.add(call)
        call.start()

    # ------------------------------------------------------------------ call bookkeeping

    def media_mode(self, *overrides) -> int:
        """SS_MEDIAPROXYMODE, unless a gateway of this call overrides it (first one set wins)."""
        for value in overrides:
            if value is not None:
                return value
        return self.params.get("SS_MEDIAPROXYMODE")

    @staticmethod
    def behind_nat(sdp: bytes, source: str) -> bool:
        """Auto media proxy: relay when the SDP's address is private or not the signalling source."""
        try:
            address = sdpmod.parse(sdp).endpoint(0).address
            parsed = ipaddress.ip_address(address)
        except (sdpmod.SdpError, IndexError, ValueError):
            return True                  # unreadable: relaying is the safe choice
        return address != source or (parsed.is_private and not parsed.is_loopback)

    def register_dialog(self, call: Call, side: str, dialog: Dialog) -> None:
        self.dialogs[(dialog.call_id, dialog.local_tag)] = (call, side)

    def forget(self, call: Call) -> None:
        self.active.discard(call)
        for dialog in (call.a_dialog, call.b_dialog):
            if dialog is not None:
                self.dialogs.pop((dialog.call_id, dialog.local_tag), None)
        self.calls_by_media.pop(call.media_id, None)

    def record(self, record: CallRecord) -> None:
        """Hand an ended call's record to the sink, unless it held no time and
        SERVER_BILLING_RECORD_ZERO_HOLD_TIME says such calls leave no record."""
        self.ended_by_reason[record.reason] += 1
        billing = BillingParams.from_store(self.params)
        if not records_cdr(hold_time(int(round(record.duration_s * 1000)), billing), billing):
            self.stats["cdrs_skipped"] += 1
            return
        self.stats["cdrs"] += 1
        if self.cdr_sink is not None:
            self.cdr_sink.write(record)

    def media_events(self, events) -> None:
        """Digit events from the engine go to their calls."""
        if self.media is None:
            return
        for event in events:
            if getattr(event, "kind", None) != "dtmf":
                continue
            media_id = self.media.call_of_session(event.session)
            call = self.calls_by_media.get(media_id) if media_id else None
            if call is not None:
                call.on_digit(event.side, event.digit, event.duration_ms)

    def media_timed_out(self, media_ids) -> None:
        """The engine deleted these calls' media after RTP silence: end the calls."""
        for media_id in media_ids:
            call = self.calls_by_media.get(media_id)
            if call is not None:
                call.end_by_switch(R.RTP_TIMEOUT, media_gone=True)

    def shutdown(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
        for call in list(self.active):
            call.end_by_switch(R.SHUTDOWN)

