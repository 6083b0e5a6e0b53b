"""One call through the B2BUA: the caller's dialog (leg "a"), the vendor's dialog (leg
"b"), the media session between them and the state machine from INVITE to the call record.

Failover: targets are tried in order; the next one is taken on 408, 5xx or no answer
(``SS_SIP_TIMEOUT_INVITE``), never on 403/404/484/486/487/488 or a 6xx, and not once the
vendor sent early media SDP while ``SS_SIP_STOP_SWITCH_AFTER_SDP`` is set.
"""
from __future__ import annotations

import uuid
from functools import partial
from typing import TYPE_CHECKING

from control import reasons as R
from control.cdr import CallRecord
from control.charging import Refused
from control.config import DtmfSettings
from control.media import MediaError
from control.routing.identity import IdentityPolicy, vendor_identity
from control.sip.dialog import Dialog
from control.sip.message import Headers, Request, Response, new_tag, parse_name_addr, parse_uri
from vosmedia import sdp as sdpmod

if TYPE_CHECKING:
    from control.b2bua import B2BUA

FAILOVER_CODES = {408}
MIN_SE = 90


def _session_expires(value: str | None) -> tuple[int, str | None] | None:
    """``Session-Expires: 1800;refresher=uac`` -> (1800, "uac")."""
    if not value:
        return None
    parts = [p.strip() for p in value.split(";")]
    if not parts[0].isdigit():
        return None
    refresher = None
    for part in parts[1:]:
        name, _, val = part.partition("=")
        if name.strip().lower() == "refresher":
            refresher = val.strip().lower()
    return int(parts[0]), refresher


def _has_option(message, header: str, option: str) -> bool:
    return any(value.strip().lower() == option for value in message.headers.get_all(header))


def audio_codecs(sdp: bytes) -> list:
    """The codecs of an SDP's first audio stream, as the project's SDP model reads them
    (static payload types named per RFC 3551); none for a missing or unreadable SDP."""
    if not sdp:
        return []
    try:
        desc = sdpmod.parse(sdp)
    except sdpmod.SdpError:
        return []
    media = next((m for m in desc.media if m.media == "audio"), None)
    return media.codecs() if media is not None else []


def first_codec(sdp: bytes) -> str:
    """The first audio codec of an SDP, by name (for the call record)."""
    codecs = audio_codecs(sdp)
    return (codecs[0].encoding or str(codecs[0].pt)) if codecs else ""


class Call:
    def __init__(self, b2b: "B2BUA", invite: Request, txn, flow, *, customer, phone, caller: str,
                 callee: str, targets: list, no_route: R.Reason = R.NO_AVAILABLE_ROUTER):
        self.b2b = b2b
        self.a_invite = invite
        self.a_txn = txn
        self.a_flow = flow
        self.customer = customer
        self.phone = phone
        self.targets = targets
        self.no_route = no_route                  # the reason when there is no target at all
        self.on_end: list = []                    # callbacks when the call ends (limits released)
        self.seized = None                        # the routing gateway whose line this call holds
        self.offered_codecs = None                # codec rules of the media session's latest offer
        self.pool_number = None                   # the caller pool number it presents
        self.attempt = -1
        self.state = "routing"                   # routing -> early -> answered -> ended
        self.a_tag = new_tag()
        txn.to_tag = self.a_tag
        self.a_remote_tag = invite.from_.params.get("tag") or ""
        transport = flow[0]
        self.a_dialog = Dialog.as_uas(invite, self.a_tag, flow, b2b.contact(transport), b2b.via_host(transport))
        if self.a_dialog.route_set:
            self.a_dialog.flow = b2b.flow_for_uri(str(parse_name_addr(self.a_dialog.route_set[0]).uri), transport)
        b2b.register_dialog(self, "a", self.a_dialog)
        self.b_dialog: Dialog | None = None
        self.b_invite: Request | None = None
        self.b_txn = None
        self.b_flow = None
        self.b_tag = ""                           # the vendor's To tag (names its media leg)
        self.b_ack: Request | None = None
        self.b_cancel_pending = False
        self.b_cancelled = False
        self.b_last_rseq = 0
        self.early_sdp = False
        self.late_offer = not invite.body
        self.held_ack = None                      # (side, cseq) of an ACK waiting for the answer SDP
        self.pending: dict = {}                   # client txn -> (side, server txn, method)
        self.timers: dict = {}                    # name -> Timer
        self.session: dict = {}                   # side -> (interval, we_refresh)
        self.sdp_sent = {"a": b"", "b": b""}
        self.reliable = None                      # (rseq, Response, Timer) of an unPRACKed 1xx to A
        self.reliable_queue: list = []
        self.media_id = f"{invite.call_id};{self.a_tag}"
        self.proxied = False
        self.media_stats = None
        self.dtmf_sides: dict = {}                # party -> (engine side, send method) once set up
        self.billing = None                       # control.charging.CallBilling of a rated call
        now = b2b.wall()
        self.record = CallRecord(call_id=invite.call_id, caller=caller, callee=callee,
                                 customer=(b2b.account_name(customer.account) or customer.name) if customer
                                 else (phone.customer if phone else ""),
                                 customer_id=(customer.account or None) if customer else getattr(phone, "account", None),
                                 mapping_gateway=customer.name if customer else "",
                                 caller_ip=flow[1][0], start=now)
        self.started = b2b.timers.now

    # ================================================================ set-up

    def start(self) -> None:
        b2b = self.b2b
        customer = self.customer
        account = customer.account if customer is not None else getattr(self.phone, "account", None)
        if account and b2b.charging is not None:
            try:
                self.billing = b2b.charging.admit(account, self.record.callee, self.record.start)
            except Refused as exc:
                self.fail(exc.reason, "switch", detail=exc.detail)
                return
        first = self.targets[0][1] if self.targets and self.targets[0][0] == "vendor" else None
        own = self.customer.media_proxy if self.customer else (self.phone.media_proxy if self.phone else None)
        mode = b2b.media_mode(own, first.media_proxy if first else None)
        body = self.a_invite.body
        if mode == 3 and b2b.media is None:
            self.fail(R.MEDIA_UNAVAILABLE, "switch", detail="media proxy required but no media engine")
            return
        self.proxied = b2b.media is not None and (mode in (1, 3) or (
            mode == 2 and (not body or b2b.behind_nat(body, self.a_flow[1][0]))))
        self.b_body = body
        if self.proxied:
            b2b.calls_by_media[self.media_id] = self
            if body:
                try:
                    self._offer(first)
                except MediaError as exc:
                    self.fail(_media_reason(exc), "switch", detail=exc.reason)
                    return
        self.try_next(self.no_route)

    def snapshot(self) -> dict:
        """The call as the current-calls list shows it: parties, state, duration and, per
        leg, codec, DTMF method, packets, loss and jitter (from the media engine)."""
        b2b = self.b2b
        record = self.record
        stats = b2b.media.query(self.media_id) if self.proxied and b2b.media is not None else None
        legs = _media_summary(stats, self.a_remote_tag, self.b_tag) if stats else {}
        shown = []
        for side, party, codec in (("caller", "a", record.caller_codec), ("callee", "b", record.vendor_codec)):
            leg = legs.get("caller" if side == "caller" else "vendor", {})
            packets, lost = leg.get("packets", 0), leg.get("lost", 0)
            shown.append({"side": side, "codec": codec, "dtmf": self.dtmf_sides.get(party, (None, ""))[1] or "",
                          "packets": packets, "loss_percent": round(100.0 * lost / (packets + lost), 2) if packets + lost else 0.0,
                          "jitter_ms": round(leg.get("jitter_us", 0) / 1000, 1)})
        return {"call_id": record.call_id, "caller": record.caller, "callee": record.callee,
                "customer": record.customer, "customer_id": record.customer_id, "vendor": record.vendor,
                "state": self.state, "start_time": record.start,
                "duration_s": round(b2b.wall() - record.answer, 1) if record.answer else 0.0, "legs": shown}

    def _codec_options(self, gateway) -> dict:
        """The media session's codec rules for the caller's offer toward ``gateway``: the
        mapping gateway's codecs are all the caller may use; a routing gateway's codecs
        are all it is offered (the engine transcodes between them)."""
        options = {}
        if self.customer is not None and self.customer.codecs:
            options.update(strip=["all"], **{"except": list(self.customer.codecs)})
        if gateway is not None and getattr(gateway, "codecs", ()):
            options.update(mask=["all"], transcode=list(gateway.codecs))
        return options

    def _offer(self, gateway) -> None:
        """Offer the caller's SDP to the media session with ``gateway``'s codec rules
        (again only when they differ from the last offer's)."""
        options = self._codec_options(gateway)
        if options == self.offered_codecs:
            return
        self.b_body = self.b2b.media.offer(self.media_id, self.a_remote_tag, self.a_invite.body, codec=options)
        self.offered_codecs = options

    def try_next(self, reason: R.Reason, status: int | None = None, phrase: str | None = None) -> None:
        """Call the next target; with none left the call fails with ``reason`` (and the last
        vendor's status and phrase, when there was one)."""
        self.attempt += 1
        if self.attempt >= len(self.targets):
            self.fail(reason, "callee" if self.targets else "switch", status=status, phrase=phrase)
            return
        kind, target = self.targets[self.attempt]
        b2b = self.b2b
        callee = self.record.callee
        caller = self.record.caller
        if kind == "vendor":
            if self.proxied and self.a_invite.body and self.attempt > 0:
                try:
                    self._offer(target)
                except MediaError as exc:
                    self.record.attempts += 1
                    self.try_next(_media_reason(exc))
                    return
            callee = target.callee_for(callee)
            caller = self._seize(target, target.caller_dial_plan.apply(caller))
            uri = f"sip:{callee}@{target.host}:{target.port}"
            flow = b2b.flow_to(target.host, target.port, target.transport)
            self.record.vendor = b2b.account_name(target.account) or target.name
            self.record.vendor_ip = target.host
            self.record.vendor_id, self.record.routing_gateway = target.account, target.name
        else:                                     # a registered phone: its Contact, via its NAT binding
            uri = target.contact_uri
            flow = target.flow
            self.record.vendor = f"phone:{target.user}"
            self.record.vendor_ip = flow[1][0]
        transport = flow[0]
        self.record.attempt_details.append({
            "seq": self.attempt + 1, "vendor": self.record.vendor, "vendor_ip": self.record.vendor_ip,
            "routing_gateway": self.record.routing_gateway if kind == "vendor" else self.record.vendor,
            "callee_sent": callee, "start_time": self.b2b.wall()})
        self.record.caller_sent, self.record.callee_sent = caller, callee
        self.b_flow = flow
        self.b_tag = ""
        self.b_dialog = None
        self.b_last_rseq = 0
        self.b_cancel_pending = self.b_cancelled = False
        self.early_sdp = False
        a_headers = self.a_invite.headers
        caller_addr = parse_name_addr(a_headers.get("From"))
        host = b2b.via_host(transport)
        policy = target.identity if kind == "vendor" else IdentityPolicy()
        support_privacy = self.customer.support_privacy if self.customer is not None else False
        from_value, identity_headers = vendor_identity(a_headers, policy, caller=caller,
                                                       display=caller_addr.display or "", host=host,
                                                       support_privacy=support_privacy)
        call_id = f"{uuid.uuid4().hex}@{host.rsplit(':', 1)[0].strip('[]')}"
        self.b_from_tag = new_tag()
        max_forwards = self.a_invite.max_forwards
        h = Headers()
        h.add("Via", f"SIP/2.0/{transport.upper()} {host};branch={b2b.new_branch()};rport")
        h.add("Max-Forwards", str(max(0, (max_forwards if max_forwards is not None else 70) - 1)))
        h.add("From", f"{from_value};tag={self.b_from_tag}")
        h.add("To", f"<{uri}>")
        h.add("Call-ID", call_id)
        h.add("CSeq", "1 INVITE")
        h.add("Contact", b2b.contact(transport))
        h.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO")
        supported = ["timer"]
        if _has_option(self.a_invite, "Supported", "100rel") or _has_option(self.a_invite, "Require", "100rel"):
            supported.append("100rel")
        h.add("Supported", ", ".join(supported))
        ttl = b2b.params.get("SS_SIP_SESSION_TTL")
        h.add("Session-Expires", f"{ttl};refresher=uac")
        h.add("Min-SE", str(MIN_SE))
        h.add("User-Agent", b2b.user_agent)
        for name, value in identity_headers:
            h.add(name, value)
        if self.b_body:
            h.add("Content-Type", "application/sdp")
        body = self.b_body or b""
        settings = self._gateway_dtmf("b")
        if body and self.proxied and not settings.use_peer_rfc2833:
            body = offer_telephone_event(body, settings.payload)
        invite = Request("INVITE", uri, h, body)
        self.b_invite = invite
        self.sdp_sent["b"] = body
        self.record.attempts += 1
        self.b_txn = b2b.layer.request(invite, flow, self._b_response, self._b_timeout)

    # ================================================================ vendor responses

    def _b_response(self, txn, response: Response) -> None:
        if txn is not self.b_txn or self.state == "ended":
            self._stray(txn, response)
            return
        status = response.status
        if status < 200:
            self._b_provisional(response)
        elif status < 300:
            self._b_answered(response)
        else:
            self._b_failed(response)

    def _stray(self, txn, response: Response) -> None:
        """A response for an attempt we gave up on: a 2xx is ACKed and hung up at once; a
        provisional lets a CANCEL we owe go out."""
        status = response.status
        if status < 200:
            if txn is self.b_txn and self.b_cancel_pending:
                self._cancel_b()
            return
        if status < 300:
            dialog = Dialog.as_uac(txn.request, response, txn.flow, self.b2b.contact(txn.flow[0]),
                                   self.b2b.via_host(txn.flow[0]))
            dialog.flow = self._route_flow(dialog, txn.flow)
            self.b2b.layer.send_stateless(dialog.request("ACK", cseq=txn.request.cseq[0]), dialog.flow)
            bye = dialog.request("BYE", headers=[("Reason", 'SIP;cause=487;text="Call ended"')])
            self.b2b.layer.request(bye, dialog.flow, _ignore)

    def _route_flow(self, dialog: Dialog, default):
        if 0 <= self.attempt < len(self.targets) and self.targets[self.attempt][0] == "phone":
            return default               # a registered phone is reached where its REGISTER came from (NAT)
        if dialog.route_set:
            return self.b2b.flow_for_uri(str(parse_name_addr(dialog.route_set[0]).uri), default[0])
        try:
            return self.b2b.flow_for_uri(dialog.remote_target, default[0])
        except ValueError:
            return default

    def _b_dialog_from(self, response: Response) -> None:
        tag = response.to.params.get("tag")
        if tag and (self.b_dialog is None or self.b_dialog.remote_tag != tag):
            if self.b_dialog is not None:
                self.b2b.dialogs.pop((self.b_dialog.call_id, self.b_dialog.local_tag), None)
            dialog = Dialog.as_uac(self.b_invite, response, self.b_flow, self.b2b.contact(self.b_flow[0]),
                                   self.b2b.via_host(self.b_flow[0]))
            dialog.flow = self._route_flow(dialog, self.b_flow)
            self.b_dialog = dialog
            self.b_tag = tag
            self.b2b.register_dialog(self, "b", dialog)

    def _b_provisional(self, response: Response) -> None:
        if self.b_cancel_pending:
            self._cancel_b()
            return
        status = response.status
        if status == 100:
            return
        self._b_dialog_from(response)
        if _has_option(response, "Require", "100rel"):
            rseq = response.headers.get("RSeq")
            if rseq is None or not rseq.strip().isdigit():
                return
            rseq = int(rseq)
            if rseq <= self.b_last_rseq:
                return                           # a retransmission we already PRACKed
            self.b_last_rseq = rseq
            if self.b_dialog is not None:
                prack = self.b_dialog.request("PRACK", headers=[("RAck", f"{rseq} {self.b_invite.cseq[0]} INVITE")])
                self.b2b.layer.request(prack, self.b_dialog.flow, _ignore)
        now = self.b2b.timers.now
        attempt = self.record.attempt_details[-1] if self.record.attempt_details else None
        if attempt is not None and attempt.get("progress_time") is None:
            attempt["progress_time"] = self.b2b.wall()
            attempt["pdd_ms"] = int((self.b2b.wall() - attempt["start_time"]) * 1000)
        if self.record.progress is None:
            self.record.progress = self.b2b.wall()
            self.record.pdd_ms = int((now - self.started) * 1000)
        if "ringing" not in self.timers:
            self.b_txn.cancel_timeout()           # the ringing timeout takes over from Timer B
            self.timers["ringing"] = self.b2b.timers.after(self.b2b.params.get("SS_SIP_TIMEOUT_RINGING"),
                                                           self._ringing_timeout)
        body = b""
        if response.body and self._is_sdp(response):
            body = response.body
            if self.proxied and self.b_tag:
                try:
                    body = self.b2b.media.answer(self.media_id, self.a_remote_tag, self.b_tag, response.body)
                except MediaError:
                    body = b""
            self.early_sdp = bool(body)
        self.state = "early"
        self._to_a_provisional(status, response.reason, body)

    @staticmethod
    def _is_sdp(message) -> bool:
        return (message.headers.get("Content-Type") or "").split(";")[0].strip().lower() == "application/sdp"

    def _to_a_provisional(self, status: int, reason: str, body: bytes) -> None:
        headers = [("Contact", self.b2b.contact(self.a_flow[0]))]
        if body:
            headers.append(("Content-Type", "application/sdp"))
            self.sdp_sent["a"] = body
        if _has_option(self.a_invite, "Require", "100rel"):
            if self.reliable is not None:
                self.reliable_queue = [(status, reason, body, headers)]   # only the latest matters
                return
            self._send_reliable(status, reason, body, headers)
            return
        self.a_txn.respond(status, reason, headers=headers, body=body)

    def _send_reliable(self, status, reason, body, headers) -> None:
        """RFC 3262: a provisional response resent until the caller PRACKs it."""
        self.a_dialog.rseq += 1
        rseq = self.a_dialog.rseq
        response = self.a_txn.respond(status, reason, headers=headers + [("Require", "100rel"), ("RSeq", str(rseq))],
                                      body=body)
        self.reliable = (rseq, response.serialize(), None, 0)
        self._schedule_reliable(0)

    def _schedule_reliable(self, index: int) -> None:
        intervals = self.b2b.layer.intervals
        if self.reliable is None:
            return
        if index >= len(intervals):
            self.reliable = None
            self.a_txn.respond(504, "No PRACK")
            self._cancel_b()
            self.finish(504, R.NO_PRACK, "caller")
            return
        rseq, data, _, _ = self.reliable
        timer = self.b2b.timers.after(intervals[index], self._resend_reliable, index)
        self.reliable = (rseq, data, timer, index)

    def _resend_reliable(self, index: int) -> None:
        if self.reliable is None or self.state in ("answered", "ended"):
            return
        self.b2b.layer.send(self.reliable[1], self.a_flow)
        self._schedule_reliable(index + 1)

    def _prack(self, request: Request, txn) -> None:
        rack = (request.headers.get("RAck") or "").split()
        if self.reliable is None or not rack or not rack[0].isdigit() or int(rack[0]) != self.reliable[0]:
            txn.respond(481, "Call/Transaction Does Not Exist")
            return
        timer = self.reliable[2]
        if timer is not None:
            timer.cancel()
        self.reliable = None
        txn.respond(200, "OK")
        if self.reliable_queue:
            queued = self.reliable_queue.pop()
            self._send_reliable(*queued)

    def _b_answered(self, response: Response) -> None:
        b2b = self.b2b
        if self.state == "answered":
            if self.b_ack is not None:
                b2b.layer.send_stateless(self.b_ack, self.b_dialog.flow)     # our ACK was lost
            return
        self._b_dialog_from(response)
        dialog = self.b_dialog
        if dialog is None:                       # a 2xx without a To tag: accept and hang up
            self._stray(self.b_txn, response)
            self.fail(R.BAD_ANSWER, "callee", detail="2xx without a To tag")
            return
        dialog.state = "confirmed"
        dialog.update_target(response)
        dialog.flow = self._route_flow(dialog, self.b_flow)
        self._cancel_timer("ringing")
        body = response.body if self._is_sdp(response) else b""
        a_body = body
        if self.proxied and body:
            try:
                if self.late_offer:
                    a_body = b2b.media.offer(self.media_id, self.b_tag, body)
                else:
                    a_body = b2b.media.answer(self.media_id, self.a_remote_tag, self.b_tag, body)
            except MediaError as exc:
                self._send_b_ack(b"")
                self._bye("b", 488)
                self.fail(_media_reason(exc), "switch", detail=exc.reason)
                return
        if self.late_offer and body:
            self.held_ack = ("b", self.b_invite.cseq[0])       # the caller's ACK brings the answer
        else:
            self._send_b_ack(b"")
        self._close_attempt(200, R.NORMAL)
        self.record.vendor_codec = first_codec(body)
        self.record.caller_codec = first_codec(a_body)
        now = b2b.timers.now
        self.record.answer = b2b.wall()
        if self.record.pdd_ms is None:
            self.record.pdd_ms = int((now - self.started) * 1000)
        self.state = "answered"
        self.a_dialog.state = "confirmed"
        self._negotiate_b_timer(response)
        headers = [("Contact", b2b.contact(self.a_flow[0])),
                   ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO"),
                   ("Supported", "timer")]
        headers += self._negotiate_a_timer()
        if a_body:
            headers.append(("Content-Type", "application/sdp"))
            self.sdp_sent["a"] = a_body
        self.reliable = None
        if self.proxied:
            self._setup_dtmf(response)
        self.a_txn.on_ack_timeout = self._no_ack
        self.a_txn.respond(200, "OK", headers=headers, body=a_body)
        limit, detail = b2b.config.max_call_duration or None, "configured limit"
        own = self.customer.conversation_limit if self.customer is not None else 0
        if own and (limit is None or own < limit):
            limit, detail = own, f"conversation limitation of mapping gateway {self.customer.name}"
        if self.billing is not None:
            paid = b2b.charging.max_duration(self.billing)
            if paid is not None and (limit is None or paid < limit):
                limit, detail = paid, "funds exhausted"
        if limit is not None:
            self.timers["duration"] = b2b.timers.after(limit, self.end_by_switch, R.MAX_DURATION, detail)

    def _send_b_ack(self, body: bytes) -> None:
        headers = [("Content-Type", "application/sdp")] if body else None
        self.b_ack = self.b_dialog.request("ACK", cseq=self.b_invite.cseq[0], headers=headers, body=body)
        self.b2b.layer.send_stateless(self.b_ack, self.b_dialog.flow)

    def _no_ack(self, txn) -> None:
        if self.state == "answered":
            self.end_by_switch(R.NO_ACK)

    def _b_failed(self, response: Response) -> None:
        status = response.status
        self._cancel_timer("ringing")
        self.state = "routing"
        stop = self._stops_failover(status) or (
            self.early_sdp and self.b2b.params.get("SS_SIP_STOP_SWITCH_AFTER_SDP"))
        reason = R.for_vendor_status(status)
        self._close_attempt(status, reason)
        if stop:
            self.fail(reason, "callee", status=status, phrase=response.reason)
        else:
            self.try_next(reason, status, response.reason)

    def _stops_failover(self, status: int) -> bool:
        """Whether this final response from the current target ends the call instead of
        moving on (SPEC 3.3): a routing gateway's stop-switch codes and 6xx stop it, unless
        it is set to switch until connect; other targets stop on all but 408 and 5xx."""
        target = self._current_gateway()
        if target is None:
            return status not in FAILOVER_CODES and not 500 <= status < 600
        if target.switch_until_connect:
            return False
        return status in target.stop_codes or status >= 600

    def _current_gateway(self):
        """The routing gateway being tried, or None (a registered phone, or none yet)."""
        if 0 <= self.attempt < len(self.targets) and self.targets[self.attempt][0] == "vendor":
            return self.targets[self.attempt][1]
        return None

    def _seize(self, gateway, caller: str) -> str:
        """Take a line on the gateway (and its group) and, with a caller pool, a pool
        number to present; both are given back when the attempt ends."""
        router = self.b2b.router
        router.state.seize(gateway)
        self.seized = gateway
        pool = router.state.pool_for(gateway)
        self.pool_number = pool.acquire() if pool is not None else None
        return self.pool_number or caller

    def _release(self, answered: bool) -> None:
        gateway = self.seized
        if gateway is None:
            return
        self.seized = None
        state = self.b2b.router.state
        state.release(gateway)
        state.outcome(gateway.id, self.b2b.wall(), answered)
        if self.pool_number is not None:
            state.pool_for(gateway).release(self.pool_number)
            self.pool_number = None

    def _close_attempt(self, status: int, reason: R.Reason) -> None:
        """Write the outcome of the current vendor attempt (once) and give back what it
        held, unless it is the answered leg (that is given back when the call ends)."""
        details = self.record.attempt_details
        if details and "end_time" not in details[-1]:
            details[-1].update(end_time=self.b2b.wall(), sip_code=status, termination_reason=reason.name)
        if self.state != "answered" and not 200 <= status < 300:
            self._release(False)

    def _b_timeout(self, txn) -> None:
        if txn is not self.b_txn or self.state == "ended":
            return
        self._cancel_b()
        self._close_attempt(408, R.RESPONSE_TIMEOUT)
        if self.b2b.params.get("SS_SIP_USER_AGENT_STOP_SWITCH_AFTER_INVITE_TIMEOUT"):
            self.fail(R.RESPONSE_TIMEOUT, "switch")
        else:
            self.try_next(R.RESPONSE_TIMEOUT)

    def _ringing_timeout(self) -> None:
        self.timers.pop("ringing", None)
        if self.state in ("answered", "ended"):
            return
        self._cancel_b()
        self.fail(R.CONNECTION_TIMEOUT, "switch")

    def _cancel_b(self) -> None:
        """CANCEL the vendor INVITE once it has answered provisionally (RFC 3261 §9.1)."""
        txn = self.b_txn
        if txn is None or self.b_cancelled or txn.state not in ("calling", "proceeding", "terminated"):
            return
        if txn.last_status == 0:
            # RFC 3261 9.1: no CANCEL before a provisional; a vendor that never answered gets none
            if txn.state == "calling":
                self.b_cancel_pending = True
            return
        self.b_cancelled = True
        self.b_cancel_pending = False
        invite = self.b_invite
        h = Headers()
        h.add("Via", invite.headers.get_all("Via")[0])
        h.add("Max-Forwards", "70")
        h.add("From", invite.headers.get("From"))
        h.add("To", invite.headers.get("To"))
        h.add("Call-ID", invite.call_id)
        h.add("CSeq", f"{invite.cseq[0]} CANCEL")
        cancel = Request("CANCEL", invite.uri, h, b"")
        self.b2b.layer.request(cancel, txn.flow, _ignore)

    # ================================================================ caller side events

    def caller_cancelled(self) -> None:
        if self.state in ("answered", "ended"):
            return
        self.a_txn.respond(487, "Request Terminated")
        self._cancel_b()
        self.finish(487, R.CANCELLED, "caller")

    def in_dialog(self, side: str, request: Request, txn, flow) -> None:
        method = request.method
        if method == "ACK":
            self._ack(side, request)
            return
        dialog = self.a_dialog if side == "a" else self.b_dialog
        if method == "CANCEL":
            txn.respond(481, "Call/Transaction Does Not Exist")
            return
        if not dialog.accept_remote_cseq(request):
            txn.respond(500, "CSeq Out of Order")
            return
        if method == "BYE":
            self._hangup(side, txn)
        elif method in ("INVITE", "UPDATE"):
            self._bridge(side, request, txn, offer=True)
        elif method == "INFO":
            if not self._info_digit(side, request, txn):
                self._bridge(side, request, txn, offer=False)
        elif method == "PRACK":
            if side == "a":
                self._prack(request, txn)
            else:
                txn.respond(481, "Call/Transaction Does Not Exist")
        elif method == "OPTIONS":
            txn.respond(200, "OK", headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO")])
        else:
            txn.respond(405, "Method Not Allowed",
                        headers=[("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO")])

    def _ack(self, side: str, request: Request) -> None:
        held = self.held_ack
        if held is None or held[0] == side:
            return
        self.held_ack = None
        other, cseq = held
        body = request.body if self._is_sdp(request) else b""
        if body and self.proxied:
            try:
                body = self.b2b.media.answer(self.media_id, self._tag(other), self._tag(side), body)
            except MediaError:
                body = b""
        dialog = self._dialog(other)
        headers = [("Content-Type", "application/sdp")] if body else None
        ack = dialog.request("ACK", cseq=cseq, headers=headers, body=body)
        if other == "b" and cseq == self.b_invite.cseq[0]:
            self.b_ack = ack
        self.b2b.layer.send_stateless(ack, dialog.flow)

    def _hangup(self, side: str, txn) -> None:
        txn.respond(200, "OK")
        if self.state == "answered":
            self._bye("b" if side == "a" else "a")
            who = "caller" if side == "a" else "callee"
            self.finish(200, R.NORMAL, who)
        elif side == "a":
            self.a_txn.respond(487, "Request Terminated")
            self._cancel_b()
            self.finish(487, R.CANCELLED, "caller", detail="BYE before the answer")
        # a BYE in the vendor's early dialog: its final response to the INVITE follows

    def _tag(self, side: str) -> str:
        return self.a_remote_tag if side == "a" else self.b_tag

    def _dialog(self, side: str) -> Dialog:
        return self.a_dialog if side == "a" else self.b_dialog

    def _bridge(self, side: str, request: Request, txn, *, offer: bool) -> None:
        """Carry an in-dialog request to the other leg and its response back."""
        other = "b" if side == "a" else "a"
        if self.state != "answered" or self._dialog(other) is None:
            txn.respond(491 if offer else 481, "Request Pending" if offer else "Call/Transaction Does Not Exist")
            return
        if offer:
            pending = [origin for origin, _, method in self.pending.values() if method in ("INVITE", "UPDATE")]
            if side in pending:          # RFC 3261 14.2: the same side's second offer
                txn.respond(500, "Server Internal Error", headers=[("Retry-After", "2")])
                return
            if pending:                  # glare with the other side's offer
                txn.respond(491, "Request Pending")
                return
        dialog = self._dialog(side)
        if offer:
            dialog.update_target(request)
            self._refreshed(side)
        body = request.body
        content_type = request.headers.get("Content-Type")
        if offer and body and self._is_sdp(request) and self.proxied:
            try:
                body = self.b2b.media.offer(self.media_id, self._tag(side), body)
            except MediaError as exc:
                txn.respond(488, "Not Acceptable Here", headers=[("Warning", f'399 vosmedia "{exc.reason}"')])
                return
        headers = [("Content-Type", content_type)] if body and content_type else []
        if offer:
            headers.append(("Supported", "timer"))
        for name in ("Event", "Reason"):
            value = request.headers.get(name)
            if value is not None:
                headers.append((name, value))
        out = self._dialog(other).request(request.method, headers=headers, body=body)
        if offer and body:
            self.sdp_sent[other] = body
        otxn = self.b2b.layer.request(out, self._dialog(other).flow, self._bridged_response, self._bridged_timeout)
        self.pending[otxn] = (side, txn, request.method)

    def _bridged_response(self, otxn, response: Response) -> None:
        entry = self.pending.get(otxn)
        if entry is None or response.status < 200:
            return
        del self.pending[otxn]
        side, txn, method = entry
        other = "b" if side == "a" else "a"
        status = response.status
        body = response.body if response.body else b""
        if 200 <= status < 300:
            self._dialog(other).update_target(response)
            sent_offer = bool(otxn.request.body)
            if body and self._is_sdp(response) and self.proxied and method in ("INVITE", "UPDATE"):
                try:
                    if sent_offer:
                        body = self.b2b.media.answer(self.media_id, self._tag(side), self._tag(other), response.body)
                    else:
                        body = self.b2b.media.offer(self.media_id, self._tag(other), response.body)
                except MediaError:
                    body = b""
            if method == "INVITE":
                if sent_offer or not body:
                    ack = self._dialog(other).request("ACK", cseq=otxn.request.cseq[0])
                    self.b2b.layer.send_stateless(ack, self._dialog(other).flow)
                else:
                    self.held_ack = (other, otxn.request.cseq[0])
        headers = [("Contact", self.b2b.contact(self._dialog(side).flow[0]))] if method in ("INVITE", "UPDATE") else []
        if body:
            headers.append(("Content-Type", response.headers.get("Content-Type") or "application/sdp"))
            if method in ("INVITE", "UPDATE"):
                self.sdp_sent[side] = body
        if txn.state not in ("terminated", "completed", "accepted", "confirmed"):
            txn.respond(status, response.reason, headers=headers, body=body)
        if status in (408, 481):
            self.end_by_switch(R.SESSION_TIMEOUT, f"dialog gone on the {'vendor' if other == 'b' else 'caller'} side ({status})")

    def _bridged_timeout(self, otxn) -> None:
        entry = self.pending.pop(otxn, None)
        if entry is None:
            return
        side, txn, _ = entry
        txn.respond(408, "Request Timeout")
        self.end_by_switch(R.SESSION_TIMEOUT, "in-dialog request timed out")

    # ================================================================ DTMF (SPEC 1.5)

    def _gateway_dtmf(self, party: str):
        if party == "a":
            owner = self.customer or self.phone
        else:
            owner = self.targets[self.attempt][1] if 0 <= self.attempt < len(self.targets) else None
            if owner is not None and not hasattr(owner, "dtmf"):          # a registered phone's binding
                owner = self.b2b.phone(owner.user)
        return owner.dtmf if owner is not None else DtmfSettings()

    def _setup_dtmf(self, answer: Response) -> None:
        """Per party: which methods its digits are taken by and how digits reach it; the
        engine does RFC 2833 and tones, INFO goes through us."""
        media = self.b2b.media
        sid = media.audio_session(self.media_id)
        if sid is None:
            return
        sdp_of = {"a": self.a_invite.body, "b": answer.body or self.b_invite.body}
        allows_of = {"a": self.a_invite, "b": answer}
        for party in ("a", "b"):
            side = media.side_of(self.media_id, self._tag(party))
            if side is None:
                return
            settings = self._gateway_dtmf(party)
            pt = telephone_event_pt(sdp_of[party])
            send = settings.send
            if send == "auto":
                send = "rfc2833" if pt is not None else ("info" if _allows(allows_of[party], "INFO") else "inband")
            if send == "rfc2833" and pt is None:
                send = "inband"
            try:
                media.set_dtmf(sid, side, receive=settings.receive, send=send, rx_pt=pt)
            except (ValueError, KeyError):
                return
            self.dtmf_sides[party] = (side, send)
        self.dtmf_sid = sid

    def _info_digit(self, party: str, request: Request, txn) -> bool:
        """A DTMF INFO from ``party`` handed to the engine (True: answered here)."""
        if party not in self.dtmf_sides or self.state != "answered":
            return False
        parsed = parse_dtmf_info(request.headers.get("Content-Type"), request.body)
        if parsed is None:
            return False
        digit, duration = parsed
        try:
            self.b2b.media.info_digit(self.dtmf_sid, self.dtmf_sides[party][0], digit, duration)
        except (ValueError, KeyError):
            return False
        txn.respond(200, "OK")
        return True

    def on_digit(self, side: int, digit: str, duration_ms: int) -> None:
        """The engine saw a digit from the party on engine ``side``; INFO carries it on when
        the other party takes DTMF by SIP INFO."""
        if self.state != "answered":
            return
        self.record.dtmf += digit
        party = next((p for p, (s, _) in self.dtmf_sides.items() if s == side), None)
        if party is None:
            return
        other = "b" if party == "a" else "a"
        if self.dtmf_sides.get(other, (None, None))[1] != "info":
            return
        body = f"Signal={digit}\r\nDuration={max(duration_ms, 40)}\r\n".encode()
        dialog = self._dialog(other)
        info = dialog.request("INFO", headers=[("Content-Type", "application/dtmf-relay")], body=body)
        self.b2b.layer.request(info, dialog.flow, _ignore)

    # ================================================================ session timers (RFC 4028)

    def _negotiate_b_timer(self, response: Response) -> None:
        ttl = self.b2b.params.get("SS_SIP_SESSION_TTL")
        se = _session_expires(response.headers.get("Session-Expires"))
        if se is None:
            self._arm_session("b", ttl, True)         # the vendor ignored it: we refresh anyway
        else:
            interval, refresher = se
            self._arm_session("b", max(interval, MIN_SE), refresher != "uas")

    def _negotiate_a_timer(self) -> list:
        """Session-Expires for our 200 to the caller, and the timer we run for that leg."""
        se = _session_expires(self.a_invite.headers.get("Session-Expires"))
        supports = _has_option(self.a_invite, "Supported", "timer") or _has_option(self.a_invite, "Require", "timer")
        if se is None and not supports:
            return []
        interval = se[0] if se else self.b2b.params.get("SS_SIP_SESSION_TTL")
        interval = max(interval, MIN_SE)
        refresher = (se[1] if se and se[1] else "uac") if supports else "uas"
        self._arm_session("a", interval, refresher == "uas")
        headers = [("Session-Expires", f"{interval};refresher={refresher}")]
        if refresher == "uac":
            headers.append(("Require", "timer"))
        return headers

    def _arm_session(self, side: str, interval: int, we_refresh: bool) -> None:
        self.session[side] = (interval, we_refresh)
        self._cancel_timer("session-" + side)
        if we_refresh:
            self.timers["session-" + side] = self.b2b.timers.after(interval / 2, self._refresh, side)
        else:
            grace = min(32, interval / 3)
            self.timers["session-" + side] = self.b2b.timers.after(interval - grace, self.end_by_switch,
                                                                   R.SESSION_TIMEOUT, "no refresh from the peer")

    def _refreshed(self, side: str) -> None:
        """The peer on ``side`` refreshed the session (re-INVITE/UPDATE)."""
        if side in self.session:
            interval, we_refresh = self.session[side]
            if not we_refresh:
                self._arm_session(side, interval, False)

    def _refresh(self, side: str) -> None:
        self.timers.pop("session-" + side, None)
        if self.state != "answered":
            return
        if any(method in ("INVITE", "UPDATE") for _, _, method in self.pending.values()):
            self.timers["session-" + side] = self.b2b.timers.after(2.0, self._refresh, side)
            return
        interval, _ = self.session[side]
        dialog = self._dialog(side)
        headers = [("Session-Expires", f"{interval};refresher=uac"), ("Supported", "timer")]
        body = self.sdp_sent[side]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        request = dialog.request("INVITE", headers=headers, body=body)
        self.b2b.layer.request(request, dialog.flow, partial(self._refresh_response, side), self._refresh_failed)

    def _refresh_response(self, side: str, txn, response: Response) -> None:
        status = response.status
        if status < 200 or self.state != "answered":
            return
        dialog = self._dialog(side)
        if status < 300:
            self.b2b.layer.send_stateless(dialog.request("ACK", cseq=txn.request.cseq[0]), dialog.flow)
            se = _session_expires(response.headers.get("Session-Expires"))
            interval = max(se[0], MIN_SE) if se else self.session[side][0]
            self._arm_session(side, interval, True)
        elif status == 491:
            self.timers["session-" + side] = self.b2b.timers.after(2.0, self._refresh, side)
        else:
            self.end_by_switch(R.SESSION_TIMEOUT, f"refresh answered {status}")

    def _refresh_failed(self, txn) -> None:
        if self.state == "answered":
            self.end_by_switch(R.SESSION_TIMEOUT, "refresh timed out")

    # ================================================================ ending

    def _cancel_timer(self, name: str) -> None:
        timer = self.timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _bill(self, record: CallRecord) -> None:
        """The charge replaces the reservation; the record gets rate, fee, cost, profit."""
        charging = self.b2b.charging
        if record.answer is None:
            charging.release(self.billing)
            return
        duration_ms = int(round((record.end - record.answer) * 1000))
        charging.settle(self.billing, duration_ms, record.call_id, record)
        target = self.targets[self.attempt][1] if 0 <= self.attempt < len(self.targets) else None
        charging.vendor_cost(target, duration_ms, record)

    def _bye(self, side: str, cause: int | None = None) -> None:
        dialog = self._dialog(side)
        if dialog is None:
            return
        headers = [("Reason", f"SIP;cause={cause}")] if cause else None
        self.b2b.layer.request(dialog.request("BYE", headers=headers), dialog.flow, _ignore)

    def end_by_switch(self, reason: R.Reason, detail: str = "", media_gone: bool = False) -> None:
        """The switch ends the call (limits, timers, failures): BYE both ways or reject."""
        if self.state == "ended":
            return
        if self.state == "answered":
            self._bye("a")
            self._bye("b")
            self.finish(200, reason, "switch", detail=detail, media_gone=media_gone)
        else:
            self._cancel_b()
            self.fail(reason, "switch", status=reason.sip_code or 408, detail=detail)

    def fail(self, reason: R.Reason, direction: str, *, status: int | None = None, phrase: str | None = None,
             detail: str = "") -> None:
        """The call ends without an answer: the caller gets ``status`` (default: the
        reason's code) with ``phrase`` (default: the detail or the reason's name)."""
        if self.state == "ended":
            return
        status = status or reason.sip_code or 500
        if self.a_txn.state == "proceeding":
            self.a_txn.respond(status, phrase or (f"{reason.name}: {detail}" if detail else reason.name))
        self.finish(status, reason, direction, detail=detail)

    def finish(self, status: int, reason: R.Reason, direction: str, detail: str = "",
               media_gone: bool = False) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        if self.reliable is not None and self.reliable[2] is not None:
            self.reliable[2].cancel()
        self.reliable = None
        b2b = self.b2b
        if self.proxied and not media_gone and b2b.media is not None:
            self.media_stats = b2b.media.delete(self.media_id, reason.name)
        record = self.record
        self._close_attempt(status, reason)
        record.end = b2b.wall()
        record.sip_code = status
        record.reason = reason.name
        record.detail = detail
        record.end_direction = direction
        if record.answer is not None:
            record.duration_s = round(record.end - record.answer, 3)
        if self.media_stats:
            record.media = _media_summary(self.media_stats, self.a_remote_tag, self.b_tag)
        if self.billing is not None:
            self._bill(record)
        self._release(record.answer is not None)
        for callback in self.on_end:
            callback()
        b2b.forget(self)
        b2b.record(record)


def _allows(message, method: str) -> bool:
    """Whether a peer lists ``method`` in Allow (no Allow header: assume it does)."""
    values = message.headers.get_all("Allow")
    return not values or any(v.strip().upper() == method for v in values)


def offer_telephone_event(sdp: bytes, pt: int) -> bytes:
    """The offer with telephone-event/8000 (events 0-16) added to its first audio stream,
    unless it has one; payload type ``pt``, or the first free dynamic one if taken."""
    try:
        desc = sdpmod.parse(sdp)
    except sdpmod.SdpError:
        return sdp
    for media in desc.media:
        if media.media != "audio" or not media.is_rtp or media.port == 0:
            continue
        codecs = media.codecs()
        if any(c.encoding.lower() == "telephone-event" for c in codecs):
            return sdp
        used = {c.pt for c in codecs}
        if pt in used:
            pt = next((n for n in range(96, 128) if n not in used), None)
            if pt is None:
                return sdp
        media.set_codecs(codecs + [sdpmod.Codec(pt, "telephone-event", 8000, 1, "0-16")])
        return desc.to_bytes()
    return sdp


def telephone_event_pt(sdp: bytes) -> int | None:
    """The telephone-event payload type an SDP negotiates (first audio m= line)."""
    return next((c.pt for c in audio_codecs(sdp) if c.encoding.lower() == "telephone-event"), None)


def parse_dtmf_info(content_type: str | None, body: bytes) -> tuple[str, int] | None:
    """The digit and duration (ms) of an INFO body: ``application/dtmf-relay``
    (``Signal=5`` / ``Duration=160``) or ``application/dtmf`` (the digit alone)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("ascii", "replace").strip()
    if kind == "application/dtmf":
        digit, duration = text[:1], 100
    elif kind == "application/dtmf-relay":
        fields = {}
        for line in text.splitlines():
            name, _, value = line.partition("=")
            fields[name.strip().lower()] = value.strip()
        digit = fields.get("signal", "")[:1]
        duration = int(fields["duration"]) if fields.get("duration", "").isdigit() else 100
    else:
        return None
    digit = digit.upper()
    if len(digit) != 1 or digit not in "0123456789*#ABCD":
        return None
    return digit, max(40, min(duration, 8000))


def _media_reason(exc: MediaError) -> R.Reason:
    return R.MEDIA_UNAVAILABLE if exc.status == 503 else R.CODEC_MISMATCH


def _ignore(txn, response) -> None:
    """Responses we need not act on (BYE, PRACK, CANCEL): the transaction absorbs them."""


def _media_summary(stats: dict, caller_tag: str, vendor_tag: str) -> dict:
    """Per leg: packets and bytes received from that party, loss, jitter (from NG stats)."""
    out = {}
    for tag, entry in stats.get("tags", {}).items():
        name = "caller" if tag == caller_tag else ("vendor" if tag == vendor_tag else tag or "unknown")
        packets = octets = lost = 0
        jitter = 0
        for media in entry.get("medias", []):
            for stream in media.get("streams", []):
                if "RTP" in stream.get("flags", []):
                    packets += stream["stats"]["packets"]
                    octets += stream["stats"]["bytes"]
                    lost += stream.get("lost", 0)
                    jitter = max(jitter, stream.get("jitter us", 0))
        out[name] = {"packets": packets, "bytes": octets, "lost": lost, "jitter_us": jitter}
    return out
