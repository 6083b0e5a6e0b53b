"""SIP URIs and the structured header values built on them, sans-I/O.

* :class:`SipUri` -- ``sip:``/``sips:`` (RFC 3261 19.1) and ``tel:`` (RFC 3966) URIs;
* :class:`NameAddr` -- ``name-addr`` / ``addr-spec`` with header parameters (RFC 3261 20.10),
  the value of From, To, Contact, Route, Record-Route, Refer-To, P-Asserted-Identity ...;
* :class:`Via` -- one ``via-parm`` (RFC 3261 20.42).

Parsing is pure string work. Results of the text-to-parts step are kept in small LRU caches
because the same From/To/Contact/Via text comes back in every message of a dialog; each call
still returns fresh objects, so callers may change what they get.

Every malformed input raises :class:`SipParseError` and nothing else.
"""
from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import unquote

__all__ = ["SipParseError", "SipUri", "NameAddr", "Via", "parse_uri", "parse_name_addr",
           "parse_via", "split_hostport", "parse_params", "format_params", "split_outside",
           "quote_string"]


class SipParseError(ValueError):
    """Malformed SIP text.

    ``reason`` is a short phrase for the ``400 <reason>`` answer; ``status`` is the status
    code to answer with (400 unless the fault has its own: 416, 505, 513)."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason = reason
        self.status = status


# RFC 3261 25.1 character classes (ASCII only, so str methods like isalnum() are not used).
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_HOST = re.compile(r"[A-Za-z0-9\-_.]+|\[[0-9A-Fa-f:.]+\]")
# user and password are lenient: anything printable except what would end or confuse the URI
# (real equipment sends '#' and similar unescaped, refusing those buys nothing)
_USERINFO = re.compile(r"[^\x00-\x20\x7f<>\"@:]+")
_URI_PARAM = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+")
_URI_HEADER_VALUE = re.compile(r"[A-Za-z0-9\-_.!~*'()%\[\]/?:+$@]*")
_TEL_NUMBER = re.compile(r"\+?[0-9A-Fa-f*#.()\-]+")
# a gen-value that is not quoted: token, host or IPv6 address
_PARAM_VALUE = re.compile(r"[^\x00-\x20\x7f\"<>,;]+")
# characters that cannot appear in an unquoted display name (RFC 4475 3.1.2.11: "Bell, Alexander")
_BAD_DISPLAY = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\"<>,;\\]")

_MISSING = object()
_CACHED_TEXT = 512      # longer values are parsed every time: a cache of 64 KiB attacker
                        # strings would hold hundreds of megabytes


def _text_cache(parse_parts):
    """LRU-cache ``parse_parts(text)`` (which returns an immutable tuple) for short texts."""
    cached = lru_cache(maxsize=4096)(parse_parts)

    def parts(text: str) -> tuple:
        return cached(text) if len(text) <= _CACHED_TEXT else parse_parts(text)
    return parts


def split_outside(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` where it is neither inside a quoted string nor inside <...>.

    An unterminated quote or bracket swallows the rest of the text (the caller's own parsing
    then reports it)."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts = []
    start = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch == "<":
            close = text.find(">", i)
            i = n if close < 0 else close
        elif ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def read_quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted string starting at ``text[i] == '"'``: (unescaped content, index after it)."""
    out = []
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            i += 1
            if i == n:
                break
            ch = text[i]
        if ch == "\r" or ch == "\n":
            raise SipParseError("Bad Quoted String")     # neither qdtext nor quoted-pair
        out.append(ch)
        i += 1
    raise SipParseError("Unterminated Quoted String")


def quote_string(text: str) -> str:
    """``text`` as a quoted-string (backslash before '"' and '\\')."""
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    if "\r" in text or "\n" in text:
        # a line break would end the header line; no quoted-string may hold one
        text = text.replace("\r", " ").replace("\n", " ")
    return '"' + text + '"'


def split_hostport(text: str) -> tuple[str, int | None]:
    """``host[:port]`` -> (host, port); an IPv6 host keeps its brackets, as in the grammar."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipParseError("Bad Host")
        host = text[:close + 1]
        rest = text[close + 1:]
        if rest and rest[0] != ":":
            raise SipParseError("Bad Host")
        port = rest[1:] if rest else None
    else:
        host, colon, port = text.partition(":")
        if not colon:
            port = None
    if not _HOST.fullmatch(host):
        raise SipParseError("Bad Host")
    if port is None:
        return host, None
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise SipParseError("Bad Port")
    return host, int(port)


def parse_params(text: str) -> dict[str, str | None]:
    """Header parameters ``a=b;flag;c="quoted"`` (no leading ';') -> dict with lowercase names.

    LWS around ';' and '=' is allowed; a flag parameter maps to None; a quoted value keeps its
    quotes so that it serializes back unchanged."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    for part in split_outside(text, ";") if '"' in text else text.split(";"):
        name, eq, value = part.partition("=")
        name = name.strip(" \t")
        if not _TOKEN.fullmatch(name):
            raise SipParseError("Bad Parameter")
        if eq:
            value = value.strip(" \t")
            if value.startswith('"'):
                if read_quoted(value, 0)[1] != len(value):
                    raise SipParseError("Bad Parameter")
            elif not _PARAM_VALUE.fullmatch(value):
                raise SipParseError("Bad Parameter")
            params[name.lower()] = value
        else:
            params[name.lower()] = None
    return params


def format_params(params: dict) -> str:
    """The ``;name=value`` form of ``params`` (empty string when there are none)."""
    if not params:
        return ""
    return "".join(";" + k if v is None else f";{k}={v}" for k, v in params.items())


# ---------------------------------------------------------------------------- SipUri

class SipUri:
    """A ``sip:``, ``sips:`` or ``tel:`` URI.

    ``user`` and ``password`` are kept as written (escapes included; ``user_unescaped``
    decodes them). ``host`` keeps an IPv6 address in brackets (``bare_host`` drops them);
    it is ``""`` for a tel URI, whose number is ``user``. ``params`` has lowercase names, a
    flag parameter (``lr``) maps to None; ``headers`` keeps names and values as written.
    Equality follows RFC 3261 19.1.4."""

    __slots__ = ("scheme", "user", "password", "host", "port", "params", "headers")

    def __init__(self, scheme: str = "sip", user: str | None = None, password: str | None = None,
                 host: str = "", port: int | None = None, params: dict | None = None,
                 headers: dict | None = None):
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = {} if params is None else params
        self.headers = {} if headers is None else headers

    @property
    def user_unescaped(self) -> str | None:
        user = self.user
        if user is None or "%" not in user:
            return user
        return unquote(user, errors="surrogateescape")

    @property
    def bare_host(self) -> str:
        """The host without IPv6 brackets (what a socket wants)."""
        host = self.host
        return host[1:-1] if host.startswith("[") else host

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter in lowercase, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    def __str__(self) -> str:
        if self.scheme == "tel":
            return "tel:" + (self.user or "") + format_params(self.params)
        out = self.scheme + ":"
        if self.user is not None:
            out += self.user
            if self.password is not None:
                out += ":" + self.password
            out += "@"
        out += self.host
        if self.port is not None:
            out += ":" + str(self.port)
        if self.params:
            out += format_params(self.params)
        if self.headers:
            out += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return out

    def __repr__(self) -> str:
        return f"SipUri({str(self)!r})"

    def copy(self) -> "SipUri":
        return SipUri(self.scheme, self.user, self.password, self.host, self.port,
                      dict(self.params), dict(self.headers))

    def __eq__(self, other) -> bool:
        if not isinstance(other, SipUri):
            return NotImplemented
        if (self.scheme != other.scheme or self.user_unescaped != other.user_unescaped
                or _unescape(self.password) != _unescape(other.password)
                or self.host.lower() != other.host.lower() or self.port != other.port):
            return False
        mine, theirs = self.params, other.params
        # these must match even when only one side has them; others only when both have them
        for name in ("user", "ttl", "method", "maddr", "transport"):
            if _fold(mine.get(name, _MISSING)) != _fold(theirs.get(name, _MISSING)):
                return False
        for name, value in mine.items():
            if name in theirs and _fold(value) != _fold(theirs[name]):
                return False
        # URI headers are never ignored
        if len(self.headers) != len(other.headers):
            return False
        theirs_h = {k.lower(): _unescape(v) for k, v in other.headers.items()}
        return all(theirs_h.get(k.lower(), _MISSING) == _unescape(v) for k, v in self.headers.items())

    def __hash__(self) -> int:
        return hash((self.scheme, self.user_unescaped, self.host.lower(), self.port))


def _unescape(value):
    return unquote(value, errors="surrogateescape") if value and "%" in value else value


def _fold(value):
    """A parameter value as compared by RFC 3261 19.1.4: unescaped, case-insensitive."""
    if value is _MISSING or value is None:
        return value
    return _unescape(value).lower()


def parse_uri(text: str) -> SipUri:
    """Parse a sip/sips/tel URI; raises SipParseError (status 416 for another scheme)."""
    parts = _uri_parts(text)
    return SipUri(parts[0], parts[1], parts[2], parts[3], parts[4], dict(parts[5]), dict(parts[6]))


@_text_cache
def _uri_parts(text: str) -> tuple:
    """The components of a URI as an immutable tuple (so the cache can share it)."""
    scheme, colon, rest = text.partition(":")
    if not colon or not rest:
        raise SipParseError("Bad URI")
    scheme = scheme.lower()
    if scheme == "tel":
        number, semicolon, ptext = rest.partition(";")
        if not _TEL_NUMBER.fullmatch(number) or (semicolon and not ptext):
            raise SipParseError("Bad URI")
        return ("tel", number, None, "", None, _uri_params(ptext), ())
    if scheme != "sip" and scheme != "sips":
        raise SipParseError("Unsupported URI Scheme", 416)
    # user and password cannot hold '@' (it must be escaped), so the first '@' ends them
    at = rest.find("@")
    if at >= 0:
        user, colon, password = rest[:at].partition(":")
        if not _USERINFO.fullmatch(user):
            raise SipParseError("Bad URI User")
        if not colon:
            password = None
        elif password and not _USERINFO.fullmatch(password):
            raise SipParseError("Bad URI User")
        rest = rest[at + 1:]
    else:
        user = password = None
    rest, question, htext = rest.partition("?")
    hostport, semicolon, ptext = rest.partition(";")
    if semicolon and not ptext:
        raise SipParseError("Bad URI Parameter")
    host, port = split_hostport(hostport)
    headers = ()
    if question:
        pairs = []
        for part in htext.split("&"):
            name, eq, value = part.partition("=")
            if not eq or not _URI_PARAM.fullmatch(name) or not _URI_HEADER_VALUE.fullmatch(value):
                raise SipParseError("Bad URI Header")
            pairs.append((name, value))
        headers = tuple(pairs)
    return (scheme, user, password, host, port, _uri_params(ptext), headers)


def _uri_params(text: str) -> tuple:
    if not text:
        return ()
    pairs = []
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if not _URI_PARAM.fullmatch(name) or (eq and not _URI_PARAM.fullmatch(value)):
            raise SipParseError("Bad URI Parameter")
        pairs.append((name.lower(), value if eq else None))
    return tuple(pairs)


# ---------------------------------------------------------------------------- NameAddr

class NameAddr:
    """``["display"] <uri>;param=value`` or a bare ``uri;param=value``.

    ``display`` is the unquoted, unescaped display name (None when absent); ``params`` are
    the header parameters with lowercase names (``tag``, ``expires``, ``q`` ...). ``str()``
    always writes the bracketed form, which is valid whatever the URI holds."""

    __slots__ = ("display", "uri", "params")

    def __init__(self, display: str | None = None, uri: SipUri | str | None = None,
                 params: dict | None = None):
        if uri is None and isinstance(display, SipUri):
            display, uri = None, display           # NameAddr(uri) reads naturally too
        if isinstance(uri, str):
            uri = parse_uri(uri)
        if uri is None:
            raise TypeError("NameAddr needs a uri")
        self.display = display
        self.uri = uri
        self.params = {} if params is None else params

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @tag.setter
    def tag(self, value: str | None) -> None:
        if value is None:
            self.params.pop("tag", None)
        else:
            self.params["tag"] = value

    def __str__(self) -> str:
        out = "<" + str(self.uri) + ">"
        if self.display is not None:
            out = quote_string(self.display) + " " + out
        if self.params:
            out += format_params(self.params)
        return out

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, NameAddr):
            return NotImplemented
        return self.display == other.display and self.uri == other.uri and self.params == other.params

    __hash__ = None

    def copy(self) -> "NameAddr":
        return NameAddr(self.display, self.uri.copy(), dict(self.params))


def parse_name_addr(text: str) -> NameAddr:
    """Parse a name-addr or addr-spec with header parameters; raises SipParseError.

    After a bare URI the parameters belong to the header (RFC 3261 20.10), so
    ``sip:a@b;tag=x`` has tag ``x`` and a URI without parameters. ``*`` (the wildcard
    Contact) is not an address and raises."""
    if text is None:
        raise SipParseError("Missing Address")
    display, uri_text, params = _name_addr_parts(text)
    return NameAddr(display, parse_uri(uri_text), dict(params))


@_text_cache
def _name_addr_parts(text: str) -> tuple:
    text = text.strip(" \t")
    if text.startswith('"'):
        display, i = read_quoted(text, 0)
        rest = text[i:].lstrip(" \t")
        if not rest.startswith("<"):
            raise SipParseError("Bad Name-Addr")
    else:
        lt = text.find("<")
        if lt >= 0:
            display = text[:lt].strip(" \t") or None
            if display is not None and _BAD_DISPLAY.search(display):
                raise SipParseError("Bad Display Name")
            rest = text[lt:]
        else:
            # addr-spec: the URI ends at the first ';' and may not hold spaces or commas
            uri_text, _, ptext = text.partition(";")
            uri_text = uri_text.rstrip(" \t")
            if not uri_text or " " in uri_text or "\t" in uri_text or "," in uri_text:
                raise SipParseError("Bad Address")
            return None, uri_text, tuple(parse_params(ptext).items()) if ptext else ()
    close = rest.find(">")
    if close < 0:
        raise SipParseError("Bad Name-Addr")
    uri_text = rest[1:close]
    after = rest[close + 1:].lstrip(" \t")
    if after:
        if after[0] != ";":
            raise SipParseError("Bad Name-Addr")
        params = tuple(parse_params(after[1:]).items())
    else:
        params = ()
    return display, uri_text, params


# ---------------------------------------------------------------------------- Via

class Via:
    """One Via value: ``SIP/2.0/<transport> <host>[:<port>];params``.

    ``transport`` is uppercase, ``host`` keeps IPv6 brackets, ``port`` is None when absent;
    ``params`` has lowercase names and None for flags (``rport`` before it is filled)."""

    __slots__ = ("transport", "host", "port", "params")

    def __init__(self, transport: str = "UDP", host: str = "", port: int | None = None,
                 params: dict | None = None):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = {} if params is None else params

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    @property
    def bare_host(self) -> str:
        host = self.host
        return host[1:-1] if host.startswith("[") else host

    def __str__(self) -> str:
        out = "SIP/2.0/" + self.transport + " " + self.host
        if self.port is not None:
            out += ":" + str(self.port)
        if self.params:
            out += format_params(self.params)
        return out

    def __repr__(self) -> str:
        return f"Via({str(self)!r})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Via):
            return NotImplemented
        return (self.transport == other.transport and self.host.lower() == other.host.lower()
                and self.port == other.port and self.params == other.params)

    __hash__ = None

    def copy(self) -> "Via":
        return Via(self.transport, self.host, self.port, dict(self.params))


# protocol-name / version / transport with optional LWS around the slashes (RFC 4475 3.1.1.1)
_VIA = re.compile(r"[ \t]*([^/ \t]+)[ \t]*/[ \t]*([^/ \t]+)[ \t]*/[ \t]*([^ \t;/]+)[ \t]+([^;]*)(?:;(.*))?",
                  re.S)


_SENT_BY_COLON = re.compile(r"[ \t]*:[ \t]*")


def parse_via(text: str) -> Via:
    """Parse one via-parm (not a comma-separated list); raises SipParseError."""
    transport, host, port, params = _via_parts(text)
    return Via(transport, host, port, dict(params))


@_text_cache
def _via_parts(text: str) -> tuple:
    m = _VIA.fullmatch(text)
    if m is None:
        raise SipParseError("Bad Via")
    protocol, version, transport, sent_by, ptext = m.groups()
    if protocol.upper() != "SIP" or version != "2.0" or not _TOKEN.fullmatch(transport):
        raise SipParseError("Bad Via")
    sent_by = sent_by.rstrip(" \t")
    if " " in sent_by or "\t" in sent_by:
        # LWS is allowed around the ':' of sent-by, nowhere else
        sent_by = _SENT_BY_COLON.sub(":", sent_by)
    host, port = split_hostport(sent_by)
    params = tuple(parse_params(ptext).items()) if ptext is not None else ()
    return transport.upper(), host, port, params
