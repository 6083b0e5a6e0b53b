"""The product's tables, one definition for SQLite and PostgreSQL (SQLAlchemy Core).

Conventions, chosen so both backends store and return the same values:

* money: :func:`~control.store.types.Money` (exact, four places) and prices per minute
  :func:`~control.store.types.Price` (six places), both integers underneath;
* instants: Unix seconds in a ``DOUBLE`` column (``*_time``, ``time``, ``*_at``), the
  form the call path already measures in, exact to the microsecond on both backends;
  calendar dates (expiry) are ``DATE``;
* lists and settings that are only ever read whole: ``JSON``;
* fixed choices: short strings with a CHECK constraint, spelled as in the spec.

The migrations in ``migrations/versions`` create exactly these tables; a test compares
them with this module on both backends.
"""
from __future__ import annotations

from sqlalchemy import (JSON, BigInteger, Boolean, CheckConstraint, Column, Date, Double,
                        ForeignKey, Index, Integer, MetaData, PrimaryKeyConstraint, String,
                        Table, Text, UniqueConstraint, false, true)

from control.store.types import Money, Price

# Named constraints: Alembic can only alter or drop a constraint it can name, and SQLite
# batch migrations rebuild tables by these names.
metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# SQLite only auto-numbers an INTEGER PRIMARY KEY; BIGINT there would need explicit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NEVER_EXPIRES = "2099-12-31"

# Account IDs are chosen by the operator (as in VOS3000) and never change: text keys.
AccountId = String(64)

ACCOUNT_KINDS = ("customer", "vendor")
ACCOUNT_STATUSES = ("Active", "Locked", "Inactive", "Expired")
BILLING_MODELS = ("Standard", "Flow")
# The eight agent authorizations (SPEC 4), in the spec's order.
AGENT_AUTHORIZATIONS = (
    "auth_account_edit",           # Add/delete/modify account
    "auth_phone_edit",             # Add/delete/modify phone
    "auth_phone_card_edit",        # Add/delete/modify phone card
    "auth_gateway_add_delete",     # Add/delete gateway
    "auth_gateway_info",           # Modify gateway information
    "auth_gateway_capacity",       # Modify gateway capacity
    "auth_payment_account",        # Payment for this account
    "auth_payment_sub_accounts",   # Payment for sub accounts
)
OPERATOR_ROLES = ("super admin", "admin", "operator", "read-only")
AUTH_MODES = ("IP", "IP+Port", "Password")
PROTOCOLS = ("udp", "tcp", "tls")
CALLER_POOL_MODES = ("random", "round_robin")
CALLER_NUMBER_SOURCES = ("From", "Remote-Party-ID", "Display")
ROUTE_PERIODS = ("always", "working", "non_working")     # time-based routing by work calendar
LEDGER_KINDS = ("recharge", "deduct", "adjust", "transfer", "credit_limit", "charge")
END_DIRECTIONS = ("caller", "callee", "switch")
STOP_SWITCH_CODES = [403, 404, 484, 486, 487, 488]


def _choice(column: str, values: tuple[str, ...]) -> CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=column)


def _flag(name: str, default: bool = False) -> Column:
    return Column(name, Boolean, nullable=False, server_default=true() if default else false())


def _json(name: str, default: str = "[]") -> Column:
    return Column(name, JSON, nullable=False, server_default=default)


def _ref(name: str, table: str, ondelete: str = "RESTRICT", **kw) -> Column:
    kind = AccountId if table == "accounts" else Integer
    return Column(name, kind, ForeignKey(f"{table}.id", ondelete=ondelete), **kw)


rate_tables = Table(
    "rate_tables", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("memo", Text, nullable=False, server_default=""),
)

rates = Table(
    "rates", metadata,
    Column("id", Integer, primary_key=True),
    _ref("rate_table_id", "rate_tables", "CASCADE", nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("area", String(128), nullable=False, server_default=""),
    Column("price", Price(), nullable=False),                     # per minute
    Column("first_unit", Integer, nullable=False, server_default="60"),   # seconds
    Column("next_unit", Integer, nullable=False, server_default="60"),    # seconds
    Column("connection_fee", Money(), nullable=False, server_default="0"),
    UniqueConstraint("rate_table_id", "prefix"),
    CheckConstraint("first_unit > 0 AND next_unit > 0", name="units"),
)

work_calendars = Table(
    "work_calendars", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    _json("working_weekdays", "[1, 2, 3, 4, 5]"),    # ISO weekdays, Monday = 1
    Column("work_start", String(5), nullable=False, server_default="09:00"),   # HH:MM, inclusive
    Column("work_end", String(5), nullable=False, server_default="18:00"),     # HH:MM, exclusive
    _json("holidays"),                               # "YYYY-MM-DD", non-working all day
    Column("time_zone", String(64), nullable=False, server_default="UTC"),
)

period_rates = Table(
    "period_rates", metadata,                        # "package period rate"
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    _ref("work_calendar_id", "work_calendars", nullable=False),
    _ref("working_rate_table_id", "rate_tables", nullable=False),
    _ref("non_working_rate_table_id", "rate_tables", nullable=False),
)

accounts = Table(
    "accounts", metadata,
    Column("id", AccountId, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(128), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="Active"),
    Column("expiry_date", Date, nullable=False, server_default=NEVER_EXPIRES),
    # balance changes only through the ledger: it always equals the sum of the entries
    Column("balance", Money(), nullable=False, server_default="0"),
    Column("credit_limit", Money(), nullable=False, server_default="0"),
    Column("concurrent_call_limit", Integer),        # NULL: no limit
    _ref("rate_table_id", "rate_tables"),             # default rate table
    _ref("period_rate_id", "period_rates"),
    _ref("work_calendar_id", "work_calendars"),
    _json("number_section_allow"),                   # Number Section Limitation prefixes
    _json("number_section_block"),
    Column("billing_model", String(16), nullable=False, server_default="Standard"),
    _ref("agent_id", "accounts", index=True),        # parent account (the agent)
    *(_flag(name) for name in AGENT_AUTHORIZATIONS),
    _flag("suppress_duration_alarm"),
    Column("memo", Text, nullable=False, server_default=""),
    Column("created_at", Double, nullable=False),
    _choice("kind", ACCOUNT_KINDS),
    _choice("status", ACCOUNT_STATUSES),
    _choice("billing_model", BILLING_MODELS),
    CheckConstraint("agent_id IS NULL OR agent_id <> id", name="agent_not_self"),
)

operators = Table(
    "operators", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False, server_default=""),
    Column("role", String(16), nullable=False, server_default="operator"),
    # an agent's own login: its scope is this account's subtree
    _ref("account_id", "accounts", "CASCADE", index=True),
    _json("login_ip_allow"),
    _flag("locked"),
    Column("failed_logins", Integer, nullable=False, server_default="0"),
    Column("locked_until", Double),
    Column("created_at", Double, nullable=False),
    _choice("role", OPERATOR_ROLES),
)

operator_rights = Table(
    "operator_rights", metadata,
    Column("operator_id", Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False),
    Column("module", String(32), nullable=False),
    _flag("can_view"),
    _flag("can_add"),
    _flag("can_edit"),
    _flag("can_delete"),
    PrimaryKeyConstraint("operator_id", "module"),
)

phones = Table(
    "phones", metadata,
    Column("id", Integer, primary_key=True),
    _ref("account_id", "accounts", nullable=False, index=True),
    Column("number", String(64), nullable=False, unique=True),
    Column("password", String(128), nullable=False),   # digest needs the secret itself
    Column("line_limit", Integer),                     # incoming + outgoing; NULL: no limit
    Column("display_name", String(128), nullable=False, server_default=""),
    Column("media_proxy", Integer),                    # overrides SS_MEDIAPROXYMODE
    _json("dtmf", "{}"),
    _flag("do_not_disturb"),
    _flag("locked"),
    Column("memo", Text, nullable=False, server_default=""),
)

mapping_gateways = Table(
    "mapping_gateways", metadata,
    Column("id", Integer, primary_key=True),
    _ref("account_id", "accounts", nullable=False, index=True),   # the customer
    Column("name", String(128), nullable=False, unique=True),
    Column("auth_mode", String(16), nullable=False, server_default="IP"),
    _json("addresses"),
    Column("sip_port", Integer),
    Column("username", String(128)),                 # Password mode
    Column("password", String(128)),
    Column("prefix", String(32), nullable=False, server_default=""),
    _json("codecs"),
    _json("dtmf", "{}"),
    Column("media_proxy", Integer),
    Column("rate_limit", Integer),                   # calls per second; NULL: no limit
    Column("max_concurrent_calls", Integer),
    Column("conversation_limitation", Integer, nullable=False, server_default="3600"),  # s
    _json("caller_dial_plan"),
    _json("callee_dial_plan"),
    _flag("support_privacy"),
    _flag("recognize_call_forward"),
    _flag("trusted", True),                          # exempt from the flood guard
    _flag("locked"),
    Column("expiry_date", Date, nullable=False, server_default=NEVER_EXPIRES),
    Column("memo", Text, nullable=False, server_default=""),
    # added in 0002: where the caller number is read; extension mode (broader prefixes
    # follow the longest as fallback)
    Column("caller_number_source", String(16), nullable=False, server_default="From"),
    _flag("route_extension"),
    _choice("auth_mode", AUTH_MODES),
    _choice("caller_number_source", CALLER_NUMBER_SOURCES),
)

gateway_groups = Table(
    "gateway_groups", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("line_limit", Integer),
    Column("reserved_lines", Integer, nullable=False, server_default="0"),   # for protect traffic
)

routing_gateways = Table(
    "routing_gateways", metadata,
    Column("id", Integer, primary_key=True),
    _ref("account_id", "accounts", nullable=False, index=True),   # the vendor
    Column("name", String(128), nullable=False, unique=True),
    Column("address", String(255), nullable=False),
    Column("port", Integer, nullable=False, server_default="5060"),
    Column("protocol", String(8), nullable=False, server_default="udp"),
    _json("prefixes", '[""]'),                       # "" serves every number
    Column("priority", Integer, nullable=False, server_default="0"),   # lower first
    Column("line_limit", Integer),
    Column("gateway_prefix", String(32), nullable=False, server_default=""),
    _ref("gateway_group_id", "gateway_groups", "SET NULL"),
    _ref("rate_table_id", "rate_tables"),            # vendor cost; NULL: the vendor's default
    _flag("protect_route"),
    _flag("switch_until_connect"),
    _json("stop_switch_codes", str(STOP_SWITCH_CODES)),
    _json("mapping_gateways_allowed"),
    _json("mapping_gateways_denied"),
    _json("codecs"),
    _json("dtmf", "{}"),
    Column("media_proxy", Integer),
    _json("pai_privacy", "{}"),
    _json("caller_dial_plan"),
    _json("callee_dial_plan"),
    _json("caller_pool"),
    Column("caller_pool_mode", String(16), nullable=False, server_default="random"),
    Column("caller_pool_multiplexes", Integer, nullable=False, server_default="1"),
    _flag("locked"),
    Column("expiry_date", Date, nullable=False, server_default=NEVER_EXPIRES),
    Column("memo", Text, nullable=False, server_default=""),
    # added in 0002: time-based routing, a candidate only in this period of the calendar
    _ref("work_calendar_id", "work_calendars"),
    Column("period", String(16), nullable=False, server_default="always"),
    _choice("protocol", PROTOCOLS),
    _choice("caller_pool_mode", CALLER_POOL_MODES),
    _choice("period", ROUTE_PERIODS),
)

ledger = Table(
    "ledger", metadata,                              # payments and call charges
    Column("id", BigId, primary_key=True),
    _ref("account_id", "accounts", nullable=False),
    Column("time", Double, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount", Money(), nullable=False),       # signed: + credits the account
    Column("balance_after", Money(), nullable=False),
    Column("credit_limit_after", Money()),           # set by credit_limit entries
    Column("operator", String(64), nullable=False, server_default=""),
    Column("memo", Text, nullable=False, server_default=""),
    Column("call_id", String(255)),                  # the call a charge is for
    Column("transfer_account_id", AccountId),          # the other side of a transfer
    _choice("kind", LEDGER_KINDS),
    Index("ix_ledger_account_id_id", "account_id", "id"),
    Index("ix_ledger_time", "time"),
)

cdrs = Table(
    "cdrs", metadata,
    Column("id", BigId, primary_key=True),
    Column("call_id", String(255), nullable=False),
    Column("caller", String(128), nullable=False, server_default=""),        # as received
    Column("caller_sent", String(128)),                                        # as sent on
    Column("callee", String(128), nullable=False, server_default=""),
    Column("callee_sent", String(128)),
    Column("customer_id", AccountId),                  # no foreign keys: history outlives its
    Column("customer", String(128), nullable=False, server_default=""),     # accounts, and the
    Column("mapping_gateway_id", Integer),           # names are kept as they were at the call
    Column("mapping_gateway", String(128), nullable=False, server_default=""),
    Column("caller_ip", String(64), nullable=False, server_default=""),
    Column("vendor_id", AccountId),
    Column("vendor", String(128), nullable=False, server_default=""),
    Column("routing_gateway_id", Integer),
    Column("routing_gateway", String(128), nullable=False, server_default=""),
    Column("vendor_ip", String(64), nullable=False, server_default=""),
    Column("start_time", Double, nullable=False),
    Column("progress_time", Double),
    Column("answer_time", Double),
    Column("end_time", Double, nullable=False),
    Column("hold_time", Double, nullable=False, server_default="0"),          # seconds
    Column("billed_time", Integer, nullable=False, server_default="0"),       # seconds
    Column("pdd_ms", Integer),
    Column("termination_reason", String(64), nullable=False, server_default=""),  # control.reasons
    Column("termination_detail", Text, nullable=False, server_default=""),
    Column("sip_code", Integer, nullable=False, server_default="0"),
    Column("end_direction", String(8), nullable=False, server_default=""),
    Column("caller_codec", String(32), nullable=False, server_default=""),
    Column("callee_codec", String(32), nullable=False, server_default=""),
    Column("caller_dtmf", String(16), nullable=False, server_default=""),    # DTMF method
    Column("callee_dtmf", String(16), nullable=False, server_default=""),
    Column("dtmf_digits", String(255), nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    _json("media_stats", "{}"),                      # per leg: packets, loss, jitter
    Column("rate_table_id", Integer),
    Column("rate_table", String(128), nullable=False, server_default=""),
    Column("rate_prefix", String(32)),
    Column("rate", Price()),                         # customer price per minute applied
    Column("vendor_rate_table_id", Integer),
    Column("vendor_rate_table", String(128), nullable=False, server_default=""),
    Column("vendor_rate_prefix", String(32)),
    Column("vendor_rate", Price()),
    Column("fee", Money(), nullable=False, server_default="0"),
    Column("cost", Money(), nullable=False, server_default="0"),
    Column("profit", Money(), nullable=False, server_default="0"),
    Index("ix_cdrs_start_time", "start_time"),
    Index("ix_cdrs_customer_id_start_time", "customer_id", "start_time"),
    Index("ix_cdrs_customer_start_time", "customer", "start_time"),
    Index("ix_cdrs_routing_gateway_start_time", "routing_gateway", "start_time"),
    Index("ix_cdrs_call_id", "call_id"),
)

cdr_attempts = Table(
    "cdr_attempts", metadata,                        # one row per vendor tried (failover)
    Column("id", BigId, primary_key=True),
    Column("cdr_id", BigId, ForeignKey("cdrs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),          # 1 = first vendor tried
    Column("vendor_id", AccountId),
    Column("vendor", String(128), nullable=False, server_default=""),
    Column("routing_gateway_id", Integer),
    Column("routing_gateway", String(128), nullable=False, server_default=""),
    Column("vendor_ip", String(64), nullable=False, server_default=""),
    Column("callee_sent", String(128)),
    Column("start_time", Double, nullable=False),
    Column("progress_time", Double),
    Column("end_time", Double),
    Column("pdd_ms", Integer),
    Column("sip_code", Integer, nullable=False, server_default="0"),
    Column("termination_reason", String(64), nullable=False, server_default=""),
)

system_parameters = Table(
    "system_parameters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),           # as control.params.format_value shows it
    Column("updated_at", Double, nullable=False),
    Column("updated_by", String(64), nullable=False, server_default=""),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", BigId, primary_key=True),
    Column("time", Double, nullable=False, index=True),
    Column("operator", String(64), nullable=False),
    Column("action", String(16), nullable=False),    # create, update, delete, ...
    Column("entity", String(32), nullable=False),    # table name
    Column("entity_id", String(64), nullable=False, server_default=""),
    _json("detail", "{}"),
    Column("source_ip", String(64), nullable=False, server_default=""),
    Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),
)

web_access = Table(
    "web_access", metadata,                          # added in 0003: Web access control allow list
    Column("network", String(64), primary_key=True),   # an address or CIDR, normalised
    Column("memo", Text, nullable=False, server_default=""),
    Column("created_at", Double, nullable=False),
    Column("created_by", String(64), nullable=False, server_default=""),
)

# How far each write-ahead journal has been applied, committed with the rows it covers.
store_journal = Table(
    "store_journal", metadata,
    Column("name", String(64), primary_key=True),
    Column("segment", Integer, nullable=False),
    Column("applied_offset", BigInteger, nullable=False),
)
