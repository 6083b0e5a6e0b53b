"""Switch configuration: who may call (customers, phones), where calls go (vendors), and
listening addresses. Read from a TOML file, or built by ``--demo``.

```toml
[sip]
listen = ["127.0.0.1:5060", "127.0.0.1:5062"]   # UDP and TCP on each
advertise = "127.0.0.1"            # address put in Via/Contact when listening on 0.0.0.0
realm = "vosmedia"
auth_algorithms = ["SHA-256", "MD5"]   # digest challenges offered, in this order
max_call_duration = 7200           # seconds, 0 = unlimited
register_min_expires = 60
register_max_expires = 7200
register_default_expires = 3600

[params]                           # system parameters (control.params), e.g.
SS_SIP_TIMEOUT_INVITE = 10

[[rate_table]]                     # prefix,price,first_unit,next_unit,connection_fee (CSV)
name = "retail"
file = "rates/retail.csv"

[[customer]]                       # a mapping gateway: calls accepted by source address
name = "demo-customer"
addresses = ["127.0.0.1"]
rate_table = "retail"              # optional: calls are rated, reserved and charged
account = "C1001"                  # the billed account (default: the name)
balance = "10.00"                  # opening balance (a string: money is exact)
credit_limit = "0"
media_proxy = 1                    # optional per-gateway override of SS_MEDIAPROXYMODE
dtmf_receive = "all"               # all | rfc2833 | info | inband (customers, phones, vendors)
dtmf_send = "auto"                 # auto | rfc2833 | info | inband
dtmf_payload = 101                 # telephone-event payload type offered to this gateway
use_peer_rfc2833 = true            # false: offer telephone-event even if the caller did not

[[phone]]                          # a registered phone: digest credentials
user = "1001"
password = "secret1001"

[[vendor]]                         # a routing gateway
name = "demo-vendor"
host = "127.0.0.1"
port = 5090
transport = "udp"
prefixes = [""]                    # "" matches every number
rate_table = "wholesale"           # optional: the vendor's prices (cost, profit)
account = "V1"                     # the vendor account charged each call's cost (default: name)
balance = "100.00"                 # its opening balance (see SS_ROUTE_POSITIVE_BALANCE_VENDOR_ONLY)
priority = 0                       # lower first among equal prefixes (default: file order)
```
The account, routing and billing issues grow these sections into their own stores; the
file stays the bootstrap for a fresh switch.
"""
from __future__ import annotations

import ipaddress
from decimal import Decimal
import tomllib
from dataclasses import dataclass, field

from control.params import ParamError, validate


class ConfigError(ValueError):
    """A configuration value was rejected; the message names the section and field."""


DTMF_RECEIVE = ("all", "rfc2833", "info", "inband")
DTMF_SEND = ("auto", "rfc2833", "info", "inband")


@dataclass(frozen=True)
class DtmfSettings:
    """Per gateway: how its digits are accepted and how digits are sent to it (SPEC 1.5).
    ``receive`` "all" locks a call leg to the first method seen; ``send`` "auto" is RFC 2833
    if the gateway negotiated telephone-event, else SIP INFO if it allows INFO, else tones.
    ``use_peer_rfc2833`` off: telephone-event (payload type ``payload``) is offered to the
    gateway even when the other party did not offer it; the engine converts."""
    receive: str = "all"
    send: str = "auto"
    payload: int = 101
    use_peer_rfc2833: bool = True


def dtmf_settings(item: dict, where: str) -> DtmfSettings:
    """DTMF settings from ``dtmf_receive``, ``dtmf_send``, ``dtmf_payload`` and
    ``use_peer_rfc2833`` (a configuration section, or a gateway's stored ``dtmf`` JSON)."""
    receive = str(item.get("dtmf_receive", "all")).lower()
    send = str(item.get("dtmf_send", "auto")).lower()
    if receive not in DTMF_RECEIVE:
        raise ConfigError(f"{where}.dtmf_receive: one of {', '.join(DTMF_RECEIVE)}, got {receive!r}")
    if send not in DTMF_SEND:
        raise ConfigError(f"{where}.dtmf_send: one of {', '.join(DTMF_SEND)}, got {send!r}")
    payload = item.get("dtmf_payload", 101)
    if not isinstance(payload, int) or isinstance(payload, bool) or not 96 <= payload <= 127:
        raise ConfigError(f"{where}.dtmf_payload: a dynamic payload type 96..127, got {payload!r}")
    use_peer = item.get("use_peer_rfc2833", True)
    if not isinstance(use_peer, bool):
        raise ConfigError(f"{where}.use_peer_rfc2833: true or false, got {use_peer!r}")
    return DtmfSettings(receive, send, payload, use_peer)


@dataclass
class Customer:
    name: str
    addresses: frozenset[str]
    media_proxy: int | None = None
    trusted: bool = True              # exempt from flood limits
    dtmf: DtmfSettings = DtmfSettings()
    account: str = ""                 # billed account (default: the name) when rate_table is set
    rate_table: str | None = None     # a [[rate_table]] name: calls are rated and charged
    balance: Decimal = Decimal(0)     # opening balance, booked once when the account is created
    credit_limit: Decimal = Decimal(0)


@dataclass
class Phone:
    user: str
    password: str
    customer: str = ""
    media_proxy: int | None = None
    dtmf: DtmfSettings = DtmfSettings()
    line_limit: int | None = None     # calls at once, made and received together


@dataclass
class Vendor:
    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    prefixes: tuple[str, ...] = ("",)
    media_proxy: int | None = None
    dtmf: DtmfSettings = DtmfSettings()
    rate_table: str | None = None     # the vendor's prices: cost and profit per call
    account: str = ""                 # vendor account (default: the vendor's name)
    priority: int = 0                 # lower first among equal prefixes (default: file order)
    balance: Decimal = Decimal(0)     # its opening balance, booked once when the account is created
    credit_limit: Decimal = Decimal(0)


@dataclass
class SwitchConfig:
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 5060)])
    advertise: str | None = None
    realm: str = "vosmedia"
    auth_algorithms: tuple[str, ...] = ("SHA-256", "MD5")   # challenge order (RFC 8760: strongest first)
    max_call_duration: int = 0
    register_min_expires: int = 60
    register_max_expires: int = 7200
    register_default_expires: int = 3600
    params: dict = field(default_factory=dict)
    rate_tables: dict[str, str] = field(default_factory=dict)     # name -> CSV file
    customers: list[Customer] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)
    vendors: list[Vendor] = field(default_factory=list)

    def advertised_host(self) -> str:
        if self.advertise:
            return self.advertise
        host = self.listen[0][0]
        return "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)

    def phone(self, user: str) -> Phone | None:
        for phone in self.phones:
            if phone.user == user:
                return phone
        return None


def parse_host_port(text: str, default_port: int = 5060) -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT``, ``HOST`` or ``PORT``."""
    text = text.strip()
    if text.isdigit():
        return "127.0.0.1", int(text)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if port and (not port.isdigit() or not 0 <= int(port) < 65536):
        raise ConfigError(f"bad port in {text!r} (0-65535; 0 picks a free port)")
    if not host:
        raise ConfigError(f"missing host in {text!r}")
    return host, int(port) if port else default_port


def _address(text, where: str) -> str:
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an IP address") from None


def _media_proxy(value, where: str) -> int | None:
    if value is None:
        return None
    try:
        return validate("SS_MEDIAPROXYMODE", value)
    except ParamError as exc:
        raise ConfigError(f"{where}.media_proxy: {exc}") from None


def _int(section: dict, key: str, default: int, low: int, high: int, where: str) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{where}.{key}: expected an integer {low}..{high}, got {value!r}")
    return value


def _table_ref(item: dict, where: str, config: SwitchConfig) -> str | None:
    name = item.get("rate_table")
    if name is not None and name not in config.rate_tables:
        raise ConfigError(f"{where}.rate_table: no [[rate_table]] named {name!r}")
    return name


def _money(item: dict, key: str, where: str) -> Decimal:
    value = item.get(key, 0)
    if isinstance(value, (bool, float)) or not isinstance(value, (int, str)):
        raise ConfigError(f"{where}.{key}: an integer or a decimal string such as \"10.50\", got {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise ConfigError(f"{where}.{key}: not a number: {value!r}") from None


def from_dict(data: dict) -> SwitchConfig:
    sip = data.get("sip", {})
    config = SwitchConfig()
    if "listen" in sip:
        listen = sip["listen"] if isinstance(sip["listen"], list) else [sip["listen"]]
        config.listen = [parse_host_port(str(item)) for item in listen]
        if not config.listen:
            raise ConfigError("sip.listen: at least one address is needed")
    config.advertise = sip.get("advertise")
    config.realm = str(sip.get("realm", config.realm))
    if "auth_algorithms" in sip:
        algorithms = sip["auth_algorithms"]
        if (not isinstance(algorithms, list) or not algorithms
                or any(a not in ("SHA-256", "MD5") for a in algorithms)):
            raise ConfigError(f"sip.auth_algorithms: a list of SHA-256 and/or MD5, got {algorithms!r}")
        config.auth_algorithms = tuple(algorithms)
    config.max_call_duration = _int(sip, "max_call_duration", 0, 0, 86400 * 7, "sip")
    config.register_min_expires = _int(sip, "register_min_expires", 60, 1, 86400, "sip")
    config.register_max_expires = _int(sip, "register_max_expires", 7200, 1, 86400 * 7, "sip")
    config.register_default_expires = _int(sip, "register_default_expires", 3600, 1, 86400 * 7, "sip")
    if not config.register_min_expires <= config.register_default_expires <= config.register_max_expires:
        raise ConfigError("sip: register_min_expires <= register_default_expires <= register_max_expires must hold")
    params = data.get("params", {})
    for name, value in params.items():
        try:
            config.params[name] = validate(name, value)
        except ParamError as exc:
            raise ConfigError(f"params.{name}: {exc}") from None
    for i, item in enumerate(data.get("rate_table", [])):
        where = f"rate_table[{i}]"
        if not item.get("name") or not item.get("file"):
            raise ConfigError(f"{where}: name and file are required")
        config.rate_tables[str(item["name"])] = str(item["file"])
    for i, item in enumerate(data.get("customer", [])):
        where = f"customer[{i}]"
        if "name" not in item:
            raise ConfigError(f"{where}.name is required")
        addresses = frozenset(_address(a, f"{where}.addresses") for a in item.get("addresses", []))
        config.customers.append(Customer(str(item["name"]), addresses,
                                         _media_proxy(item.get("media_proxy"), where),
                                         bool(item.get("trusted", True)), dtmf_settings(item, where),
                                         str(item.get("account", item["name"])),
                                         _table_ref(item, where, config), _money(item, "balance", where),
                                         _money(item, "credit_limit", where)))
    for i, item in enumerate(data.get("phone", [])):
        where = f"phone[{i}]"
        if not item.get("user") or not item.get("password"):
            raise ConfigError(f"{where}: user and password are required")
        config.phones.append(Phone(str(item["user"]), str(item["password"]), str(item.get("customer", "")),
                                   _media_proxy(item.get("media_proxy"), where), dtmf_settings(item, where),
                                   _int(item, "line_limit", 0, 0, 100000, where) or None))
    for i, item in enumerate(data.get("vendor", [])):
        where = f"vendor[{i}]"
        if "name" not in item or "host" not in item:
            raise ConfigError(f"{where}: name and host are required")
        transport = str(item.get("transport", "udp")).lower()
        if transport not in ("udp", "tcp"):
            raise ConfigError(f"{where}.transport: expected udp or tcp, got {transport!r}")
        prefixes = item.get("prefixes", [""])
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            raise ConfigError(f"{where}.prefixes: expected a list of strings")
        config.vendors.append(Vendor(str(item["name"]), str(item["host"]),
                                     _int(item, "port", 5060, 1, 65535, where), transport, tuple(prefixes),
                                     _media_proxy(item.get("media_proxy"), where), dtmf_settings(item, where),
                                     _table_ref(item, where, config), str(item.get("account", "")),
                                     _int(item, "priority", i, 0, 1_000_000, where),
                                     _money(item, "balance", where), _money(item, "credit_limit", where)))
    return config


def load(path: str) -> SwitchConfig:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return from_dict(data)


def demo(config: SwitchConfig | None = None, vendor: tuple[str, int] = ("127.0.0.1", 5090)) -> SwitchConfig:
    """Add the demo data: a customer accepted from 127.0.0.1, a phone 1001/1001, and one
    vendor gateway for every number, so a call can be placed at once."""
    config = config or SwitchConfig()
    config.customers.append(Customer("demo-customer", frozenset({"127.0.0.1", "::1"}), media_proxy=1))
    config.phones.append(Phone("1001", "1001", "demo-customer"))
    config.vendors.append(Vendor("demo-vendor", vendor[0], vendor[1], "udp", ("",)))
    return config
