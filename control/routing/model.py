"""Gateways as the call path holds them: immutable records built from the store's rows
(or from a configuration file's ``[[customer]]``/``[[vendor]]`` sections, which are
written to the store once), with their dial plans, caller pool rules and identity policy
compiled once.

A :class:`MappingGateway` is how a customer's calls come in (SPEC 3.1), a
:class:`RoutingGateway` where a vendor's go out (SPEC 3.2). Both keep the attribute
names the B2BUA reads from any gateway (``name``, ``account``, ``media_proxy``,
``dtmf``; ``host``, ``port``, ``transport`` for the way out).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from control.config import DtmfSettings, dtmf_settings
from control.routing.identity import IdentityPolicy
from control.routing.transform import DialPlan, compile_dial_plan, with_tech_prefix

NEVER = date(2099, 12, 31)
DEFAULT_STOP_CODES = frozenset({403, 404, 484, 486, 487, 488})


@dataclass(frozen=True)
class MappingGateway:
    id: int
    name: str
    account: str                                  # the customer account billed
    auth_mode: str = "IP"                         # IP | IP+Port | Password
    addresses: frozenset[str] = frozenset()
    sip_port: int | None = None                   # IP+Port: the source port
    username: str | None = None                   # Password: digest user name
    password: str | None = None
    prefix: str = ""                              # callee prefix that selects this gateway (stripped)
    media_proxy: int | None = None
    dtmf: DtmfSettings = DtmfSettings()
    codecs: tuple[str, ...] = ()
    rate_limit: int | None = None                 # calls per second
    max_concurrent: int | None = None
    conversation_limit: int = 3600                # seconds; 0: none
    caller_dial_plan: DialPlan = field(default_factory=lambda: compile_dial_plan([], "caller_dial_plan"))
    callee_dial_plan: DialPlan = field(default_factory=lambda: compile_dial_plan([], "callee_dial_plan"))
    caller_number_source: str = "From"
    support_privacy: bool = False
    trusted: bool = True                          # exempt from the flood guard
    route_extension: bool = False                 # broader prefixes as fallback
    locked: bool = False
    expiry: date = NEVER

    @classmethod
    def from_row(cls, row: dict) -> MappingGateway:
        return cls(
            id=row["id"], name=row["name"], account=row["account_id"], auth_mode=row["auth_mode"],
            addresses=frozenset(row["addresses"]), sip_port=row["sip_port"], username=row["username"],
            password=row["password"], prefix=row["prefix"], media_proxy=row["media_proxy"],
            dtmf=dtmf_settings(row["dtmf"], f"mapping gateway {row['name']}"), codecs=tuple(row["codecs"]),
            rate_limit=row["rate_limit"], max_concurrent=row["max_concurrent_calls"],
            conversation_limit=row["conversation_limitation"],
            caller_dial_plan=compile_dial_plan(row["caller_dial_plan"], "caller_dial_plan"),
            callee_dial_plan=compile_dial_plan(row["callee_dial_plan"], "callee_dial_plan"),
            caller_number_source=row["caller_number_source"], support_privacy=row["support_privacy"],
            trusted=row["trusted"], route_extension=row["route_extension"], locked=row["locked"],
            expiry=row["expiry_date"])

    def routed_callee(self, number: str) -> str:
        """The callee as routing sees it: this gateway's prefix stripped, then its callee
        dial plan applied."""
        if self.prefix and number.startswith(self.prefix):
            number = number[len(self.prefix):]
        return self.callee_dial_plan.apply(number)


@dataclass(frozen=True)
class RoutingGateway:
    id: int
    name: str
    account: str                                  # the vendor account
    host: str
    port: int = 5060
    transport: str = "udp"
    prefixes: tuple[str, ...] = ("",)
    priority: int = 0                             # lower first
    line_limit: int | None = None
    gateway_prefix: str = ""                      # tech prefix put before the callee
    group: int | None = None                      # gateway group id
    rate_table: str | None = None                 # the vendor's prices (None: its account's table)
    protect: bool = False                         # used only after every normal route
    switch_until_connect: bool = False            # any failure moves on to the next gateway
    stop_codes: frozenset[int] = DEFAULT_STOP_CODES
    allowed: frozenset[str] = frozenset()         # mapping gateway names; empty: all
    denied: frozenset[str] = frozenset()
    codecs: tuple[str, ...] = ()
    dtmf: DtmfSettings = DtmfSettings()
    media_proxy: int | None = None
    identity: IdentityPolicy = IdentityPolicy()
    caller_dial_plan: DialPlan = field(default_factory=lambda: compile_dial_plan([], "caller_dial_plan"))
    callee_dial_plan: DialPlan = field(default_factory=lambda: compile_dial_plan([], "callee_dial_plan"))
    caller_pool: tuple[str, ...] = ()
    caller_pool_mode: str = "random"
    caller_pool_multiplexes: int = 1
    calendar: str = ""                            # time-based routing: the work calendar
    period: str = "always"                        # always | working | non_working
    locked: bool = False
    expiry: date = NEVER

    @classmethod
    def from_row(cls, row: dict, *, rate_table: str | None, calendar: str) -> RoutingGateway:
        """``rate_table`` and ``calendar`` are the names of the row's references."""
        return cls(
            id=row["id"], name=row["name"], account=row["account_id"], host=row["address"], port=row["port"],
            transport=row["protocol"], prefixes=tuple(row["prefixes"]), priority=row["priority"],
            line_limit=row["line_limit"], gateway_prefix=row["gateway_prefix"], group=row["gateway_group_id"],
            rate_table=rate_table, protect=row["protect_route"], switch_until_connect=row["switch_until_connect"],
            stop_codes=frozenset(int(c) for c in row["stop_switch_codes"]),
            allowed=frozenset(row["mapping_gateways_allowed"]), denied=frozenset(row["mapping_gateways_denied"]),
            codecs=tuple(row["codecs"]), dtmf=dtmf_settings(row["dtmf"], f"routing gateway {row['name']}"),
            media_proxy=row["media_proxy"], identity=IdentityPolicy.from_json(row["pai_privacy"]),
            caller_dial_plan=compile_dial_plan(row["caller_dial_plan"], "caller_dial_plan"),
            callee_dial_plan=compile_dial_plan(row["callee_dial_plan"], "callee_dial_plan"),
            caller_pool=tuple(row["caller_pool"]), caller_pool_mode=row["caller_pool_mode"],
            caller_pool_multiplexes=row["caller_pool_multiplexes"], calendar=calendar, period=row["period"],
            locked=row["locked"], expiry=row["expiry_date"])

    def callee_for(self, number: str) -> str:
        """The number as this gateway is sent it: its dial plan, then its tech prefix."""
        return with_tech_prefix(self.callee_dial_plan.apply(number), self.gateway_prefix)


@dataclass(frozen=True)
class GatewayGroup:
    id: int
    name: str
    line_limit: int | None = None
    reserved_lines: int = 0                       # kept for protect routes

    @classmethod
    def from_row(cls, row: dict) -> GatewayGroup:
        return cls(row["id"], row["name"], row["line_limit"], row["reserved_lines"])
