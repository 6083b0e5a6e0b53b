"""Rate tables, work calendars and package period rates: kept in the store, held in memory
for the call path, changed only through here so both stay in step.

Records are named (as operators and accounts refer to them); the store's integer ids stay
inside this module and :mod:`control.services.accounts`, which asks :meth:`Tariffs.id_of`
and :meth:`Tariffs.name_of` to translate an account's references.
"""
from __future__ import annotations

import csv
import io
import threading

from control.accounts import AccountError, Actor, Module, Right
from control.accounts.validation import clean_text
from control.billing.calendar import CalendarError, PeriodRate, WorkCalendar
from control.billing.rates import COLUMNS, RateImportError, RateTable
from control.store import Conflict, entities
from control.store import rates as store_rates

# entity (store table) -> the field name an account uses for a reference to it
KINDS = {"rate_tables": "rate_table", "work_calendars": "work_calendar", "period_rates": "period_rate"}
# the management module whose rights govern each kind (a period rate is priced like a rate table)
MODULE_OF = {"rate_tables": Module.RATE_TABLES, "period_rates": Module.RATE_TABLES,
             "work_calendars": Module.CALENDARS}
_CALENDAR_FIELDS = ("working_weekdays", "work_start", "work_end", "holidays", "time_zone")


class Tariffs:
    def __init__(self, store, guard):
        self.store = store
        self._require = guard                  # AccountDirectory.require: rights of the actor
        self._lock = threading.RLock()
        self.tables: dict[str, RateTable] = {}
        self.calendars: dict[str, WorkCalendar] = {}
        self.period_rates: dict[str, PeriodRate[str]] = {}
        self._rows: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}   # kind -> name -> row

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Everything from the store (at start)."""
        with self._lock:
            for row in entities.find(self.store, "rate_tables"):
                self._rows["rate_tables"][row["name"]] = row
                self.tables[row["name"]] = self._read_table(row)
            for row in entities.find(self.store, "work_calendars"):
                self._rows["work_calendars"][row["name"]] = row
                self.calendars[row["name"]] = _calendar(row)
            for row in entities.find(self.store, "period_rates"):
                self._rows["period_rates"][row["name"]] = row
                self.period_rates[row["name"]] = self._period_rate(row)

    def _read_table(self, row: dict) -> RateTable:
        rows = ((r["prefix"], r["price"], r["first_unit"], r["next_unit"], r["connection_fee"], r["area"])
                for r in store_rates.rates_of(self.store, row["id"]))
        return RateTable(rows, name=row["name"])

    def _period_rate(self, row: dict) -> PeriodRate[str]:
        return PeriodRate(row["name"], self.calendars[self.name_of("work_calendars", row["work_calendar_id"])],
                          self.name_of("rate_tables", row["working_rate_table_id"]),
                          self.name_of("rate_tables", row["non_working_rate_table_id"]))

    # ------------------------------------------------------------------ references

    def id_of(self, kind: str, name: str, field: str | None = None) -> int | None:
        """The store id of a named record; "" is no reference (None). An unknown name is
        an error naming ``field`` (default: the account field that refers to the kind)."""
        if not name:
            return None
        return self._row(kind, name, field or KINDS[kind])["id"]

    def _row(self, kind: str, name, field: str) -> dict:
        row = self._rows[kind].get(str(name or ""))
        if row is None:
            raise AccountError(field, f"no {kind[:-1].replace('_', ' ')} {name!r}")
        return row

    def name_of(self, kind: str, id: int | None) -> str:
        if id is None:
            return ""
        for name, row in self._rows[kind].items():
            if row["id"] == id:
                return name
        raise LookupError(f"{kind} id {id} is not loaded")

    # ------------------------------------------------------------------ the call path

    def table_for(self, rate_table: str, period_rate: str, start: float) -> RateTable | None:
        """The customer's table for a call set up at ``start`` (Unix seconds): its
        package period rate's choice by the work calendar if it has one, else its default
        rate table; None when it has neither (the call is not rated)."""
        if period_rate:
            chosen = self.period_rates.get(period_rate)
            if chosen is not None:
                return self.tables.get(chosen.table_for(start))
        return self.tables.get(rate_table) if rate_table else None

    # ------------------------------------------------------------------ rate tables

    def list(self, actor: Actor, kind: str) -> list[dict]:
        self._require(actor, MODULE_OF[kind], Right.VIEW)
        with self._lock:
            rows = [dict(row) for row in self._rows[kind].values()]
            if kind == "rate_tables":
                for row in rows:
                    row["rates"] = len(self.tables[row["name"]])
            return rows

    def create_rate_table(self, actor: Actor, name: str, memo: str = "") -> dict:
        self._require(actor, Module.RATE_TABLES, Right.ADD)
        name = clean_text("name", name, required=True)
        with self._lock:
            if name in self._rows["rate_tables"]:
                raise AccountError("name", f"rate table {name!r} already exists")
            row = entities.create(self.store, "rate_tables", {"name": name, "memo": str(memo)},
                                  operator=actor.label)
            self._rows["rate_tables"][name] = row
            self.tables[name] = RateTable(name=name)
            return dict(row, rates=0)

    def import_rates(self, actor: Actor, name: str, csv_text: str) -> int:
        """Replace a table's rates with a CSV deck (header naming the columns); the store
        and the call path switch to the new deck together, or neither does."""
        self._require(actor, Module.RATE_TABLES, Right.EDIT)
        table_id = self._row("rate_tables", name, "name")["id"]
        try:
            table = RateTable.from_csv(io.StringIO(csv_text), name=name)
        except RateImportError as exc:
            raise AccountError(exc.field or "csv", str(exc)) from None
        with self._lock:
            count = store_rates.replace_rates(self.store, table_id, (_rate_row(r) for r in table),
                                              operator=actor.label)
            self.tables[name] = table
            return count

    def export_rates(self, actor: Actor, name: str) -> str:
        self._require(actor, Module.RATE_TABLES, Right.VIEW)
        self._row("rate_tables", name, "name")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for rate in sorted(self.tables[name], key=lambda r: r.prefix):
            writer.writerow([rate.prefix, rate.price, rate.first_unit, rate.next_unit,
                             rate.connection_fee, rate.area])
        return out.getvalue()

    def rate_lookup(self, actor: Actor, name: str, number: str) -> dict | None:
        self._require(actor, Module.RATE_TABLES, Right.VIEW)
        self._row("rate_tables", name, "name")
        rate = self.tables[name].lookup(number)
        return None if rate is None else rate._asdict()

    # ------------------------------------------------------------------ calendars, period rates

    def save_calendar(self, actor: Actor, name: str, fields: dict) -> dict:
        """Create a work calendar or change one; every period rate using it follows."""
        name = clean_text("name", name, required=True)
        unknown = set(fields) - set(_CALENDAR_FIELDS)
        if unknown:
            raise AccountError(sorted(unknown)[0], "unknown work calendar field")
        with self._lock:
            old = self._rows["work_calendars"].get(name)
            self._require(actor, MODULE_OF["work_calendars"], Right.ADD if old is None else Right.EDIT)
            row = {**(old or {"name": name}), **fields}
            try:
                calendar = _calendar(row)
            except CalendarError as exc:
                raise AccountError(_calendar_field(str(exc)), str(exc)) from None
            values = {k: row[k] for k in _CALENDAR_FIELDS if k in row}
            values["holidays"] = sorted(str(h) for h in values.get("holidays", ()))
            if old is None:
                row = entities.create(self.store, "work_calendars", {"name": name, **values}, operator=actor.label)
            else:
                row = entities.update(self.store, "work_calendars", old["id"], values, operator=actor.label)
            self._rows["work_calendars"][name] = row
            self.calendars[name] = calendar
            for period in list(self.period_rates.values()):
                if period.calendar.name == name:
                    self.period_rates[period.name] = PeriodRate(period.name, calendar, period.working,
                                                                period.non_working)
            return row

    def save_period_rate(self, actor: Actor, name: str, work_calendar: str, working: str,
                         non_working: str) -> dict:
        name = clean_text("name", name, required=True)
        with self._lock:
            old = self._rows["period_rates"].get(name)
            self._require(actor, MODULE_OF["period_rates"], Right.ADD if old is None else Right.EDIT)
            values = {"work_calendar_id": self._row("work_calendars", work_calendar, "work_calendar")["id"],
                      "working_rate_table_id": self._row("rate_tables", working, "working_rate_table")["id"],
                      "non_working_rate_table_id": self._row("rate_tables", non_working,
                                                             "non_working_rate_table")["id"]}
            if old is None:
                row = entities.create(self.store, "period_rates", {"name": name, **values}, operator=actor.label)
            else:
                row = entities.update(self.store, "period_rates", old["id"], values, operator=actor.label)
            self._rows["period_rates"][name] = row
            self.period_rates[name] = self._period_rate(row)
            return row

    def delete(self, actor: Actor, kind: str, name: str) -> None:
        """Remove a record nothing refers to (the store's foreign keys say so)."""
        self._require(actor, MODULE_OF[kind], Right.DELETE)
        with self._lock:
            row = self._row(kind, name, "name")
            try:
                entities.delete(self.store, kind, row["id"], operator=actor.label)
            except Conflict as exc:
                raise AccountError("name", f"{name!r} is still in use: {exc}") from None
            del self._rows[kind][name]
            {"rate_tables": self.tables, "work_calendars": self.calendars,
             "period_rates": self.period_rates}[kind].pop(name, None)

    # ------------------------------------------------------------------ helpers

    def bootstrap_table(self, name: str, csv_path: str) -> None:
        """A configuration file's [[rate_table]]: imported once, when the store lacks it;
        from then on the store's deck rules (operators change it through the API)."""
        if name in self._rows["rate_tables"]:
            return
        system = Actor.system("config")
        self.create_rate_table(system, name, memo=f"imported from {csv_path}")
        with open(csv_path, encoding="utf-8-sig") as f:
            self.import_rates(system, name, f.read())


def _rate_row(rate) -> dict:
    return {"prefix": rate.prefix, "price": rate.price, "first_unit": rate.first_unit,
            "next_unit": rate.next_unit, "connection_fee": rate.connection_fee, "area": rate.area}


def _calendar(row: dict) -> WorkCalendar:
    return WorkCalendar.parse(row["name"], row.get("working_weekdays", (1, 2, 3, 4, 5)),
                              row.get("work_start", "09:00"), row.get("work_end", "18:00"),
                              row.get("holidays", ()), row.get("time_zone", "UTC"))


def _calendar_field(message: str) -> str:
    for field, stored in (("start", "work_start"), ("end", "work_end"), ("weekdays", "working_weekdays"),
                          ("holidays", "holidays"), ("time_zone", "time_zone")):
        if f"field {field}" in message:
            return stored
    return "work_start"
