"""SIP messages (RFC 3261 7, 18.3, 20), sans-I/O.

:func:`parse` turns one datagram (or one message cut from a stream by
:class:`StreamFramer`) into a :class:`Request` or :class:`Response`; ``serialize()`` turns it
back into bytes. The control plane parses ~7000 messages a second on one core, so parsing
does only what every message needs: the start line and the header lines are split once and
the headers kept as an ordered list of ``(canonical name, raw value)``. Header values
(Via, From/To, URIs) are parsed on first use and cached until the headers change.

``parse`` itself checks the start line, header-line syntax, Content-Length, the presence
of Via/From/To/Call-ID/CSeq, CSeq syntax (and its method against the request's) and
Max-Forwards. Structured values are checked when used: ``message.via``, ``from_``, ``to``
and ``Request.ruri`` raise :class:`SipParseError` on malformed text; ``validate()`` checks
them all at once.

Text is decoded as UTF-8 with ``surrogateescape``: anything not UTF-8 survives the round
trip byte for byte.
"""
from __future__ import annotations

import re
import secrets

from control.sip.uri import (NameAddr, SipParseError, SipUri, Via, parse_name_addr, parse_uri,
                             parse_via, split_outside)

__all__ = ["SipParseError", "Headers", "Request", "Response", "Via", "SipUri", "NameAddr",
           "parse", "parse_uri", "parse_name_addr", "parse_via", "make_response",
           "error_response", "is_keepalive", "reason_phrase", "StreamFramer", "new_branch",
           "new_tag", "new_call_id", "canonical_name", "REASONS", "MAX_MESSAGE", "BRANCH_MAGIC"]

MAX_MESSAGE = 65536
BRANCH_MAGIC = "z9hG4bK"

# ---------------------------------------------------------------------------- header names

# compact forms: RFC 3261 7.3.3, 3265 (o, u), 3515 (r), 3841 (a, j, d), 3892 (b),
# 4028 (x), 4474 (y, n)
_COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN_NAMES = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Accept-Resource-Priority",
    "Alert-Info", "Allow", "Allow-Events", "Answer-Mode", "Authentication-Info", "Authorization",
    "Call-ID", "Call-Info", "Contact", "Content-Disposition", "Content-Encoding", "Content-ID",
    "Content-Language", "Content-Length", "Content-Type", "CSeq", "Date", "Diversion",
    "Error-Info", "Event", "Expires", "Feature-Caps", "Flow-Timer", "From", "Geolocation",
    "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Info-Package", "Join",
    "Max-Breadth", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE", "Organization",
    "P-Access-Network-Info", "P-Asserted-Identity", "P-Associated-URI", "P-Called-Party-ID",
    "P-Charging-Function-Addresses", "P-Charging-Vector", "P-Early-Media",
    "P-Preferred-Identity", "P-Visited-Network-ID", "Path", "Priority", "Priv-Answer-Mode",
    "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Recv-Info", "Record-Route", "Refer-Sub", "Refer-To", "Referred-By", "Reject-Contact",
    "Remote-Party-ID", "Replaces", "Reply-To", "Request-Disposition", "Require",
    "Resource-Priority", "Retry-After", "Route", "RSeq", "Security-Client", "Security-Server",
    "Security-Verify", "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match",
    "Subject", "Subscription-State", "Supported", "Target-Dialog", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
)
_KNOWN = frozenset(_KNOWN_NAMES)
_BY_LOWER = {name.lower(): name for name in _KNOWN_NAMES}
_BY_LOWER.update(_COMPACT)
_BY_LOWER.update({k.upper(): v for k, v in _COMPACT.items()})

# Headers whose values are comma-separated lists (RFC 3261 7.3.1) and split by get_all().
# Not WWW-Authenticate, Authorization, Date & co: their single values contain commas.
_LIST = frozenset((
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Diversion",
    "Error-Info", "History-Info", "In-Reply-To", "P-Asserted-Identity", "P-Associated-URI",
    "P-Preferred-Identity", "Path", "Proxy-Require", "Reason", "Record-Route", "Reject-Contact",
    "Request-Disposition", "Require", "Route", "Security-Client", "Security-Server",
    "Security-Verify", "Service-Route", "Supported", "Unsupported", "Via", "Warning",
))

# name as written -> canonical name; filled as names are met, bounded against floods of
# made-up names
_CANON: dict[str, str] = {}
_CANON_LIMIT = 4096
for _name in _KNOWN_NAMES:
    _CANON[_name] = _CANON[_name.lower()] = _name
for _short, _name in _COMPACT.items():
    _CANON[_short] = _CANON[_short.upper()] = _name
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name: known names and compact forms get their RFC
    spelling ("v" -> "Via", "call-id" -> "Call-ID"), other names stay as written. Surrounding
    whitespace is dropped; a name that is not a token raises SipParseError."""
    canon = _CANON.get(name)
    if canon is not None:
        return canon
    stripped = name.strip(" \t")
    if not _TOKEN.fullmatch(stripped):
        raise SipParseError("Bad Header Name")
    canon = _BY_LOWER.get(stripped.lower(), stripped)
    if len(_CANON) < _CANON_LIMIT and len(name) <= 64:
        _CANON[name] = canon
    return canon


def _split_list(value: str) -> list[str]:
    """The elements of a comma-separated header value (commas in quotes or <> don't split)."""
    if "," not in value:
        return [value]
    return [part for part in (p.strip(" \t") for p in split_outside(value, ",")) if part]


class Headers:
    """Ordered multi-map of header fields; names are case-insensitive.

    Stored as a list of ``(canonical name, raw value)``; compact forms are expanded, names of
    unknown headers keep their spelling (and are still looked up case-insensitively). For the
    list-valued headers (Via, Route, Contact, Supported, ...) ``get_all`` returns the single
    elements whether they came on one line or several, and ``get`` the first element."""

    __slots__ = ("_items", "_first", "_cache")

    def __init__(self, items=None):
        self._items: list[tuple[str, str]] = []
        self._first: dict[str, str] | None = None     # canonical name -> first raw value
        self._cache: dict = {}                        # parsed values, dropped on any change
        if items is not None:
            if isinstance(items, Headers):
                self._items = list(items._items)
            else:
                for name, value in (items.items() if hasattr(items, "items") else items):
                    self.add(name, value)

    @classmethod
    def _trusted(cls, items: list, first: dict | None = None) -> "Headers":
        """Wrap an item list built by the parser (names canonical, values checked)."""
        h = cls.__new__(cls)
        h._items = items
        h._first = first
        h._cache = {}
        return h

    def _changed(self) -> None:
        self._first = None
        if self._cache:
            self._cache.clear()

    def _matcher(self, name: str):
        """(canonical name, predicate on a stored name)."""
        canon = canonical_name(name)
        if canon in _KNOWN:
            return canon, canon.__eq__
        lower = canon.lower()
        return canon, lambda n: n.lower() == lower

    # -- reading

    def get(self, name: str) -> str | None:
        """The first value of ``name`` (for list-valued headers: the first element), or None."""
        canon = _CANON.get(name) or canonical_name(name)
        first = self._first
        if first is None:
            first = self._first = dict(reversed(self._items))
        value = first.get(canon)
        if value is None:
            if canon in _KNOWN:
                return None
            lower = canon.lower()
            for n, v in self._items:
                if n.lower() == lower:
                    value = v
                    break
            else:
                return None
        if canon in _LIST and "," in value:
            parts = _split_list(value)
            return parts[0] if parts else value
        return value

    def get_all(self, name: str) -> list[str]:
        """All values of ``name`` in order; list-valued headers are split into elements."""
        canon, match = self._matcher(name)
        values = [v for n, v in self._items if match(n)]
        if canon in _LIST:
            out = []
            for v in values:
                out.extend(_split_list(v))
            return out
        return values

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> "Headers":
        return Headers._trusted(list(self._items), self._first)

    # -- changing

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` field with one, where the first one was (else at the end)."""
        canon, match = self._matcher(name)
        value = _checked(value)
        items = self._items
        out = []
        placed = False
        for item in items:
            if match(item[0]):
                if not placed:
                    out.append((canon, value))
                    placed = True
            else:
                out.append(item)
        if not placed:
            out.append((canon, value))
        self._items = out
        self._changed()

    def add(self, name: str, value: str, first: bool = False) -> None:
        """Add a ``name`` field after the last one of that name (or at the end); with
        ``first=True`` before the first one (or at the start), as a proxy adds its Via."""
        canon, match = self._matcher(name)
        value = _checked(value)
        items = self._items
        positions = [i for i, item in enumerate(items) if match(item[0])]
        if first:
            items.insert(positions[0] if positions else 0, (canon, value))
        elif positions and positions[-1] != len(items) - 1:
            items.insert(positions[-1] + 1, (canon, value))
        else:
            items.append((canon, value))
        self._changed()

    def set_first(self, name: str, value: str) -> None:
        """Replace the first element of ``name`` (e.g. the top Via), keeping the others;
        adds the header if absent."""
        canon, match = self._matcher(name)
        value = _checked(value)
        items = self._items
        for i, (n, v) in enumerate(items):
            if match(n):
                if canon in _LIST and "," in v:
                    rest = _split_list(v)[1:]
                    value = ", ".join([value] + rest)
                items[i] = (canon, value)
                self._changed()
                return
        self.add(canon, value)

    def remove(self, name: str) -> int:
        """Remove every ``name`` field; returns how many were removed."""
        _, match = self._matcher(name)
        before = len(self._items)
        self._items = [item for item in self._items if not match(item[0])]
        removed = before - len(self._items)
        if removed:
            self._changed()
        return removed


def _checked(value) -> str:
    value = str(value)
    if "\r" in value or "\n" in value:
        # a line break in a value would inject header lines into what we send
        raise ValueError("header value contains a line break")
    return value.strip(" \t")


# ---------------------------------------------------------------------------- messages

REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type", 416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief", 424: "Bad Location Information",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 430: "Flow Failed",
    433: "Anonymity Disallowed", 436: "Bad Identity-Info", 437: "Unsupported Certificate",
    438: "Invalid Identity Header", 439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded", 469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}
_CLASS_REASONS = {1: "Trying", 2: "OK", 3: "Redirected", 4: "Request Failure",
                  5: "Server Error", 6: "Global Failure"}


def reason_phrase(status: int) -> str:
    """The usual reason phrase for ``status`` (the class's generic one for unlisted codes)."""
    return REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Unknown")


class _Message:
    """What requests and responses share: headers, body and the parsed views of the
    headers every layer needs."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        return self.headers.get("Call-ID")

    @property
    def cseq(self) -> tuple[int, str] | None:
        """(number, method), None when there is no CSeq; raises SipParseError if malformed."""
        h = self.headers
        value = h._cache.get("cseq")
        if value is None:
            raw = h.get("CSeq")
            if raw is None:
                return None
            value = h._cache["cseq"] = _parse_cseq(raw)
        return value

    @property
    def via(self) -> list[Via]:
        """The Via values, top first (treat as read-only; change them through ``headers``).
        Raises SipParseError if one is malformed."""
        h = self.headers
        value = h._cache.get("via")
        if value is None:
            value = h._cache["via"] = [parse_via(v) for v in h.get_all("Via")]
        return value

    @property
    def from_(self) -> NameAddr | None:
        """The From address (read-only view), None when absent; raises SipParseError."""
        return self._address("From")

    @property
    def to(self) -> NameAddr | None:
        """The To address (read-only view), None when absent; raises SipParseError."""
        return self._address("To")

    @property
    def from_tag(self) -> str | None:
        addr = self._address("From")
        return addr.params.get("tag") if addr is not None else None

    @property
    def to_tag(self) -> str | None:
        addr = self._address("To")
        return addr.params.get("tag") if addr is not None else None

    def _address(self, name: str) -> NameAddr | None:
        h = self.headers
        cache = h._cache
        if name in cache:
            return cache[name]
        raw = h.get(name)
        value = cache[name] = None if raw is None else parse_name_addr(raw)
        return value

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as an int, None when absent (RFC 3261 8.1.1.6: treat that as 70)."""
        raw = self.headers.get("Max-Forwards")
        if raw is None:
            return None
        value = _max_forwards(raw)
        if value is None:
            raise SipParseError("Bad Max-Forwards")
        return value

    @property
    def content_type(self) -> str | None:
        """The media type of the body in lowercase, without parameters ("application/sdp")."""
        raw = self.headers.get("Content-Type")
        return raw.split(";", 1)[0].strip(" \t").lower() if raw is not None else None

    def validate(self) -> None:
        """Parse every structured value used by the SIP layers, raising SipParseError on the
        first malformed one; ``parse`` leaves these to first use."""
        if not self.via:
            raise SipParseError("Missing Via")
        if self.from_ is None or self.to is None:
            raise SipParseError("Missing From or To")
        self.max_forwards                     # raises on a malformed value
        for name in ("Contact", "Record-Route", "Route"):
            for value in self.headers.get_all(name):
                if value != "*":
                    parse_name_addr(value)

    def _head(self, start: str) -> bytes:
        """Start line and header lines, Content-Length made to match the body."""
        length = str(len(self.body))
        h = self.headers
        lines = [start]
        have_length = False
        for n, v in h._items:
            if n == "Content-Length":
                if have_length:
                    continue                      # one Content-Length only
                have_length = True
                v = length
            lines.append(n + ": " + v)
        if not have_length:
            lines.append("Content-Length: " + length)
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape")

    def _same(self, other) -> bool:
        # Content-Length is derived from the body when serializing, so it is not compared
        mine = [item for item in self.headers._items if item[0] != "Content-Length"]
        theirs = [item for item in other.headers._items if item[0] != "Content-Length"]
        return mine == theirs and self.body == other.body

    def __bytes__(self) -> bytes:
        return self.serialize()


class Request(_Message):
    """A SIP request. ``uri`` is the Request-URI text; ``ruri`` its parsed form."""

    is_request = True

    def __init__(self, method: str, uri: str, headers: Headers | None = None, body: bytes = b""):
        self.method = method
        self.uri = uri
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body
        self._ruri: tuple | None = None

    @property
    def ruri(self) -> SipUri:
        """The Request-URI parsed (cached while ``uri`` is unchanged); raises SipParseError."""
        cached = self._ruri
        if cached is None or cached[0] is not self.uri:
            cached = self._ruri = (self.uri, parse_uri(self.uri))
        return cached[1]

    def validate(self) -> None:
        super().validate()
        self.ruri

    def stamp_received(self, host: str, port: int) -> None:
        """Record where the request came from in its top Via (RFC 3261 18.2.1, RFC 3581):
        ``received`` when the sent-by host differs from ``host``, ``rport`` filled in when
        the client asked for it. Responses built afterwards carry the stamped Via."""
        vias = self.via
        if not vias:
            return
        top = vias[0].copy()
        changed = False
        if top.bare_host != host:
            top.params["received"] = host
            changed = True
        if "rport" in top.params and top.params["rport"] is None:
            top.params["rport"] = str(port)
            top.params.setdefault("received", host)
            changed = True
        if changed:
            self.headers.set_first("Via", str(top))

    def serialize(self) -> bytes:
        return self._head(f"{self.method} {self.uri} SIP/2.0") + self.body

    def copy(self) -> "Request":
        return Request(self.method, self.uri, self.headers.copy(), self.body)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return self.method == other.method and self.uri == other.uri and self._same(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(_Message):
    """A SIP response."""

    is_request = False

    def __init__(self, status: int, reason: str | None = None, headers: Headers | None = None,
                 body: bytes = b""):
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body

    def serialize(self) -> bytes:
        reason = self.reason
        if "\r" in reason or "\n" in reason:
            reason = reason.replace("\r", " ").replace("\n", " ")
        return self._head(f"SIP/2.0 {self.status} {reason}") + self.body

    def copy(self) -> "Response":
        return Response(self.status, self.reason, self.headers.copy(), self.body)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return self.status == other.status and self.reason == other.reason and self._same(other)

    __hash__ = None

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# ---------------------------------------------------------------------------- parsing

_METHOD = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_KNOWN_METHODS = frozenset(("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
                            "UPDATE", "INFO", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE",
                            "PUBLISH"))
_MANDATORY = frozenset(("Via", "From", "To", "Call-ID", "CSeq"))
# at most one of each (RFC 4475 3.1.2.19)
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards")


def _parse_cseq(raw: str) -> tuple[int, str]:
    parts = raw.split()
    if len(parts) != 2:
        raise SipParseError("Bad CSeq")
    number, method = parts
    # the number is a 32-bit unsigned integer below 2**31 (RFC 3261 8.1.1.5)
    if not (number.isascii() and number.isdigit()) or len(number) > 10 or int(number) >= 2 ** 31:
        raise SipParseError("Bad CSeq")
    if method not in _KNOWN_METHODS and not _METHOD.fullmatch(method):
        raise SipParseError("Bad CSeq")
    return int(number), method


def _max_forwards(raw: str) -> int | None:
    """Max-Forwards 0..255 (leading zeros allowed), None if it is not that."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if value <= 255 else None


def _header_lines(head: str) -> list[str]:
    """The header block as lines, continuation lines unfolded (RFC 3261 7.3.1)."""
    lines = head.split("\r\n")
    breaks = len(lines) - 1
    if head.count("\n") != breaks or head.count("\r") != breaks:
        # bare LF line ends; a bare CR is no line end anywhere and is refused
        head = head.replace("\r\n", "\n")
        if "\r" in head:
            raise SipParseError("Bad Line Ending")
        lines = head.split("\n")
        if "\n " in head or "\n\t" in head:
            return _unfold(lines)
        return lines
    if "\r\n " in head or "\r\n\t" in head:
        return _unfold(lines)
    return lines


def _unfold(lines: list[str]) -> list[str]:
    """Join each line starting with SP/HT to the one before, the break and the whitespace
    around it becoming one SP. Done on lines, not with a regex: ``[ \t]*\r\n[ \t]+`` is
    quadratic on long runs of blanks, and so is growing a string line by line."""
    logical: list[list[str]] = []
    for line in lines:
        if logical and line[:1] in (" ", "\t"):
            logical[-1].append(line.strip(" \t"))
        else:
            logical.append([line])
    return [parts[0] if len(parts) == 1
            else " ".join([parts[0].rstrip(" \t")] + [p for p in parts[1:] if p])
            for parts in logical]


def parse(data: bytes) -> Request | Response:
    """Parse one SIP message; raises SipParseError (and nothing else) on malformed input.

    A body longer than Content-Length is cut to it (RFC 3261 18.3, datagrams); without
    Content-Length the body is the rest of the datagram. Tolerated: CRLFs before the start
    line, bare LF line ends, a missing empty line when the data ends with a header line's
    CRLF, trailing blanks on the request line."""
    if len(data) > MAX_MESSAGE:
        raise SipParseError("Message Too Large", 513)
    if not isinstance(data, bytes):
        data = bytes(data)
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")           # CRLFs before the start line are ignored (7.5)
    end = data.find(b"\r\n\r\n")
    lf_end = data.find(b"\n\n")
    if lf_end >= 0 and (end < 0 or lf_end < end):
        head_bytes = data[:lf_end]
        body = data[lf_end + 2:]
    elif end >= 0:
        head_bytes = data[:end]
        body = data[end + 4:]
    elif data.endswith(b"\r\n"):
        # header lines but not the empty line; tolerated when nothing follows
        head_bytes = data[:-2]
        body = b""
    else:
        raise SipParseError("Empty Message" if not data else "Missing Empty Line")
    head = head_bytes.decode("utf-8", "surrogateescape")
    if head.endswith("\r"):
        head = head[:-1]
    lines = _header_lines(head)

    # the start line first: its faults have the most telling answers (505 for a version)
    start = lines[0]
    if start.startswith("SIP/"):
        version, _, rest = start.partition(" ")
        status, _, reason = rest.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipParseError("Version Not Supported", 505)
        if len(status) != 3 or not (status.isascii() and status.isdigit()) or status[0] not in "123456":
            raise SipParseError("Bad Status Code")
        message = Response.__new__(Response)
        message.status = int(status)
        message.reason = reason.strip(" \t")
    else:
        parts = start.rstrip(" \t").split(" ")    # exactly one SP between the elements
        if len(parts) != 3:
            raise SipParseError("Bad Request Line")
        method, uri, version = parts
        if version != "SIP/2.0":
            version = version.upper()
            if version.startswith("SIP/") and version != "SIP/2.0":
                raise SipParseError("Version Not Supported", 505)
            if version != "SIP/2.0":
                raise SipParseError("Bad Request Line")
        if method not in _KNOWN_METHODS and not _METHOD.fullmatch(method):
            raise SipParseError("Bad Method")
        if ":" not in uri or uri[0] == "<":
            raise SipParseError("Bad Request-URI")
        message = Request.__new__(Request)
        message.method = method
        message.uri = uri
        message._ruri = None

    items = []
    append = items.append
    canon = _CANON
    for i in range(1, len(lines)):
        name, colon, value = lines[i].partition(":")
        if not colon:
            raise SipParseError("Bad Header Line")
        cname = canon.get(name)
        if cname is None:
            cname = canonical_name(name)
        append((cname, value.strip(" \t")))
    first = dict(reversed(items))
    if len(first) != len(items):
        # a name repeats: fine for most, not for the single-valued ones
        names = [n for n, _ in items]
        for name in _SINGLE:
            if names.count(name) > 1:
                raise SipParseError("Duplicate " + name)
    if not first.keys() >= _MANDATORY:
        missing = sorted(_MANDATORY - first.keys())
        raise SipParseError("Missing " + missing[0])
    if not first["Call-ID"]:
        raise SipParseError("Empty Call-ID")
    headers = Headers._trusted(items, first)
    cseq = headers._cache["cseq"] = _parse_cseq(first["CSeq"])

    clen = first.get("Content-Length")
    if clen is not None:
        if not (clen.isascii() and clen.isdigit()) or len(clen) > 6:
            raise SipParseError("Bad Content-Length")
        length = int(clen)
        if length > len(body):
            raise SipParseError("Content-Length Mismatch")
        if length < len(body):
            body = body[:length]

    if message.is_request:
        if cseq[1] != message.method:
            raise SipParseError("CSeq Method Mismatch")
        mf = first.get("Max-Forwards")
        if mf is not None and _max_forwards(mf) is None:
            raise SipParseError("Bad Max-Forwards")
    message.headers = headers
    message.body = body
    return message


def is_keepalive(data: bytes) -> bool:
    """True for a datagram of only CRLFs (RFC 5626 keep-alive), which is not a message."""
    return not data.strip(b"\r\n")


# ---------------------------------------------------------------------------- responses

_RESPONSE_COPY = frozenset(("Via", "From", "To", "Call-ID", "CSeq"))
_TAG = re.compile(r";[ \t]*tag[ \t]*=", re.I)


def make_response(request: Request, status: int, reason: str | None = None,
                  to_tag: str | None = None, headers=None, body: bytes = b"") -> Response:
    """A response to ``request`` as RFC 3261 8.2.6 builds it: Via (all, in order), From, To,
    Call-ID and CSeq copied; ``to_tag`` added to To unless it already has a tag; Timestamp
    copied into a 100. ``headers`` (pairs, a dict or a Headers) are added after those.
    Record-Route is not copied: that belongs to the dialog layer (12.1.1)."""
    items = []
    to_done = False
    for name, value in request.headers._items:
        if name in _RESPONSE_COPY:
            if name == "To" and not to_done:
                to_done = True
                if to_tag and not _has_tag(request, value):
                    value = value + ";tag=" + to_tag
            items.append((name, value))
        elif name == "Timestamp" and status == 100:
            items.append((name, value))
    response = Response(status, reason, Headers._trusted(items), body)
    if headers:
        h = response.headers
        for name, value in (headers.items() if hasattr(headers, "items") else headers):
            h.add(name, value)
    return response


def _has_tag(request: Request, raw_to: str) -> bool:
    try:
        to = request.to
    except SipParseError:
        # an unparsable To still gets an answer; look for the parameter in the text
        return _TAG.search(raw_to) is not None
    return to is not None and to.params.get("tag") is not None


def error_response(data: bytes, error: SipParseError) -> bytes | None:
    """The ``<status> <reason>`` answer to a request that ``parse`` refused, built from
    whatever Via/From/To/Call-ID/CSeq lines can be read; None when there is nobody to answer
    (a response, an ACK, no Via)."""
    head = bytes(data[:MAX_MESSAGE]).lstrip(b"\r\n")
    cut = head.find(b"\r\n\r\n")
    if cut >= 0:
        head = head[:cut]
    lines = head.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
    start = lines[0]
    if start.startswith("SIP/") or " SIP/" not in start or start.startswith("ACK "):
        return None
    items = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") or "\r" in line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        canon = _BY_LOWER.get(name.strip(" \t").lower())
        if canon in _RESPONSE_COPY:
            items.append((canon, value.strip(" \t")))
    if not any(name == "Via" for name, _ in items):
        return None
    for i, (name, value) in enumerate(items):
        if name == "To":
            if _TAG.search(value) is None:
                items[i] = (name, value + ";tag=" + new_tag())
            break
    reason = error.reason if isinstance(error, SipParseError) else "Bad Request"
    status = error.status if isinstance(error, SipParseError) else 400
    return Response(status, reason, Headers._trusted(items)).serialize()


# ---------------------------------------------------------------------------- streams

_START = re.compile(rb"SIP/|[A-Za-z0-9\-.!%*_+`'~]+ [^ \r\n]+ SIP/", re.I)
_STREAM_LENGTH = re.compile(rb"(?:^|\n)[ \t]*(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I)


class StreamFramer:
    """Cuts SIP messages out of a byte stream (TCP, TLS) by Content-Length (RFC 3261 18.3).

    ``feed(data)`` returns the complete messages so far, each ready for :func:`parse`.
    CRLFs between messages are skipped; each double CRLF (RFC 5626 ping) counts in ``pings``
    (answer with a single CRLF). A message without Content-Length has no body.
    SipParseError means the stream holds no SIP (bad start line, bad Content-Length) or a
    message over ``max_size``; the stream cannot be resynchronised, so close it."""

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self.pings = 0
        self._buf = bytearray()
        self._scan = 0              # where the search for the empty line resumes
        self._total: int | None = None   # size of the message whose header block is complete
        self._checked = False       # the start line of the message in progress looked like SIP

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out = []
        while buf:
            if self._total is None:
                if not self._skip_crlf(buf):
                    break
                total = self._find_message(buf)
                if total is None:
                    break
                self._total = total
            total = self._total
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
            self._total = None
            self._scan = 0
            self._checked = False
        return out

    def _skip_crlf(self, buf: bytearray) -> bool:
        """Drop CRLFs before a message; False if only (part of) a keep-alive is buffered."""
        i = 0
        n = len(buf)
        while i < n and buf[i] in (13, 10):
            if buf.startswith(b"\r\n\r\n", i):
                self.pings += 1
                i += 4
            elif n - i < 4 and b"\r\n\r\n".startswith(bytes(buf[i:])):
                break                          # maybe a keep-alive cut in two: wait
            else:
                i += 1
        if i:
            del buf[:i]
            self._scan = 0
        return bool(buf) and buf[0] not in (13, 10)

    def _find_message(self, buf: bytearray) -> int | None:
        """Total size of the message at the start of ``buf`` once its header block is in."""
        if not self._checked:
            line_end = buf.find(b"\n")
            if line_end >= 0:
                if not _START.match(buf, 0, line_end):
                    raise SipParseError("Bad Start Line")
                self._checked = True
            elif len(buf) > 1024:
                raise SipParseError("Bad Start Line")
        end = buf.find(b"\r\n\r\n", self._scan)
        lf_end = buf.find(b"\n\n", self._scan)
        if lf_end >= 0 and (end < 0 or lf_end < end):
            end, sep = lf_end, 2
        else:
            sep = 4
        if end < 0:
            if len(buf) > self.max_size:
                raise SipParseError("Message Too Large", 513)
            self._scan = max(0, len(buf) - 3)
            return None
        length = 0
        for m in _STREAM_LENGTH.finditer(bytes(buf[:end])):
            value = m.group(1).strip(b" \t")
            if not value.isdigit() or len(value) > 6:
                raise SipParseError("Bad Content-Length")
            length = int(value)
        total = end + sep + length
        if total > self.max_size:
            raise SipParseError("Message Too Large", 513)
        return total


# ---------------------------------------------------------------------------- identifiers

def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie + 64 random bits)."""
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    """A fresh From/To tag (48 random bits; unguessable, so dialogs cannot be spoofed)."""
    return secrets.token_hex(6)


def new_call_id(host: str | None = None) -> str:
    """A fresh Call-ID, ``random@host`` when ``host`` is given."""
    value = secrets.token_hex(12)
    return value + "@" + host if host else value
