"""SDP (RFC 4566) model: parse, inspect, rewrite, serialize.  Pure Python.

The media relay and the control plane share this module.  A parsed
:class:`SessionDescription` keeps every line it understood in a structured form and every
attribute in its original order, so an SDP that is parsed and serialized again comes out
the same (apart from line endings, which are always ``\\r\\n``, and blank lines, which are
dropped).  Lines with a type letter this module does not know are kept verbatim at their
level.

Parsing is tolerant of ``\\n`` or ``\\r\\n`` line ends and of missing optional lines, and
strict about what would make the description unusable: a missing ``v=`` or ``o=`` line,
a line that is not ``<letter>=<value>``, a malformed ``o=``/``c=``/``m=`` line, a bad
port, a malformed ``a=rtpmap`` or ``a=rtcp``.  Those raise :class:`SdpError`, a
``ValueError`` whose message names the line and the problem.

Typical relay use::

    desc = parse(text)
    for ep in desc.endpoints():            # remote address and ports per m= line
        ...
    desc.rewrite_endpoints({0: ("203.0.113.5", 30000, 30001)})
    desc.remove_ice()
    body = desc.serialize()
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

__all__ = [
    "SdpError", "Origin", "Connection", "Attribute", "Media", "SessionDescription",
    "Codec", "Endpoint", "Rtcp", "parse", "addrtype_of", "is_zero_address",
    "DIRECTIONS", "ICE_ATTRIBUTES", "STATIC_PAYLOAD_TYPES",
]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

#: attributes that belong to ICE (RFC 8839) and are stripped by :meth:`SessionDescription.remove_ice`
ICE_ATTRIBUTES = frozenset({
    "candidate", "remote-candidates", "ice-ufrag", "ice-pwd", "ice-options", "ice-lite",
    "ice-mismatch", "ice-pacing", "end-of-candidates",
})

#: RFC 3551 static payload types: pt -> (encoding, clock rate, channels)
STATIC_PAYLOAD_TYPES = {
    0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1), 5: ("DVI4", 8000, 1),
    6: ("DVI4", 16000, 1), 7: ("LPC", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1),
    10: ("L16", 44100, 2), 11: ("L16", 44100, 1), 12: ("QCELP", 8000, 1), 13: ("CN", 8000, 1),
    14: ("MPA", 90000, 1), 15: ("G728", 8000, 1), 16: ("DVI4", 11025, 1), 17: ("DVI4", 22050, 1),
    18: ("G729", 8000, 1), 25: ("CelB", 90000, 1), 26: ("JPEG", 90000, 1), 28: ("nv", 90000, 1),
    31: ("H261", 90000, 1), 32: ("MPV", 90000, 1), 33: ("MP2T", 90000, 1), 34: ("H263", 90000, 1),
}


class SdpError(ValueError):
    """Malformed or unusable SDP; the message names the line and the problem."""


# ------------------------------------------------------------------ small value types

def _port(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise SdpError(f"{what}: bad port {text!r}")
    return int(text)


def addrtype_of(address: str) -> str:
    """``"IP6"`` for an IPv6 literal, else ``"IP4"``."""
    return "IP6" if ":" in address else "IP4"


def is_zero_address(address: str) -> bool:
    """True for the RFC 2543 hold address ``0.0.0.0`` (and ``::``)."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


@dataclass
class Origin:
    """The ``o=`` line: ``username sess-id sess-version nettype addrtype address``."""
    username: str = "-"
    session_id: str = "0"
    version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    @classmethod
    def parse(cls, value: str, where: str = "o=") -> "Origin":
        parts = value.split()
        if len(parts) != 6:
            raise SdpError(f"{where}: origin needs 6 fields "
                           f"(username sess-id sess-version nettype addrtype address), got {len(parts)}")
        if not parts[2].isdigit():
            raise SdpError(f"{where}: session version {parts[2]!r} is not a number")
        return cls(parts[0], parts[1], int(parts[2]), parts[3], parts[4], parts[5])

    def __str__(self) -> str:
        return (f"{self.username} {self.session_id} {self.version} "
                f"{self.nettype} {self.addrtype} {self.address}")


@dataclass
class Connection:
    """A ``c=`` line.  ``address`` may carry a multicast ``/ttl[/count]`` suffix."""
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    @classmethod
    def parse(cls, value: str, where: str = "c=") -> "Connection":
        parts = value.split()
        if len(parts) != 3:
            raise SdpError(f"{where}: connection needs 3 fields (nettype addrtype address), got {len(parts)}")
        return cls(*parts)

    @classmethod
    def for_address(cls, address: str) -> "Connection":
        return cls("IN", addrtype_of(address), address)

    @property
    def host(self) -> str:
        """The address without a multicast TTL/count suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass
class Attribute:
    """An ``a=`` line: ``a=name`` (``value is None``) or ``a=name:value``."""
    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str, where: str = "a=") -> "Attribute":
        name, sep, value = text.partition(":")
        if not name:
            raise SdpError(f"{where}: empty attribute name")
        return cls(name, value if sep else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


class Codec(NamedTuple):
    """One payload format of an RTP media description."""
    pt: int
    encoding: str          # "" when a dynamic payload type has no a=rtpmap
    clock_rate: int        # 0 when unknown
    channels: int
    fmtp: str | None

    @property
    def name(self) -> str:
        """``encoding/clock_rate`` (plus ``/channels`` when not mono), as in a=rtpmap."""
        base = f"{self.encoding}/{self.clock_rate}"
        return base if self.channels == 1 else f"{base}/{self.channels}"


class Rtcp(NamedTuple):
    """A parsed ``a=rtcp:`` attribute (RFC 3605)."""
    port: int
    nettype: str | None
    addrtype: str | None
    address: str | None


class Endpoint(NamedTuple):
    """Where a media stream's owner receives: what a relay needs from one m= line."""
    index: int
    media: str             # audio, video, image, ...
    proto: str
    address: str           # IP literal (no multicast suffix)
    addrtype: str          # IP4 / IP6
    rtp_port: int          # 0: stream disabled
    rtcp_port: int         # a=rtcp port if present, else rtp_port + 1 (rtp_port if rtcp-mux)
    rtcp_address: str      # a=rtcp address if given, else address
    rtcp_mux: bool
    direction: str


def _parse_rtcp(value: str | None, where: str) -> Rtcp:
    parts = (value or "").split()
    if len(parts) not in (1, 4):
        raise SdpError(f"{where}: a=rtcp needs 'port' or 'port nettype addrtype address'")
    port = _port(parts[0], where)
    if len(parts) == 1:
        return Rtcp(port, None, None, None)
    return Rtcp(port, parts[1], parts[2], parts[3])


def _parse_rtpmap(value: str | None, where: str) -> tuple[int, str, int, int]:
    pt_text, _, rest = (value or "").partition(" ")
    rest = rest.strip()
    if not pt_text.isdigit() or int(pt_text) > 127:
        raise SdpError(f"{where}: a=rtpmap payload type {pt_text!r} is not 0-127")
    pieces = rest.split("/")
    if len(pieces) not in (2, 3) or not pieces[0] or not pieces[1].isdigit():
        raise SdpError(f"{where}: a=rtpmap needs 'pt encoding/clockrate[/channels]', got {value!r}")
    channels = 1
    if len(pieces) == 3:
        if not pieces[2].isdigit() or int(pieces[2]) == 0:
            raise SdpError(f"{where}: a=rtpmap channel count {pieces[2]!r} is not a positive number")
        channels = int(pieces[2])
    return int(pt_text), pieces[0], int(pieces[1]), channels


# ------------------------------------------------------------------ attribute container

class _Attributes:
    """Ordered attribute list helpers shared by session and media levels."""
    attributes: list[Attribute]

    def attribute(self, name: str) -> Attribute | None:
        """The first attribute called ``name`` (case-sensitive, as RFC 4566 says), or None."""
        for attr in self.attributes:
            if attr.name == name:
                return attr
        return None

    def attribute_values(self, name: str) -> list[str | None]:
        """Values of every attribute called ``name``, in order."""
        return [a.value for a in self.attributes if a.name == name]

    def has_attribute(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Replace the first ``name`` attribute in place (dropping any others), or append it."""
        kept: list[Attribute] = []
        placed = False
        for attr in self.attributes:
            if attr.name == name:
                if not placed:
                    kept.append(Attribute(name, value))
                    placed = True
            else:
                kept.append(attr)
        if not placed:
            kept.append(Attribute(name, value))
        self.attributes = kept

    def add_attribute(self, name: str, value: str | None = None) -> None:
        self.attributes.append(Attribute(name, value))

    def remove_attributes(self, names: str | Iterable[str]) -> int:
        """Remove every attribute whose name is ``names`` (or in ``names``); return the count."""
        wanted = {names} if isinstance(names, str) else set(names)
        before = len(self.attributes)
        self.attributes = [a for a in self.attributes if a.name not in wanted]
        return before - len(self.attributes)

    @property
    def direction(self) -> str | None:
        """sendrecv / sendonly / recvonly / inactive declared at this level, or None."""
        for attr in self.attributes:
            if attr.name in DIRECTIONS and attr.value is None:
                return attr.name
        return None

    @direction.setter
    def direction(self, value: str | None) -> None:
        if value is not None and value not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {value!r}")
        index = next((i for i, a in enumerate(self.attributes) if a.name in DIRECTIONS), None)
        self.attributes = [a for a in self.attributes if a.name not in DIRECTIONS]
        if value is not None:
            self.attributes.insert(len(self.attributes) if index is None else index, Attribute(value))


# ------------------------------------------------------------------ media description

@dataclass
class Media(_Attributes):
    """One ``m=`` section and the lines under it."""
    media: str = "audio"
    port: int = 0
    port_count: int | None = None
    proto: str = "RTP/AVP"
    formats: list[str] = field(default_factory=list)
    info: str | None = None                                  # i=
    connections: list[Connection] = field(default_factory=list)
    bandwidths: list[str] = field(default_factory=list)      # b= values, e.g. "AS:64"
    key: str | None = None                                   # k=
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_rtp(self) -> bool:
        """True when the formats are RTP payload types (RTP/AVP, RTP/SAVPF, UDP/TLS/RTP/SAVP...)."""
        return "RTP/" in self.proto.upper()

    @property
    def is_udp(self) -> bool:
        """True for UDP-carried media a packet relay can forward (RTP profiles, udptl, UDP)."""
        proto = self.proto.upper()
        return proto.startswith("RTP/") or proto.startswith("UDP")

    @property
    def rtcp_mux(self) -> bool:
        return self.has_attribute("rtcp-mux")

    @property
    def rtcp(self) -> Rtcp | None:
        """The a=rtcp attribute, parsed, or None."""
        attr = self.attribute("rtcp")
        return None if attr is None else _parse_rtcp(attr.value, f"m={self.media} a=rtcp")

    @property
    def ptime(self) -> int | None:
        """a=ptime in milliseconds (fractional values rounded), or None."""
        attr = self.attribute("ptime")
        if attr is None or not attr.value:
            return None
        try:
            return round(float(attr.value))
        except ValueError:
            raise SdpError(f"m={self.media}: a=ptime {attr.value!r} is not a number") from None

    @ptime.setter
    def ptime(self, value: int | None) -> None:
        if value is None:
            self.remove_attributes("ptime")
        else:
            self.set_attribute("ptime", str(int(value)))

    def rtpmaps(self) -> dict[int, tuple[str, int, int]]:
        """pt -> (encoding, clock rate, channels) from the a=rtpmap lines."""
        maps: dict[int, tuple[str, int, int]] = {}
        for attr in self.attributes:
            if attr.name == "rtpmap":
                pt, enc, rate, ch = _parse_rtpmap(attr.value, f"m={self.media} a=rtpmap")
                maps.setdefault(pt, (enc, rate, ch))
        return maps

    def fmtps(self) -> dict[int, str]:
        """pt -> format parameters from the a=fmtp lines (first line per pt wins)."""
        params: dict[int, str] = {}
        for attr in self.attributes:
            if attr.name == "fmtp" and attr.value:
                pt_text, _, rest = attr.value.partition(" ")
                if pt_text.isdigit():
                    params.setdefault(int(pt_text), rest.strip())
        return params

    def codecs(self) -> list[Codec]:
        """The payload formats of the m= line in preference order, with rtpmap and fmtp.

        Static payload types without an a=rtpmap take their RFC 3551 definition; a dynamic
        payload type without one is returned with an empty encoding and clock rate 0.
        Non-RTP media (udptl, ...) has no codecs.
        """
        if not self.is_rtp:
            return []
        maps = self.rtpmaps()
        params = self.fmtps()
        result = []
        for fmt in self.formats:
            pt = int(fmt)
            enc, rate, ch = maps.get(pt) or STATIC_PAYLOAD_TYPES.get(pt) or ("", 0, 1)
            result.append(Codec(pt, enc, rate, ch, params.get(pt)))
        return result

    def set_codecs(self, codecs: Iterable[Codec], *, always_rtpmap: bool = False) -> None:
        """Make the m= format list and its rtpmap/fmtp/rtcp-fb lines exactly ``codecs``.

        Attributes bound to payload types no longer listed are dropped.  An a=rtpmap is
        written for every dynamic payload type, for a static one that had an a=rtpmap
        before, and for a static number used with a non-RFC 3551 definition; with
        ``always_rtpmap`` it is written for every codec (static ones included).  A codec
        with an empty encoding (a dynamic payload type that had no a=rtpmap) gets none.  The new
        block of codec attributes takes the place of the first old one.
        """
        codecs = list(codecs)
        had_map = set(self.rtpmaps())
        if always_rtpmap:
            had_map.update(c.pt for c in codecs)
        bound = ("rtpmap", "fmtp", "rtcp-fb")
        feedback = [a for a in self.attributes if a.name == "rtcp-fb"]

        def fb_target(attr: Attribute) -> str:
            return (attr.value or "").split(" ", 1)[0]

        fresh: list[Attribute] = []
        for c in codecs:
            if c.encoding and (c.pt in had_map
                               or STATIC_PAYLOAD_TYPES.get(c.pt) != (c.encoding, c.clock_rate, c.channels)):
                fresh.append(Attribute("rtpmap", f"{c.pt} {c.name}"))
            if c.fmtp is not None:
                fresh.append(Attribute("fmtp", f"{c.pt} {c.fmtp}"))
            fresh.extend(a for a in feedback if fb_target(a) == str(c.pt))
        fresh.extend(a for a in feedback if fb_target(a) == "*")
        first = next((i for i, a in enumerate(self.attributes) if a.name in bound), len(self.attributes))
        after = [a for a in self.attributes[first:] if a.name not in bound]
        self.attributes = self.attributes[:first] + fresh + after
        self.formats = [str(c.pt) for c in codecs]

    def remove_ice(self) -> int:
        return self.remove_attributes(ICE_ATTRIBUTES)

    def lines(self) -> Iterator[str]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        yield " ".join(["m=" + self.media, port, self.proto, *self.formats])
        if self.info is not None:
            yield "i=" + self.info
        for conn in self.connections:
            yield f"c={conn}"
        for bw in self.bandwidths:
            yield "b=" + bw
        if self.key is not None:
            yield "k=" + self.key
        for kind, value in self.other_lines:
            yield f"{kind}={value}"
        for attr in self.attributes:
            yield f"a={attr}"


# ------------------------------------------------------------------ session description

@dataclass
class SessionDescription(_Attributes):
    """A whole SDP body."""
    version: int = 0
    origin: Origin = field(default_factory=Origin)
    session_name: str | None = "-"
    info: str | None = None
    uri: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    times: list[tuple[str, list[str]]] = field(default_factory=lambda: [("0 0", [])])  # (t=, [r=...])
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    # ---------------------------------------------------------- serialization

    def lines(self) -> Iterator[str]:
        yield f"v={self.version}"
        yield f"o={self.origin}"
        if self.session_name is not None:
            yield "s=" + self.session_name
        if self.info is not None:
            yield "i=" + self.info
        if self.uri is not None:
            yield "u=" + self.uri
        for email in self.emails:
            yield "e=" + email
        for phone in self.phones:
            yield "p=" + phone
        if self.connection is not None:
            yield f"c={self.connection}"
        for bw in self.bandwidths:
            yield "b=" + bw
        for timing, repeats in self.times:
            yield "t=" + timing
            for repeat in repeats:
                yield "r=" + repeat
        if self.zone is not None:
            yield "z=" + self.zone
        if self.key is not None:
            yield "k=" + self.key
        for kind, value in self.other_lines:
            yield f"{kind}={value}"
        for attr in self.attributes:
            yield f"a={attr}"
        for media in self.media:
            yield from media.lines()

    def serialize(self) -> str:
        """The SDP text, every line ended by CRLF."""
        return "".join(line + "\r\n" for line in self.lines())

    def __str__(self) -> str:
        return self.serialize()

    def to_bytes(self) -> bytes:
        return self.serialize().encode("utf-8", "surrogateescape")

    # ---------------------------------------------------------- inspection

    def connection_for(self, media: Media | int) -> Connection | None:
        """The connection that applies to a media section: its own c=, else the session c=."""
        if isinstance(media, int):
            media = self.media[media]
        return media.connections[0] if media.connections else self.connection

    def direction_of(self, media: Media | int) -> str:
        """Effective direction of a media section (media level, then session level, then sendrecv)."""
        if isinstance(media, int):
            media = self.media[media]
        return media.direction or self.direction or "sendrecv"

    def endpoint(self, index: int) -> Endpoint:
        """The remote address and RTP/RTCP ports advertised by m= line ``index``.

        Raises :class:`SdpError` when the media section has no connection address or the
        address is not an IP literal of the declared family.
        """
        media = self.media[index]
        where = f"m= line {index + 1} ({media.media})"
        conn = self.connection_for(media)
        if conn is None:
            raise SdpError(f"{where}: no c= line at media or session level")
        host = conn.host
        family = conn.addrtype.upper()
        if family not in ("IP4", "IP6"):
            raise SdpError(f"{where}: unsupported address type {conn.addrtype!r}")
        try:
            (ipaddress.IPv4Address if family == "IP4" else ipaddress.IPv6Address)(host)
        except ValueError:
            raise SdpError(f"{where}: connection address {host!r} is not an {family} address") from None
        rtcp = media.rtcp
        mux = media.rtcp_mux
        if rtcp is not None:
            rtcp_port = rtcp.port
        elif media.port == 0:
            rtcp_port = 0
        else:
            rtcp_port = media.port if mux else media.port + 1
        rtcp_address = host
        if rtcp is not None and rtcp.address:
            try:
                rtcp_address = str(ipaddress.ip_address(rtcp.address.split("/", 1)[0]))
            except ValueError:
                raise SdpError(f"{where}: a=rtcp address {rtcp.address!r} is not an IP address") from None
        return Endpoint(index, media.media, media.proto, host, family, media.port, rtcp_port,
                        rtcp_address, mux, self.direction_of(media))

    def endpoints(self) -> list[Endpoint]:
        """:meth:`endpoint` for every m= line, in order."""
        return [self.endpoint(i) for i in range(len(self.media))]

    def codecs(self, index: int) -> list[Codec]:
        """Codecs of m= line ``index`` (see :meth:`Media.codecs`)."""
        return self.media[index].codecs()

    # ---------------------------------------------------------- rewriting

    def rewrite_endpoints(self, endpoints: dict[int, tuple]) -> None:
        """Point m= lines at new addresses: ``{index: (address, rtp_port[, rtcp_port])}``.

        For each listed media section the port is replaced, its own c= lines (if any) get
        the new address, and an existing a=rtcp attribute gets the new RTCP port (default
        RTP + 1) and, when it carried one, the new address.  The session-level c= line is
        rewritten too, so the original endpoint's address does not leak; media sections
        that still rely on it and would end up with a different address get their own c=.
        """
        targets: dict[int, str] = {}
        for index, spec in endpoints.items():
            media = self.media[index]
            address, port = spec[0], int(spec[1])
            rtcp_port = int(spec[2]) if len(spec) > 2 and spec[2] is not None else port + 1
            media.port = port
            media.port_count = None
            for i, conn in enumerate(media.connections):
                media.connections[i] = Connection.for_address(address)
            for i, attr in enumerate(media.attributes):
                if attr.name == "rtcp":
                    old = _parse_rtcp(attr.value, f"m={media.media} a=rtcp")
                    value = str(rtcp_port)
                    if old.address is not None:
                        value += f" IN {addrtype_of(address)} {address}"
                    media.attributes[i] = Attribute("rtcp", value)
            targets[index] = address

        relying = [i for i, m in enumerate(self.media) if not m.connections]
        if self.connection is None:
            for index, address in targets.items():
                if not self.media[index].connections:
                    self.media[index].connections.append(Connection.for_address(address))
            return
        old = self.connection
        wanted = {i: targets.get(i) for i in relying}
        if not targets:
            return
        chosen = next((a for a in wanted.values() if a is not None), None)
        if chosen is None:
            chosen = next(iter(targets.values()))
        new = Connection.for_address(chosen)
        for i, address in wanted.items():
            if address is None and old.address != new.address:
                self.media[i].connections.append(Connection(old.nettype, old.addrtype, old.address))
            elif address is not None and address != chosen:
                self.media[i].connections.append(Connection.for_address(address))
        self.connection = new

    def set_origin_address(self, address: str) -> None:
        """Replace the o= line's address (and address type)."""
        self.origin.address = address
        self.origin.addrtype = addrtype_of(address)

    def bump_version(self) -> int:
        """Increment the o= session version; return the new value."""
        self.origin.version += 1
        return self.origin.version

    def remove_ice(self) -> int:
        """Strip ICE attributes at session and media level; return how many were removed."""
        return self.remove_attributes(ICE_ATTRIBUTES) + sum(m.remove_ice() for m in self.media)

    def copy(self) -> "SessionDescription":
        return parse(self.serialize())


# ------------------------------------------------------------------ parser

def parse(text: str | bytes) -> SessionDescription:
    """Parse an SDP body (``str`` or UTF-8 ``bytes``); raise :class:`SdpError` if malformed."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "surrogateescape")
    elif not isinstance(text, str):
        raise SdpError(f"SDP must be str or bytes, not {type(text).__name__}")
    desc = SessionDescription(session_name=None, times=[])
    seen: set[str] = set()
    media: Media | None = None
    have_version = False
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.strip():
            continue
        where = f"line {number}"
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpError(f"{where}: expected '<letter>=<value>', got {line[:60]!r}")
        kind, value = line[0], line[2:]
        where = f"line {number} ({kind}=)"
        if not have_version:
            if kind != "v":
                raise SdpError(f"{where}: SDP must start with a v= line")
            if not value.isdigit():
                raise SdpError(f"{where}: bad protocol version {value!r}")
            desc.version = int(value)
            have_version = True
            continue
        if kind == "m":
            media = _parse_media(value, where)
            desc.media.append(media)
            continue
        if media is not None:
            _media_line(media, kind, value, where)
            continue
        if kind in "vosiuzk" and kind in seen:
            raise SdpError(f"{where}: duplicate {kind}= line")
        seen.add(kind)
        if kind == "v":
            raise SdpError(f"{where}: duplicate v= line")
        elif kind == "o":
            desc.origin = Origin.parse(value, where)
        elif kind == "s":
            desc.session_name = value
        elif kind == "i":
            desc.info = value
        elif kind == "u":
            desc.uri = value
        elif kind == "e":
            desc.emails.append(value)
        elif kind == "p":
            desc.phones.append(value)
        elif kind == "c":
            if desc.connection is not None:
                raise SdpError(f"{where}: more than one session-level c= line")
            desc.connection = Connection.parse(value, where)
        elif kind == "b":
            desc.bandwidths.append(value)
        elif kind == "t":
            desc.times.append((value, []))
        elif kind == "r":
            if not desc.times:
                raise SdpError(f"{where}: r= line before any t= line")
            desc.times[-1][1].append(value)
        elif kind == "z":
            desc.zone = value
        elif kind == "k":
            desc.key = value
        elif kind == "a":
            desc.attributes.append(_attribute(value, where))
        else:
            desc.other_lines.append((kind, value))
    if not have_version:
        raise SdpError("empty SDP: no v= line")
    if "o" not in seen:
        raise SdpError("missing o= line")
    return desc


def _parse_media(value: str, where: str) -> Media:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"{where}: media line needs 'media port proto fmt...', got {value[:60]!r}")
    port_text, slash, count_text = parts[1].partition("/")
    port = _port(port_text, where)
    count = None
    if slash:
        if not count_text.isdigit() or not 0 < len(count_text) <= 5:
            raise SdpError(f"{where}: bad port count {count_text!r}")
        count = int(count_text)
    media = Media(parts[0], port, count, parts[2], parts[3:])
    if media.is_rtp:
        for fmt in media.formats:
            if not fmt.isdigit() or int(fmt) > 127:
                raise SdpError(f"{where}: RTP payload type {fmt!r} is not 0-127")
    return media


def _attribute(value: str, where: str) -> Attribute:
    attr = Attribute.parse(value, where)
    if attr.name == "rtpmap":
        _parse_rtpmap(attr.value, where)
    elif attr.name == "rtcp":
        _parse_rtcp(attr.value, where)
    return attr


def _media_line(media: Media, kind: str, value: str, where: str) -> None:
    if kind == "c":
        media.connections.append(Connection.parse(value, where))
    elif kind == "a":
        media.attributes.append(_attribute(value, where))
    elif kind == "b":
        media.bandwidths.append(value)
    elif kind == "i":
        if media.info is not None:
            raise SdpError(f"{where}: duplicate i= line in media section")
        media.info = value
    elif kind == "k":
        media.key = value
    elif kind in "vostrzuep":
        raise SdpError(f"{where}: {kind}= line is not allowed inside a media section")
    else:
        media.other_lines.append((kind, value))
