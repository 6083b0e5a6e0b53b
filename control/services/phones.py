"""Phones (registered endpoints, SPEC 4): kept in the store, held in memory for the
registrar and the B2BUA, changed through here with the account directory's rights (an
agent needs "Add/delete/modify phone" and works only on its subtree's phones)."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from control.accounts import AccountError, Actor, Module, Right
from control.config import DtmfSettings, dtmf_settings
from control.store import entities
from control.store.defaults import column_defaults
from control.store.rows import check_values


@dataclass(frozen=True)
class PhoneRecord:
    """A phone as the SIP side reads it (the attribute names of a configuration phone)."""
    user: str                      # the phone number, its SIP user name
    password: str
    account: str
    customer: str = ""             # the account's name, for call records
    media_proxy: int | None = None
    dtmf: DtmfSettings = DtmfSettings()
    line_limit: int | None = None
    display_name: str = ""
    do_not_disturb: bool = False


class PhoneService:
    def __init__(self, store, accounts):
        self.store = store
        self.accounts = accounts
        self._rows: dict[str, dict] = {}           # number -> store row
        self._phones: dict[str, PhoneRecord] = {}  # number -> usable phone (locked ones left out)
        self._lock = threading.RLock()

    def load(self) -> None:
        with self._lock:
            self._rows = {row["number"]: row for row in entities.find(self.store, "phones")}
            self._rebuild()

    def _rebuild(self) -> None:
        phones = {}
        for number, row in self._rows.items():
            if not row["locked"]:
                phones[number] = self._record(row)
        self._phones = phones                      # swapped whole: readers need no lock

    def _record(self, row: dict) -> PhoneRecord:
        account = self.accounts.record(row["account_id"])
        return PhoneRecord(row["number"], row["password"], row["account_id"],
                           account.name if account is not None else row["account_id"], row["media_proxy"],
                           dtmf_settings(row["dtmf"], f"phone {row['number']}"), row["line_limit"],
                           row["display_name"], row["do_not_disturb"])

    # ------------------------------------------------------------------ the SIP side

    def lookup(self, user: str) -> PhoneRecord | None:
        """The phone that may register and call as ``user`` (None: unknown or locked)."""
        return self._phones.get(user)

    # ------------------------------------------------------------------ management

    def list(self, actor: Actor) -> list[dict]:
        self.accounts.directory.require(actor, Module.PHONES, Right.VIEW)
        with self._lock:
            rows = list(self._rows.values())
        return [_shown(r) for r in rows if self.accounts.directory.permits(actor, Module.PHONES, Right.VIEW, r["account_id"])]

    def get(self, actor: Actor, number: str) -> dict:
        row = self._find(number)
        self.accounts.directory.require(actor, Module.PHONES, Right.VIEW, row["account_id"])
        return _shown(row)

    def create(self, actor: Actor, fields: dict) -> dict:
        values = self._values(fields)
        if not values.get("account_id"):
            raise AccountError("account_id", "a phone belongs to an account")
        self.accounts.directory.require(actor, Module.PHONES, Right.ADD, values["account_id"], field="account_id")
        with self._lock:
            if values.get("number") in self._rows:
                raise AccountError("number", f"phone {values['number']!r} already exists")
            self._check({**column_defaults("phones"), **values, "id": 0})
            row = entities.create(self.store, "phones", values, operator=actor.label)
            self._rows[row["number"]] = row
            self._rebuild()
            return _shown(row)

    def update(self, actor: Actor, number: str, fields: dict) -> dict:
        old = self._find(number)
        values = self._values(fields)
        self.accounts.directory.require(actor, Module.PHONES, Right.EDIT, old["account_id"])
        if "account_id" in values:
            self.accounts.directory.require(actor, Module.PHONES, Right.ADD, values["account_id"], field="account_id")
        with self._lock:
            self._check({**old, **values})
            row = entities.update(self.store, "phones", old["id"], values, operator=actor.label)
            del self._rows[old["number"]]
            self._rows[row["number"]] = row
            self._rebuild()
            return _shown(row)

    def delete(self, actor: Actor, number: str) -> None:
        old = self._find(number)
        self.accounts.directory.require(actor, Module.PHONES, Right.DELETE, old["account_id"])
        with self._lock:
            entities.delete(self.store, "phones", old["id"], operator=actor.label)
            del self._rows[number]
            self._rebuild()

    # ------------------------------------------------------------------ helpers

    def _find(self, number: str) -> dict:
        with self._lock:
            row = self._rows.get(number)
        if row is None:
            raise AccountError("number", f"no phone {number!r}")
        return row

    def _values(self, fields: dict) -> dict:
        values = dict(fields)
        for name in values:
            if name not in entities.TABLES["phones"].c or name == "id":
                raise AccountError(name, "unknown phone field")
        return values

    def _check(self, row: dict) -> None:
        """The row fits the store and builds the phone the SIP side would use."""
        try:
            check_values(entities.TABLES["phones"], {k: v for k, v in row.items() if k != "id"})
            if not row.get("number") or not str(row["number"]).replace("+", "").isalnum():
                raise ValueError("number: letters and digits (a SIP user name), optional leading +")
            if not row.get("password"):
                raise ValueError("password: required (digest authentication needs it)")
            if self.accounts.record(row["account_id"]) is None:
                raise AccountError("account_id", f"no account {row['account_id']!r}")
            dtmf_settings(row.get("dtmf") or {}, "dtmf")
        except AccountError:
            raise
        except ValueError as exc:
            field, _, rule = str(exc).partition(": ")
            raise AccountError(field if rule and " " not in field else "phone", rule or str(exc)) from None


def _shown(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "password"}
