"""Caller identity: who the caller is on the customer leg, and how that is presented on
the vendor leg.

Customer side (mapping gateway):

* **caller number source** (:data:`CALLER_SOURCES`) -- ``From`` takes the From URI's user
  part; ``Remote-Party-ID`` takes the RPID URI's user part, falling back to From when there
  is no usable RPID; ``Display`` takes the From display name when it looks like a number
  (digits, optional leading ``+``), else the From user part.
* **support privacy** -- a caller asks for privacy with ``Privacy: id``/``user``/``header``
  (RFC 3323, 3325) or a Remote-Party-ID with ``privacy=full|name|uri``. If the mapping
  gateway supports privacy the vendor-leg From becomes the RFC 3323 anonymous address;
  if it does not, the request is ignored: the number is shown and the caller's Privacy
  header is not passed on.

Vendor side (routing gateway, :class:`IdentityPolicy`, the ``pai_privacy`` JSON column):

* ``pai`` -- ``none``: no P-Asserted-Identity; ``passthrough``: the incoming
  P-Asserted-Identity lines as they came; ``caller``: ``<sip:{caller}@{host}>``.
* ``privacy`` -- ``none``: no Privacy header; ``passthrough``: the incoming Privacy lines;
  ``id``: ``Privacy: id``.
* ``ppi`` -- like ``pai``, for P-Preferred-Identity.
* ``extra_headers`` -- ``all``: every incoming header the B2BUA does not build itself;
  ``none``; or a list of header names (case-insensitive, compact forms allowed).

The PAI/PPI modes apply whether or not the From was anonymised: an anonymous call may
still carry the real identity in P-Asserted-Identity for a trusted vendor (RFC 3325).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from control.sip.message import Headers, SipParseError, canonical_name
from control.sip.uri import NameAddr, parse_name_addr, quote_string, split_outside

__all__ = ["IdentityError", "IdentityPolicy", "CALLER_SOURCES", "PAI_MODES", "PRIVACY_MODES",
           "PPI_MODES", "ANONYMOUS_FROM", "OWNED_HEADERS", "caller_number", "privacy_requested",
           "vendor_identity"]

CALLER_SOURCES = ("From", "Remote-Party-ID", "Display")
PAI_MODES = ("none", "passthrough", "caller")
PRIVACY_MODES = ("none", "passthrough", "id")
PPI_MODES = ("none", "passthrough", "caller")

ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'    # RFC 3323 4.1.1.3

# Headers the B2BUA writes itself on the vendor INVITE; copying the customer's would
# duplicate or contradict them. The identity headers are handled by the modes above.
# The body headers are here too: the vendor leg carries our own SDP, not the caller's
# body; Replaces/Join name dialogs of the customer leg that the vendor does not know.
OWNED_HEADERS = frozenset((
    "Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Route", "Record-Route",
    "Content-Length", "Content-Type", "Allow", "Supported", "Require", "Proxy-Require",
    "Session-Expires", "Min-SE", "User-Agent", "Authorization", "Proxy-Authorization", "RAck",
    "RSeq", "Expires",
    "P-Asserted-Identity", "P-Preferred-Identity", "Privacy", "Remote-Party-ID",
    "Content-Encoding", "Content-Disposition", "Content-Language", "MIME-Version",
    "Replaces", "Join",
))
_OWNED_LOWER = frozenset(name.lower() for name in OWNED_HEADERS)

_NUMBER = re.compile(r"\+?[0-9]+")
_PRIVACY_VALUES = frozenset(("id", "user", "header"))          # what hides the caller
_RPID_PRIVACY = frozenset(("full", "name", "uri"))
# characters a SIP URI user part may hold unescaped (RFC 3261 25.1: unreserved,
# user-unreserved); anything else in a caller number is %-escaped
_USER_SAFE = "-_.!~*'()&=+$,;?/"


class IdentityError(ValueError):
    """A rejected identity setting: ``field`` names it (``pai_privacy.pai``), ``rule`` says
    what it must be. A ValueError so the web layer's 400 handling catches it."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


# ---------------------------------------------------------------------------- policy

@dataclass(frozen=True)
class IdentityPolicy:
    """How a routing gateway presents the caller; see the module docstring for the modes.

    ``extra_headers`` is ``"all"``, ``"none"`` or a tuple of canonical header names (a list
    given here is normalised: compact forms expanded, duplicates dropped)."""

    pai: str = "none"
    privacy: str = "none"
    ppi: str = "none"
    extra_headers: str | tuple[str, ...] = "none"

    def __post_init__(self) -> None:
        extra = _check(self.pai, self.privacy, self.ppi, self.extra_headers, "pai_privacy")
        object.__setattr__(self, "extra_headers", extra)

    @classmethod
    def from_json(cls, data: dict | None, field: str = "pai_privacy") -> "IdentityPolicy":
        """The policy stored as ``{"pai": .., "privacy": .., "ppi": .., "extra_headers": ..}``;
        missing (or null) keys take the defaults, unknown keys are refused."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise IdentityError(field, "must be an object")
        for key in data:
            if key not in _FIELDS:
                raise IdentityError(f"{field}.{key}",
                                    "unknown setting (known: " + ", ".join(_FIELDS) + ")")
        values = {key: data[key] for key in _FIELDS if data.get(key) is not None}
        defaults = cls()
        extra = _check(values.get("pai", defaults.pai), values.get("privacy", defaults.privacy),
                       values.get("ppi", defaults.ppi),
                       values.get("extra_headers", defaults.extra_headers), field)
        values["extra_headers"] = extra
        return cls(**values)

    def to_json(self) -> dict:
        extra = self.extra_headers
        return {"pai": self.pai, "privacy": self.privacy, "ppi": self.ppi,
                "extra_headers": extra if isinstance(extra, str) else list(extra)}


_FIELDS = ("pai", "privacy", "ppi", "extra_headers")


def _check(pai, privacy, ppi, extra, prefix: str) -> str | tuple[str, ...]:
    """Validate the settings; returns ``extra`` normalised."""
    for name, value, modes in (("pai", pai, PAI_MODES), ("privacy", privacy, PRIVACY_MODES),
                               ("ppi", ppi, PPI_MODES)):
        if value not in modes:
            raise IdentityError(f"{prefix}.{name}", "must be one of " + ", ".join(modes))
    field = prefix + ".extra_headers"
    if isinstance(extra, str):
        if extra not in ("all", "none"):
            raise IdentityError(field, "must be 'all', 'none' or a list of header names")
        return extra
    if not isinstance(extra, (list, tuple)):
        raise IdentityError(field, "must be 'all', 'none' or a list of header names")
    names: list[str] = []
    for i, raw in enumerate(extra):
        if not isinstance(raw, str):
            raise IdentityError(f"{field}[{i}]", "must be a header name")
        try:
            name = canonical_name(raw)
        except SipParseError:
            raise IdentityError(f"{field}[{i}]", f"{raw!r} is not a header name") from None
        if name.lower() in _OWNED_LOWER:
            # refused rather than silently dropped: the operator would expect it copied
            raise IdentityError(f"{field}[{i}]", f"{name} is built by the switch and never copied")
        if name.lower() not in (n.lower() for n in names):
            names.append(name)
    return tuple(names)


# ---------------------------------------------------------------------------- customer side

def caller_number(headers: Headers, source: str = "From") -> str:
    """The caller number per the mapping gateway's ``source`` (one of :data:`CALLER_SOURCES`,
    case-insensitive); ``""`` when the headers hold nothing usable. Odd header values never
    raise; an unknown ``source`` is a configuration error and raises IdentityError."""
    kind = source.lower() if isinstance(source, str) else None
    if kind == "from":
        return _from_user(headers)
    if kind == "remote-party-id":
        for addr in _rpids(headers):
            number = _user(addr)
            if number:
                return number
        return _from_user(headers)
    if kind == "display":
        addr = _address(headers.get("From"))
        display = (addr.display or "").strip(" \t") if addr is not None else ""
        if _NUMBER.fullmatch(display):
            return display
        return _from_user(headers)
    raise IdentityError("caller_source", "must be one of " + ", ".join(CALLER_SOURCES))


def privacy_requested(headers: Headers) -> bool:
    """True when the caller asks to hide its identity: a Privacy header with ``id``,
    ``user`` or ``header``, or a Remote-Party-ID with ``privacy=full|name|uri``."""
    for line in headers.get_all("Privacy"):
        # priv-value *(";" priv-value); some equipment separates with commas
        for value in line.replace(",", ";").split(";"):
            if value.strip(" \t").lower() in _PRIVACY_VALUES:
                return True
    for addr in _rpids(headers):
        value = addr.params.get("privacy") or ""
        if value.strip('"').lower() in _RPID_PRIVACY:
            return True
    return False


def _address(raw: str | None) -> NameAddr | None:
    if raw is None:
        return None
    try:
        return parse_name_addr(raw)
    except SipParseError:
        return None


def _user(addr: NameAddr | None) -> str:
    """The number in an address's user part: unescaped, without telephone-subscriber
    parameters (``+15551234;npdi`` -> ``+15551234``)."""
    if addr is None:
        return ""
    user = addr.uri.user_unescaped or ""
    return user.split(";", 1)[0]


def _from_user(headers: Headers) -> str:
    return _user(_address(headers.get("From")))


def _rpids(headers: Headers) -> list[NameAddr]:
    """The readable Remote-Party-ID values that describe the caller (``party=called`` ones
    describe the callee and are skipped); malformed ones are ignored."""
    out = []
    for line in headers.get_all("Remote-Party-ID"):
        # not a list header for Headers, but a list in its draft: split it here
        for part in split_outside(line, ","):
            addr = _address(part)
            if addr is not None and (addr.params.get("party") or "").lower() != "called":
                out.append(addr)
    return out


# ---------------------------------------------------------------------------- vendor side

def vendor_identity(headers: Headers, policy: IdentityPolicy, *, caller: str, display: str,
                    host: str, support_privacy: bool) -> tuple[str, list[tuple[str, str]]]:
    """The identity of the vendor-leg INVITE: ``(From value without tag, extra headers)``.

    ``headers`` are the incoming INVITE's, ``caller`` the number to present (after the dial
    plans), ``display`` the display name ("" for none), ``host`` the switch's host[:port].
    The extra headers are PAI, Privacy, PPI per ``policy``, then the transparent headers in
    their incoming order. With no caller number the From is the anonymous one and the
    ``caller`` PAI/PPI modes send nothing: there is no identity to assert."""
    honour_privacy = support_privacy and privacy_requested(headers)
    if honour_privacy or not caller:
        from_value = ANONYMOUS_FROM
    else:
        from_value = "<" + _caller_uri(caller, host) + ">"
        if display:
            from_value = quote_string(display) + " " + from_value

    out: list[tuple[str, str]] = []
    out += _identity("P-Asserted-Identity", policy.pai, headers, caller, host)
    if policy.privacy == "id":
        out.append(("Privacy", "id"))
    elif policy.privacy == "passthrough" and support_privacy:
        # without privacy support the caller's request is ignored, so it is not passed on
        out += _lines(headers, "Privacy")
    out += _identity("P-Preferred-Identity", policy.ppi, headers, caller, host)
    out += _transparent(headers, policy.extra_headers)
    return from_value, out


def _caller_uri(caller: str, host: str) -> str:
    return "sip:" + quote(caller, safe=_USER_SAFE, errors="surrogateescape") + "@" + host


def _identity(name: str, mode: str, headers: Headers, caller: str,
              host: str) -> list[tuple[str, str]]:
    if mode == "passthrough":
        return _lines(headers, name)
    if mode == "caller" and caller:
        return [(name, "<" + _caller_uri(caller, host) + ">")]
    return []


def _lines(headers: Headers, name: str) -> list[tuple[str, str]]:
    """The incoming ``name`` header lines, values as they came."""
    return [(n, v) for n, v in headers.items() if n.lower() == name.lower()]


def _transparent(headers: Headers, extra: str | tuple[str, ...]) -> list[tuple[str, str]]:
    if extra == "none" or not extra:
        return []
    if extra == "all":
        return [(n, v) for n, v in headers.items() if n.lower() not in _OWNED_LOWER]
    wanted = {name.lower() for name in extra} - _OWNED_LOWER
    return [(n, v) for n, v in headers.items() if n.lower() in wanted]
