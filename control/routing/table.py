"""The routing table the call path reads: every mapping gateway, routing gateway and
gateway group, the prefix index, and the work calendars of time-based routes. Built
whole from records and swapped whole on a change, so a call in progress never sees a
half-applied change and readers need no lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from control.routing.index import PrefixIndex


@dataclass(frozen=True)
class RoutingTable:
    mapping: dict = field(default_factory=dict)       # id -> MappingGateway
    gateways: dict = field(default_factory=dict)      # id -> RoutingGateway
    groups: dict = field(default_factory=dict)        # id -> GatewayGroup
    calendars: dict = field(default_factory=dict)     # name -> WorkCalendar (the tariffs' own, live)
    index: PrefixIndex = field(default_factory=PrefixIndex)
    by_address: dict = field(default_factory=dict)    # ip -> [MappingGateway] (IP, IP+Port)
    by_user: dict = field(default_factory=dict)       # digest user -> MappingGateway (Password)

    @classmethod
    def build(cls, mapping=(), gateways=(), groups=(), calendars=None) -> RoutingTable:
        by_address: dict[str, list] = {}
        by_user = {}
        for gateway in mapping:
            if gateway.auth_mode == "Password":
                if gateway.username:
                    by_user[gateway.username] = gateway
                continue
            for address in gateway.addresses:
                by_address.setdefault(address, []).append(gateway)
        for found in by_address.values():
            found.sort(key=lambda g: -len(g.prefix))     # the longest matching prefix wins
        gateways = list(gateways)
        index = PrefixIndex.build((prefix, g.id) for g in gateways for prefix in g.prefixes)
        return cls({g.id: g for g in mapping}, {g.id: g for g in gateways}, {g.id: g for g in groups},
                   calendars if calendars is not None else {}, index, by_address, by_user)

    def identify(self, address: str, port: int, callee: str):
        """The IP or IP+Port mapping gateway a request from ``address:port`` to ``callee``
        comes through (a gateway with a prefix only for callees starting with it), or None."""
        for gateway in self.by_address.get(address, ()):
            if gateway.auth_mode == "IP+Port" and gateway.sip_port not in (None, port):
                continue
            if callee.startswith(gateway.prefix):
                return gateway
        return None

    def password_gateway(self, user: str):
        """The Password mapping gateway whose digest user name is ``user``, or None."""
        return self.by_user.get(user)

    def trusted_addresses(self) -> set[str]:
        """Sources exempt from the flood guard: trusted mapping gateways' and every routing
        gateway's addresses."""
        trusted = {a for g in self.mapping.values() if g.trusted for a in g.addresses}
        return trusted | {g.host for g in self.gateways.values()}
