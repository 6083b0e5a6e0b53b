"""Rate tables: prefix → price per minute and billing units; the longest prefix wins.

A row is ``prefix, price, first_unit, next_unit[, connection_fee[, area]]``:

* ``prefix`` — 1 to 32 ASCII digits, unique in the table;
* ``price`` — per minute, exact, ≥ 0, at most 6 decimal places (the store's price column);
* ``first_unit`` / ``next_unit`` — whole seconds, 1–3600: the first part of a call is
  billed as ``first_unit`` seconds, the rest in steps of ``next_unit`` (60/60, 30/6, 1/1);
* ``connection_fee`` — once per billed call, ≥ 0, at most 4 places; empty or absent: 0;
* ``area`` — the destination's name for people (``"Germany Mobile"``); may be empty.

A bad row stops the import with a :class:`RateImportError` naming the line (CSV) or row
(iterable), the field and what is wrong; nothing half-imported is ever used.

The index is one dict from prefix to :class:`Rate` plus the distinct prefix lengths,
longest first. A lookup slices the number at each length and probes the dict, so it
costs one hash probe per distinct prefix length (about a dozen in real decks) whatever
the table's size. A sorted list of prefixes (``sortedcontainers``) needs a bisection per
shortening step and was slower in ``benchmarks/rate_import.py``; a trie costs several
objects per row. Tables are immutable once built: the store builds a new one (or
:meth:`RateTable.updated`) and swaps the reference, so calls in progress never see a
half-applied change and readers need no lock.
"""
from __future__ import annotations

import csv
import os
from array import array
from decimal import Decimal
from typing import IO, Iterable, Iterator, NamedTuple, Sequence

from control.reasons import RATE_NOT_FOUND

from .money import ZERO, MoneyError, to_decimal

COLUMNS = ("prefix", "price", "first_unit", "next_unit", "connection_fee", "area")
REQUIRED = 4                 # the first four columns must be given
MAX_PREFIX = 32              # the store's prefix column
PRICE_PLACES = 6             # the store's price column
FEE_PLACES = 4               # the store's money column
MAX_UNIT = 3600              # an hour: beyond it a "unit" is a flat fee
MAX_AREA = 128


class Rate(NamedTuple):
    """One row of a rate table. A tuple: small and fast to build a million of."""

    prefix: str
    price: Decimal                   # per minute
    first_unit: int = 60             # seconds billed for the start of the call
    next_unit: int = 60              # seconds of each further step
    connection_fee: Decimal = ZERO   # once per billed call
    area: str = ""


class RateImportError(ValueError):
    """A row was refused; ``line`` is the CSV line or the 1-based row of an iterable."""

    def __init__(self, where: str, line: int, field: str | None, message: str):
        place = f"{where} {line}" + (f", field {field}" if field else "")
        super().__init__(f"{place}: {message}")
        self.line = line
        self.field = field


class RateNotFound(LookupError):
    """No prefix of the number is in the table (termination reason ``Rate Not Found``)."""

    reason = RATE_NOT_FOUND

    def __init__(self, number: str, table: str = ""):
        where = f" in rate table {table!r}" if table else ""
        super().__init__(f"{RATE_NOT_FOUND.name}: no prefix of {number!r}{where}")
        self.number = number
        self.table = table


class RateTable:
    """An immutable rate table with longest-prefix lookup."""

    __slots__ = ("name", "_rates", "_lengths")

    def __init__(self, rows: Iterable[Sequence] = (), name: str = ""):
        """Rows are tuples in :data:`COLUMNS` order (4 to 6 values; amounts as text,
        int or Decimal, never float). Raises :class:`RateImportError` on a bad row."""
        self.name = name
        self._set(_Reader("row").read(enumerate(rows, 1)))

    @classmethod
    def from_csv(cls, source: str | os.PathLike | IO[str], name: str = "") -> RateTable:
        """Read CSV whose first line names the columns (any order; ``prefix``, ``price``,
        ``first_unit`` and ``next_unit`` required). ``source`` is a path or a text file."""
        if isinstance(source, (str, os.PathLike)):
            with open(source, newline="", encoding="utf-8-sig") as f:
                return cls.from_csv(f, name)
        table = cls.__new__(cls)
        table.name = name
        table._set(_Reader("line").read(_csv_rows(source)))
        return table

    def _set(self, rates: dict[str, Rate]) -> None:
        self._rates = rates
        self._lengths = tuple(sorted({len(p) for p in rates}, reverse=True))

    # ------------------------------------------------------------------ lookup

    def lookup(self, number: str) -> Rate | None:
        """The rate of the longest prefix of ``number`` (digits as routed), or None."""
        get = self._rates.get
        size = len(number)
        for length in self._lengths:
            if length <= size:
                rate = get(number[:length])
                if rate is not None:
                    return rate
        return None

    def rate_for(self, number: str) -> Rate:
        """Like :meth:`lookup`, but a miss raises :class:`RateNotFound`."""
        rate = self.lookup(number)
        if rate is None:
            raise RateNotFound(number, self.name)
        return rate

    def get(self, prefix: str) -> Rate | None:
        """The row of exactly this prefix."""
        return self._rates.get(prefix)

    def __len__(self) -> int:
        return len(self._rates)

    def __iter__(self) -> Iterator[Rate]:
        return iter(self._rates.values())

    def __contains__(self, prefix: object) -> bool:
        return prefix in self._rates

    def __repr__(self) -> str:
        return f"<RateTable {self.name!r}: {len(self)} rates>"

    # ------------------------------------------------------------------ change

    def updated(self, rows: Iterable[Sequence] = (), remove: Iterable[str] = ()) -> RateTable:
        """A new table with ``rows`` added or replacing rows of the same prefix and the
        ``remove`` prefixes gone; this one is unchanged. Cheaper than a full import."""
        rates = dict(self._rates)
        for prefix in remove:
            if rates.pop(prefix, None) is None:
                raise KeyError(f"rate table {self.name!r} has no prefix {prefix!r}")
        rates.update(_Reader("row").read(enumerate(rows, 1)))
        table = RateTable.__new__(RateTable)
        table.name = self.name
        table._set(rates)
        return table


def _csv_rows(source: IO[str]) -> Iterator[tuple[int, Sequence]]:
    """(line, values in COLUMNS order) for each non-blank CSV line after the header."""
    reader = csv.reader(source)
    header = next(reader, None)
    while header is not None and not any(v.strip() for v in header):
        header = next(reader, None)
    if header is None:
        raise RateImportError("line", 1, None, "empty file: expected a header line naming "
                              "the columns " + ", ".join(COLUMNS))
    order = _column_order(header, reader.line_num)
    width = len(header)
    identity = order == list(range(width))      # the columns in COLUMNS order: rows as read
    for row in reader:
        if len(row) != width:
            if not row or not any(v.strip() for v in row):
                continue          # blank line
            raise RateImportError("line", reader.line_num, None,
                                  f"{len(row)} fields, but the header has {width}")
        yield reader.line_num, row if identity else ["" if i is None else row[i] for i in order]


def _column_order(header: list[str], line: int) -> list[int | None]:
    # A byte-order mark survives when the caller opened the file without utf-8-sig.
    names = [h.strip().lstrip("\ufeff").lower().replace(" ", "_").replace("-", "_") for h in header]
    for name in names:
        if name not in COLUMNS:
            first = header[0].strip()
            hint = (" (the first line must name the columns)"
                    if first.isascii() and first.isdigit() else "")
            raise RateImportError("line", line, None, f"unknown column {name!r}{hint}; "
                                  "expected " + ", ".join(COLUMNS))
        if names.count(name) > 1:
            raise RateImportError("line", line, None, f"column {name!r} appears twice")
    missing = [c for c in COLUMNS[:REQUIRED] if c not in names]
    if missing:
        raise RateImportError("line", line, None, "missing column " + ", ".join(missing))
    if names == list(COLUMNS[:len(names)]):
        return list(range(len(names)))
    # Where each column of COLUMNS is in the file; None: absent (read as empty).
    return [names.index(c) if c in names else None for c in COLUMNS]


def _cached(cache: dict, value: object):
    """The parsed form of a value seen before, else None. Floats and bools are never
    cached: 0.5 == Decimal("0.5") and True == 1, yet both must be refused."""
    if value.__class__ is float or value.__class__ is bool:
        return None
    try:
        return cache.get(value)
    except TypeError:           # unhashable: the slow path names the field
        return None


class _Reader:
    """Validates rows into Rates. Repeated values (prices, units, areas) are parsed once
    and shared: real decks have a few thousand distinct prices over a million rows, so
    this is most of the import speed and memory."""

    def __init__(self, where: str):
        self.where = where
        self._prices: dict[object, Decimal] = {}
        self._fees: dict[object, Decimal] = {"": ZERO, None: ZERO}
        self._units: dict[object, int] = {}
        self._areas: dict[str, str] = {"": ""}

    def read(self, rows: Iterable[tuple[int, Sequence]]) -> dict[str, Rate]:
        rates: dict[str, Rate] = {}
        lines = array("Q")          # line of each row, to name the first of a duplicate
        prices, fees, units = self._prices, self._fees, self._units
        for line, row in rows:
            n = len(row)
            if not REQUIRED <= n <= len(COLUMNS):
                raise RateImportError(self.where, line, None, f"{n} values; expected "
                                      f"{', '.join(COLUMNS[:REQUIRED])}[, connection_fee[, area]]")
            prefix = row[0]
            if not (prefix.__class__ is str and prefix.isdigit() and prefix.isascii()
                    and len(prefix) <= MAX_PREFIX):
                prefix = self._prefix(prefix, line)
            price = _cached(prices, row[1])
            if price is None:
                price = self._amount(prices, row[1], PRICE_PLACES, "price", line)
            first = _cached(units, row[2])
            if first is None:
                first = self._unit(row[2], "first_unit", line)
            following = _cached(units, row[3])
            if following is None:
                following = self._unit(row[3], "next_unit", line)
            fee = ZERO
            if n > 4:
                fee = _cached(fees, row[4])
                if fee is None:
                    fee = self._amount(fees, row[4], FEE_PLACES, "connection_fee", line)
            area = self._area(row[5], line) if n > 5 else ""
            rate = Rate(prefix, price, first, following, fee, area)
            if rates.setdefault(prefix, rate) is not rate:
                first_line = lines[list(rates).index(prefix)]
                raise RateImportError(self.where, line, "prefix",
                                      f"{prefix} repeats {self.where} {first_line}")
            lines.append(line)
        return rates

    def _prefix(self, value: object, line: int) -> str:
        text = value.strip() if isinstance(value, str) else value
        if not isinstance(text, str):
            problem = f"{value!r} is not text; give the digits as a string (leading zeros count)"
        elif not text:
            problem = "empty"
        elif not (text.isascii() and text.isdigit()):
            problem = f"{text!r} is not all digits 0-9"
        elif len(text) > MAX_PREFIX:
            problem = f"{len(text)} digits, at most {MAX_PREFIX}"
        else:
            return text
        raise RateImportError(self.where, line, "prefix", problem)

    def _amount(self, cache: dict, value: object, places: int, field: str, line: int) -> Decimal:
        try:
            amount = to_decimal(value, places)
        except MoneyError as exc:
            raise RateImportError(self.where, line, field, str(exc)) from None
        cache[value] = amount
        return amount

    def _unit(self, value: object, field: str, line: int) -> int:
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and text.isascii() and text.isdigit():
            seconds = int(text)
        elif isinstance(text, int) and not isinstance(text, bool):
            seconds = text
        else:
            raise RateImportError(self.where, line, field, f"{value!r} is not a whole number "
                                  "of seconds")
        if not 1 <= seconds <= MAX_UNIT:
            raise RateImportError(self.where, line, field, f"{seconds} s is outside 1..{MAX_UNIT}")
        self._units[value] = seconds
        return seconds

    def _area(self, value: object, line: int) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise RateImportError(self.where, line, "area", f"{value!r} is not text")
        area = value.strip()
        if len(area) > MAX_AREA:
            raise RateImportError(self.where, line, "area", f"{len(area)} characters, "
                                  f"at most {MAX_AREA}")
        return self._areas.setdefault(area, area)
