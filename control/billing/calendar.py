"""Work calendars and package period rates (SPEC §5).

A work calendar says whether an instant is working time: the local date (in the
calendar's time zone) is not a holiday, its ISO weekday (Monday 1 … Sunday 7) is a
working day, and the local time of day is in ``[start, end)``. With hours 09:00–18:00,
17:59 is working, 18:00 and 18:01 are not. ``end`` may be ``24:00`` (until midnight).
Working hours that cross midnight are refused: a night shift belongs to two weekdays and
holidays, and no rule in the spec says which; two tables (or hours 00:00–06:00 and a
second calendar) say it without ambiguity.

A package period rate pairs a calendar with two rate tables, and the call's start time
(the moment it was set up; the whole call keeps that table) picks one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Iterable, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")
DAY_MINUTES = 24 * 60


class CalendarError(ValueError):
    """A calendar field was refused; the message names the calendar and the field."""


@dataclass(frozen=True)
class WorkCalendar:
    name: str
    weekdays: frozenset[int]        # ISO: Monday 1 … Sunday 7
    start: int                      # minutes after local midnight, inclusive
    end: int                        # minutes after local midnight, exclusive (1440: midnight)
    holidays: frozenset[dt.date]
    zone: ZoneInfo

    @classmethod
    def parse(cls, name: str, weekdays: Iterable[int] = (1, 2, 3, 4, 5), start: str = "09:00",
              end: str = "18:00", holidays: Iterable[str | dt.date] = (),
              time_zone: str = "UTC") -> WorkCalendar:
        """From the stored form: weekday numbers, ``"HH:MM"`` hours, ``"YYYY-MM-DD"``
        holidays and an IANA time zone name."""
        days = frozenset(_weekday(name, d) for d in weekdays)
        first, last = _minutes(name, "start", start), _minutes(name, "end", end)
        if first == DAY_MINUTES:
            raise CalendarError(f"work calendar {name!r}, field start: 24:00 is only an end")
        if last <= first:
            raise CalendarError(f"work calendar {name!r}: working hours {start}-{end} must "
                                "end after they start on the same day")
        return cls(name, days, first, last, frozenset(_date(name, h) for h in holidays),
                   _zone(name, time_zone))

    def is_working(self, when: dt.datetime | float) -> bool:
        """Whether ``when`` (an aware datetime, or Unix seconds) is working time."""
        local = _local(when, self.zone)
        if local.date() in self.holidays or local.isoweekday() not in self.weekdays:
            return False
        # Hours are whole minutes, so comparing whole minutes is exact: 17:59:59 < 18:00.
        minute = local.hour * 60 + local.minute
        return self.start <= minute < self.end


@dataclass(frozen=True)
class PeriodRate(Generic[T]):
    """A package period rate: the working-hours table and the non-working-hours table
    (rate tables, or whatever the caller identifies them by)."""

    name: str
    calendar: WorkCalendar
    working: T
    non_working: T

    def table_for(self, start: dt.datetime | float) -> T:
        """The table for a call set up at ``start``."""
        return self.working if self.calendar.is_working(start) else self.non_working


def table_for_call(start: dt.datetime | float, default: T,
                   period_rate: PeriodRate[T] | None = None) -> T:
    """The customer's rate table for a call: its package period rate's choice if it has
    one, otherwise its default rate table."""
    return default if period_rate is None else period_rate.table_for(start)


def _local(when: dt.datetime | float, zone: ZoneInfo) -> dt.datetime:
    if isinstance(when, dt.datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"{when!r} has no time zone; give an aware datetime or Unix seconds")
        return when.astimezone(zone)
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError(f"a call start is an aware datetime or Unix seconds, not {when!r}")
    return dt.datetime.fromtimestamp(when, zone)


def _weekday(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 7:
        raise CalendarError(f"work calendar {name!r}, field weekdays: {value!r} is not an ISO "
                            "weekday 1 (Monday) … 7 (Sunday)")
    return value


def _minutes(name: str, field: str, text: str) -> int:
    hours, sep, minutes = str(text).strip().partition(":")
    if (sep and len(hours) in (1, 2) and len(minutes) == 2 and hours.isascii()
            and hours.isdigit() and minutes.isascii() and minutes.isdigit()):
        value = int(hours) * 60 + int(minutes)
        if int(minutes) < 60 and value <= DAY_MINUTES:
            return value
    raise CalendarError(f"work calendar {name!r}, field {field}: {text!r} is not a time "
                        "HH:MM between 00:00 and 24:00")


def _date(name: str, value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise CalendarError(f"work calendar {name!r}, field holidays: {value!r} is not a date "
                            "YYYY-MM-DD") from None


def _zone(name: str, key: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(key).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"work calendar {name!r}, field time_zone: {key!r} is not a known "
                            "IANA time zone (for example Europe/Berlin or UTC)") from None
