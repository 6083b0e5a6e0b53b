"""MediaEngine: the Python face of the relay core.

It owns the port pool, the worker threads (each runs one `Relay` loop without the
GIL) and the session table. Every method is thread-safe and runs on the control path
only; no relayed packet ever reaches Python. Events (RTP timeouts, DTMF digits) from all
workers arrive through one eventfd, `event_fd`, that an asyncio loop can watch.
"""
from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from vosmedia import _jitter, _rtp, _transcode, netif


class PortPoolExhausted(RuntimeError):
    """No free even/odd port pair is left in the configured range."""


class TranscodingLimit(RuntimeError):
    """The engine already transcodes as many directions as it is allowed to."""


@dataclass(frozen=True)
class EngineEvent:
    """`kind` "timeout": no RTP arrived on this leg for rtp_timeout seconds (`idle_seconds`).
    `kind` "dtmf": the party on `side` sent `digit` by `method` ("rfc2833", "inband",
    "info"), starting at wall-clock `time`, for `duration_ms`; `forward` is how it went on
    to the other party ("rfc2833", "inband", or "info" / "none": the engine did not send
    it, so a control plane that sends SIP INFO does it now)."""
    kind: str
    session: int
    side: int          # 0 = the leg facing the caller (offerer), 1 = the callee
    idle_seconds: float = 0.0
    digit: str = ""
    method: str = ""
    duration_ms: int = 0
    time: float = 0.0
    forward: str = ""


#: DTMF methods by name, as the relay core numbers them
DTMF_METHODS = {"rfc2833": 1, "inband": 2, "info": 4}
#: RTP payload type of telephone-event when none is given
DEFAULT_DTMF_PT = 101


class PortPool:
    """Even RTP ports in [start, end) whose RTP+1 (RTCP) is also in range.

    Freed ports go to the back of the queue, so a port is reused as late as possible
    and stray packets of an ended call do not reach the next one."""

    def __init__(self, start: int, end: int):
        """Ports start..end inclusive; RTP takes the even ones, RTCP the next."""
        if not 0 < start < end <= 65535:
            raise ValueError(f"port range {start}..{end} is not within 1..65535")
        self._free = deque(range(start + start % 2, end, 2))
        self.size = len(self._free)

    def __len__(self) -> int:
        return len(self._free)

    def take(self) -> int:
        if not self._free:
            raise PortPoolExhausted("media port pool exhausted")
        return self._free.popleft()

    def give(self, port: int) -> None:
        self._free.append(port)


@dataclass
class _Session:
    worker: int
    slots: tuple[int, int]
    local: tuple[tuple[str, int], tuple[str, int]]
    family: int
    created: float
    # per side: the transcoder for media arriving on that side (kept alive here while the
    # worker uses its C state)
    transcoders: list = field(default_factory=lambda: [None, None])
    # per side: the DTMF configuration given to set_dtmf (None: not configured)
    dtmf: list = field(default_factory=lambda: [None, None])


class MediaEngine:
    """Relays RTP/RTCP for sessions of two legs. Side 0 faces the caller, side 1 the callee."""

    def __init__(self, interfaces=("127.0.0.1",), port_min: int = 10000, port_max: int = 60000,
                 num_threads: int = 1, tos: int = 46, rtp_timeout: float = 30.0,
                 strict: bool = False, max_transcoding: int = 1000,
                 jitter_buffer: tuple | None = (1, 20, 200, 60)):
        if isinstance(interfaces, str):
            interfaces = [interfaces]
        self.interfaces = [str(ipaddress.ip_address(a)) for a in interfaces]
        if not self.interfaces:
            raise ValueError("at least one media interface address is needed")
        if num_threads < 1:
            raise ValueError("num_threads must be at least 1")
        self._check_tos(tos)
        self.tos = tos
        self.strict = strict
        self.rtp_timeout = float(rtp_timeout)
        if max_transcoding < 0:
            raise ValueError("max_transcoding must be >= 0")
        self.max_transcoding = max_transcoding
        self._transcoding = 0
        # (mode, min_ms, max_ms, default_ms) for transcoded directions; None: decode on arrival
        self.jitter_buffer = jitter_buffer
        self._pool = PortPool(port_min, port_max)
        self._lock = threading.Lock()
        self._sessions: dict[int, _Session] = {}
        self._ids = itertools.count(1)
        self._next_worker = itertools.cycle(range(num_threads))
        self.event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        capacity = max(2, self._pool.size)
        self._relays = [_rtp.Relay(capacity, self.event_fd, self.rtp_timeout)
                        for _ in range(num_threads)]
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "MediaEngine":
        if self._threads:
            return self
        for i, relay in enumerate(self._relays):
            t = threading.Thread(target=relay.run, name=f"vosmedia-relay-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for sid in self.sessions():
            self.delete_session(sid)
        for relay in self._relays:
            relay.stop()
        for t in self._threads:
            t.join()
        self._threads = []

    def close(self) -> None:
        self.stop()
        if self.event_fd >= 0:
            os.close(self.event_fd)
            self.event_fd = -1

    def __enter__(self) -> "MediaEngine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ parameters (hot)
    @staticmethod
    def _check_tos(dscp: int) -> None:
        if not isinstance(dscp, int) or not 0 <= dscp <= 63:
            raise ValueError(f"DSCP must be an integer in 0..63, got {dscp!r}")

    def set_tos(self, dscp: int) -> None:
        """DSCP for sockets opened from now on (running calls keep theirs)."""
        self._check_tos(dscp)
        self.tos = dscp

    def set_rtp_timeout(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("rtp_timeout must be positive")
        self.rtp_timeout = float(seconds)
        for relay in self._relays:
            relay.set_timeout(self.rtp_timeout)

    # ------------------------------------------------------------ sessions
    def create_session(self, local_address=None, strict: bool | None = None) -> int:
        """Open two legs (an even RTP port and RTP+1 for RTCP each) and start relaying.

        `local_address` is one media interface address for both legs, or a pair (side 0,
        side 1) when the parties sit on different networks; None takes the first one."""
        if isinstance(local_address, (tuple, list)):
            addresses = tuple(self._pick_address(a) for a in local_address)
        else:
            addresses = (self._pick_address(local_address),) * 2
        families = {socket.AF_INET6 if ":" in a else socket.AF_INET for a in addresses}
        if len(addresses) != 2 or len(families) != 1:
            raise ValueError("a session needs two local addresses of one IP family")
        family = families.pop()
        strict = self.strict if strict is None else strict
        with self._lock:
            legs = []
            try:
                for address in addresses:
                    legs.append(self._open_leg(address, family))
            except BaseException:
                for port, rtp, rtcp in legs:
                    rtp.close()
                    rtcp.close()
                    self._pool.give(port)
                raise
            sid = next(self._ids)
            w = next(self._next_worker)
            (pa, ra, ca), (pb, rb, cb) = legs
            slots = self._relays[w].add_pair(sid, ra.detach(), ca.detach(), rb.detach(), cb.detach(),
                                             family, strict)
            local = ((addresses[0], pa), (addresses[1], pb))
            self._sessions[sid] = _Session(w, slots, local, family, time.time())
        return sid

    def address_toward(self, peer: str) -> str:
        """The media interface a packet to `peer` leaves from (route lookup on multi-homed
        hosts); the first interface when only one is configured or none matches."""
        if len(self.interfaces) == 1:
            return self.interfaces[0]
        try:
            source = netif.local_address_for(peer)
        except (OSError, ValueError):
            return self.interfaces[0]
        return source if source in self.interfaces else self.interfaces[0]

    def _pick_address(self, requested: str | None) -> str:
        if requested is None:
            return self.interfaces[0]
        address = str(ipaddress.ip_address(requested))
        if address not in self.interfaces:
            raise ValueError(f"{address} is not one of the media interfaces {self.interfaces}")
        return address

    def _open_leg(self, address: str, family: int):
        """Bind the next free port pair; ports taken by other programs are skipped."""
        for _ in range(len(self._pool)):
            port = self._pool.take()
            rtp = self._socket(family)
            rtcp = self._socket(family)
            try:
                rtp.bind((address, port))
                rtcp.bind((address, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                self._pool.give(port)
                continue
            return port, rtp, rtcp
        raise PortPoolExhausted(
            f"media port pool exhausted: all {self._pool.size} port pairs are in use")

    def _socket(self, family: int) -> socket.socket:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setblocking(False)
        if family == socket.AF_INET:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, self.tos << 2)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, self.tos << 2)
        return s

    def _get(self, sid: int) -> _Session:
        try:
            return self._sessions[sid]
        except KeyError:
            raise KeyError(f"no media session {sid}") from None

    def local_endpoint(self, sid: int, side: int) -> tuple[str, int]:
        """Where the party on `side` must send its RTP (this engine's address and port)."""
        with self._lock:
            return self._get(sid).local[side]

    def set_remote(self, sid: int, side: int, host: str, rtp_port: int, rtcp_port: int | None = None,
                   rtcp_mux: bool = False, clock_rate: int = 8000, strict: bool | None = None) -> None:
        """The media address the party on `side` announced in its SDP."""
        ip = ipaddress.ip_address(host)
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        with self._lock:
            s = self._get(sid)
            if family != s.family:
                raise ValueError(f"remote {host} is IPv{ip.version} but the session's legs are not")
            self._relays[s.worker].set_remote(
                s.slots[side], family, ip.packed, rtp_port,
                rtcp_port if rtcp_port is not None else rtp_port + 1, rtcp_mux, clock_rate, strict)

    def set_transcoding(self, sid: int, side: int, in_codec: str, out_codec: str, *,
                        in_ptime: int = 20, out_ptime: int = 20, out_pt: int | None = None,
                        annexb: bool = False, dtmf_pt: int | None = None,
                        peer_dtmf_pt: int | None = None,
                        jitter_buffer: tuple | None | str = "engine") -> None:
        """Decode audio arriving on `side` as `in_codec` and send it to the other side as
        `out_codec` (payload type `out_pt`, G.729 VAD/DTX when `annexb`), repacketised to
        `out_ptime`. Telephone-event packets (`dtmf_pt`) pass untouched but for their payload
        type (`peer_dtmf_pt`). Each direction counts against `max_transcoding`.

        `jitter_buffer` = (mode, min_ms, max_ms, default_ms) as SS_JITTERBUFFER_MODE/_MIN/
        _MAX/_DEFAULT: arriving audio waits there and is played out every `in_ptime`; None
        decodes each packet on arrival; by default the engine's own setting applies."""
        if jitter_buffer == "engine":
            jitter_buffer = self.jitter_buffer
        transcoder = _transcode.Transcoder(in_codec, out_codec, in_ptime, out_ptime, out_pt,
                                           int.from_bytes(os.urandom(4), "big"), annexb,
                                           int.from_bytes(os.urandom(2), "big"),
                                           int.from_bytes(os.urandom(4), "big"))
        jitter = None
        if jitter_buffer is not None:
            mode, low, high, start = jitter_buffer
            jitter = _jitter.JitterBuffer(mode, low, high, start, frame_ms=in_ptime)
        with self._lock:
            s = self._get(sid)
            if s.transcoders[side] is None and self._transcoding >= self.max_transcoding:
                raise TranscodingLimit(
                    f"transcoding capacity reached: {self.max_transcoding} directions in use")
            self._relays[s.worker].set_transcoder(
                s.slots[side], transcoder, -1 if dtmf_pt is None else dtmf_pt,
                -1 if peer_dtmf_pt is None else peer_dtmf_pt, jitter, in_ptime)
            if s.transcoders[side] is None:
                self._transcoding += 1
            s.transcoders[side] = (transcoder, jitter)

    def transcoding_headroom(self) -> int:
        """How many more directions may be transcoded now."""
        with self._lock:
            return self.max_transcoding - self._transcoding

    def clear_transcoding(self, sid: int, side: int) -> None:
        """Back to pass-through for media arriving on `side`."""
        with self._lock:
            s = self._get(sid)
            if s.transcoders[side] is not None:
                self._relays[s.worker].set_transcoder(s.slots[side], None)
                s.transcoders[side] = None
                self._transcoding -= 1

    # ------------------------------------------------------------ DTMF
    def set_dtmf(self, sid: int, side: int, *, receive="all", send: str = "auto",
                 rx_pt: int | None = DEFAULT_DTMF_PT, tx_pt: int | None = None,
                 mute_inband: bool = False, tone_ms: int = 50, gap_ms: int = 50,
                 level_dbm0: float = -10.0, volume: int = 10) -> None:
        """DTMF handling for the party on `side`: how its digits are taken and how digits
        reach it. All of it then runs in the worker, per packet, without Python.

        * `receive`: the methods its digits are taken by: "all" (default: every method, but
          the first one seen locks the leg to it, so an endpoint sending RFC 2833 and the
          same tones in-band yields each digit once), "rfc2833", "inband", "info", "none",
          or a list of them. Every digit taken becomes a "dtmf" event (see EngineEvent);
          telephone-event packets not taken are dropped. In-band detection runs on decoded
          audio: on transcoded legs, and on G.711 pass-through legs.
        * `send`: how digits from the other party reach it: "auto" (default: "rfc2833" when it
          has a telephone-event payload type, else "inband"), "rfc2833" (events with payload
          type `tx_pt`: a pass-through stream carries the sender's events on, renumbered;
          otherwise the engine sends its own in the stream toward it), "inband" (tones
          generated into its audio: `tone_ms` at least, `gap_ms` after, `level_dbm0` per
          tone), "info" or "none" (the engine does not send them; the event's `forward`
          says so and a control plane may send SIP INFO).
        * `rx_pt`: the telephone-event payload type it sends (None: none negotiated);
          `tx_pt` the one the engine sends it (default `rx_pt`).
        * `mute_inband`: tones detected in the other party's audio are silenced in the audio
          sent to this party (from the moment the digit is recognised, about 25 ms in).
        * `volume`: the RFC 4733 volume (-dBm0) of events the engine generates toward it.

        The DTMF work needs both sides: a side not configured yet takes receive="rfc2833",
        send="rfc2833" with payload type 101. Sessions without set_dtmf pay nothing."""
        accept = self._dtmf_methods(receive)
        if tx_pt is None:
            tx_pt = rx_pt
        if send == "auto":
            send = "rfc2833" if tx_pt is not None else "inband"
        if send not in DTMF_METHODS and send != "none":
            raise ValueError(f"unknown DTMF send method {send!r}: auto, rfc2833, inband, info or none")
        if send == "rfc2833" and tx_pt is None:
            raise ValueError("sending RFC 2833 needs a telephone-event payload type (tx_pt)")
        config = dict(receive=receive, send=send, rx_pt=rx_pt, tx_pt=tx_pt, mute_inband=bool(mute_inband),
                      tone_ms=tone_ms, gap_ms=gap_ms, level_dbm0=level_dbm0, volume=volume)
        with self._lock:
            s = self._get(sid)
            relay = self._relays[s.worker]
            self._push_dtmf(relay, s.slots[side], accept, config)
            s.dtmf[side] = config
            other = 1 - side
            if s.dtmf[other] is None:
                default = dict(receive="rfc2833", send="rfc2833", rx_pt=DEFAULT_DTMF_PT,
                               tx_pt=DEFAULT_DTMF_PT, mute_inband=False, tone_ms=50, gap_ms=50,
                               level_dbm0=-10.0, volume=10)
                self._push_dtmf(relay, s.slots[other], DTMF_METHODS["rfc2833"], default)
                s.dtmf[other] = default

    @staticmethod
    def _dtmf_methods(receive) -> int:
        names = [receive] if isinstance(receive, str) else list(receive)
        accept = 0
        for name in names:
            if name == "all":
                accept |= sum(DTMF_METHODS.values())
            elif name in DTMF_METHODS:
                accept |= DTMF_METHODS[name]
            elif name != "none":
                raise ValueError(f"unknown DTMF receive method {name!r}: all, rfc2833, inband, info or none")
        return accept

    @staticmethod
    def _push_dtmf(relay, slot: int, accept: int, c: dict) -> None:
        rand = lambda nbytes: int.from_bytes(os.urandom(nbytes), "big")
        relay.set_dtmf(slot, accept, DTMF_METHODS.get(c["send"], 0),
                       -1 if c["rx_pt"] is None else c["rx_pt"], -1 if c["tx_pt"] is None else c["tx_pt"],
                       c["mute_inband"], c["level_dbm0"], c["tone_ms"], c["gap_ms"], c["volume"],
                       rand(4), rand(2), rand(4))

    def dtmf_config(self, sid: int, side: int) -> dict | None:
        """What set_dtmf configured for the party on `side` (None: nothing)."""
        with self._lock:
            config = self._get(sid).dtmf[side]
            return dict(config) if config is not None else None

    def clear_dtmf(self, sid: int) -> None:
        """No DTMF work on the session any more (both sides)."""
        with self._lock:
            s = self._get(sid)
            self._relays[s.worker].clear_dtmf(s.slots[0])
            s.dtmf = [None, None]

    def send_dtmf(self, sid: int, side: int, digits: str, duration_ms: int = 100, *,
                  pause_ms: int | None = None, level_dbm0: float | None = None,
                  method: str | None = None) -> None:
        """Send `digits` (0-9 * # A-D; '!' flash as an event only) to the party on `side`,
        each `duration_ms` long with `pause_ms` after it, by that party's send method (or
        `method`: "rfc2833" / "inband"). `level_dbm0` is the tone level, and its magnitude
        the RFC 4733 volume. A party that takes DTMF by SIP INFO is the control plane's to
        serve: ValueError. Digits queue behind those being sent."""
        if not isinstance(digits, str) or not digits:
            raise ValueError("no digits to send")
        if not 40 <= duration_ms <= 8000:
            raise ValueError("duration_ms must be in 40..8000")
        with self._lock:
            s = self._get(sid)
            config = s.dtmf[side]
            if config is None:
                raise ValueError(f"DTMF is not configured for side {side} of session {sid} (set_dtmf)")
            method = method or config["send"]
            if method not in ("rfc2833", "inband"):
                raise ValueError(f"the party on side {side} takes DTMF by {method}: the engine sends "
                                 f"only rfc2833 or inband")
            if method == "rfc2833" and config["tx_pt"] is None:
                raise ValueError(f"the party on side {side} has no telephone-event payload type")
            pause = config["gap_ms"] if pause_ms is None else pause_ms
            level = config["level_dbm0"] if level_dbm0 is None else level_dbm0
            if not 0 <= pause <= 5000 or level > 3.0:
                raise ValueError("pause_ms is 0..5000 and the level at most 3 dBm0")
            volume = min(63, max(0, round(-level))) if level_dbm0 is not None else config["volume"]
            data = digits.upper().encode("ascii", "replace")
            bad = [chr(c) for c in data if chr(c) not in "0123456789*#ABCD!" or (chr(c) == "!" and method == "inband")]
            if bad:
                raise ValueError(f"not a DTMF digit for {method}: {bad[0]!r}")
            queued = self._relays[s.worker].send_dtmf(s.slots[side], data, DTMF_METHODS[method],
                                                      duration_ms, pause, level, volume)
        if queued != len(data):
            raise RuntimeError(f"DTMF queue full: {queued} of {len(data)} digits queued")

    def dtmf_info(self, sid: int, side: int, digit: str, duration_ms: int = 100) -> bool:
        """The party on `side` sent `digit` by SIP INFO. Under its receive setting the digit is
        taken (a "dtmf" event with method "info", passed on to the other party by that party's
        send method; True) or refused (another method is locked, or INFO is not taken; False)."""
        if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in "0123456789*#ABCD!":
            raise ValueError(f"not a DTMF digit: {digit!r}")
        with self._lock:
            s = self._get(sid)
            if s.dtmf[side] is None:
                raise ValueError(f"DTMF is not configured for side {side} of session {sid} (set_dtmf)")
            return self._relays[s.worker].info_digit(s.slots[side], digit.upper().encode("ascii"),
                                                     max(0, int(duration_ms)))

    def delete_session(self, sid: int) -> dict:
        """Stop relaying, free the ports; return the final statistics."""
        with self._lock:
            s = self._sessions.pop(sid, None)
            if s is None:
                raise KeyError(f"no media session {sid}")
            legs = self._relays[s.worker].remove_pair(*s.slots)
            self._transcoding -= sum(t is not None for t in s.transcoders)
            for _, port in s.local:
                self._pool.give(port)
        return self._describe(sid, s, legs)

    def query(self, sid: int) -> dict:
        with self._lock:
            s = self._get(sid)
            relay = self._relays[s.worker]
            legs = (relay.stats(s.slots[0]), relay.stats(s.slots[1]))
        return self._describe(sid, s, legs)

    @staticmethod
    def _describe(sid: int, s: _Session, legs) -> dict:
        for leg, local in zip(legs, s.local):
            leg["local"] = local
        return {"session": sid, "created": s.created, "legs": list(legs)}

    def sessions(self) -> list[int]:
        with self._lock:
            return list(self._sessions)

    def totals(self) -> dict:
        out = {"sessions": 0, "ports_free": 0, "ports_total": self._pool.size}
        per_worker = [r.totals() for r in self._relays]
        for t in per_worker:
            for k, v in t.items():
                out[k] = out.get(k, 0) + v
        with self._lock:
            out["sessions"] = len(self._sessions)
            out["transcoding"] = self._transcoding
            out["ports_free"] = len(self._pool)
        out["workers"] = len(self._relays)
        return out

    # ------------------------------------------------------------ events
    def poll_events(self) -> list[EngineEvent]:
        """Drain pending events from every worker (non-blocking)."""
        try:
            os.eventfd_read(self.event_fd)
        except BlockingIOError:
            pass
        events = []
        wall = time.time() - time.monotonic()       # CLOCK_MONOTONIC -> wall clock
        for relay in self._relays:
            for kind, sid, side, idle_ms, digit, method, forward, duration_ms, start_ns in relay.drain_events():
                if kind == "dtmf":
                    events.append(EngineEvent(kind, sid, side, 0.0, digit, method, duration_ms,
                                              wall + start_ns / 1e9, forward))
                else:
                    events.append(EngineEvent(kind, sid, side, idle_ms / 1000.0))
        return events
