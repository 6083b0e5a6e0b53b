"""Web access control: which addresses may reach the Web API and Manager.

An empty list lets every address in (the listen address already limits who can connect;
the default is loopback only). Once a list is set, everything outside it is refused
before any endpoint runs. A list that would shut out the operator's own address or
loopback is refused unless the request says ``confirm``: nobody locks themselves out by
accident, and the answer warns when loopback is left out on purpose.
"""
from __future__ import annotations

import ipaddress
import threading

from sqlalchemy import delete, insert, select

from control.accounts import AccountError, Actor, Module, Right
from control.store import audit, transaction
from control.store.rows import now
from control.store.schema import web_access

LOOPBACK = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
MAX_ENTRIES = 256


class WebAccess:
    def __init__(self, store, require):
        self.store = store
        self._require = require                 # AccountDirectory.require
        self._lock = threading.Lock()
        self.networks: tuple = ()

    def load(self) -> None:
        with transaction(self.store, write=False) as conn:
            rows = conn.execute(select(web_access.c.network)).scalars().all()
        self.networks = tuple(ipaddress.ip_network(n) for n in rows)

    def allows(self, address: str) -> bool:
        networks = self.networks
        if not networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks if net.version == ip.version)

    def list(self, actor: Actor) -> dict:
        self._require(actor, Module.PARAMETERS, Right.VIEW)
        return {"allow": [str(n) for n in self.networks]}

    def replace(self, actor: Actor, allow: list[str], *, source_ip: str, confirm: bool = False) -> dict:
        """Set the allow list (empty: everyone). Refused without ``confirm`` when it would
        shut out ``source_ip`` or loopback."""
        self._require(actor, Module.PARAMETERS, Right.EDIT)
        if len(allow) > MAX_ENTRIES:
            raise AccountError("allow", f"at most {MAX_ENTRIES} entries")
        networks = []
        for i, text in enumerate(allow):
            try:
                networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
            except ValueError:
                raise AccountError(f"allow[{i}]", f"{text!r} is not an address or CIDR network") from None
        candidate = WebAccess(self.store, self._require)
        candidate.networks = tuple(networks)
        warnings = []
        if networks and not candidate.allows(source_ip):
            warnings.append(f"your own address {source_ip} is not in the list")
        if networks and not any(candidate.allows(str(ip)) for ip in LOOPBACK):
            warnings.append("loopback (127.0.0.1, ::1) is not in the list: the switch's own host loses access")
        if warnings and not confirm:
            raise AccountError("allow", "; ".join(warnings) + "; send confirm: true to apply it anyway")
        with self._lock, transaction(self.store) as conn:
            conn.execute(delete(web_access))
            if networks:
                conn.execute(insert(web_access), [{"network": str(n), "created_at": now(),
                                                   "created_by": actor.label} for n in dict.fromkeys(networks)])
            audit.append(conn, actor.label, "update", "web_access", "", {"allow": [str(n) for n in networks]},
                         source_ip=source_ip)
            self.networks = tuple(dict.fromkeys(networks))
        return {"allow": [str(n) for n in self.networks], "warnings": warnings}
