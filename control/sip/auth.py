"""SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760), sans-I/O.

Everything here works on plain strings: the request method, the request-URI, header values
and the body bytes. Nothing reads the network; the clock is injectable.

Server side, :class:`DigestAuthenticator` builds challenges and checks credentials:

* nonces are stateless: a millisecond timestamp and a random salt, signed with
  HMAC-SHA-256 over ``timestamp:salt:realm[:source]``, so any node sharing the secret can
  check one without storage;
* an expired nonce with an otherwise correct response gives :attr:`Outcome.STALE`, and the
  caller re-challenges with ``stale=true`` (the client retries without asking the user);
* the highest nonce count seen per nonce is kept (bounded, expired nonces dropped) and a
  count that does not increase is refused as a replay. Retransmissions never reach this
  code: the transaction layer absorbs them.

Client side, :class:`DigestClient` answers 401/407 challenges from upstream trunks and
vendors, choosing the strongest algorithm offered (SHA-512-256, then SHA-256, then MD5).

Algorithms: MD5, SHA-256 and SHA-512-256 (when hashlib provides it), each also as ``-sess``.
The ``userhash`` and ``charset`` extensions of RFC 7616 are neither offered nor accepted.
"""
from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping


def _sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
try:
    _sha512_256(b"")
    _HASHES["SHA-512-256"] = _sha512_256
except ValueError:      # an OpenSSL build without SHA-512/256
    pass

# Client preference: a stronger hash wins; among equals the server's order decides.
_STRENGTH = {"MD5": 0, "SHA-256": 1, "SHA-512-256": 2}

ALGORITHMS: tuple[str, ...] = tuple(
    name for base in _HASHES for name in (base, base + "-sess"))
_BY_UPPER = {name.upper(): name for name in ALGORITHMS}

QOPS = ("auth", "auth-int")
NONCE_LIFETIME = 300.0
CLOCK_SKEW = 5.0        # a nonce stamped this far in the future (another node's clock) is fine
_NC = re.compile(r"[0-9a-fA-F]{8}")
_TCHAR = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                   "!#$%&'*+-.^_`|~")
_WS = " \t\r\n"
_NONCE_CHARS = re.compile(r"[A-Za-z0-9_-]{43}")


# ---------------------------------------------------------------------------- parsing

def parse_auth_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """Parse a WWW-/Proxy-Authenticate or (Proxy-)Authorization header value.

    Returns ``[(scheme, params), ...]``: usually one item, more when several challenges were
    joined with commas. Parameter names are lower-cased, quoted values are unescaped, and
    values may be quoted strings or bare tokens. Raises :class:`ValueError` (only) on
    malformed input: empty value, bad token, unterminated quote, duplicate parameter.
    """
    if not isinstance(value, str):
        raise ValueError("header value must be a string")
    items: list[tuple[str, dict[str, str]]] = []
    n = len(value)
    i = _skip_ws(value, 0)
    if i == n:
        raise ValueError("empty header value")
    scheme, i = _read_token(value, i, "scheme")
    params: dict[str, str] = {}
    items.append((scheme, params))
    after_comma = False
    i = _skip_ws(value, i)
    while i < n:
        if value[i] == ",":
            # Empty list elements are allowed (RFC 7230 #rule), so runs of commas are fine.
            while i < n and (value[i] == "," or value[i] in _WS):
                i += 1
            after_comma = True
            continue
        name, i = _read_token(value, i, "parameter name")
        j = _skip_ws(value, i)
        if j < n and value[j] == "=":
            param_value, i = _read_value(value, _skip_ws(value, j + 1), name)
            key = name.lower()
            if key in params:
                raise ValueError(f"duplicate parameter {key!r}")
            params[key] = param_value
        elif after_comma:
            # A token without "=" after a comma starts the next challenge.
            params = {}
            items.append((name, params))
            i = j
            after_comma = False
            continue
        else:
            raise ValueError(f"expected '=' after {name!r}")
        i = _skip_ws(value, i)
        if i < n and value[i] != ",":
            raise ValueError(f"expected ',' after parameter {name.lower()!r}")
        after_comma = False
    return items


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _read_token(text: str, i: int, what: str) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] in _TCHAR:
        i += 1
    if i == start:
        found = repr(text[i]) if i < len(text) else "end of header"
        raise ValueError(f"expected {what}, found {found}")
    return text[start:i], i


def _read_value(text: str, i: int, name: str) -> tuple[str, int]:
    n = len(text)
    if i < n and text[i] == '"':
        out = []
        i += 1
        while i < n:
            ch = text[i]
            if ch == "\\":
                if i + 1 == n:
                    break
                out.append(text[i + 1])
                i += 2
            elif ch == '"':
                return "".join(out), i + 1
            else:
                out.append(ch)
                i += 1
        raise ValueError(f"unterminated quoted string in {name!r}")
    # Bare values: tokens, but vendors also send base64 nonces unquoted, so take any run of
    # characters up to a separator.
    start = i
    while i < n and text[i] not in _WS and text[i] not in ',"':
        i += 1
    if i == start:
        raise ValueError(f"missing value for {name!r}")
    return text[start:i], i


def _quote(text: str) -> str:
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError("CR, LF and NUL cannot be sent in a header")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _canonical(algorithm: str) -> str | None:
    return _BY_UPPER.get(algorithm.upper())


@dataclass(frozen=True)
class Challenge:
    """One parsed Digest challenge. ``algorithm`` is canonical when supported, else as sent."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False

    @property
    def supported(self) -> bool:
        return self.algorithm in ALGORITHMS


def parse_challenges(value: str) -> list[Challenge]:
    """The Digest challenges in one WWW-/Proxy-Authenticate value (other schemes skipped).

    Raises :class:`ValueError` on malformed syntax or a Digest challenge without realm or nonce.
    """
    challenges = []
    for scheme, params in parse_auth_header(value):
        if scheme.lower() != "digest":
            continue
        for required in ("realm", "nonce"):
            if required not in params:
                raise ValueError(f"Digest challenge without {required}")
        algorithm = params.get("algorithm", "MD5")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        challenges.append(Challenge(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=_canonical(algorithm) or algorithm,
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
        ))
    return challenges


# ---------------------------------------------------------------------------- hashing

def _bytes(text: str) -> bytes:
    # Header text may carry undecodable bytes as surrogate escapes; hash the original bytes.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _hash(algorithm: str, text: str) -> str:
    return _HASHES[algorithm.removesuffix("-sess")](_bytes(text))


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username:realm:password)``, what carriers store instead of the password.

    For a ``-sess`` algorithm this is still the stored value; the per-session HA1 is
    derived from it inside :func:`compute_response`.
    """
    canonical = _canonical(algorithm)
    if canonical is None:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    return _hash(canonical, f"{username}:{realm}:{password}")


def compute_response(ha1: str, algorithm: str, nonce: str, method: str, uri: str, *,
                     qop: str | None = None, nc: str | None = None,
                     cnonce: str | None = None, body: bytes = b"") -> str:
    """The ``response`` parameter (RFC 7616 §3.4.1), from the stored HA1.

    ``qop=None`` is the RFC 2069 form ``H(HA1:nonce:HA2)``. Raises :class:`ValueError` for
    an unsupported algorithm or qop, or a ``-sess`` algorithm without ``cnonce``.
    """
    canonical = _canonical(algorithm)
    if canonical is None:
        raise ValueError(f"unsupported algorithm {algorithm!r}")
    if canonical.endswith("-sess"):
        if cnonce is None:
            raise ValueError(f"{canonical} needs a cnonce")
        ha1 = _hash(canonical, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        body_hash = _HASHES[canonical.removesuffix("-sess")](body)
        ha2 = _hash(canonical, f"{method}:{uri}:{body_hash}")
    elif qop in (None, "auth"):
        ha2 = _hash(canonical, f"{method}:{uri}")
    else:
        raise ValueError(f"unsupported qop {qop!r}")
    if qop is None:
        return _hash(canonical, f"{ha1}:{nonce}:{ha2}")
    return _hash(canonical, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# ---------------------------------------------------------------------------- server

class Outcome(enum.Enum):
    OK = "ok"
    STALE = "stale"         # right password, expired nonce: challenge again with stale=true
    FAILED = "failed"       # reason says why; challenge again or answer 403
    MISSING = "missing"     # no credentials: challenge


@dataclass(frozen=True)
class AuthResult:
    outcome: Outcome
    username: str | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


class Credential:
    """What the credential lookup returns: a password, stored HA1 values, or both.

    ``ha1`` maps a hash algorithm (``"MD5"``, ``"SHA-256"``, ``"SHA-512-256"``) to
    ``H(username:realm:password)`` for the authenticator's realm; the same value serves the
    ``-sess`` variant.
    """

    __slots__ = ("password", "ha1")

    def __init__(self, password: str | None = None, *, ha1: Mapping[str, str] | None = None):
        if password is None and not ha1:
            raise ValueError("a credential needs a password or at least one HA1")
        self.password = password
        self.ha1: dict[str, str] = {}
        for algorithm, value in (ha1 or {}).items():
            canonical = _canonical(algorithm)
            if canonical is None or canonical.endswith("-sess"):
                raise ValueError(f"HA1 algorithm must be one of {', '.join(_HASHES)}")
            self.ha1[canonical] = value.lower()

    def ha1_for(self, username: str, realm: str, algorithm: str) -> str | None:
        base = algorithm.removesuffix("-sess")
        if base in self.ha1:
            return self.ha1[base]
        if self.password is not None:
            return compute_ha1(username, realm, self.password, base)
        return None


CredentialLookup = Callable[[str, str], Credential | None]


class _NonceCounts:
    """Highest nonce count per nonce, bounded.

    Entries are kept in first-use order; expired ones are dropped from the front. When full,
    the oldest is evicted and ``floor`` remembers its stamp: a nonce stamped at or before the
    floor that is no longer tracked may have been used already, so it is treated as stale.
    """

    def __init__(self, limit: int, lifetime: float):
        self.limit = limit
        self.lifetime = lifetime
        self.floor = -1
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()   # nonce -> (nc, stamp)

    def __len__(self) -> int:
        return len(self._seen)

    def highest(self, nonce: str) -> int | None:
        entry = self._seen.get(nonce)
        return entry[0] if entry else None

    def record(self, nonce: str, nc: int, stamp: int, now: float) -> None:
        self._seen[nonce] = (nc, stamp)
        while self._seen:
            oldest, (_, oldest_stamp) = next(iter(self._seen.items()))
            expired = oldest_stamp / 1000 + self.lifetime < now
            if not expired and len(self._seen) <= self.limit:
                break
            del self._seen[oldest]
            if not expired:
                self.floor = max(self.floor, oldest_stamp)


class DigestAuthenticator:
    """Challenges and verifies Digest credentials for one realm.

    ``lookup(username, realm)`` returns a :class:`Credential` or ``None`` for an unknown
    user; its own exceptions (a database outage) propagate. ``algorithms`` are offered in
    the given order, one challenge each (RFC 8760: preferred first). ``proxy=True`` makes
    this a proxy authenticator: 407, Proxy-Authenticate, Proxy-Authorization.

    ``clock`` returns wall-clock seconds; wall clock because nonces outlive a restart and
    may be checked by another node sharing ``secret``. Every method also takes ``now``.
    Not thread-safe: use one per event loop.
    """

    def __init__(self, realm: str, secret: bytes | str, lookup: CredentialLookup, *,
                 algorithms: Iterable[str] = ("SHA-256", "MD5"), qop: Iterable[str] = ("auth",),
                 proxy: bool = False, nonce_lifetime: float = NONCE_LIFETIME,
                 max_nonces: int = 100_000, allow_no_qop: bool = False,
                 clock: Callable[[], float] = time.time):
        _quote(realm)       # rejects characters that cannot go into the challenge
        self.realm = realm
        self._secret = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not self._secret:
            raise ValueError("the nonce secret must not be empty")
        self._lookup = lookup
        self.algorithms: tuple[str, ...] = ()
        for name in algorithms:
            canonical = _canonical(name)
            if canonical is None:
                raise ValueError(f"unsupported algorithm {name!r}; known: {', '.join(ALGORITHMS)}")
            self.algorithms += (canonical,)
        if not self.algorithms:
            raise ValueError("at least one algorithm is needed")
        self.qop = tuple(q.lower() for q in qop)
        if not set(self.qop) <= set(QOPS):
            raise ValueError(f"qop must be among {QOPS}")
        if not self.qop and not allow_no_qop:
            raise ValueError("without qop there is no replay protection; set allow_no_qop")
        if nonce_lifetime <= 0 or max_nonces <= 0:
            raise ValueError("nonce_lifetime and max_nonces must be positive")
        self.proxy = proxy
        self.status = 407 if proxy else 401
        self.challenge_header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        self.credentials_header = "Proxy-Authorization" if proxy else "Authorization"
        self.nonce_lifetime = float(nonce_lifetime)
        self.allow_no_qop = allow_no_qop
        self._clock = clock
        self._counts = _NonceCounts(max_nonces, self.nonce_lifetime)
        # Constant per realm and secret: opaque carries no state here, clients just echo it.
        self.opaque = hmac.new(self._secret, b"opaque:" + _bytes(realm),
                               hashlib.sha256).hexdigest()[:32]

    # -- nonces

    def _mac(self, stamp: int, salt: bytes, source: str | None) -> bytes:
        text = f"{stamp}:{salt.hex()}:{self.realm}:{source or ''}"
        return hmac.new(self._secret, _bytes(text), hashlib.sha256).digest()[:16]

    def make_nonce(self, *, source: str | None = None, now: float | None = None) -> str:
        """A fresh nonce; ``source`` (the peer's address) binds it to that peer."""
        now = self._clock() if now is None else now
        stamp = max(0, int(now * 1000))
        # The random salt keeps nonces issued in the same millisecond apart, so two clients
        # never share a nonce (and its nonce counts).
        salt = secrets.token_bytes(8)
        raw = stamp.to_bytes(8, "big") + salt + self._mac(stamp, salt, source)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def nonce_stamp(self, nonce: str, source: str | None = None) -> int | None:
        """The issue time (ms) of a nonce this authenticator made for ``source``, else None."""
        if not _NONCE_CHARS.fullmatch(nonce):
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=")
        except (binascii.Error, ValueError):
            return None
        # Only the canonical spelling counts, so one nonce has one key in the count table.
        if len(raw) != 32 or base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != nonce:
            return None
        stamp = int.from_bytes(raw[:8], "big")
        if not hmac.compare_digest(raw[16:], self._mac(stamp, raw[8:16], source)):
            return None
        return stamp

    # -- challenge

    def challenge(self, *, stale: bool = False, source: str | None = None,
                  now: float | None = None) -> list[str]:
        """Header values for :attr:`challenge_header`, one per algorithm, sharing one nonce.

        Send them with :attr:`status` (401 or 407), each as its own header line.
        """
        nonce = self.make_nonce(source=source, now=now)
        values = []
        for algorithm in self.algorithms:
            parts = [f"realm={_quote(self.realm)}", f'nonce="{nonce}"',
                     f'opaque="{self.opaque}"', f"algorithm={algorithm}"]
            if self.qop:
                parts.append(f'qop="{",".join(self.qop)}"')
            if stale:
                parts.append("stale=true")
            values.append("Digest " + ", ".join(parts))
        return values

    # -- verification

    def verify(self, credentials: str | Iterable[str] | None, method: str, uri: str, *,
               body: bytes = b"", source: str | None = None,
               now: float | None = None) -> AuthResult:
        """Check the value(s) of :attr:`credentials_header` for a request.

        ``uri`` is the request-URI as received; ``source`` must be what was given to
        :meth:`challenge`. Several values are allowed (one per realm on a proxied request);
        the one for this realm is used. Never raises for any header content.
        """
        now = self._clock() if now is None else now
        values = [credentials] if isinstance(credentials, str) else list(credentials or ())
        values = [v for v in values if isinstance(v, str) and v.strip()]
        if not values:
            return AuthResult(Outcome.MISSING, reason=f"no {self.credentials_header} header")
        params, problem = self._pick(values)
        if params is None:
            return AuthResult(Outcome.FAILED, reason=problem)
        return self._check(params, method, uri, body, source, now)

    def _pick(self, values: list[str]) -> tuple[dict[str, str] | None, str]:
        problems = []
        for value in values:
            try:
                items = parse_auth_header(value)
            except ValueError as exc:
                problems.append(f"malformed {self.credentials_header}: {exc}")
                continue
            for scheme, params in items:
                if scheme.lower() != "digest":
                    problems.append(f"scheme {scheme!r} is not Digest")
                elif params.get("realm") == self.realm:
                    return params, ""
                elif "realm" not in params:
                    problems.append("missing parameter: realm")
                else:
                    problems.append(f"realm {params['realm']!r} is not {self.realm!r}")
        return None, "; ".join(problems)

    def _check(self, params: dict[str, str], method: str, uri: str, body: bytes,
               source: str | None, now: float) -> AuthResult:
        username = params.get("username")

        def failed(reason: str) -> AuthResult:
            return AuthResult(Outcome.FAILED, username, reason)

        for name in ("username", "nonce", "uri", "response"):
            if name not in params:
                return failed(f"missing parameter: {name}")
        if params.get("userhash", "false").lower() != "false":
            return failed("userhash is not supported")
        algorithm = _canonical(params.get("algorithm", "MD5"))
        if algorithm not in self.algorithms:
            return failed(f"algorithm {params.get('algorithm', 'MD5')!r} was not offered")
        if params["uri"] != uri:
            return failed(f"uri {params['uri']!r} does not match the request-URI {uri!r}")
        # Some UAs drop opaque; it is no secret, so only a wrong one is refused.
        if "opaque" in params and not hmac.compare_digest(_bytes(params["opaque"]),
                                                          self.opaque.encode()):
            return failed("opaque does not match the challenge")
        nonce = params["nonce"]
        stamp = self.nonce_stamp(nonce, source)
        if stamp is None:
            return failed("nonce was not issued by this server (forged, altered or other source)")

        qop = params.get("qop")
        cnonce = params.get("cnonce")
        nc_text = params.get("nc")
        nc = None
        if qop is None:
            if not self.allow_no_qop:
                return failed("missing parameter: qop (RFC 2069 responses are refused)")
        else:
            qop = qop.lower()
            if qop not in self.qop:
                return failed(f"qop {qop!r} was not offered")
            for name, value in (("nc", nc_text), ("cnonce", cnonce)):
                if value is None:
                    return failed(f"missing parameter: {name}")
            if not _NC.fullmatch(nc_text):
                return failed("nc must be 8 hex digits")
            nc = int(nc_text, 16)
            if nc == 0:
                return failed("nc must start at 00000001")
        if algorithm.endswith("-sess") and cnonce is None:
            return failed(f"missing parameter: cnonce (needed by {algorithm})")

        credential = self._lookup(username, self.realm)
        ha1 = credential.ha1_for(username, self.realm, algorithm) if credential else None
        # An unknown user costs the same hashing as a known one, so timing does not tell.
        expected = compute_response(ha1 or secrets.token_hex(32), algorithm, nonce, method, uri,
                                    qop=qop, nc=nc_text, cnonce=cnonce, body=body)
        if credential is None:
            return failed("unknown user")
        if ha1 is None:
            return failed(f"no {algorithm.removesuffix('-sess')} credential stored for the user")
        if not hmac.compare_digest(expected.encode(), _bytes(params["response"].lower())):
            return failed("response does not match (wrong password?)")

        age = now - stamp / 1000
        if age > self.nonce_lifetime or age < -CLOCK_SKEW:
            return AuthResult(Outcome.STALE, username, "nonce expired")
        if nc is not None:
            highest = self._counts.highest(nonce)
            if highest is None and stamp <= self._counts.floor:
                return AuthResult(Outcome.STALE, username, "nonce count no longer tracked")
            if highest is not None and nc <= highest:
                return failed(f"nonce count {nc_text} reused (replay; highest seen {highest:08x})")
            self._counts.record(nonce, nc, stamp, now)
        return AuthResult(Outcome.OK, username)


# ---------------------------------------------------------------------------- client

def select_challenge(challenges: Iterable[Challenge]) -> Challenge:
    """The challenge to answer: the strongest supported hash; the server's order breaks ties.

    Raises :class:`ValueError` when none has a supported algorithm and qop.
    """
    usable = [c for c in challenges
              if c.supported and (not c.qop or any(q in QOPS for q in c.qop))]
    if not usable:
        raise ValueError("no Digest challenge with a supported algorithm and qop")
    # max() keeps the first of equals, i.e. the server's preference.
    return max(usable, key=lambda c: _STRENGTH[c.algorithm.removesuffix("-sess")])


class DigestClient:
    """Answers Digest challenges with one username and password (a trunk's account).

    The nonce count is kept per realm: answering the same nonce again (a registration
    refresh reusing the last challenge) increments it; a new nonce starts again at 1.
    ``cnonce`` makes client nonces; tests pass a fixed one.
    """

    def __init__(self, username: str, password: str, *,
                 cnonce: Callable[[], str] = lambda: secrets.token_hex(16)):
        _quote(username)
        self.username = username
        self.password = password
        self._cnonce = cnonce
        self._counts: dict[str, tuple[str, int]] = {}     # realm -> (nonce, last nc)

    def authorize(self, challenges: str | Iterable[str], method: str, uri: str,
                  body: bytes = b"") -> str:
        """The Authorization / Proxy-Authorization value answering the given challenge
        header value(s). Raises :class:`ValueError` for malformed or unusable challenges."""
        values = [challenges] if isinstance(challenges, str) else list(challenges)
        offered = [c for value in values for c in parse_challenges(value)]
        return self.respond(select_challenge(offered), method, uri, body)

    def respond(self, challenge: Challenge, method: str, uri: str, body: bytes = b"") -> str:
        """The credentials answering one parsed challenge."""
        if not challenge.supported:
            raise ValueError(f"unsupported algorithm {challenge.algorithm!r}")
        if not challenge.qop:
            qop = None              # an RFC 2069 server: no cnonce or nc
        elif "auth" in challenge.qop:
            qop = "auth"
        elif "auth-int" in challenge.qop:
            qop = "auth-int"
        else:
            raise ValueError(f"no supported qop in {challenge.qop}")
        algorithm = challenge.algorithm
        cnonce = self._cnonce() if qop or algorithm.endswith("-sess") else None
        nc_text = None
        if qop:
            last_nonce, last_nc = self._counts.get(challenge.realm, (None, 0))
            nc = last_nc + 1 if last_nonce == challenge.nonce else 1
            self._counts[challenge.realm] = (challenge.nonce, nc)
            nc_text = f"{nc:08x}"
        ha1 = compute_ha1(self.username, challenge.realm, self.password, algorithm)
        response = compute_response(ha1, algorithm, challenge.nonce, method, uri,
                                    qop=qop, nc=nc_text, cnonce=cnonce, body=body)
        parts = [f"username={_quote(self.username)}", f"realm={_quote(challenge.realm)}",
                 f"nonce={_quote(challenge.nonce)}", f"uri={_quote(uri)}",
                 f'response="{response}"', f"algorithm={algorithm}"]
        if cnonce is not None:
            parts.append(f"cnonce={_quote(cnonce)}")
        if qop:
            parts += [f"qop={qop}", f"nc={nc_text}"]
        if challenge.opaque is not None:
            parts.append(f"opaque={_quote(challenge.opaque)}")
        return "Digest " + ", ".join(parts)
