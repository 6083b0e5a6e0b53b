"""Registrar and location service (RFC 3261 §10) with digest authentication.

Phones register an address-of-record (their user name) with one or more Contacts; a
call to that user goes to the freshest binding. Bindings remember the flow the REGISTER
came on, so calls reach phones behind NAT through the same address and port. Calls from
phones (sources that are not a customer gateway) must pass a Proxy-Authorization check.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

from control.sip.auth import Credential, DigestAuthenticator, Outcome
from control.sip.message import SipParseError, parse_name_addr

log = logging.getLogger("vosmedia.registrar")


@dataclass
class Binding:
    user: str
    contact: str                 # the Contact value as registered (name-addr)
    contact_uri: str
    flow: tuple                  # where the REGISTER came from: calls go back the same way
    expires_at: float            # on the switch clock
    call_id: str
    cseq: int
    user_agent: str
    registered_at: float         # Unix time


class Registrar:
    def __init__(self, b2b, config):
        self.b2b = b2b
        self.config = config
        secret = secrets.token_bytes(32)
        self.auth = DigestAuthenticator(config.realm, secret, self._lookup, algorithms=config.auth_algorithms)
        self.proxy_auth = DigestAuthenticator(config.realm, secret, self._lookup, algorithms=config.auth_algorithms,
                                              proxy=True)
        self.bindings: dict[str, dict[str, Binding]] = {}
        self.failed_auth = 0
        self._sweeper = None

    # ------------------------------------------------------------------ authentication

    def _authenticate(self, request, txn, source: str, *, proxy: bool) -> str | None:
        """The authenticated user name, or None after answering 401/407 (or 403)."""
        auth = self.proxy_auth if proxy else self.auth
        now = self.b2b.timers.now
        result = auth.verify(request.headers.get_all(auth.credentials_header), request.method, request.uri,
                             source=source, now=now)
        if result.ok:
            return result.username
        if result.outcome in (Outcome.MISSING, Outcome.STALE):
            stale = result.outcome is Outcome.STALE
            headers = [(auth.challenge_header, value) for value in auth.challenge(stale=stale, source=source, now=now)]
            txn.respond(auth.status, "Proxy Authentication Required" if proxy else "Unauthorized", headers=headers)
            return None
        self.failed_auth += 1
        self.b2b.stats["auth_failed"] += 1
        if self.b2b.guard.auth_failed(source, now):
            self.b2b.stats["auth_blocked"] += 1
            # cleared by the B2BUA's housekeeping once the block has run out
            self.b2b.alarms.raise_(f"registration-failure:{source}", "SIP Registration Failure", "Medium",
                                   f"{source} failed digest authentication repeatedly and is blocked")
        log.info("authentication from %s failed: %s", source, result.reason)
        txn.respond(403, "Forbidden (bad credentials)")
        return None

    def _lookup(self, username: str, realm: str) -> Credential | None:
        """A phone's password, or a Password-mode mapping gateway's."""
        phone = self.b2b.phone(username)
        if phone is not None:
            return Credential(phone.password)
        gateway = self.b2b.router.table.password_gateway(username)
        return Credential(gateway.password) if gateway is not None and gateway.password else None

    def authorize_call(self, request, txn, expected_user: str, source: str) -> bool:
        """Challenge a call (407) until it proves to be ``expected_user``."""
        user = self._authenticate(request, txn, source, proxy=True)
        if user is None:
            return False
        if user != expected_user:
            txn.respond(403, "Forbidden (identity mismatch)")
            return False
        return True

    # ------------------------------------------------------------------ REGISTER

    def register(self, request, txn, flow) -> None:
        try:
            aor = parse_name_addr(request.headers.get("To")).uri
        except SipParseError:
            txn.respond(400, "Bad To header")
            return
        user = aor.user_unescaped or ""
        if self.b2b.phone(user) is None:
            txn.respond(404, "Not Found")
            return
        authenticated = self._authenticate(request, txn, flow[1][0], proxy=False)
        if authenticated is None:
            return
        if authenticated != user:
            txn.respond(403, "Forbidden (identity mismatch)")
            return
        contacts = request.headers.get_all("Contact")
        expires_header = request.headers.get("Expires")
        default = self.config.register_default_expires
        if expires_header is not None:
            if not expires_header.strip().isdigit():
                txn.respond(400, "Bad Expires header")
                return
            default = int(expires_header.strip())
        now = self.b2b.timers.now
        current = self.bindings.setdefault(user, {})
        cseq = request.cseq[0]
        if any(c.strip() == "*" for c in contacts):
            if default != 0 or len(contacts) != 1:
                txn.respond(400, "Wildcard Contact needs Expires: 0")
                return
            current.clear()
        else:
            changes = []
            for value in contacts:
                try:
                    contact = parse_name_addr(value)
                except SipParseError:
                    txn.respond(400, "Bad Contact header")
                    return
                expires = contact.params.get("expires")
                seconds = int(expires) if expires is not None and expires.isdigit() else default
                if 0 < seconds < self.config.register_min_expires:
                    txn.respond(423, "Interval Too Brief",
                                headers=[("Min-Expires", str(self.config.register_min_expires))])
                    return
                changes.append((contact, min(seconds, self.config.register_max_expires)))
            for contact, seconds in changes:
                uri = str(contact.uri)
                old = current.get(uri)
                if old is not None and old.call_id == request.call_id and old.cseq >= cseq:
                    txn.respond(500, "Out of Order Register")
                    return
                if seconds == 0:
                    current.pop(uri, None)
                    continue
                contact.params.pop("expires", None)
                current[uri] = Binding(user, str(contact), uri, flow, now + seconds, request.call_id, cseq,
                                       request.headers.get("User-Agent") or "", self.b2b.wall())
        self._expire(user, now)
        headers = [("Contact", f"{b.contact};expires={max(0, int(b.expires_at - now))}")
                   for b in self.bindings.get(user, {}).values()]
        txn.respond(200, "OK", headers=headers)
        self._ensure_sweeper()

    # ------------------------------------------------------------------ location service

    def _expire(self, user: str, now: float) -> None:
        current = self.bindings.get(user)
        if current is None:
            return
        for uri in [uri for uri, b in current.items() if b.expires_at <= now]:
            del current[uri]
        if not current:
            del self.bindings[user]

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None and self.bindings:
            self._sweeper = self.b2b.timers.after(30.0, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        now = self.b2b.timers.now
        for user in list(self.bindings):
            self._expire(user, now)
        self._ensure_sweeper()

    def targets_for(self, user: str) -> list:
        """Bindings of a registered user, freshest first, as call targets."""
        self._expire(user, self.b2b.timers.now)
        current = self.bindings.get(user)
        if not current:
            return []
        ordered = sorted(current.values(), key=lambda b: b.registered_at, reverse=True)
        return [("phone", binding) for binding in ordered]

    def online(self) -> list[dict]:
        """The online phones list: one row per binding."""
        now = self.b2b.timers.now
        rows = []
        for user in sorted(self.bindings):
            self._expire(user, now)
            for binding in self.bindings.get(user, {}).values():
                rows.append({"user": user, "contact": binding.contact_uri,
                             "source": f"{binding.flow[1][0]}:{binding.flow[1][1]}", "transport": binding.flow[0],
                             "expires_in": int(binding.expires_at - now), "user_agent": binding.user_agent,
                             "registered_at": binding.registered_at})
        return rows
