"""System parameters, declared once.

Every ``SS_*`` / ``SERVER_*`` parameter is a :class:`Param` in :data:`PARAMS`: name, type,
default, allowed values (an inclusive range or a set of choices), whether a change applies
at once (``"hot"``) or after a restart (``"restart"``), and help text. Validation, the
run-time :class:`ParamStore`, the API and ``docs/parameters.md`` all read these
declarations; nothing else restates a default or a range.

Names, defaults and ranges follow VOS3000 2.1.9.07 (users migrating from it know them).

``python -m control.params --markdown`` prints the parameter reference
(``docs/parameters.md`` is that output).
"""
from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

HOT = "hot"
RESTART = "restart"

_TYPES = (int, bool, list)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUE_WORDS = {"1", "on", "true", "yes"}
_FALSE_WORDS = {"0", "off", "false", "no"}


class ParamError(ValueError):
    """A parameter name or value was rejected; the message names the parameter and the rule."""

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name


class _Unparsable(Exception):
    """Raised inside parsing; turned into a ParamError that states the parameter's rule."""


@dataclass(frozen=True)
class Param:
    """One system parameter.

    ``type`` is ``int``, ``bool`` or ``list`` (a list of numbers, e.g. seconds between
    retransmissions, held as a tuple of floats). ``allowed`` is an inclusive ``(low, high)``
    tuple (for a list: the range of every item), or the fixed choices of an ``int`` as a
    mapping ``{value: label}`` or a set of values, or ``None`` for ``bool``.
    """

    name: str
    type: type
    default: Any
    allowed: Any
    applies: str
    help: str
    unit: str = ""
    multiple_of: int = 1
    max_items: int = 0

    def __post_init__(self):
        if self.type not in _TYPES:
            raise TypeError(f"{self.name}: unsupported parameter type {self.type!r}")
        if self.applies not in (HOT, RESTART):
            raise TypeError(f"{self.name}: applies must be {HOT!r} or {RESTART!r}")
        if isinstance(self.allowed, Mapping):
            object.__setattr__(self, "allowed", tuple(self.allowed.items()))
        elif isinstance(self.allowed, (set, frozenset)):
            object.__setattr__(self, "allowed", tuple((value, "") for value in sorted(self.allowed)))
        elif self.type is not bool and not (isinstance(self.allowed, tuple) and len(self.allowed) == 2):
            raise TypeError(f"{self.name}: allowed must be (low, high), choices, or None for bool")

    @property
    def choices(self) -> dict[int, str] | None:
        """``{value: label}`` for a parameter with a fixed set of values, else None."""
        if self.allowed and isinstance(self.allowed[0], tuple):
            return dict(self.allowed)
        return None

    @property
    def range(self) -> tuple[float, float] | None:
        """Inclusive ``(low, high)`` bounds (per item for a list), else None."""
        if self.allowed and not isinstance(self.allowed[0], tuple):
            return self.allowed
        return None

    @property
    def hot(self) -> bool:
        return self.applies == HOT

    def rule(self) -> str:
        """The allowed values in words, as used in error messages and the docs."""
        if self.type is bool:
            return "0 or 1 (Off/On)"
        if self.choices is not None:
            return "one of " + ", ".join(_choice_text(v, label) for v, label in self.choices.items())
        low, high = self.range
        unit = f" {self.unit}" if self.unit else ""
        if self.type is list:
            return (f"a comma-separated list of 1..{self.max_items} numbers, "
                    f"each in {_num(low)}..{_num(high)}{unit}")
        kind = {1: "an integer", 2: "an even integer"}.get(self.multiple_of,
                                                           f"an integer multiple of {self.multiple_of}")
        return f"{kind} in {low}..{high}{unit}"

    def parse(self, raw: Any) -> Any:
        """Parse and check one value (a native value or a string from the CLI/API)."""
        try:
            value = _PARSERS[self.type](self, raw)
        except _Unparsable:
            raise ParamError(f"{self.name} must be {self.rule()}, got {raw!r}", self.name) from None
        if not self._acceptable(value):
            shown = format_value(self, value)
            raise ParamError(f"{self.name} must be {self.rule()}, got {shown}", self.name)
        return value

    def _acceptable(self, value: Any) -> bool:
        if self.type is bool:
            return True
        if self.choices is not None:
            return value in self.choices
        low, high = self.range
        if self.type is list:
            return 1 <= len(value) <= self.max_items and all(low <= v <= high for v in value)
        return low <= value <= high and value % self.multiple_of == 0


def _choice_text(value: int, label: str) -> str:
    return f"{value} ({label})" if label else str(value)


def _num(value: float) -> str:
    """Shortest text for a number: 4.0 -> '4', 0.5 -> '0.5'."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _parse_int(param: Param, raw: Any) -> int:
    if isinstance(raw, bool):
        raise _Unparsable
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if not isinstance(raw, str):
        raise _Unparsable
    text = raw.strip()
    labelled = _value_for_label(param, text)
    if labelled is not None:
        return labelled
    if not _INTEGER.fullmatch(text):
        raise _Unparsable
    return int(text)


def _value_for_label(param: Param, text: str) -> int | None:
    """``"Must On"``, ``"must_on"`` and ``"MUSTON"`` all name choice 3 of SS_MEDIAPROXYMODE."""
    key = _label_key(text)
    for value, label in (param.choices or {}).items():
        if label and _label_key(label) == key:
            return value
    return None


def _label_key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _parse_bool(param: Param, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = raw.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _Unparsable


def _parse_list(param: Param, raw: Any) -> tuple[float, ...]:
    if isinstance(raw, str):
        items: Iterable[Any] = raw.split(",")
    elif isinstance(raw, (list, tuple)):
        items = raw
    else:
        raise _Unparsable
    return tuple(_parse_number(item) for item in items)


def _parse_number(raw: Any) -> float:
    if isinstance(raw, str) and _NUMBER.fullmatch(raw.strip()):
        value = float(raw)
    elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    else:
        raise _Unparsable
    if not math.isfinite(value):
        raise _Unparsable
    return value


_PARSERS: dict[type, Callable[[Param, Any], Any]] = {
    int: _parse_int,
    bool: _parse_bool,
    list: _parse_list,
}


def format_value(param: Param | str, value: Any) -> str:
    """A value as the CLI, the API and the docs show it; ``validate`` parses it back."""
    param = _lookup(param) if isinstance(param, str) else param
    if param.type is bool:
        return "On" if value else "Off"
    if param.type is list:
        return ",".join(_num(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Rule:
    """A check across parameters: ``check(*values of names)`` must hold."""

    names: tuple[str, ...]
    check: Callable[..., bool]
    text: str


_DECLARED = (
    # --- media proxy and relay (SPEC 1.1) ------------------------------------------------
    Param("SS_MEDIAPROXYMODE", int, 2, {0: "Off", 1: "On", 2: "Auto", 3: "Must On"}, HOT,
          "Media proxy mode. Off: media flows end to end. On: relay. Auto: relay when either "
          "side is behind NAT (private address in SDP/Contact, or SDP address differs from the "
          "signalling source) or transcoding or DTMF conversion is needed. Must On: always "
          "relay. A gateway's own mode overrides this per side; any side Must On relays, then "
          "any side Off goes direct, else the Auto rules. Default Auto: it relays exactly when "
          "media would otherwise fail or need conversion, and spares relay ports and bandwidth "
          "on calls that work end to end. Read at each call setup."),
    Param("SS_MEDIAPROXYPORT_START", int, 10000, (1024, 65535), RESTART,
          "First port of the media relay pool. RTP uses even ports, RTCP the next odd port, "
          "so the start must be even. The pool is bound when the media engine starts.",
          multiple_of=2),
    Param("SS_MEDIAPROXYPORT_END", int, 60000, (1024, 65535), RESTART,
          "Last port of the media relay pool (inclusive). When every port pair is in use, new "
          "calls that need the relay fail with a clear cause."),
    Param("SS_RTP_TIMEOUT", int, 30, (5, 3600), HOT,
          "Seconds without media on a leg (each direction counts on its own) before the call "
          "is ended with termination reason 'RTP Timeout'.", unit="s"),
    # --- DSCP (SPEC 1.2) -----------------------------------------------------------------
    Param("SS_QOS_RTP", int, 46, (0, 63), HOT,
          "DSCP for every RTP/RTCP socket (IP TOS byte = DSCP << 2; IPv6 traffic class the "
          "same). 46 is EF (TOS 0xB8). A change applies to sockets opened after it."),
    Param("SS_QOS_SIGNAL", int, 24, (0, 63), HOT,
          "DSCP for SIP sockets. 24 is CS3 (TOS 0x60). A change applies to sockets opened "
          "after it."),
    # --- voice processing on decoded legs (SPEC 1.3a) ------------------------------------
    Param("SS_VOICEGAIN", int, 0, (-10, 10), HOT,
          "Gain applied to decoded audio (transcoded or in-band DTMF legs only; relayed "
          "media is never touched). Applies to calls set up after the change.", unit="dB"),
    Param("SS_COMFORTNOISE", bool, True, None, HOT,
          "Generate comfort noise during silence on decoded legs."),
    Param("SS_ECHOCANCEL", bool, False, None, HOT,
          "Echo cancellation on decoded legs. Default Off: the endpoints and gateways at "
          "either end normally cancel their own echo, and a second canceller on a transit "
          "switch costs CPU on every decoded call."),
    Param("SS_ECHOCANCELTAIL", int, 128, {64, 128, 256}, HOT,
          "Echo canceller tail length (the longest echo delay it models).", unit="ms"),
    # --- adaptive jitter buffer (SPEC 1.4) -----------------------------------------------
    Param("SS_JITTERBUFFER_MODE", int, 1, {0: "Fixed", 1: "Adaptive"}, HOT,
          "Jitter buffer on the decode path (never on pure relay): Fixed holds "
          "SS_JITTERBUFFER_DEFAULT, Adaptive follows measured jitter within "
          "[SS_JITTERBUFFER_MIN, SS_JITTERBUFFER_MAX]. Applies to calls set up after the change."),
    Param("SS_JITTERBUFFER_MIN", int, 20, (0, 1000), HOT,
          "Smallest adaptive jitter buffer depth.", unit="ms"),
    Param("SS_JITTERBUFFER_MAX", int, 200, (0, 1000), HOT,
          "Largest adaptive jitter buffer depth.", unit="ms"),
    Param("SS_JITTERBUFFER_DEFAULT", int, 60, (0, 1000), HOT,
          "Starting jitter buffer depth (the fixed depth in Fixed mode).", unit="ms"),
    # --- SIP timers (SPEC 2) -------------------------------------------------------------
    Param("SS_SIP_RESEND_INTERVAL", list, (0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0),
          (0.01, 64), HOT,
          "Seconds between retransmissions of an unanswered SIP request over UDP, one value "
          "per retransmission; the transaction gives up after the last.",
          unit="s", max_items=32),
    Param("SS_SIP_TIMEOUT_INVITE", int, 10, (1, 300), HOT,
          "Seconds to wait for a final response to an INVITE before trying the next gateway "
          "(or failing the call).", unit="s"),
    Param("SS_SIP_TIMEOUT_RINGING", int, 120, (1, 600), HOT,
          "Seconds a call may ring (after 180/183) without an answer.", unit="s"),
    Param("SS_SIP_SESSION_TTL", int, 600, (90, 7200), HOT,
          "Session timer interval (RFC 4028), refreshed by re-INVITE or UPDATE; a failed "
          "refresh ends the call.", unit="s"),
    Param("SS_SIP_USER_AGENT_EXPIRE", int, 3600, (20, 7200), HOT,
          "Expiry requested when registering to upstream trunks. Default 3600 s, the expiry "
          "RFC 3261 assumes when none is given and the registrar's own default. Applies from "
          "the next registration.", unit="s"),
    # --- failover (SPEC 3.3) -------------------------------------------------------------
    Param("SS_SIP_STOP_SWITCH_AFTER_SDP", bool, True, None, HOT,
          "Stop trying further gateways once SDP has been negotiated with a vendor (for "
          "example a 183 with SDP: the caller may already hear that vendor's early media)."),
    Param("SS_SIP_USER_AGENT_STOP_SWITCH_AFTER_INVITE_TIMEOUT", bool, False, None, HOT,
          "Stop trying further gateways after an INVITE timeout instead of moving on to the "
          "next one."),
    # --- routing (SPEC 3.3) --------------------------------------------------------------
    Param("SS_GATEWAYASRROUTESORTCONFIG", list, (0, 3600, 10, 30), (0, 86400), HOT,
          "ASR sort of routing gateways, four numbers: enable (0/1), window in seconds, "
          "minimum calls in the window, threshold in percent. When enabled, a gateway whose "
          "answer-seizure ratio over the window (with at least the minimum calls) is below "
          "the threshold goes after the others of its prefix; then higher ASR first.",
          max_items=4),
    Param("SS_GATEWAYFEERATEROUTESORTCONFIG", list, (0, 0), (0, 1), HOT,
          "Cost sort (least-cost routing) of routing gateways, two numbers: enable (0/1) and "
          "direction (0: cheapest vendor rate first, 1: dearest first). The rate is the "
          "vendor's price for the number from the gateway's rate table; it orders gateways "
          "of one prefix before their priority.", max_items=2),
    Param("SS_GATEWAY_KEEPALIVE_INTERVAL", int, 30, (0, 3600), HOT,
          "Seconds between OPTIONS probes to each routing gateway (0: no probes, every "
          "gateway counts as reachable). A gateway that answers none of "
          "SS_GATEWAY_KEEPALIVE_FAILURES probes in a row is unreachable: routing skips it and "
          "a Vendor Unreachable alarm is raised until it answers again.", unit="s"),
    Param("SS_GATEWAY_KEEPALIVE_FAILURES", int, 3, (1, 100), HOT,
          "Unanswered OPTIONS probes in a row after which a routing gateway is unreachable."),
    Param("SS_ROUTE_POSITIVE_BALANCE_VENDOR_ONLY", bool, False, None, HOT,
          "Route calls only to vendors whose account has money left (balance + credit limit "
          "above zero); a vendor account is charged each answered call's cost. Off (the "
          "default): vendor balances are kept but do not decide routing."),
    # --- billing (SPEC 5) ----------------------------------------------------------------
    Param("SERVER_BILLING_FEE_PRECISTION", int, 2, (0, 4), HOT,
          "Decimal places of a call's fee (the name keeps VOS3000's spelling). Fees and "
          "reservations are rounded up to a multiple of the fee step, "
          "SERVER_BILLING_FEE_UNIT x 10^-precision; rate prices keep their own places."),
    Param("SERVER_BILLING_FEE_UNIT", int, 1, (1, 10000), HOT,
          "Smallest fee step, counted in units of the last decimal place of "
          "SERVER_BILLING_FEE_PRECISTION: with precision 2, 1 means 0.01 and 5 means 0.05. "
          "Default 1: the step is the precision's own smallest amount, so precision alone "
          "decides the rounding unless a coarser step is asked for."),
    Param("SERVER_BILLING_FREE_TIME", int, 0, (0, 3600), HOT,
          "Seconds of every answered call that are not billed: they are taken off the hold "
          "time before the billing units apply, and a call no longer than this costs "
          "nothing (no connection fee either). Default 0 (VOS3000's): every second is billed.",
          unit="s"),
    Param("SERVER_BILLING_HOLD_TIME_PRECISION", int, 50, (0, 999), HOT,
          "Rounding of the measured hold time to whole seconds: a fraction of at least this "
          "many milliseconds counts as a whole second, a smaller one is dropped (0: any "
          "fraction counts). Default 50 (VOS3000's): timer and signalling jitter of a few "
          "tens of milliseconds does not add a billing unit.", unit="ms"),
    Param("SERVER_BILLING_RECORD_ZERO_HOLD_TIME", bool, True, None, HOT,
          "Write a CDR for calls whose hold time is zero seconds (unanswered, refused, or "
          "answered and ended within the hold time precision). They are never charged. "
          "Default On (VOS3000's): every attempt is on record; turn Off to spare the "
          "database under a flood of failing calls."),
    Param("SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME", int, 1, (1, 15), HOT,
          "Minutes of the call's rate reserved from the account's funds at call setup; a "
          "call is admitted only if balance + credit limit covers every reservation.",
          unit="min"),
)

RULES = (
    Rule(("SS_MEDIAPROXYPORT_START", "SS_MEDIAPROXYPORT_END"), lambda start, end: start < end,
         "SS_MEDIAPROXYPORT_START must be less than SS_MEDIAPROXYPORT_END"),
    Rule(("SS_JITTERBUFFER_MIN", "SS_JITTERBUFFER_DEFAULT", "SS_JITTERBUFFER_MAX"),
         lambda low, start, high: low <= start <= high,
         "SS_JITTERBUFFER_MIN <= SS_JITTERBUFFER_DEFAULT <= SS_JITTERBUFFER_MAX must hold"),
)


def _index(declared: Iterable[Param]) -> dict[str, Param]:
    table: dict[str, Param] = {}
    for param in declared:
        if param.name in table:
            raise TypeError(f"parameter {param.name} is declared twice")
        table[param.name] = param
    return table


PARAMS: dict[str, Param] = _index(_DECLARED)


def _lookup(name: str) -> Param:
    try:
        return PARAMS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name).upper(), PARAMS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ParamError(f"unknown parameter {name!r}{hint}", str(name)) from None


def get_default(name: str) -> Any:
    """The declared default of ``name``."""
    return _lookup(name).default


def validate(name: str, value: Any) -> Any:
    """Parse and range-check one value; returns the parsed value or raises ParamError."""
    return _lookup(name).parse(value)


def check_consistency(values: Mapping[str, Any]) -> None:
    """Check the cross-parameter rules; names missing from ``values`` take their defaults."""
    for rule in RULES:
        current = [values[n] if n in values else PARAMS[n].default for n in rule.names]
        if not rule.check(*current):
            got = ", ".join(f"{n}={v}" for n, v in zip(rule.names, current))
            raise ParamError(f"{rule.text}, got {got}", rule.names[0])


def _check_declarations() -> None:
    """Every default must pass its own declaration; a bad declaration fails at import."""
    for param in PARAMS.values():
        if param.parse(param.default) != param.default:
            raise TypeError(f"{param.name}: default {param.default!r} is not in canonical form")
    for rule in RULES:
        for name in rule.names:
            _lookup(name)
    check_consistency({})


_check_declarations()

Listener = Callable[[str, Any], None]


class ParamStore:
    """Current parameter values of a running process, validated, with change listeners.

    Listeners registered with :meth:`on_change` are called as ``listener(name, value)`` for
    each changed parameter, so owners of hot parameters apply them at once. A change to a
    restart parameter is recorded (and heard by listeners, e.g. persistence) but takes
    effect on the next start; :meth:`needs_restart` reports it. ``update`` is atomic: if a
    value is invalid, a cross-parameter rule fails or a listener raises, nothing changes
    (listeners already told are told the old value again).
    """

    def __init__(self, values: Mapping[str, Any] | None = None):
        current = {name: param.default for name, param in PARAMS.items()}
        current.update({name: validate(name, v) for name, v in (values or {}).items()})
        check_consistency(current)
        self._values = current
        self._running = dict(current)
        self._listeners: list[tuple[frozenset[str] | None, Listener]] = []
        self._lock = threading.RLock()

    def get(self, name: str) -> Any:
        _lookup(name)
        return self._values[name]

    def values(self) -> dict[str, Any]:
        """A snapshot of every current value."""
        with self._lock:
            return dict(self._values)

    def set(self, name: str, value: Any) -> Any:
        """Validate and store one value; returns the parsed value."""
        return self.update({name: value})[name]

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and store several values at once (e.g. both ends of the port range)."""
        parsed = {name: validate(name, value) for name, value in changes.items()}
        with self._lock:
            old = self._values
            new = {**old, **parsed}
            check_consistency(new)
            changed = [name for name in parsed if parsed[name] != old[name]]
            self._values = new
            self._notify(changed, old, new)
        return parsed

    def on_change(self, listener: Listener, *names: str) -> Callable[[], None]:
        """Call ``listener(name, value)`` when any of ``names`` (default: every parameter)
        changes. Returns a function that removes the listener."""
        for name in names:
            _lookup(name)
        entry = (frozenset(names) if names else None, listener)
        with self._lock:
            self._listeners.append(entry)

        def remove() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)
        return remove

    def needs_restart(self, name: str) -> bool:
        """True when ``name`` applies at restart and its value changed since this start."""
        param = _lookup(name)
        return param.applies == RESTART and self._values[name] != self._running[name]

    def pending_restart(self) -> list[str]:
        """Every parameter whose changed value waits for a restart."""
        return [name for name in PARAMS if self.needs_restart(name)]

    def _notify(self, changed: list[str], old: dict, new: dict) -> None:
        told: list[tuple[Listener, str]] = []
        try:
            for name in changed:
                for names, listener in list(self._listeners):
                    if names is None or name in names:
                        listener(name, new[name])
                        told.append((listener, name))
        except BaseException as exc:
            self._values = old
            self._retell(told, old, exc)
            raise

    @staticmethod
    def _retell(told: list[tuple[Listener, str]], old: dict, exc: BaseException) -> None:
        for listener, name in reversed(told):
            try:
                listener(name, old[name])
            except Exception as again:  # the original failure is the one to report
                exc.add_note(f"restoring {name} in {listener!r} also failed: {again!r}")


def render_markdown() -> str:
    """The parameter reference, as written to docs/parameters.md."""
    lines = [
        "# System parameters",
        "",
        "Generated from `control/params.py` by `python -m control.params --markdown`;",
        "edit the declarations there, not this file.",
        "",
        "Names follow VOS3000 2.1.9.07, and so do defaults and ranges where it has them.",
        "Values may be given as native values or as text (CLI, API): integers in decimal,",
        "On/Off switches as `0`/`1`, `On`/`Off`, `true`/`false` or `yes`/`no`, choices by",
        "number or by label (`Auto`, `Must On`), lists as comma-separated numbers. An",
        "out-of-range value is rejected with a message naming the parameter and its range.",
        "",
        "*Applies*: **at once** — the new value is used from the next call, transaction or",
        "socket on, without a restart; **restart** — stored at once, used after the next",
        "start.",
        "",
        "| Parameter | Default | Allowed values | Applies | Description |",
        "|---|---|---|---|---|",
    ]
    for param in PARAMS.values():
        lines.append("| " + " | ".join((
            f"`{param.name}`",
            f"`{format_value(param, param.default)}`",
            _md(param.rule()),
            "at once" if param.hot else "restart",
            _md(param.help),
        )) + " |")
    lines += ["", "## Rules across parameters", ""]
    lines += [f"* {_md(rule.text)}." for rule in RULES]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m control.params", description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true",
                        help="print the parameter reference (docs/parameters.md) as Markdown")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    sys.stdout.write(render_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
