"""Who is asking: operator and agent logins, passwords, lockout and bearer tokens.

A login is a row of the store's ``operators`` table: an operator (rights from its role and
grants) or, when it names an account, that account's agent login (scope: the account's
subtree, rights: its authorizations). Passwords are kept as scrypt hashes.

Five wrong passwords in a row lock a login for ``LOCKOUT_SECONDS`` (brute-force
protection); a right one resets the count. A successful login gets a token: the actor and
an expiry, signed with the switch's secret (HMAC-SHA256), so any number of sessions
cost no storage. Each request still looks the login up: a locked or deleted login, or
changed rights, act at once.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

from control.accounts import AccountError, Actor, Module, PermissionDenied, Right, Role
from control.store import audit, entities, transaction
from control.store.schema import operators as operators_table

MAX_FAILURES = 5
LOCKOUT_SECONDS = 600
TOKEN_SECONDS = 12 * 3600
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


class LoginFailed(PermissionDenied):
    """Wrong name or password, or a locked login: one answer for all, so it tells nothing."""

    def __init__(self, rule: str = "wrong name or password"):
        super().__init__("password", rule)


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    found = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(found.hex(), digest)


def _check_password(password) -> None:
    if not isinstance(password, str) or not 4 <= len(password) <= 256:
        raise AccountError("password", "4 to 256 characters")


class Logins:
    def __init__(self, store, secret: bytes, clock=time.time):
        self.store = store
        self.secret = secret
        self.clock = clock

    @staticmethod
    def secret_file(path: str) -> bytes:
        """The token-signing secret, created once (mode 0600) so tokens outlive a restart."""
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        with open(path) as f:
            return bytes.fromhex(f.read().strip())

    # ------------------------------------------------------------------ logins

    def add(self, name: str, password: str, *, role: str = "operator", account_id: str | None = None,
            operator: str = "system") -> dict:
        _check_password(password)
        if role not in [r.value for r in Role]:
            raise AccountError("role", f"is one of {', '.join(r.value for r in Role)}")
        return entities.create(self.store, "operators", {
            "name": name, "password_hash": hash_password(password), "role": role,
            "account_id": account_id}, operator=operator)

    def find(self, name: str) -> dict | None:
        rows = entities.find(self.store, "operators", name=name)
        return rows[0] if rows else None

    def login(self, name: str, password: str, source_ip: str = "") -> tuple[Actor, str]:
        """Check a password; returns the actor and a fresh token, or raises LoginFailed."""
        row = self.find(str(name))
        now = self.clock()
        if row is None:
            check_password(str(password), hash_password("x"))     # same cost as a real check
            raise LoginFailed()
        if row["locked"] or (row["locked_until"] or 0) > now:
            raise LoginFailed("login locked: too many wrong passwords or locked by an operator")
        if not check_password(str(password), row["password_hash"]):
            self._failed(row, now, source_ip)
            raise LoginFailed()
        if row["failed_logins"]:
            self._set(row["id"], failed_logins=0, locked_until=None)
        actor = self.actor_of(row)
        return actor, self.token(actor, row["name"])

    def _failed(self, row: dict, now: float, source_ip: str) -> None:
        failures = row["failed_logins"] + 1
        if failures >= MAX_FAILURES:
            self._set(row["id"], failed_logins=0, locked_until=now + LOCKOUT_SECONDS)
            audit.append(self.store, row["name"], "lockout", "operators", row["id"],
                         {"failures": failures, "seconds": LOCKOUT_SECONDS}, source_ip=source_ip)
        else:
            self._set(row["id"], failed_logins=failures)

    def _set(self, operator_id: int, **values) -> None:
        with transaction(self.store) as conn:      # bookkeeping, not a change to audit
            conn.execute(operators_table.update().where(operators_table.c.id == operator_id).values(values))

    @staticmethod
    def actor_of(row: dict) -> Actor:
        return Actor.agent(row["account_id"]) if row["account_id"] else Actor.operator(row["name"])

    # ------------------------------------------------------------------ management

    def manage(self, operators, require) -> None:
        """Give the login store the operator directory (roles, grants, rank rules) and the
        account directory's rights check, for the management functions below."""
        self.operators = operators
        self._require = require

    def list(self, actor: Actor) -> list[dict]:
        self._require(actor, Module.OPERATORS, Right.VIEW)
        rows = entities.find(self.store, "operators")
        return [{"name": r["name"], "role": r["role"], "account_id": r["account_id"], "locked": r["locked"],
                 "locked_until": r["locked_until"], "rights": entities.operator_rights(self.store, r["id"])}
                for r in rows]

    def create(self, actor: Actor, name: str, password: str, *, role: str = "operator",
               account_id: str | None = None, rights: dict | None = None) -> dict:
        """An operator login (role and per-module rights, never beyond the creator's own) or,
        with ``account_id``, that account's agent login."""
        _check_password(password)
        if self.find(name) is not None:
            raise AccountError("name", f"login {name!r} already exists")
        if account_id is not None:
            self._require(actor, Module.OPERATORS, Right.ADD)
            self._require(actor, Module.ACCOUNTS, Right.VIEW, account_id, field="account_id")
            self.add(name, password, account_id=account_id, operator=actor.label)
            return {"name": name, "role": "operator", "account_id": account_id}
        grants = {module: list(flags) for module, flags in (rights or {}).items()}
        self.operators.create(actor, name, role=role, grants=grants)        # rank and grant rules
        try:
            row = self.add(name, password, role=role, operator=actor.label)
            entities.set_operator_rights(self.store, row["id"], {
                module: {right: True for right in flags} for module, flags in grants.items()}, operator=actor.label)
        except Exception:
            self.operators.delete(Actor.system("rollback"), name)
            raise
        return {"name": name, "role": role, "account_id": None}

    def delete(self, actor: Actor, name: str) -> None:
        row = self.find(name)
        if row is None:
            raise AccountError("name", f"no login {name!r}")
        if row["account_id"] is None:
            self.operators.delete(actor, name)                              # rank, last super admin
        else:
            self._require(actor, Module.OPERATORS, Right.DELETE)
        entities.delete(self.store, "operators", row["id"], operator=actor.label)

    def set_password(self, actor: Actor, name: str, password: str) -> None:
        """Anyone changes their own password; operators with the right change others'."""
        _check_password(password)
        row = self.find(name)
        if row is None:
            raise AccountError("name", f"no login {name!r}")
        if self.actor_of(row) != actor:
            self._require(actor, Module.OPERATORS, Right.EDIT)
        entities.update(self.store, "operators", row["id"], {"password_hash": hash_password(password),
                                                               "failed_logins": 0, "locked_until": None},
                        operator=actor.label)

    # ------------------------------------------------------------------ tokens

    def token(self, actor: Actor, login: str) -> str:
        body = json.dumps({"login": login, "exp": int(self.clock()) + TOKEN_SECONDS},
                          separators=(",", ":")).encode()
        payload = base64.urlsafe_b64encode(body).rstrip(b"=")
        mac = hmac.new(self.secret, payload, hashlib.sha256).hexdigest()
        return f"{payload.decode()}.{mac}"

    def actor_for_token(self, token: str) -> tuple[Actor, str]:
        """The actor a token stands for, if it is genuine, unexpired and its login is still
        usable; raises LoginFailed otherwise. Returns (actor, login name)."""
        payload, _, mac = token.partition(".")
        good = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        if not mac or not hmac.compare_digest(mac, good):
            raise LoginFailed("invalid token")
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except ValueError:
            raise LoginFailed("invalid token") from None
        if claims.get("exp", 0) < self.clock():
            raise LoginFailed("token expired: log in again")
        row = self.find(claims.get("login", ""))
        if row is None or row["locked"]:
            raise LoginFailed("login no longer valid")
        return self.actor_of(row), row["name"]
