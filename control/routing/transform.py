"""Number transforms (dial plans), tech prefixes and caller number pools.

Everything here is pure: no I/O and no shared state. Gateways keep their plans as JSON and
compile them once with :func:`compile_dial_plan`; the call path then only calls
:meth:`DialPlan.apply`.

A dial plan is a JSON list of rule objects, applied in order, each to the result of the
previous one. Each rule has exactly one action:

``{"strip": N}``
    remove the first ``N`` characters (0-32).
``{"add": "text"}``
    prepend ``text``.
``{"replace": "old", "with": "new"}``
    if the number starts with ``old``, replace that prefix by ``new`` (``new`` may be ``""``).
``{"regex": "pattern", "sub": "replacement"}``
    if ``pattern`` matches the *whole* number (:func:`re.fullmatch`), the number becomes
    ``replacement``, where ``\\1`` or ``\\g<name>`` insert groups; otherwise it is unchanged.

Any rule may also carry ``"match": "prefix"``: the rule is skipped unless the current
number starts with ``prefix``. Example, for a carrier that wants national numbers with a
leading 0 and everything else in international form without ``+``::

    [{"match": "+44", "replace": "+44", "with": "0"},
     {"regex": "\\\\+(\\\\d+)", "sub": "\\\\1"}]

    "+442071234567" -> "02071234567"      "+33123456789" -> "33123456789"

Limits: at most 32 rules; ``regex`` and ``sub`` at most 256 characters; other texts at most
64 characters, without whitespace or control characters. :meth:`DialPlan.apply` never
raises and never truncates: a result may be empty or longer than :data:`MAX_NUMBER_LEN`,
and the caller decides what to do with it.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from collections.abc import Iterable, Sequence
from typing import Any

MAX_RULES = 32
MAX_STRIP = 32
MAX_REGEX_LEN = 256
MAX_TEXT_LEN = 64
MAX_NUMBER_LEN = 64
MAX_MULTIPLEXES = 1000

_ACTIONS = ("strip", "add", "replace", "regex")
_COMPANIONS = {"with": "replace", "sub": "regex"}
_KEYS = frozenset(_ACTIONS) | frozenset(_COMPANIONS) | {"match"}

# Group references in a compiled ``sub`` template are marked with private-use characters,
# which cannot occur in a validated template (they are not printable).
_MARK = 0xF0000


class TransformError(ValueError):
    """A dial plan or caller pool setting was rejected.

    ``field`` locates the value (e.g. ``callee_dial_plan[2].regex``), ``rule`` states what
    is wrong with it; the message is ``f"{field}: {rule}"``.
    """

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class DialPlanError(TransformError):
    """A dial plan was rejected by :func:`compile_dial_plan`."""


class CallerPoolError(TransformError):
    """A caller pool setting was rejected by :class:`CallerPool`."""


def _has_space(text: str) -> bool:
    """True if ``text`` has whitespace or control characters (never part of a number)."""
    return any(c.isspace() or not c.isprintable() for c in text)


def _text(value: Any, field: str, *, empty: bool = False, error: type = DialPlanError) -> str:
    """Check a number-like text: a string of printable, non-space characters."""
    if not isinstance(value, str):
        raise error(field, "must be a string")
    if not value and not empty:
        raise error(field, "must not be empty")
    if len(value) > MAX_TEXT_LEN:
        raise error(field, f"at most {MAX_TEXT_LEN} characters")
    if _has_space(value):
        raise error(field, "must not contain whitespace or control characters")
    return value


# --- rules -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Strip:
    count: int
    match: str

    def apply(self, number: str) -> str:
        return number[self.count:]

    def to_json(self) -> dict[str, Any]:
        return {"strip": self.count}


@dataclass(frozen=True, slots=True)
class _Add:
    text: str
    match: str

    def apply(self, number: str) -> str:
        return self.text + number

    def to_json(self) -> dict[str, Any]:
        return {"add": self.text}


@dataclass(frozen=True, slots=True)
class _Replace:
    old: str
    new: str
    match: str

    def apply(self, number: str) -> str:
        if number.startswith(self.old):
            return self.new + number[len(self.old):]
        return number

    def to_json(self) -> dict[str, Any]:
        return {"replace": self.old, "with": self.new}


@dataclass(frozen=True, slots=True)
class _Regex:
    pattern: re.Pattern[str]
    sub: str
    # The ``sub`` template split into literal texts (str) and group numbers (int), so that
    # applying needs no template parsing (Match.expand re-parses on every call).
    pieces: tuple[str | int, ...]
    match: str

    def apply(self, number: str) -> str:
        found = self.pattern.fullmatch(number)
        if found is None:
            return number
        # A group that took no part in the match inserts "", as Match.expand does.
        return "".join(p if isinstance(p, str) else (found.group(p) or "") for p in self.pieces)

    def to_json(self) -> dict[str, Any]:
        return {"regex": self.pattern.pattern, "sub": self.sub}


_Rule = _Strip | _Add | _Replace | _Regex


def _compile_template(pattern: re.Pattern[str], sub: str) -> tuple[str | int, ...]:
    """Split ``sub`` into literals and group numbers, with ``re``'s own template rules.

    A probe pattern with the same groups (numbers and names) matches a string of marker
    characters, one per group; expanding ``sub`` against it lets ``re`` resolve escapes and
    group references (raising :class:`re.error` on bad ones), and the markers in the result
    show where each group goes. The probe starts with its own marker so that ``\\g<0>``
    (the whole match) is told apart from ``\\1\\2...``.
    """
    names = {index: name for name, index in pattern.groupindex.items()}
    probe = [re.escape(chr(_MARK))]
    for index in range(1, pattern.groups + 1):
        marker = re.escape(chr(_MARK + index))
        probe.append(f"(?P<{names[index]}>{marker})" if index in names else f"({marker})")
    subject = "".join(chr(_MARK + i) for i in range(pattern.groups + 1))
    expanded = re.compile("".join(probe)).fullmatch(subject).expand(sub)

    pieces: list[str | int] = []
    literal: list[str] = []
    skip = 0
    for char in expanded:
        if skip:
            skip -= 1  # the group markers that follow a whole-match marker
            continue
        code = ord(char) - _MARK
        if not 0 <= code <= pattern.groups:
            literal.append(char)
            continue
        if literal:
            pieces.append("".join(literal))
            literal = []
        pieces.append(code)
        if code == 0:
            skip = pattern.groups
    if literal:
        pieces.append("".join(literal))
    return tuple(pieces)


def _compile_rule(rule: Any, field: str) -> _Rule:
    if not isinstance(rule, dict):
        raise DialPlanError(field, "must be a rule object")
    if not rule:
        raise DialPlanError(field, "empty rule")
    for key in rule:
        if key not in _KEYS:
            raise DialPlanError(f"{field}.{key}", f"unknown key (allowed: {', '.join(sorted(_KEYS))})")
    actions = [key for key in _ACTIONS if key in rule]
    if not actions:
        raise DialPlanError(field, f"needs one action: {', '.join(_ACTIONS)}")
    if len(actions) > 1:
        raise DialPlanError(field, f"more than one action ({', '.join(actions)})")
    action = actions[0]
    for key, owner in _COMPANIONS.items():
        if key in rule and owner != action:
            raise DialPlanError(f"{field}.{key}", f"only allowed with {owner}")
        if owner == action and key not in rule:
            raise DialPlanError(f"{field}.{key}", f"required with {owner}")

    match = _text(rule["match"], f"{field}.match") if "match" in rule else ""
    value = rule[action]
    where = f"{field}.{action}"
    if action == "strip":
        # bool is an int subclass, but {"strip": true} is surely a mistake
        if not isinstance(value, int) or isinstance(value, bool):
            raise DialPlanError(where, "must be an integer")
        if not 0 <= value <= MAX_STRIP:
            raise DialPlanError(where, f"must be 0-{MAX_STRIP}")
        return _Strip(value, match)
    if action == "add":
        return _Add(_text(value, where), match)
    if action == "replace":
        return _Replace(_text(value, where), _text(rule["with"], f"{field}.with", empty=True), match)

    if not isinstance(value, str):
        raise DialPlanError(where, "must be a string")
    if not value:
        raise DialPlanError(where, "must not be empty")
    if len(value) > MAX_REGEX_LEN:
        raise DialPlanError(where, f"at most {MAX_REGEX_LEN} characters")
    try:
        pattern = re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise DialPlanError(where, f"does not compile: {exc}") from None
    sub, sub_field = rule["sub"], f"{field}.sub"
    if not isinstance(sub, str):
        raise DialPlanError(sub_field, "must be a string")
    if len(sub) > MAX_REGEX_LEN:
        raise DialPlanError(sub_field, f"at most {MAX_REGEX_LEN} characters")
    if _has_space(sub):
        raise DialPlanError(sub_field, "must not contain whitespace or control characters")
    try:
        pieces = _compile_template(pattern, sub)
    except (re.error, IndexError) as exc:  # IndexError: an unknown \g<name>
        raise DialPlanError(sub_field, f"bad replacement: {exc}") from None
    # escapes such as \n are only seen once the template is parsed
    if any(isinstance(p, str) and _has_space(p) for p in pieces):
        raise DialPlanError(sub_field, "must not produce whitespace or control characters")
    return _Regex(pattern, sub, pieces, match)


# --- dial plans --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialPlan:
    """A compiled, immutable dial plan; build one with :func:`compile_dial_plan`."""

    _rules: tuple[_Rule, ...] = ()

    def apply(self, number: str) -> str:
        """Transform ``number``. Never raises; the caller checks the result's length."""
        for rule in self._rules:
            if number.startswith(rule.match):  # "" (no match key) is a prefix of anything
                number = rule.apply(number)
        return number

    @property
    def rules(self) -> list[dict[str, Any]]:
        """The normalized rules, ready to store as JSON (a fresh list on each access)."""
        out = []
        for rule in self._rules:
            item = rule.to_json()
            if rule.match:
                item["match"] = rule.match
            out.append(item)
        return out

    @property
    def is_identity(self) -> bool:
        """True when the plan has no rules (a plan with rules may still change nothing)."""
        return not self._rules


IDENTITY = DialPlan()


def compile_dial_plan(rules: Sequence[Any] | None, field: str) -> DialPlan:
    """Validate and compile a dial plan given as decoded JSON (a list of rule objects).

    ``field`` names the setting in error messages, e.g. ``callee_dial_plan``; a broken
    rule raises :class:`DialPlanError` for ``callee_dial_plan[2].regex`` and the like.
    ``None`` or an empty list gives the identity plan.
    """
    if rules is None:
        return IDENTITY
    if not isinstance(rules, (list, tuple)):
        raise DialPlanError(field, "must be a list of rule objects")
    if len(rules) > MAX_RULES:
        raise DialPlanError(field, f"at most {MAX_RULES} rules (got {len(rules)})")
    return DialPlan(tuple(_compile_rule(rule, f"{field}[{i}]") for i, rule in enumerate(rules)))


def with_tech_prefix(number: str, gateway_prefix: str | None) -> str:
    """``number`` with the gateway's tech prefix in front (none when empty or ``None``)."""
    return (gateway_prefix or "") + number


# --- caller pools ------------------------------------------------------------------------


class CallerPool:
    """Caller numbers a routing gateway presents, each shared by at most ``multiplexes`` calls.

    ``mode`` is ``"round_robin"`` (go through the list in order, continuing after the number
    last handed out) or ``"random"`` (uniformly among the numbers not in full use; pass a
    seeded :class:`random.Random` as ``rng`` for reproducible picks).

    Not thread-safe, by design: the SIP event loop that owns a pool is single-threaded.
    Counts live in this object only, so a call must release to the pool it acquired from.
    """

    MODES = ("random", "round_robin")

    def __init__(
        self,
        numbers: Iterable[str],
        mode: str = "round_robin",
        multiplexes: int = 1,
        rng: random.Random | None = None,
    ):
        if isinstance(numbers, str) or not isinstance(numbers, Iterable):
            raise CallerPoolError("caller_pool", "must be a list of numbers")
        checked: dict[str, None] = {}  # ordered, with quick duplicate checks
        for i, number in enumerate(numbers):
            number = _text(number, f"caller_pool[{i}]", error=CallerPoolError)
            if number in checked:
                raise CallerPoolError(f"caller_pool[{i}]", f"duplicate number {number}")
            checked[number] = None
        if mode not in self.MODES:
            raise CallerPoolError("caller_pool_mode", f"must be one of {', '.join(self.MODES)}")
        if not isinstance(multiplexes, int) or isinstance(multiplexes, bool):
            raise CallerPoolError("caller_pool_multiplexes", "must be an integer")
        if not 1 <= multiplexes <= MAX_MULTIPLEXES:
            raise CallerPoolError("caller_pool_multiplexes", f"must be 1-{MAX_MULTIPLEXES}")

        self._numbers = tuple(checked)
        self._mode = mode
        self._multiplexes = multiplexes
        self._rng = rng if rng is not None else random.Random()
        self._uses = dict.fromkeys(self._numbers, 0)
        self._cursor = 0  # round robin: where the next search starts

    @property
    def numbers(self) -> tuple[str, ...]:
        return self._numbers

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def multiplexes(self) -> int:
        return self._multiplexes

    def acquire(self) -> str | None:
        """Take one use of a number that is not in full use; ``None`` if there is none."""
        if self._mode == "random":
            free = [n for n in self._numbers if self._uses[n] < self._multiplexes]
            if not free:
                return None
            number = self._rng.choice(free)
        else:
            count = len(self._numbers)
            for step in range(count):
                index = (self._cursor + step) % count
                if self._uses[self._numbers[index]] < self._multiplexes:
                    break
            else:
                return None
            number = self._numbers[index]
            self._cursor = (index + 1) % count
        self._uses[number] += 1
        return number

    def release(self, number: str) -> None:
        """End one use of ``number``; unknown numbers and extra releases are ignored."""
        if self._uses.get(number, 0) > 0:
            self._uses[number] -= 1

    def in_use(self, number: str) -> int:
        """How many calls currently use ``number`` (0 for numbers not in the pool)."""
        return self._uses.get(number, 0)

    def __len__(self) -> int:
        return len(self._numbers)

    def __repr__(self) -> str:
        return f"CallerPool({len(self)} numbers, mode={self._mode!r}, multiplexes={self._multiplexes})"
