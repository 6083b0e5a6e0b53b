"""Prefix index over all routing gateways: number → every matching prefix and its gateways.

Each routing gateway serves a set of prefixes (ASCII digits, at most 32; the empty prefix
``""`` serves every number) and a prefix may be served by many gateways. Routing asks, for
a dialled number, which prefixes of it are served, longest first: the longest group is
tried first and, in extension mode, the broader prefixes follow as fallback.

The index is one dict from prefix to the tuple of gateway ids serving it (ascending)
plus the distinct prefix lengths, longest first, the same layout as
:class:`control.billing.rates.RateTable`. A lookup slices the number at each distinct
length and probes the dict: one hash probe per length (a dozen or so in real data),
whatever the number of prefixes or gateways. A sorted prefix list needs a bisection per
shortening step and a trie costs several objects per prefix; both were slower in this
code base (``benchmarks/rate_import.py``). Memory stays small because a prefix holds one
tuple, and prefixes served by the same gateways share that tuple.

An index is immutable once built: the switch builds a new one when a gateway's prefixes
change and swaps the reference, so calls being routed never see a half-applied change
and readers need no lock.
"""
from __future__ import annotations

from typing import Iterable, Iterator

MAX_PREFIX = 32          # the store's prefix column

Match = tuple[str, tuple[int, ...]]


class PrefixIndex:
    """An immutable many-to-many map prefix ↔ gateway id with all-prefixes lookup."""

    __slots__ = ("_ids", "_lengths")

    def __init__(self) -> None:
        """An empty index; use :meth:`build` to fill one."""
        self._set({})

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, int]]) -> PrefixIndex:
        """An index of ``(prefix, gateway_id)`` pairs; repeated pairs count once.
        Raises ValueError naming the prefix and gateway of the first bad pair."""
        grouped: dict[str, list[int]] = {}
        for prefix, gateway in pairs:
            # One cheap test passes the usual pair; _check says what is wrong with the rest.
            if not (prefix.__class__ is str and len(prefix) <= MAX_PREFIX
                    and (prefix.isdigit() and prefix.isascii() or prefix == "")
                    and gateway.__class__ is int):
                _check(prefix, gateway)
            ids = grouped.get(prefix)
            if ids is None:
                grouped[prefix] = [gateway]
            else:
                ids.append(gateway)
        # Real gateways share prefix sets (a carrier's whole deck), so one tuple is kept
        # per distinct set of ids instead of one per prefix.
        shared: dict[tuple[int, ...], tuple[int, ...]] = {}
        table: dict[str, tuple[int, ...]] = {}
        for prefix, ids in grouped.items():
            key = (ids[0],) if len(ids) == 1 else tuple(sorted(set(ids)))
            table[prefix] = shared.setdefault(key, key)
        index = cls.__new__(cls)
        index._set(table)
        return index

    def _set(self, table: dict[str, tuple[int, ...]]) -> None:
        self._ids = table
        # Longest first, so the empty prefix (length 0), if any, is probed last.
        self._lengths = tuple(sorted({len(p) for p in table}, reverse=True))

    # ------------------------------------------------------------------ lookup

    def matches(self, number: str) -> list[Match]:
        """Every prefix of ``number`` in the index with its gateway ids (ascending),
        longest first; the empty prefix, if present, last. Empty list: none."""
        get = self._ids.get
        size = len(number)
        found = []
        for length in self._lengths:
            if length <= size:      # a longer prefix cannot be a prefix of this number
                prefix = number[:length]
                ids = get(prefix)
                if ids is not None:
                    found.append((prefix, ids))
        return found

    def longest(self, number: str) -> Match | None:
        """The longest prefix of ``number`` in the index with its gateway ids, or None."""
        get = self._ids.get
        size = len(number)
        for length in self._lengths:
            if length <= size:
                prefix = number[:length]
                ids = get(prefix)
                if ids is not None:
                    return prefix, ids
        return None

    def gateways_for_prefix(self, prefix: str) -> tuple[int, ...]:
        """The gateway ids serving exactly this prefix (ascending); () if none."""
        return self._ids.get(prefix, ())

    # ------------------------------------------------------------------ contents

    def pairs(self) -> Iterator[tuple[str, int]]:
        """Every ``(prefix, gateway_id)`` pair once, by prefix then id: ``build`` of
        them gives an equal index."""
        for prefix in sorted(self._ids):
            for gateway in self._ids[prefix]:
                yield prefix, gateway

    def __len__(self) -> int:
        """The number of distinct prefixes."""
        return len(self._ids)

    def __contains__(self, prefix: object) -> bool:
        return prefix in self._ids

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PrefixIndex):
            return NotImplemented
        return self._ids == other._ids

    __hash__ = None      # type: ignore[assignment]  # equal by content, like a dict

    def __repr__(self) -> str:
        return f"<PrefixIndex: {len(self)} prefixes>"


def _check(prefix: object, gateway: object) -> None:
    """Raise ValueError saying what is wrong with the pair (its prefix or gateway id)."""
    if not isinstance(gateway, int) or isinstance(gateway, bool):
        problem = f"gateway id {gateway!r} is not an int"
    elif not isinstance(prefix, str):
        problem = f"{prefix!r} is not text; give the digits as a string (leading zeros count)"
    elif not (prefix.isascii() and prefix.isdigit()) and prefix != "":
        problem = f"{prefix!r} is not all digits 0-9"
    elif len(prefix) > MAX_PREFIX:
        problem = f"{len(prefix)} digits, at most {MAX_PREFIX}"
    else:
        return
    raise ValueError(f"prefix {prefix!r} of gateway {gateway!r}: {problem}")
