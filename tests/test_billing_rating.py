"""Billing core (SPEC §5): money, rate tables, charging, reservations, work calendars."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from control.billing.calendar import CalendarError, PeriodRate, WorkCalendar, table_for_call
from control.billing.money import MoneyError, fee_step, floor_to_step, round_fee, to_decimal
from control.billing.rates import Rate, RateImportError, RateNotFound, RateTable
from control.billing.rating import (CallCharge, admissible, billed_time, charge, hold_time,
                                    max_duration, rate_call, records_cdr, reservation)
from control.billing.settings import BillingParams
from control.params import ParamError

D = Decimal
DEFAULT = BillingParams()


def rate(price="1", first=60, following=60, fee="0", prefix="1") -> Rate:
    return Rate(prefix, D(price), first, following, D(fee))


# --- money -----------------------------------------------------------------------------

@pytest.mark.parametrize("value,parsed", [("1.25", D("1.25")), (" 0.000001 ", D("0.000001")),
                                          (3, D(3)), (D("2.5"), D("2.5")), ("1.5000000", D("1.5"))])
def test_amounts_are_read_exactly(value, parsed):
    assert to_decimal(value, places=6) == parsed


@pytest.mark.parametrize("value,message", [
    (0.1, "is a float"), (True, "is a bool"), ("abc", "not a decimal number"), ("", "not a decimal"),
    ("NaN", "not a finite"), ("-Infinity", "not a finite"), ("-1", "negative"),
    ("0.1234567", "more than 6 decimal places"), (None, "not a decimal number"),
])
def test_inexact_or_bad_amounts_are_refused(value, message):
    with pytest.raises(MoneyError, match=message):
        to_decimal(value, places=6)


@pytest.mark.parametrize("precision,unit,step", [
    (0, 1, "1"), (1, 1, "0.1"), (2, 1, "0.01"), (3, 1, "0.001"), (4, 1, "0.0001"), (2, 5, "0.05"),
])
def test_fee_step(precision, unit, step):
    assert fee_step(precision, unit) == D(step)
    assert str(fee_step(precision, unit)) == step


@pytest.mark.parametrize("amount,step,rounded,floored", [
    ("0.001", "0.01", "0.01", "0.00"), ("0.01", "0.01", "0.01", "0.01"), ("0", "0.01", "0.00", "0.00"),
    ("1.011", "0.05", "1.05", "1.00"), ("2.5", "1", "3", "2"), ("0.00001", "0.0001", "0.0001", "0.0000"),
])
def test_fee_rounding_goes_up_to_the_step(amount, step, rounded, floored):
    assert str(round_fee(D(amount), D(step))) == rounded
    assert str(floor_to_step(D(amount), D(step))) == floored


# --- parameters --------------------------------------------------------------------------

def test_billing_parameters_defaults_and_names():
    assert (DEFAULT.fee_precision, DEFAULT.fee_unit, DEFAULT.free_time, DEFAULT.hold_time_precision,
            DEFAULT.record_zero_hold_time, DEFAULT.advance_time) == (2, 1, 0, 50, True, 1)
    assert DEFAULT.fee_step == D("0.01")
    params = BillingParams.from_values({"SERVER_BILLING_FEE_PRECISTION": "3",
                                        "SERVER_BILLING_FEE_UNIT": 5, "SS_QOS_RTP": 46,
                                        "SERVER_BILLING_RECORD_ZERO_HOLD_TIME": "off"})
    assert params.fee_step == D("0.005") and params.record_zero_hold_time is False


@pytest.mark.parametrize("field,value,message", [
    ("fee_precision", 5, r"SERVER_BILLING_FEE_PRECISTION must be an integer in 0\.\.4"),
    ("advance_time", 0, r"SERVER_BILLING_PREVENT_OVERDRAFT_ADVANCE_TIME must be an integer in 1\.\.15"),
    ("advance_time", 16, "ADVANCE_TIME"),
    ("hold_time_precision", 1000, r"SERVER_BILLING_HOLD_TIME_PRECISION must be an integer in 0\.\.999"),
    ("free_time", -1, "SERVER_BILLING_FREE_TIME"),
    ("fee_unit", 0, "SERVER_BILLING_FEE_UNIT"),
])
def test_billing_parameters_out_of_range(field, value, message):
    with pytest.raises(ParamError, match=message):
        BillingParams(**{field: value})


# --- billing units and free time -------------------------------------------------------

UNIT_CASES = {
    (60, 60): {0: 0, 1: 60, 29: 60, 30: 60, 31: 60, 59: 60, 60: 60, 61: 120, 119: 120,
               120: 120, 121: 180},
    (30, 6): {0: 0, 1: 30, 29: 30, 30: 30, 31: 36, 35: 36, 36: 36, 37: 42, 59: 60, 60: 60,
              61: 66, 66: 66, 67: 72},
    (1, 1): {0: 0, 1: 1, 29: 29, 30: 30, 31: 31, 59: 59, 60: 60, 61: 61, 3601: 3601},
}


@pytest.mark.parametrize("units,hold,billed",
                         [(u, h, b) for u, cases in UNIT_CASES.items() for h, b in cases.items()])
def test_billing_units(units, hold, billed):
    r = rate("0.60", *units)
    assert billed_time(hold, r, DEFAULT) == billed
    assert charge(hold, r, DEFAULT) == D("0.60") * billed / 60      # 0.01 per second: exact


@pytest.mark.parametrize("units,hold,fee", [
    ((60, 60), 61, "2.00"), ((30, 6), 31, "0.60"), ((1, 1), 61, "1.02"), ((1, 1), 1, "0.02"),
    ((30, 6), 0, "0.00"),
])
def test_fees_at_one_per_minute(units, hold, fee):
    assert str(charge(hold, rate("1", *units), DEFAULT)) == fee


@pytest.mark.parametrize("hold,billed", [(0, 0), (1, 0), (5, 0), (6, 0), (7, 60), (65, 60),
                                         (66, 60), (67, 120)])
def test_free_time_is_taken_off_before_the_units(hold, billed):
    params = BillingParams(free_time=6)
    assert billed_time(hold, rate("1", 60, 60), params) == billed


@pytest.mark.parametrize("hold,billed", [(0, 0), (29, 0), (30, 0), (31, 30), (60, 30), (61, 36)])
def test_free_time_with_30_6(hold, billed):
    assert billed_time(hold, rate("1", 30, 6), BillingParams(free_time=30)) == billed


def test_calls_within_free_time_pay_no_connection_fee():
    params = BillingParams(free_time=10)
    r = rate("1", 1, 1, fee="0.05")
    assert charge(10, r, params) == 0
    assert charge(11, r, params) == D("0.07")         # 0.05 + 1/60 -> up to 0.07


def test_connection_fee_is_added_once():
    r = rate("1", 60, 60, fee="0.05")
    assert charge(0, r, DEFAULT) == 0
    assert charge(1, r, DEFAULT) == D("1.05")
    assert charge(121, r, DEFAULT) == D("3.05")


# --- hold time precision and zero hold time ---------------------------------------------

@pytest.mark.parametrize("precision,ms,seconds", [
    (50, 0, 0), (50, 49, 0), (50, 50, 1), (50, 999, 1), (50, 1000, 1), (50, 1049, 1),
    (50, 1050, 2), (50, 60049, 60), (50, 60050, 61),
    (0, 1, 1), (0, 1000, 1), (0, 1001, 2), (999, 1998, 1), (999, 1999, 2), (500, 29499, 29),
    (500, 29500, 30),
])
def test_hold_time_precision(precision, ms, seconds):
    assert hold_time(ms, BillingParams(hold_time_precision=precision)) == seconds


def test_hold_time_rounding_moves_a_call_into_the_next_unit():
    r = rate("1", 60, 60)
    assert rate_call(60049, r, DEFAULT).fee == D("1.00")
    assert rate_call(60050, r, DEFAULT).fee == D("2.00")


def test_record_zero_hold_time():
    r = rate("1", 60, 60, fee="0.10")
    on, off = DEFAULT, BillingParams(record_zero_hold_time=False)
    assert rate_call(0, r, on) == CallCharge(0, 0, D("0.00"), True)
    assert rate_call(0, r, off).recorded is False
    assert rate_call(49, r, off).recorded is False and rate_call(49, r, off).fee == 0
    assert rate_call(50, r, off) == CallCharge(1, 60, D("1.10"), True)
    assert records_cdr(0, on) and not records_cdr(0, off) and records_cdr(1, off)


def test_durations_must_be_whole_and_not_negative():
    for bad in (-1, 1.5, True, "60"):
        with pytest.raises(ValueError):
            hold_time(bad, DEFAULT)
        with pytest.raises(ValueError):
            billed_time(bad, rate(), DEFAULT)


# --- fee precision -------------------------------------------------------------------------

@pytest.mark.parametrize("precision,unit,fee", [
    (0, 1, "1"), (1, 1, "0.1"), (2, 1, "0.01"), (3, 1, "0.002"), (4, 1, "0.0015"), (2, 5, "0.05"),
    (3, 5, "0.005"),
])
def test_fee_precision_and_unit(precision, unit, fee):
    # 7 s at 0.0123/min per second = 0.001435 exactly
    params = BillingParams(fee_precision=precision, fee_unit=unit)
    assert str(charge(7, rate("0.0123", 1, 1), params)) == fee


def test_exact_amounts_are_not_rounded_further():
    assert str(charge(1, rate("0.6", 1, 1), DEFAULT)) == "0.01"
    assert str(charge(60, rate("0.0123", 60, 60), BillingParams(fee_precision=4))) == "0.0123"
    # a per-second price that is no terminating decimal (1/60) is still rounded exactly
    assert charge(3, rate("0.2", 1, 1), DEFAULT) == D("0.01")         # 0.01 exactly
    assert charge(4, rate("0.2", 1, 1), DEFAULT) == D("0.02")         # 0.01333...


# --- reservations and admission (worked example of SPEC §5) -----------------------------

def test_worked_example_two_calls_admitted_third_rejected():
    params = BillingParams(advance_time=5)
    hold = reservation(rate("1"), params)
    assert hold == D("5.00")
    reserved, admitted = D(0), []
    for call in range(3):
        if admissible(D("10"), D(0), reserved, hold):
            reserved += hold
            admitted.append(call)
    assert admitted == [0, 1] and reserved == 10
    assert admissible(10, 0, 5, 5) and not admissible(10, 0, 10, 5)


def test_credit_limit_counts_as_funds():
    assert admissible(D("0"), D("10"), D("5"), D("5"))
    assert not admissible(D("-2"), D("10"), D("5"), D("5"))
    assert admissible(D("-2"), D("10"), D("3"), D("5"))
    assert not admissible(D("-0.01"), D(0), D(0), D(0))


def test_reservation_is_rounded_up_and_floats_are_refused():
    assert reservation(rate("0.0123"), BillingParams(advance_time=3)) == D("0.04")     # 0.0369
    assert reservation(rate("0.0123"), BillingParams(advance_time=3, fee_precision=4)) == D("0.0369")
    assert reservation(rate("0"), DEFAULT) == 0
    with pytest.raises(MoneyError, match="balance"):
        admissible(10.0, D(0), D(0), D(5))
    with pytest.raises(MoneyError, match="reservation"):
        admissible(D(10), D(0), D(0), "5")


# --- maximum duration from free funds -----------------------------------------------------

@pytest.mark.parametrize("funds,units,fee,params,seconds", [
    ("10", (60, 60), "0", DEFAULT, 600),
    ("10.99", (60, 60), "0", DEFAULT, 600),
    ("10", (30, 6), "0", DEFAULT, 600),
    ("0.99", (60, 60), "0", DEFAULT, 0),
    ("1", (60, 60), "0", DEFAULT, 60),
    ("1", (60, 60), "0", BillingParams(free_time=6), 66),
    ("1", (60, 60), "0.5", DEFAULT, 0),
    ("1.5", (60, 60), "0.5", DEFAULT, 60),
    ("0.01", (1, 1), "0", DEFAULT, 0),        # 1 s costs 1/60 -> 0.02
    ("0.02", (1, 1), "0", DEFAULT, 1),
    ("1", (1, 1), "0", DEFAULT, 60),
    ("0.5", (30, 6), "0", DEFAULT, 30),
    ("0.6", (30, 6), "0", DEFAULT, 36),
    ("-1", (60, 60), "0", DEFAULT, 0),
    ("0", (60, 60), "0", BillingParams(free_time=20), 20),
])
def test_max_duration(funds, units, fee, params, seconds):
    r = rate("1", *units, fee=fee)
    assert max_duration(D(funds), r, params) == seconds


def test_free_destinations_have_no_limit_unless_the_fee_is_unaffordable():
    assert max_duration(D("0"), rate("0"), DEFAULT) is None
    assert max_duration(D("1"), rate("0", fee="0.5"), DEFAULT) is None
    assert max_duration(D("0.4"), rate("0", fee="0.5"), BillingParams(free_time=3)) == 3
    with pytest.raises(MoneyError):
        max_duration(1.0, rate(), DEFAULT)


# --- work calendars and period rates --------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = WorkCalendar.parse("office", (1, 2, 3, 4, 5), "09:00", "18:00",
                            ["2026-12-25", dt.date(2026, 12, 24)], "Europe/Berlin")


def berlin(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize("when,working", [
    (berlin(2026, 11, 23, 17, 59), True),            # Monday
    (berlin(2026, 11, 23, 17, 59, 59, 999999), True),
    (berlin(2026, 11, 23, 18, 0), False),
    (berlin(2026, 11, 23, 18, 1), False),
    (berlin(2026, 11, 23, 8, 59, 59), False),
    (berlin(2026, 11, 23, 9, 0), True),
    (berlin(2026, 11, 27, 12, 0), True),              # Friday
    (berlin(2026, 11, 28, 12, 0), False),             # Saturday
    (berlin(2026, 11, 29, 12, 0), False),             # Sunday
    (berlin(2026, 12, 25, 10, 0), False),             # holiday (a Friday)
    (berlin(2026, 12, 24, 10, 0), False),             # holiday given as a date
    (berlin(2026, 12, 23, 10, 0), True),
])
def test_work_calendar_boundaries_and_holidays(when, working):
    assert OFFICE.is_working(when) is working


@pytest.mark.parametrize("utc,working", [
    (dt.datetime(2026, 1, 15, 16, 59, tzinfo=dt.timezone.utc), True),    # 17:59 CET
    (dt.datetime(2026, 1, 15, 17, 0, tzinfo=dt.timezone.utc), False),    # 18:00 CET
    (dt.datetime(2026, 7, 15, 15, 59, tzinfo=dt.timezone.utc), True),    # 17:59 CEST
    (dt.datetime(2026, 7, 15, 16, 0, tzinfo=dt.timezone.utc), False),    # 18:00 CEST
    (dt.datetime(2026, 7, 15, 7, 0, tzinfo=dt.timezone.utc), True),      # 09:00 CEST
])
def test_work_calendar_uses_its_time_zone(utc, working):
    assert OFFICE.is_working(utc) is working
    assert OFFICE.is_working(utc.timestamp()) is working


def test_holiday_is_the_local_date():
    always = WorkCalendar.parse("always", range(1, 8), "00:00", "24:00", ["2026-12-25"], "Asia/Tokyo")
    assert not always.is_working(dt.datetime(2026, 12, 24, 15, 0, tzinfo=dt.timezone.utc))  # 00:00 JST 25th
    assert always.is_working(dt.datetime(2026, 12, 24, 14, 59, tzinfo=dt.timezone.utc))
    assert always.is_working(berlin(2026, 12, 26, 23, 59, 59))


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        OFFICE.is_working(dt.datetime(2026, 11, 23, 12, 0))
    with pytest.raises(TypeError):
        OFFICE.is_working("2026-11-23 12:00")


@pytest.mark.parametrize("kwargs,message", [
    ({"start": "25:00"}, "field start: '25:00' is not a time HH:MM"),
    ({"start": "9:5"}, "field start"),
    ({"end": "18:60"}, "field end"),
    ({"start": "24:00", "end": "24:00"}, "24:00 is only an end"),
    ({"start": "18:00", "end": "09:00"}, "must end after they start"),
    ({"start": "09:00", "end": "09:00"}, "must end after they start"),
    ({"weekdays": [0, 1]}, "field weekdays: 0 is not an ISO weekday"),
    ({"weekdays": [8]}, "field weekdays"),
    ({"holidays": ["2026-13-01"]}, "field holidays: '2026-13-01' is not a date"),
    ({"time_zone": "Mars/Olympus"}, "field time_zone: 'Mars/Olympus'"),
])
def test_bad_calendars_are_refused(kwargs, message):
    with pytest.raises(CalendarError, match=message):
        WorkCalendar.parse("cal", **kwargs)


def test_period_rate_picks_the_table_by_call_start():
    day, night = RateTable([("1", "2", 60, 60)], "day"), RateTable([("1", "1", 60, 60)], "night")
    default = RateTable([("1", "3", 60, 60)], "default")
    package = PeriodRate("business", OFFICE, day, night)
    assert package.table_for(berlin(2026, 11, 23, 17, 59)) is day
    assert package.table_for(berlin(2026, 11, 23, 18, 0)) is night
    assert package.table_for(berlin(2026, 11, 23, 18, 1)) is night
    assert package.table_for(berlin(2026, 12, 25, 12, 0)) is night
    assert table_for_call(berlin(2026, 11, 23, 12, 0), default, package) is day
    assert table_for_call(berlin(2026, 11, 23, 12, 0), default) is default


# --- rate tables: longest prefix -----------------------------------------------------------

TABLE = RateTable([
    ("4", "0.50", 60, 60),
    ("44", "0.05", 60, 60, "", "United Kingdom"),
    ("447", "0.10", 30, 6, "0.01", "UK Mobile"),
    ("4479", "0.20", 1, 1, "0", "UK Mobile 9"),
    ("44790", "0.30", 1, 1),
    ("1", "0.01", 6, 6),
], "retail")


@pytest.mark.parametrize("number,prefix", [
    ("447912345678", "4479"), ("447901234567", "44790"), ("447812345678", "447"),
    ("442071234567", "44"), ("4930123456", "4"), ("44", "44"), ("4", "4"), ("4479", "4479"),
    ("12125551234", "1"), ("33123456789", None), ("", None), ("0447912345678", None),
])
def test_longest_prefix_wins(number, prefix):
    found = TABLE.lookup(number)
    assert (found.prefix if found else None) == prefix


def test_lookup_returns_the_row():
    assert TABLE.lookup("447712345678") == Rate("447", D("0.10"), 30, 6, D("0.01"), "UK Mobile")
    assert len(TABLE) == 6 and "447" in TABLE and TABLE.get("4479").area == "UK Mobile 9"


def test_rate_not_found():
    with pytest.raises(RateNotFound,
                       match="Rate Not Found: no prefix of '33123' in rate table 'retail'") as exc:
        TABLE.rate_for("33123")
    assert exc.value.reason.name == "Rate Not Found" and exc.value.reason.sip_code == 404
    assert RateTable().lookup("123") is None


def test_updated_table_leaves_the_old_one_alone():
    new = TABLE.updated([("447", "0.09", 60, 60), ("33", "0.02", 60, 60)], remove=["4479"])
    assert new.lookup("447912345678").price == D("0.09")        # 44790 stays, 4479 went
    assert new.lookup("447901").prefix == "44790"
    assert new.lookup("33123").prefix == "33" and new.name == "retail"
    assert TABLE.lookup("447912345678").prefix == "4479" and TABLE.lookup("33123") is None
    with pytest.raises(KeyError, match="'99'"):
        TABLE.updated(remove=["99"])


@given(prefixes=st.sets(st.text("0123", min_size=1, max_size=5), max_size=30),
       number=st.text("0123", max_size=8))
def test_lookup_matches_brute_force(prefixes, number):
    table = RateTable((p, "1", 60, 60) for p in prefixes)
    matching = [p for p in prefixes if number.startswith(p)]
    expected = max(matching, key=len) if matching else None
    found = table.lookup(number)
    assert (found.prefix if found else None) == expected


# --- rate import ---------------------------------------------------------------------------------

def from_csv(text: str) -> RateTable:
    return RateTable.from_csv(io.StringIO(text, newline=""))


def test_csv_import_any_column_order_and_optional_columns():
    table = from_csv("\ufeffArea,Next Unit,first_unit,PRICE,prefix\r\n"
                     "\"Germany, Mobile\",6,30,0.0123,4915\r\n\r\n"
                     "Germany,60,60,0.01,49\r\n")
    assert table.get("4915") == Rate("4915", D("0.0123"), 30, 6, D(0), "Germany, Mobile")
    assert table.get("49").connection_fee == 0 and len(table) == 2


def test_csv_import_from_a_file(tmp_path):
    path = tmp_path / "rates.csv"
    path.write_text("prefix,price,first_unit,next_unit,connection_fee\n44,0.05,60,60,0.0100\n",
                    encoding="utf-8")
    table = RateTable.from_csv(path, "vendor")
    assert table.rate_for("4420").connection_fee == D("0.01") and table.name == "vendor"


HEADER = "prefix,price,first_unit,next_unit,connection_fee,area\n"


@pytest.mark.parametrize("body,message", [
    ("44,abc,60,60,,\n", "line 2, field price: 'abc' is not a decimal number"),
    ("44,-0.1,60,60,,\n", "line 2, field price: -0.1 is negative"),
    ("44,0.1234567,60,60,,\n", "line 2, field price: 0.1234567 has more than 6 decimal places"),
    ("44,,60,60,,\n", "line 2, field price: '' is not a decimal number"),
    ("44,NaN,60,60,,\n", "line 2, field price: 'NaN' is not a finite amount"),
    ("44,0.1,60,60,0.12345,\n", "line 2, field connection_fee: 0.12345 has more than 4"),
    ("+44,0.1,60,60,,\n", "line 2, field prefix: '\\+44' is not all digits 0-9"),
    (",0.1,60,60,,\n", "line 2, field prefix: empty"),
    ("4 4,0.1,60,60,,\n", "line 2, field prefix: '4 4' is not all digits"),
    ("1" * 33 + ",0.1,60,60,,\n", "line 2, field prefix: 33 digits, at most 32"),
    ("44,0.1,0,60,,\n", "line 2, field first_unit: 0 s is outside 1..3600"),
    ("44,0.1,60,6.5,,\n", "line 2, field next_unit: '6.5' is not a whole number of seconds"),
    ("44,0.1,60,3601,,\n", "line 2, field next_unit: 3601 s is outside 1..3600"),
    ("44,0.1,60,60,,\n45,0.1,60,60,,\n\n44,0.2,60,60,,\n", "line 5, field prefix: 44 repeats line 2"),
    ("44,0.1,60,60\n", "line 2: 4 fields, but the header has 6"),
    ("44,0.1,60,60,,\"UK\nLondon\"\n45,x,60,60,,\n", "line 4, field price"),
    ("44,0.1,60,60,," + "x" * 129 + "\n", "line 2, field area: 129 characters, at most 128"),
])
def test_csv_import_errors_name_line_and_field(body, message):
    with pytest.raises(RateImportError, match=message) as exc:
        from_csv(HEADER + body)
    assert exc.value.line == int(message.split(",")[0].split()[1].rstrip(":"))


@pytest.mark.parametrize("text,message", [
    ("", "line 1: empty file: expected a header line"),
    ("44,0.1,60,60\n", "line 1: unknown column '44' \\(the first line must name the columns\\)"),
    ("prefix,price,first_unit,rate\n", "line 1: unknown column 'rate'; expected prefix, price"),
    ("prefix,price,first_unit\n", "line 1: missing column next_unit"),
    ("prefix,price,price,first_unit,next_unit\n", "line 1: column 'price' appears twice"),
])
def test_csv_header_errors(text, message):
    with pytest.raises(RateImportError, match=message):
        from_csv(text)


@pytest.mark.parametrize("row,message", [
    (("44", 0.05, 60, 60), "row 2, field price: 0.05 is a float, not an exact amount"),
    (("44", "0.05", 60.0, 60), "row 2, field first_unit: 60.0 is not a whole number"),
    (("44", "0.05", True, 60), "row 2, field first_unit: True is not a whole number"),
    ((44, "0.05", 60, 60), "row 2, field prefix: 44 is not text; give the digits as a string"),
    (("44", "0.05", 60, 60, 0.01), "row 2, field connection_fee: 0.01 is a float"),
    (("44", "0.05", 60, 60, "0", 7), "row 2, field area: 7 is not text"),
    (("44", "0.05", 60), "row 2: 3 values; expected prefix, price, first_unit, next_unit"),
    (("44", "0.05", 60, 60, "0", "", "extra"), "row 2: 7 values"),
    (("1", "1", 60, 60), "row 2, field prefix: 1 repeats row 1"),
])
def test_row_import_errors(row, message):
    with pytest.raises(RateImportError, match=message):
        RateTable([("1", D("0.01"), 60, 60), row])


def test_row_import_accepts_decimal_int_and_text():
    table = RateTable([("1", D("0.01"), 60, 60), ("2", 1, "30", " 6 "), ("3", " 0.5 ", 1, 1, D("0.05"))])
    assert table.get("2") == Rate("2", D(1), 30, 6, D(0), "")
    assert table.get("3").price == D("0.5") and table.get("3").connection_fee == D("0.05")


# --- properties -------------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=10, places=4)
positive_prices = st.decimals(min_value=D("0.0001"), max_value=10, places=4)
units = st.sampled_from([(60, 60), (30, 6), (1, 1), (6, 6), (60, 1)]) | st.tuples(
    st.integers(1, 120), st.integers(1, 120))
fees = st.sampled_from([D(0), D("0.01"), D("0.05")]) | st.decimals(min_value=0, max_value=2, places=4)
params = st.builds(BillingParams, fee_precision=st.integers(0, 4), fee_unit=st.integers(1, 10),
                   free_time=st.integers(0, 60), hold_time_precision=st.integers(0, 999))
rates = st.builds(lambda p, u, f: Rate("1", p, u[0], u[1], f), prices, units, fees)


@given(rates, params, st.integers(0, 20000), st.integers(0, 20000))
def test_charge_is_monotonic_and_never_negative(r, p, a, b):
    short, long = sorted((a, b))
    assert D(0) <= charge(short, r, p) <= charge(long, r, p)


@given(rates, params, st.integers(0, 20000))
def test_charge_is_the_exact_price_rounded_up_to_the_step(r, p, hold):
    billed = billed_time(hold, r, p)
    fee = charge(hold, r, p)
    assert fee % p.fee_step == 0
    if billed:
        exact = r.connection_fee + r.price * billed / 60
        assert exact <= fee < exact + p.fee_step
    else:
        assert fee == 0


@given(rates, params, st.integers(0, 20000))
def test_billed_time_covers_the_chargeable_time(r, p, hold):
    chargeable = max(0, hold - p.free_time)
    billed = billed_time(hold, r, p)
    assert chargeable <= billed < chargeable + max(r.first_unit, r.next_unit)


@given(params, st.integers(0, 10**7), st.integers(0, 10**7))
def test_hold_time_is_monotonic_and_near_the_measure(p, a, b):
    short, long = sorted((a, b))
    assert hold_time(short, p) <= hold_time(long, p)
    assert long // 1000 <= hold_time(long, p) <= long // 1000 + 1


@given(st.builds(lambda p, u, f: Rate("1", p, u[0], u[1], f), positive_prices, units, fees),
       params, st.decimals(min_value=-1, max_value=500, places=4))
def test_max_duration_is_what_the_funds_pay_for(r, p, funds):
    longest = max_duration(funds, r, p)
    assert longest is not None
    if funds < 0:
        assert longest == 0
        return
    assert charge(longest, r, p) <= funds
    assert charge(longest + 1, r, p) > funds
    assert charge(longest + r.next_unit, r, p) > funds


@given(st.builds(lambda u, f: Rate("1", D(0), u[0], u[1], f), units, fees), params,
       st.decimals(min_value=0, max_value=5, places=4), st.integers(0, 10**6))
def test_free_destinations(r, p, funds, hold):
    longest = max_duration(funds, r, p)
    if longest is None:
        assert charge(hold, r, p) <= funds
    else:
        assume(hold > longest)
        assert charge(hold, r, p) > funds


@given(st.decimals(min_value=-20, max_value=20, places=2), st.decimals(min_value=0, max_value=20, places=2),
       st.decimals(min_value=D("0.01"), max_value=10, places=4), st.integers(1, 15))
def test_admission_never_lets_reservations_exceed_the_funds(balance, credit, price, advance):
    hold = reservation(Rate("1", price), BillingParams(advance_time=advance))
    assert price * advance <= hold < price * advance + D("0.01")
    reserved, admitted = D(0), 0
    while admissible(balance, credit, reserved, hold):
        reserved += hold
        admitted += 1
    assert admitted == max(0, (balance + credit) // hold)
    assert admitted == 0 or balance + credit - reserved >= 0
