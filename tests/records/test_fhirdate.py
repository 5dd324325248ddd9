"""FHIR date values as UTC ranges: every precision, zones, calendars, bad input, round trips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytehub.records.errors import FhirError
from ytehub.records.fhirdate import (
    VIETNAM_TZ,
    DateRange,
    format_fhir_date,
    parse_fhir_date,
)

US = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_vietnam_tz_is_a_fixed_plus_seven() -> None:
    assert VIETNAM_TZ.utcoffset(None) == timedelta(hours=7)
    assert VIETNAM_TZ.dst(None) is None


@pytest.mark.parametrize(
    ("text", "low", "high", "precision"),
    [
        ("2024", utc(2023, 12, 31, 17), utc(2024, 12, 31, 16, 59, 59, 999999), "year"),
        ("2024-02", utc(2024, 1, 31, 17), utc(2024, 2, 29, 16, 59, 59, 999999), "month"),
        ("2023-02", utc(2023, 1, 31, 17), utc(2023, 2, 28, 16, 59, 59, 999999), "month"),
        ("2024-12", utc(2024, 11, 30, 17), utc(2024, 12, 31, 16, 59, 59, 999999), "month"),
        ("2024-05-01", utc(2024, 4, 30, 17), utc(2024, 5, 1, 16, 59, 59, 999999), "day"),
        (
            "2024-05-01T08:30",
            utc(2024, 5, 1, 1, 30),
            utc(2024, 5, 1, 1, 30, 59, 999999),
            "minute",
        ),
        (
            "2024-05-01T08:30Z",
            utc(2024, 5, 1, 8, 30),
            utc(2024, 5, 1, 8, 30, 59, 999999),
            "minute",
        ),
        (
            "2024-05-01T08:30:15+07:00",
            utc(2024, 5, 1, 1, 30, 15),
            utc(2024, 5, 1, 1, 30, 15, 999999),
            "second",
        ),
        (
            "2024-05-01T08:30:15.123Z",
            utc(2024, 5, 1, 8, 30, 15, 123000),
            utc(2024, 5, 1, 8, 30, 15, 123999),
            "microsecond",
        ),
        (
            "2024-05-01T08:30:15.123456Z",
            utc(2024, 5, 1, 8, 30, 15, 123456),
            utc(2024, 5, 1, 8, 30, 15, 123456),
            "microsecond",
        ),
        (
            # FHIR allows nine digits; Python keeps six.
            "2024-05-01T08:30:15.123456789Z",
            utc(2024, 5, 1, 8, 30, 15, 123456),
            utc(2024, 5, 1, 8, 30, 15, 123456),
            "microsecond",
        ),
    ],
)
def test_each_precision(text: str, low: datetime, high: datetime, precision: str) -> None:
    parsed = parse_fhir_date(text)
    assert parsed == DateRange(low, high, precision)  # type: ignore[arg-type]
    assert parsed.low.tzinfo is UTC and parsed.high.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "low_utc"),
    [
        ("2024-05-01T08:30:00Z", utc(2024, 5, 1, 8, 30)),
        ("2024-05-01T08:30:00+00:00", utc(2024, 5, 1, 8, 30)),
        ("2024-05-01T08:30:00-00:00", utc(2024, 5, 1, 8, 30)),
        ("2024-05-01T08:30:00+07:00", utc(2024, 5, 1, 1, 30)),
        ("2024-05-01T08:30:00", utc(2024, 5, 1, 1, 30)),  # no zone: Vietnam time
        ("2024-05-01T08:30:00-05:00", utc(2024, 5, 1, 13, 30)),
        ("2024-05-01T08:30:00+05:45", utc(2024, 5, 1, 2, 45)),
        ("2024-05-01T08:30:00+14:00", utc(2024, 4, 30, 18, 30)),
        ("2024-05-01T08:30:00-12:00", utc(2024, 5, 1, 20, 30)),
        ("2024-01-01T03:00:00", utc(2023, 12, 31, 20)),  # crosses the year backwards
    ],
)
def test_timezones(text: str, low_utc: datetime) -> None:
    assert parse_fhir_date(text).low == low_utc


def test_dates_are_vietnam_calendar_days() -> None:
    """A patient born on 1 May in Vietnam was born in the +07:00 day, not the UTC one."""
    day = parse_fhir_date("2024-05-01")
    assert day.contains(datetime(2024, 5, 1, 0, 0, tzinfo=VIETNAM_TZ))
    assert day.contains(datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=VIETNAM_TZ))
    assert not day.contains(datetime(2024, 5, 2, 0, 0, tzinfo=VIETNAM_TZ))
    assert not day.contains(datetime(2024, 4, 30, 16, 59, 59, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "days"),
    [("2024-02-29", 1), ("2000-02-29", 1), ("1904-02", 29), ("2024", 366), ("2023", 365)],
)
def test_leap_years(text: str, days: int) -> None:
    parsed = parse_fhir_date(text)
    assert parsed.high - parsed.low + US == timedelta(days=days)


@pytest.mark.parametrize("text", ["2023-02-29", "1900-02-29", "2100-02-29"])
def test_not_leap_years(text: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_fhir_date(text)
    assert "28" in caught.value.issues[0].text.en


def test_24_00_is_the_midnight_ending_the_day() -> None:
    assert parse_fhir_date("2024-02-29T24:00") == parse_fhir_date("2024-03-01T00:00")
    assert parse_fhir_date("2024-12-31T24:00:00Z") == parse_fhir_date("2025-01-01T00:00:00Z")
    assert parse_fhir_date("2024-05-01T24:00:00.000") == parse_fhir_date("2024-05-02T00:00:00.000")


def test_leap_second_folds_into_59() -> None:
    assert parse_fhir_date("2016-12-31T23:59:60Z") == parse_fhir_date("2016-12-31T23:59:59Z")


def test_edges_of_the_calendar() -> None:
    first = parse_fhir_date("0001")
    assert first.low == datetime.min.replace(tzinfo=UTC)  # clamped: +07:00 starts before year 1
    assert first.high == utc(1, 12, 31, 16, 59, 59, 999999)
    last = parse_fhir_date("9999-12-31T23:59:59Z")
    assert last.high == datetime.max.replace(tzinfo=UTC)
    assert format_fhir_date(first) == "0001"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "2024-13",
        "2024-00",
        "2024-02-30",
        "2024-04-31",
        "2024-01-00",
        "0000",
        "24",
        "20240501",
        "2024-5-1",
        "2024-05-01T",
        "2024-05-01T08",
        "2024-05-01T8:30",
        "2024-05-01 08:30",
        "2024-05-01T24:01",
        "2024-05-01T24:00:01",
        "2024-05-01T24:00:00.5",
        "2024-05-01T25:00",
        "2024-05-01T08:60",
        "2024-05-01T08:30:61",
        "2024-05-01T08:30:15.",
        "2024-05-01T08:30:15.1234567890",
        "2024-05-01Z",
        "2024Z",
        "2024-05-01T08:30+15:00",
        "2024-05-01T08:30+14:30",
        "2024-05-01T08:30+07:60",
        "2024-05-01T08:30+0700",
        "2024-05-01T08:30z",
        " 2024",
        "2024 ",
        "٢٠٢٤",  # Arabic-Indic digits
        "9999-12-31T24:00",
        "0001-01-01T00:00+01:00",
        "9999-12-31T23:59-01:00",
    ],
)
def test_invalid_forms(text: str) -> None:
    with pytest.raises(FhirError) as caught:
        parse_fhir_date(text, expression="birthdate")
    error = caught.value
    assert error.status == 400
    [issue] = error.issues
    assert issue.code == "invalid"
    assert issue.expression == "birthdate"
    assert text in issue.text.vi and text in issue.text.en
    assert issue.text.vi != issue.text.en


def test_long_garbage_is_shortened_in_the_message() -> None:
    with pytest.raises(FhirError) as caught:
        parse_fhir_date("x" * 5000)
    assert len(caught.value.issues[0].text.en) < 300


# --- round trip --------------------------------------------------------------------------

PRECISIONS = ("year", "month", "day", "minute", "second", "microsecond")
ZONES = st.sampled_from([None, "Z", "+07:00", "-05:00", "+05:45", "+14:00", "-12:00", "+00:00"])


def _render(moment: datetime, precision: str, zone: str | None, digits: int) -> str:
    """Write ``moment`` (naive, in ``zone``'s local time) at ``precision``."""
    text = f"{moment.year:04d}"
    if precision == "year":
        return text
    text += f"-{moment.month:02d}"
    if precision == "month":
        return text
    text += f"-{moment.day:02d}"
    if precision == "day":
        return text
    text += f"T{moment.hour:02d}:{moment.minute:02d}"
    if precision != "minute":
        text += f":{moment.second:02d}"
    if precision == "microsecond":
        text += "." + f"{moment.microsecond:06d}"[:digits]
    return text + (zone or "")


def _offset(zone: str | None) -> timezone:
    if zone is None:
        return VIETNAM_TZ
    if zone == "Z":
        return UTC
    delta = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    return timezone(-delta if zone[0] == "-" else delta)


WIDTHS = {
    "minute": timedelta(minutes=1),
    "second": timedelta(seconds=1),
}


@given(
    moment=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    precision=st.sampled_from(PRECISIONS),
    zone=ZONES,
    digits=st.integers(min_value=1, max_value=6),
)
def test_round_trip(moment: datetime, precision: str, zone: str | None, digits: int) -> None:
    if precision in ("year", "month", "day"):
        zone = None  # calendar values carry no zone
    text = _render(moment, precision, zone, digits)
    parsed = parse_fhir_date(text)
    assert parsed.precision == precision

    # The range contains the moment, truncated to what was written.
    written = moment.replace(tzinfo=_offset(zone))
    if precision == "microsecond":
        step = 10 ** (6 - digits)
        written = written.replace(microsecond=written.microsecond // step * step)
    assert parsed.contains(written)

    # ... and has exactly the width of the precision.
    width = parsed.high - parsed.low + US
    if precision == "year":
        assert width.days in (365, 366) and width == timedelta(days=width.days)
        local_low = parsed.low.astimezone(VIETNAM_TZ)
        assert (local_low.month, local_low.day, local_low.hour) == (1, 1, 0)
    elif precision == "month":
        assert timedelta(days=28) <= width <= timedelta(days=31)
        assert width == timedelta(days=width.days)
        assert parsed.low.astimezone(VIETNAM_TZ).day == 1
    elif precision == "day":
        assert width == timedelta(days=1)
        assert parsed.low.astimezone(VIETNAM_TZ).time() == datetime.min.time()
    elif precision == "microsecond":
        assert width == timedelta(microseconds=10 ** (6 - digits))
    else:
        assert width == WIDTHS[precision]

    # The canonical form parses to the same range.
    assert parse_fhir_date(format_fhir_date(parsed)) == parsed
