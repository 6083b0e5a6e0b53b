"""NG control protocol server, compatible with rtpengine's (bencode over UDP).

A request datagram is ``<cookie> <bencoded dictionary>``; the reply is the same cookie, a
space and a bencoded dictionary with at least ``result``.  Kamailio's and OpenSIPS'
``rtpengine`` modules speak it, and so can the vosmedia control plane when the media
engine runs on other hosts.  ``docs/ng-protocol.md`` lists what is supported.

The protocol logic is sans-I/O: :meth:`NgServer.handle` takes one datagram and returns
the reply datagram (or ``None`` when the request is dropped), and
:meth:`NgServer.handle_events` takes engine events.  :meth:`NgServer.start` only adds an
asyncio UDP endpoint and an event-fd reader around them.

Call model: a call (``call-id``) has two parties, side 0 (the ``from-tag`` of the first
offer, normally the caller) and side 1 (the ``to-tag`` of the answer).  Every relayed
m= line owns one engine session whose leg *n* faces party *n*: party *n* sends to leg
*n*'s port and the engine sends to party *n* from it.  So an SDP that party *s* sends is
stored with ``set_remote(sid, s, ...)`` and is rewritten to advertise leg ``1 - s``,
which is where the receiving party must send.  Re-offers (re-INVITEs, from either side)
reuse the sessions and their ports and only update the remote addresses.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from vosmedia import bencode
from vosmedia import sdp as sdpmod
from vosmedia import codecs as negotiation
from vosmedia.engine import PortPoolExhausted, TranscodingLimit

__all__ = ["NgServer", "NgError", "ENDED_BY_TIMEOUT", "ENDED_BY_DELETE", "ENDED_BY_OFFER_TIMEOUT"]

log = logging.getLogger("vosmedia.ng")

ENDED_BY_DELETE = "delete"
ENDED_BY_TIMEOUT = "RTP timeout"
ENDED_BY_OFFER_TIMEOUT = "offer timeout"

MAX_COOKIE = 128            # longer "cookies" are not cookies: the datagram is dropped
MAX_REPLY = 65000           # a larger reply cannot travel in one UDP datagram
LOOP_PROTECT_ATTRIBUTE = "rtpengine"


class NgError(Exception):
    """A request that cannot be served; ``str(exc)`` becomes the reply's ``error-reason``."""


@dataclass
class _Stream:
    """One m= line of a call and the engine session relaying it."""
    index: int
    media: str
    proto: str
    sid: int | None = None
    # what each party advertised in its latest SDP: (address, rtp port, rtcp port) or None
    advertised: list = field(default_factory=lambda: [None, None])
    offer_plan: object = None          # codecs.OfferPlan of the latest offer
    offerer: int = 0                   # the side that sent it
    answer_plan: object = None         # codecs.AnswerPlan once answered


@dataclass
class _Call:
    call_id: str
    created: float
    last_signal: float
    tags: list = field(default_factory=lambda: [None, None])
    tag_created: list = field(default_factory=lambda: [None, None])
    via_branch: str | None = None
    streams: list = field(default_factory=list)
    strict: bool = False
    answered: bool = False
    # per receiving side: (SDP text with the version blanked, version) last sent there
    sent_sdp: list = field(default_factory=lambda: [None, None])

    def side_of(self, tag: str | None) -> int | None:
        if tag is None:
            return None
        if self.tags[0] == tag:
            return 0
        if self.tags[1] == tag:
            return 1
        return None


def _norm(text: str) -> str:
    """Key/flag spelling used for matching: lower case, '-' and '_' read as spaces."""
    return text.lower().replace("-", " ").replace("_", " ").strip()


def _as_text(value) -> str | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    return None


def _family(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


def _endpoint_dict(address: str, port: int) -> dict:
    return {"family": _family(address), "address": address, "port": int(port)}


def _int(value) -> int:
    return int(round(value)) if value is not None else 0


class _Request:
    """A decoded request dictionary with rtpengine's key spellings normalised."""

    def __init__(self, message: dict):
        self.items = {}
        for key, value in message.items():
            self.items.setdefault(_norm(key), value)
        self.flags = set()
        self.options: dict[str, str] = {}
        self.codec_flags: list[tuple[str, str]] = []      # ("strip", "PCMU") from "codec-strip-PCMU"
        for flag in self.strings("flags"):
            name, eq, value = flag.partition("=")
            if eq:
                self.options.setdefault(_norm(name), value)
            if flag[:6].lower() == "codec-":
                operation, _, codec = flag[6:].partition("-")
                if codec:
                    self.codec_flags.append((operation.lower(), codec))
            self.flags.add(_norm(flag) if not eq else _norm(name))
        self.replace = {_norm(r) for r in self.strings("replace")}
        for flag in list(self.flags):
            if flag.startswith("replace "):
                self.replace.add(flag[len("replace "):])

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.items.get(key)
        if value is None:
            value = self.options.get(key)
        if value is None:
            if required:
                raise NgError(f"No {key.replace(' ', '-')} in message")
            return None
        text = _as_text(value)
        if text is None:
            raise NgError(f"'{key.replace(' ', '-')}' must be a string")
        return text

    def strings(self, key: str) -> list[str]:
        value = self.items.get(key)
        if value is None:
            return []
        if isinstance(value, (bytes, bytearray, str)):
            return [_as_text(value)]
        if not isinstance(value, list):
            raise NgError(f"'{key.replace(' ', '-')}' must be a list of strings")
        out = []
        for item in value:
            text = _as_text(item)
            if text is None:
                raise NgError(f"'{key.replace(' ', '-')}' must be a list of strings")
            out.append(text)
        return out

    def codec_options(self) -> dict[str, list[str]]:
        """The ``codec`` dictionary (plus ``codec-OP-NAME`` flags): operation -> codec names."""
        value = self.items.get("codec")
        options: dict[str, list[str]] = {}
        if value is not None:
            if not isinstance(value, dict):
                raise NgError("'codec' must be a dictionary")
            for key, names in value.items():
                op = _norm(_as_text(key) if not isinstance(key, str) else key)
                if isinstance(names, (bytes, bytearray, str)):
                    names = [names]
                if not isinstance(names, list) or any(_as_text(n) is None for n in names):
                    raise NgError(f"'codec' entry '{op}' must be a list of strings")
                options.setdefault(op, []).extend(_as_text(n) for n in names)
        for op, name in self.codec_flags:
            options.setdefault(op, []).append(name)
        return options

    def integer(self, key: str) -> int | None:
        value = self.items.get(key)
        if value is None:
            return None
        if isinstance(value, int):
            return value
        text = _as_text(value)
        if text is not None and text.strip().lstrip("-").isdigit():
            return int(text)
        raise NgError(f"'{key.replace(' ', '-')}' must be an integer")


class NgServer:
    """rtpengine-compatible NG protocol front end for a :class:`~vosmedia.engine.MediaEngine`.

    ``interfaces`` maps logical interface names (for the ``direction`` key) to addresses
    of the engine; by default each engine address is also its own name.  ``strict_source``
    makes every new session latch strictly (the ``strict-source`` flag does it per call).
    ``offer_timeout`` deletes calls whose offer was never answered.
    """

    def __init__(self, engine, *, interfaces: dict[str, str] | None = None,
                 strict_source: bool = False, cache_ttl: float = 30.0, cache_size: int = 200_000,
                 offer_timeout: float = 3600.0, list_limit: int = 32,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self.engine = engine
        addresses = list(getattr(engine, "interfaces", []) or [])
        self.interfaces = {a: a for a in addresses}
        self.interfaces.update(interfaces or {})
        self.strict_source = strict_source
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self.offer_timeout = offer_timeout
        self.list_limit = list_limit
        self.clock = clock
        self.wall_clock = wall_clock
        self.calls: dict[str, _Call] = {}
        self.ended: OrderedDict[str, str] = OrderedDict()     # recent call-id -> why it ended
        self.stats: Counter = Counter()
        self._by_sid: dict[int, tuple[_Call, _Stream]] = {}
        self._cache: OrderedDict = OrderedDict()                # (peer, cookie) -> (expiry, reply)
        self._transport = None
        self._loop = None
        self._reader_fd = None
        self._sweeper = None
        self._instance = f"vosmedia-{id(self):x}"

    # ================================================================ datagram level

    def handle(self, data: bytes, peer=None) -> bytes | None:
        """Serve one request datagram; return the reply datagram, or None to drop it."""
        try:
            return self._handle(bytes(data), peer)
        except Exception:                       # last line of defence: never raise to the transport
            log.exception("NG request handling failed")
            self.stats["internal_errors"] += 1
            return None

    def _handle(self, data: bytes, peer) -> bytes | None:
        self.stats["datagrams"] += 1
        cookie, space, body = data.partition(b" ")
        if not space or not cookie or len(cookie) > MAX_COOKIE:
            self.stats["dropped"] += 1
            log.debug("dropping NG datagram without a cookie from %s", peer)
            return None
        now = self.clock()
        self._expire_cache(now)
        key = (peer, cookie)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self.stats["retransmissions"] += 1
            return cached[1]
        reply = self.dispatch_bytes(body)
        try:
            encoded = bencode.encode(reply)
        except TypeError as exc:
            log.error("NG reply could not be encoded: %s", exc)
            encoded = bencode.encode({"result": "error", "error-reason": "internal error: unencodable reply"})
        if len(encoded) + len(cookie) + 1 > MAX_REPLY:
            encoded = bencode.encode({"result": "error", "error-reason": "reply too large for a UDP datagram"})
        out = cookie + b" " + encoded
        self._cache[key] = (now + self.cache_ttl, out)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _expire_cache(self, now: float) -> None:
        cache = self._cache
        while cache:
            first = next(iter(cache.values()))
            if first[0] > now:
                break
            cache.popitem(last=False)

    def dispatch_bytes(self, body: bytes) -> dict:
        """Decode a bencoded request dictionary and execute it; always returns a reply dict."""
        try:
            message = bencode.decode(body, str_keys=True)
        except bencode.BencodeError as exc:
            return self._error(f"Failed to decode bencode dictionary: {exc}")
        if not isinstance(message, dict):
            return self._error("Failed to decode bencode dictionary: not a dictionary")
        return self.dispatch(message)

    def dispatch(self, message: dict) -> dict:
        """Execute one decoded request (keys as str or bytes); always returns a reply dict."""
        try:
            message = {(_as_text(k) if not isinstance(k, str) else k): v for k, v in message.items()}
            request = _Request(message)
            command = request.text("command")
            if command is None:
                raise NgError("No command in message")
            handler = self._commands.get(_norm(command))
            if handler is None:
                raise NgError(f"Unrecognized command '{command}'")
            self.stats["command " + _norm(command)] += 1
            return handler(self, request)
        except NgError as exc:
            return self._error(str(exc))
        except Exception as exc:                # an engine failure must still produce a reply
            log.exception("NG command failed")
            self.stats["internal_errors"] += 1
            return self._error(f"internal error: {type(exc).__name__}: {exc}")

    def _error(self, reason: str) -> dict:
        self.stats["errors"] += 1
        return {"result": "error", "error-reason": reason}

    # ================================================================ commands

    def _cmd_ping(self, request: _Request) -> dict:
        return {"result": "pong"}

    def _cmd_offer(self, request: _Request) -> dict:
        return self._offer_answer(request, answer=False)

    def _cmd_answer(self, request: _Request) -> dict:
        return self._offer_answer(request, answer=True)

    def _cmd_delete(self, request: _Request) -> dict:
        call_id = request.text("call id", required=True)
        from_tag = request.text("from tag")
        to_tag = request.text("to tag")
        call = self.calls.get(call_id)
        matched = call is not None and (
            from_tag is None or call.side_of(from_tag) is not None) and (
            to_tag is None or call.tags[1] is None or call.side_of(to_tag) is not None)
        if not matched:
            reason = "Call-ID not found or tags didn't match"
            if call is None and call_id in self.ended:
                reason = f"Call-ID not found (call already ended: {self.ended[call_id]})"
            if "fatal" in request.flags:
                raise NgError(reason)
            return {"result": "ok", "warning": reason}
        reply = self.delete_call(call_id, ENDED_BY_DELETE)
        reply["result"] = "ok"
        return reply

    def _cmd_query(self, request: _Request) -> dict:
        call_id = request.text("call id", required=True)
        call = self.calls.get(call_id)
        if call is None:
            if call_id in self.ended:
                raise NgError(f"Unknown call-id (call ended: {self.ended[call_id]})")
            raise NgError("Unknown call-id")
        stats = {}
        for stream in call.streams:
            if stream.sid is not None:
                stats[stream.sid] = self.engine.query(stream.sid)
        reply = self._call_stats(call, stats)
        reply["result"] = "ok"
        return reply

    def _cmd_list(self, request: _Request) -> dict:
        limit = request.integer("limit")
        if limit is None:
            limit = self.list_limit
        if limit <= 0:
            raise NgError("'limit' must be greater than 0")
        return {"result": "ok", "calls": list(self.calls)[:limit]}

    def _cmd_play_dtmf(self, request: _Request) -> dict:
        """rtpengine's ``play DTMF``: the party of ``from-tag`` "generates" the digit, which
        goes to the other party by its method (telephone-event when it negotiated it, else
        tones in its audio)."""
        call_id = request.text("call id", required=True)
        call = self.calls.get(call_id)
        if call is None:
            raise NgError("Unknown call-id")
        from_tag = request.text("from tag", required=True)
        side = call.side_of(from_tag)
        if side is None:
            raise NgError("Unknown from-tag")
        digit = self._dtmf_code(request)
        duration = min(5000, max(100, request.integer("duration") or 250))
        volume = request.integer("volume")
        volume = -8 if volume is None else -abs(volume)          # dBm0; positive means negative
        pause = min(5000, max(100, request.integer("pause") or 100))
        streams = [st for st in call.streams if st.sid is not None and st.media == "audio"]
        if not streams:
            raise NgError("No audio stream to play DTMF into")
        for stream in streams:
            self._ensure_dtmf(stream)
            try:
                self.engine.send_dtmf(stream.sid, 1 - side, digit, duration, pause_ms=pause,
                                      level_dbm0=max(-63, volume))
            except (ValueError, RuntimeError) as exc:
                raise NgError(f"Cannot play DTMF: {exc}") from None
        return {"result": "ok"}

    @staticmethod
    def _dtmf_code(request: _Request) -> str:
        value = request.items.get("code", request.items.get("digit"))
        if value is None:
            raise NgError("No DTMF code in message")
        if isinstance(value, int):
            if not 0 <= value <= 15:
                raise NgError(f"Invalid DTMF code {value}")
            return "0123456789*#ABCD"[value]
        text = _as_text(value)
        if text is None or len(text) != 1 or text.upper() not in "0123456789*#ABCD":
            raise NgError(f"Invalid DTMF code {text!r}")
        return text.upper()

    _commands = {
        "ping": _cmd_ping,
        "offer": _cmd_offer,
        "answer": _cmd_answer,
        "delete": _cmd_delete,
        "query": _cmd_query,
        "list": _cmd_list,
        "play dtmf": _cmd_play_dtmf,
    }

    # ================================================================ offer / answer

    def _offer_answer(self, request: _Request, *, answer: bool) -> dict:
        call_id = request.text("call id", required=True)
        from_tag = request.text("from tag", required=True)
        to_tag = request.text("to tag", required=answer)
        sdp_text = request.text("sdp", required=True)
        try:
            desc = sdpmod.parse(sdp_text)
        except sdpmod.SdpError as exc:
            raise NgError(f"Failed to parse SDP: {exc}") from None
        if "loop protect" in request.flags and desc.has_attribute(LOOP_PROTECT_ATTRIBUTE):
            return {"result": "ok", "sdp": sdp_text}
        remotes = self._remote_endpoints(desc, request)
        offer_plans = self._plan_offer(desc, request) if not answer else {}
        certain = sum(2 for plan in offer_plans.values() if plan.masked or plan.added)
        if certain and self.engine.transcoding_headroom() < certain:
            self.stats["transcoding_refused"] += 1
            raise NgError(f"Transcoding capacity reached ({self.engine.max_transcoding} directions in use)")

        call = self.calls.get(call_id)
        if answer and call is None:
            raise NgError("Unknown call-id")
        now_wall = self.wall_clock()
        created_call = call is None
        if call is None:
            call = _Call(call_id, now_wall, now_wall,
                         strict=self.strict_source or "strict source" in request.flags)
        # which party sent this SDP
        if answer:
            offerer = call.side_of(from_tag)
            if offerer is None:
                offerer = 0
            sender = 1 - offerer
            tag = to_tag
        else:
            sender = call.side_of(from_tag)
            if sender is None:
                sender = 0
            tag = from_tag
        receiver = 1 - sender
        answer_plans = self._plan_answer(call, desc) if answer else {}

        via = request.text("via branch")
        local_address = self._local_address(call, request, remotes)
        new_sids: list[int] = []
        try:
            outgoing = self._apply(call, desc, remotes, sender, local_address, new_sids, request)
            self._use_media_path(call, desc, answer_plans)
            desc.rewrite_endpoints(outgoing)
            self._post_process(call, desc, request, receiver, outgoing)
            reply = {"result": "ok", "sdp": desc.serialize()}
        except BaseException:
            # nothing of a failed request may stay behind in the engine
            for sid in new_sids:
                self._drop_session(sid)
            if not created_call:
                call.streams = [s for s in call.streams if s.sid is None or s.sid not in new_sids]
            raise

        if call.tags[sender] != tag:
            call.tags[sender] = tag
            call.tag_created[sender] = now_wall
        if answer:
            call.answered = True
            if call.tags[offerer] is None:
                call.tags[offerer] = from_tag
                call.tag_created[offerer] = now_wall
        for index, plan in offer_plans.items():
            call.streams[index].offer_plan = plan
            call.streams[index].offerer = sender
        if via is not None:
            call.via_branch = via
        call.last_signal = now_wall
        if created_call:
            self.calls[call_id] = call
            self.ended.pop(call_id, None)
            self.stats["calls_created"] += 1
        return reply

    # ================================================================ codecs and transcoding

    @staticmethod
    def _plan_offer(desc: sdpmod.SessionDescription, request: _Request) -> dict:
        """Codec plan per relayed m= line of an offer; rewrites the codec lists sent on."""
        plans = {}
        try:
            options = negotiation.CodecOptions.from_ng(request.codec_options(),
                                                       ptime=request.integer("ptime"))
            for index, media in enumerate(desc.media):
                if media.port != 0 and media.is_rtp:
                    plans[index] = negotiation.plan_offer(media, options)
                    negotiation.apply_offer(media, plans[index])
        except negotiation.CodecNegotiationError as exc:
            raise NgError(str(exc)) from None
        return plans

    @staticmethod
    def _plan_answer(call: _Call, desc: sdpmod.SessionDescription) -> dict:
        """What each answered m= line negotiated against its offer (before any session work,
        so a codec mismatch leaves nothing behind)."""
        plans = {}
        try:
            for index, media in enumerate(desc.media):
                stream = call.streams[index] if index < len(call.streams) else None
                if stream is not None and stream.offer_plan is not None and media.port != 0 and media.is_rtp:
                    plans[index] = negotiation.plan_answer(stream.offer_plan, media)
        except negotiation.CodecNegotiationError as exc:
            raise NgError(str(exc)) from None
        return plans

    def _use_media_path(self, call: _Call, desc: sdpmod.SessionDescription, plans: dict) -> None:
        """Set each answered stream's engine session to transcode (or pass through) and
        rewrite the answer's codec list toward the offerer accordingly."""
        for index, plan in plans.items():
            stream = call.streams[index]
            stream.answer_plan = plan
            if stream.sid is None:
                continue
            if not plan.media_path:
                for side in (0, 1):
                    self.engine.clear_transcoding(stream.sid, side)
                continue
            offerer = stream.offerer
            self._transcode(stream.sid, offerer, plan.offerer, plan.answerer)
            self._transcode(stream.sid, 1 - offerer, plan.answerer, plan.offerer)
            # on the media path the stream toward each party is the engine's: it terminates
            # telephone-event and regenerates it (or tones) in that stream
            self._configure_dtmf(stream, inband_receive=True)
            negotiation.apply_answer(desc.media[index], plan)

    def _configure_dtmf(self, stream: _Stream, inband_receive: bool) -> None:
        """DTMF settings of both parties of a stream from its negotiated plan: telephone-event
        where the party negotiated it, else in-band tones; in-band detection only if asked."""
        plan = stream.answer_plan
        for side in (0, 1):
            leg = plan.offerer if side == stream.offerer else plan.answerer
            pt = leg.dtmf.pt if leg.dtmf is not None else None
            receive = "rfc2833" if pt is not None else ("inband" if inband_receive else "none")
            self.engine.set_dtmf(stream.sid, side, receive=receive,
                                 send="rfc2833" if pt is not None else "inband", rx_pt=pt)

    def _ensure_dtmf(self, stream: _Stream) -> None:
        """DTMF settings for a stream that has none yet (play DTMF on a pass-through call)."""
        if all(self.engine.dtmf_config(stream.sid, side) is not None for side in (0, 1)):
            return
        if stream.answer_plan is None:
            raise NgError("No negotiated media to play DTMF into (call not answered)")
        self._configure_dtmf(stream, inband_receive=False)

    def _transcode(self, sid: int, side: int, sender, receiver) -> None:
        """Media arriving from the party on `side` (its leg `sender`) is re-encoded for the
        other party (`receiver`)."""
        dtmf = sender.dtmf is not None and receiver.dtmf is not None
        try:
            self.engine.set_transcoding(
                sid, side, sender.codec.encoding, receiver.codec.encoding,
                in_ptime=sender.ptime, out_ptime=receiver.ptime, out_pt=receiver.codec.pt,
                annexb=bool(receiver.annexb),
                dtmf_pt=sender.dtmf.pt if dtmf else None,
                peer_dtmf_pt=receiver.dtmf.pt if dtmf else None)
        except TranscodingLimit as exc:
            self.stats["transcoding_refused"] += 1
            raise NgError(str(exc)) from None
        except ValueError as exc:
            raise NgError(f"Cannot transcode {sender.codec.name} to {receiver.codec.name}: {exc}") from None

    def _remote_endpoints(self, desc: sdpmod.SessionDescription, request: _Request) -> list:
        """Per m= line: the sender's (address, rtp, rtcp, rtcp_mux, clock rate) or None if not relayed."""
        override = request.text("media address")
        if override is None and "sip source address" in request.flags:
            received = request.strings("received from")
            if len(received) == 2:
                override = received[1]
        if override is not None:
            try:
                override = str(ipaddress.ip_address(override))
            except ValueError:
                raise NgError(f"Invalid media address '{override}'") from None
        result = []
        for index, media in enumerate(desc.media):
            if media.port == 0 or not media.is_udp:
                result.append(None)
                continue
            try:
                ep = desc.endpoint(index)
                codecs = media.codecs()
            except sdpmod.SdpError as exc:
                raise NgError(f"Failed to parse SDP: {exc}") from None
            address = ep.address
            if override is not None and not sdpmod.is_zero_address(address):
                address = override
            rate = next((c.clock_rate for c in codecs if c.clock_rate > 0
                         and c.encoding.lower() not in ("telephone-event", "cn")), 8000)
            result.append((str(ipaddress.ip_address(address)), ep.rtp_port, ep.rtcp_port, ep.rtcp_mux, rate))
        return result

    def _local_address(self, call: _Call, request: _Request, remotes: list) -> str | None:
        """Which engine address new sessions of this call bind to."""
        for stream in call.streams:
            if stream.sid is not None:
                return self.engine.local_endpoint(stream.sid, 0)[0]
        chosen = None
        direction = request.strings("direction")
        if direction:
            wanted = [name for name in direction if name]
            unknown = [n for n in wanted if n not in self.interfaces]
            if unknown and not set(unknown) <= {"internal", "external"}:
                raise NgError(f"Unknown interface '{unknown[0]}' in direction")
            addresses = {self.interfaces[n] for n in wanted if n in self.interfaces}
            if len(addresses) > 1:
                raise NgError("Bridging between different media interfaces is not supported")
            if addresses:
                chosen = addresses.pop()
        if chosen is None:
            family = request.text("address family")
            if family is None:
                first = next((r for r in remotes if r is not None), None)
                family = "IP6" if first is not None and ":" in first[0] else "IP4"
            want6 = family.upper() == "IP6"
            for address in self.interfaces.values():
                if (":" in address) == want6:
                    chosen = address
                    break
            else:
                raise NgError(f"No media interface for address family {'IP6' if want6 else 'IP4'}")
        return chosen

    def _apply(self, call: _Call, desc, remotes: list, sender: int, local_address,
               new_sids: list, request: _Request) -> dict:
        """Create/update engine sessions; return the rewrite map for the outgoing SDP."""
        outgoing = {}
        receiver = 1 - sender
        # strict-source on a later message (answer, re-offer) tightens the sender's leg
        strict = "strict source" in request.flags
        for index, media in enumerate(desc.media):
            if index < len(call.streams):
                stream = call.streams[index]
                stream.media, stream.proto = media.media, media.proto
            else:
                stream = _Stream(index, media.media, media.proto)
                call.streams.append(stream)
            remote = remotes[index]
            if remote is None:
                stream.advertised[sender] = None
                continue
            address, rtp, rtcp, mux, rate = remote
            if stream.sid is None:
                try:
                    stream.sid = self.engine.create_session(local_address=local_address, strict=call.strict)
                except PortPoolExhausted as exc:
                    self.stats["port_exhaustion"] += 1
                    raise NgError(f"Ran out of ports: {exc}") from None
                new_sids.append(stream.sid)
                self._by_sid[stream.sid] = (call, stream)
            zero = sdpmod.is_zero_address(address)
            if not zero:
                try:
                    self.engine.set_remote(stream.sid, sender, address, rtp, rtcp, rtcp_mux=mux,
                                           clock_rate=rate, strict=True if strict else None)
                except ValueError as exc:
                    raise NgError(f"Cannot relay media line {index + 1}: {exc}") from None
            stream.advertised[sender] = (address, rtp, rtcp)
            local_addr, local_port = self.engine.local_endpoint(stream.sid, receiver)
            shown = address if zero and "zero address" not in request.replace else local_addr
            outgoing[index] = (shown, local_port, local_port + 1)
        return outgoing

    def _post_process(self, call: _Call, desc, request: _Request, receiver: int, outgoing: dict) -> None:
        """ICE, a=rtcp flags, origin and SDP version rewriting of the outgoing SDP."""
        ice = _norm(request.text("ice") or "default")
        if ice in ("remove", "force", "default") or "reject ice" in request.flags:
            desc.remove_ice()
        if outgoing:
            if "no rtcp attribute" in request.flags:
                for media in desc.media:
                    media.remove_attributes("rtcp")
            elif "full rtcp attribute" in request.flags:
                for index, (address, port, rtcp) in outgoing.items():
                    media = desc.media[index]
                    if not media.rtcp_mux:
                        media.set_attribute("rtcp", f"{rtcp} IN {sdpmod.addrtype_of(address)} {address}")
            if "origin" in request.replace:
                desc.set_origin_address(self.engine.local_endpoint(call.streams[min(outgoing)].sid, receiver)[0])
        if "loop protect" in request.flags:
            desc.set_attribute(LOOP_PROTECT_ATTRIBUTE, self._instance)
        manage = "sdp version" in request.replace
        force = "force increment sdp ver" in request.replace or "force increment sdp version" in request.replace
        if manage or force:
            previous = call.sent_sdp[receiver]
            version = desc.origin.version
            desc.origin.version = 0              # compare bodies without the version
            blanked = desc.serialize()
            if previous is not None:
                version = previous[1] if blanked == previous[0] and not force else max(previous[1] + 1, version)
            elif force:
                version += 1
            desc.origin.version = version
            call.sent_sdp[receiver] = (blanked, version)

    # ================================================================ deletion and statistics

    def delete_call(self, call_id: str, reason: str) -> dict:
        """Free every engine session of a call; return its final statistics (query shape)."""
        call = self.calls[call_id]
        finals = {}
        try:
            for stream in call.streams:
                if stream.sid is not None:
                    final = self._drop_session(stream.sid)
                    if final is not None:
                        finals[stream.sid] = final
        finally:
            # why it ended is recorded before the call disappears from `calls`
            self.ended[call_id] = reason
            while len(self.ended) > 10_000:
                self.ended.popitem(last=False)
            del self.calls[call_id]
        self.stats["calls_ended " + reason] += 1
        log.info("call %s ended: %s", call_id, reason)
        return self._call_stats(call, finals)

    def _drop_session(self, sid: int) -> dict | None:
        self._by_sid.pop(sid, None)
        try:
            return self.engine.delete_session(sid)
        except KeyError:
            return None

    def _call_stats(self, call: _Call, sessions: dict) -> dict:
        """rtpengine's query reply shape from the engine's per-session statistics."""
        now = self.wall_clock()
        totals = {"RTP": {"packets": 0, "bytes": 0, "errors": 0},
                  "RTCP": {"packets": 0, "bytes": 0, "errors": 0}}
        tags = {}
        for side in (0, 1):
            tag = call.tags[side] or ""
            if side == 1 and not call.answered and tag in tags:
                continue
            medias = []
            for stream in call.streams:
                info = sessions.get(stream.sid) if stream.sid is not None else None
                leg = info["legs"][side] if info else None
                medias.append(self._media_stats(stream, side, leg, now, totals))
            other = call.tags[1 - side]
            entry = {"tag": tag, "medias": medias, "in dialogue with": other or ""}
            if call.tag_created[side] is not None:
                entry["created"] = int(call.tag_created[side])
            tags[tag] = entry
        return {
            "created": int(call.created),
            "created_us": int((call.created % 1) * 1_000_000),
            "last signal": int(call.last_signal),
            "totals": totals,
            "tags": tags,
        }

    @staticmethod
    def _media_stats(stream: _Stream, side: int, leg: dict | None, now: float, totals: dict) -> dict:
        media = {"index": stream.index + 1, "type": stream.media, "protocol": stream.proto,
                 "flags": ["initialized"] if stream.sid is not None else [], "streams": []}
        if leg is None:
            return media
        advertised = stream.advertised[side]
        local_address, local_port = leg["local"]
        rx, rtcp = leg.get("rx", {}), leg.get("rtcp", {})
        rtp_stream = {"local address": local_address, "local port": int(local_port),
                      "flags": ["RTP"], "stats": {
                          "packets": _int(rx.get("packets")), "bytes": _int(rx.get("bytes")),
                          "errors": _int(rx.get("errors"))}}
        rtcp_stream = {"local address": local_address, "local port": int(local_port) + 1,
                       "flags": ["RTCP"], "stats": {
                           "packets": _int(rtcp.get("rx_packets")), "bytes": _int(rtcp.get("rx_bytes")),
                           "errors": _int(rtcp.get("errors"))}}
        if advertised is not None:
            rtp_stream["advertised endpoint"] = _endpoint_dict(advertised[0], advertised[1])
            rtcp_stream["advertised endpoint"] = _endpoint_dict(advertised[0], advertised[2])
        remote, remote_rtcp = leg.get("remote"), leg.get("remote_rtcp")
        if remote:
            rtp_stream["endpoint"] = _endpoint_dict(*remote)
            rtp_stream["flags"].append("filled")
        if remote_rtcp:
            rtcp_stream["endpoint"] = _endpoint_dict(*remote_rtcp)
            rtcp_stream["flags"].append("filled")
        if leg.get("latched"):
            rtp_stream["flags"].append("confirmed")
        if leg.get("strict"):
            rtp_stream["flags"].append("strict source")
        age = rx.get("last_packet_age")
        if age is not None:
            rtp_stream["last packet"] = int(now - age)
        # vosmedia additions: loss and jitter (RFC 3550), what was sent, RTCP report data
        rtp_stream["lost"] = _int(rx.get("lost"))
        rtp_stream["jitter us"] = _int((rx.get("jitter_ms") or 0) * 1000)
        if rx.get("ssrc") is not None:
            rtp_stream["SSRC"] = int(rx["ssrc"])
        tx = leg.get("tx", {})
        rtp_stream["sent"] = {"packets": _int(tx.get("packets")), "bytes": _int(tx.get("bytes"))}
        rtcp_stream["sent"] = {"packets": _int(rtcp.get("tx_packets")), "bytes": _int(rtcp.get("tx_bytes"))}
        if rtcp.get("rtt_ms") is not None:
            rtcp_stream["rtt us"] = _int(rtcp["rtt_ms"] * 1000)
        if rtcp.get("remote_cumulative_lost") is not None:
            rtcp_stream["remote cumulative lost"] = _int(rtcp["remote_cumulative_lost"])
        if rtcp.get("remote_fraction_lost") is not None:
            rtcp_stream["remote fraction lost"] = _int(rtcp["remote_fraction_lost"] * 256)
        drops = leg.get("drops")
        if drops:
            rtp_stream["drops"] = {k.replace("_", " "): _int(v) for k, v in drops.items()}
        dtmf = leg.get("dtmf")
        if dtmf:
            # digits this party sent (vosmedia addition), oldest first
            rtp_stream["DTMF"] = [{"digit": d["digit"], "method": d["method"],
                                   "duration": _int(d["duration_ms"]), "time": int(d["time"]),
                                   "time us": int((d["time"] % 1) * 1_000_000)}
                                  for d in dtmf.get("recent", [])]
        for key in ("transcoding", "jitter_buffer"):      # media path of transcoded streams
            if leg.get(key):
                rtp_stream[key.replace("_", " ")] = {k.replace("_", " "): _int(v) for k, v in leg[key].items()}
        if leg.get("timed_out"):
            rtp_stream["flags"].append("timed out")
        media["streams"] = [rtp_stream, rtcp_stream]
        for name, part in (("RTP", rtp_stream), ("RTCP", rtcp_stream)):
            for key in ("packets", "bytes", "errors"):
                totals[name][key] += part["stats"][key]
        return media

    # ================================================================ engine events and timers

    def poll_engine_events(self) -> None:
        """Read and handle pending engine events (the event fd reader callback)."""
        try:
            events = self.engine.poll_events()
        except Exception:
            log.exception("polling engine events failed")
            return
        self.handle_events(events)

    def handle_events(self, events: Iterable) -> list[str]:
        """React to engine events; return the call-ids deleted as a result.

        A ``timeout`` event marks a leg idle.  Once every relayed stream of an answered call
        is idle in both directions the call is deleted with reason ``RTP timeout``
        (rtpengine does the same).  One-way silence keeps the call.  Unanswered calls are
        left to the offer timeout (:meth:`sweep`), as ringing calls carry no media.
        """
        deleted = []
        for event in events:
            kind = getattr(event, "kind", None)
            self.stats[f"event {kind}"] += 1
            if kind != "timeout":
                continue
            entry = self._by_sid.get(getattr(event, "session", None))
            if entry is None:
                continue
            call, _ = entry
            if call.call_id not in self.calls or not call.answered:
                continue
            if self._all_idle(call):
                self.delete_call(call.call_id, ENDED_BY_TIMEOUT)
                deleted.append(call.call_id)
        return deleted

    def _all_idle(self, call: _Call) -> bool:
        relayed = [s for s in call.streams if s.sid is not None]
        if not relayed:
            return False
        for stream in relayed:
            try:
                info = self.engine.query(stream.sid)
            except KeyError:
                continue
            if not all(leg.get("timed_out") for leg in info["legs"]):
                return False
        return True

    def sweep(self) -> list[str]:
        """Periodic housekeeping: expire the reply cache, delete calls whose offer timed out."""
        self._expire_cache(self.clock())
        deadline = self.wall_clock() - self.offer_timeout
        stale = [cid for cid, call in self.calls.items() if not call.answered and call.last_signal < deadline]
        for call_id in stale:
            self.delete_call(call_id, ENDED_BY_OFFER_TIMEOUT)
        return stale

    # ================================================================ asyncio glue

    async def start(self, host: str = "127.0.0.1", port: int = 2223):
        """Listen for NG requests on UDP host:port; return the bound (host, port)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _NgProtocol(self), local_addr=(host, port))
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            try:       # bursts of signalling (Kamailio after a restart) must not be dropped
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
        fd = getattr(self.engine, "event_fd", None)
        if isinstance(fd, int) and fd >= 0:
            loop.add_reader(fd, self.poll_engine_events)
            self._reader_fd = fd
        self._schedule_sweep()
        bound = self._transport.get_extra_info("sockname")
        log.info("NG control protocol listening on udp %s:%s", bound[0], bound[1])
        return bound[0], bound[1]

    def _schedule_sweep(self) -> None:
        def tick():
            try:
                self.sweep()
            except Exception:
                log.exception("NG sweep failed")
            self._schedule_sweep()
        if self._loop is not None:
            self._sweeper = self._loop.call_later(1.0, tick)

    def close(self) -> None:
        """Stop listening (calls and engine sessions stay; the engine's owner stops it)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._reader_fd is not None and self._loop is not None:
            try:
                self._loop.remove_reader(self._reader_fd)
            except (ValueError, OSError, RuntimeError):
                pass
            self._reader_fd = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._loop = None

    def delete_all(self, reason: str = "shutdown") -> None:
        for call_id in list(self.calls):
            self.delete_call(call_id, reason)


class _NgProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: NgServer):
        self.server = server
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        reply = self.server.handle(data, addr)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("NG socket error: %s", exc)
