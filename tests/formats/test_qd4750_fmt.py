"""Formatting helpers: money (2 decimals, half-up), quantities (3), yyyymmddHHMM, yyyymmdd."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ytehub.core.errors import DomainError
from ytehub.formats.qd4750 import fmt_date, fmt_datetime, fmt_money, fmt_qty


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12345, "12345.00"),
        (0, "0.00"),
        (-7, "-7.00"),
        (Decimal("12345"), "12345.00"),
        (Decimal("0.005"), "0.01"),  # half-up, not banker's rounding
        (Decimal("0.015"), "0.02"),
        (Decimal("0.025"), "0.03"),
        (Decimal("1.004999"), "1.00"),
        (Decimal("2.675"), "2.68"),
        (Decimal("-2.675"), "-2.68"),  # ties away from zero
        (Decimal("-0.001"), "0.00"),  # never "-0.00"
        (Decimal("1E+3"), "1000.00"),  # no exponent
        (Decimal("18750.000"), "18750.00"),
        (2.675, "2.68"),  # the float's decimal repr, not its binary expansion
        (0.1 + 0.2, "0.30"),
        (10**20, "100000000000000000000.00"),
    ],
)
def test_money(value: Decimal | float | int, expected: str) -> None:
    assert fmt_money(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (14, "14.000"),
        (Decimal("14"), "14.000"),
        (Decimal("0.0005"), "0.001"),
        (Decimal("2.0004"), "2.000"),
        (1.5, "1.500"),
        (Decimal("-0.0001"), "0.000"),
    ],
)
def test_quantity(value: Decimal | float | int, expected: str) -> None:
    assert fmt_qty(value) == expected


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=-(10**9), max_value=10**9
    )
)
def test_money_is_plain_two_decimals(value: Decimal) -> None:
    text = fmt_money(value)
    whole, _, cents = text.partition(".")
    assert len(cents) == 2 and whole.lstrip("-").isdigit() and "," not in text
    assert abs(Decimal(text) - value) <= Decimal("0.005")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), Decimal("NaN"), True, "12", None])
def test_money_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(DomainError) as caught:
        fmt_money(bad)  # type: ignore[arg-type]
    assert caught.value.code == "qd4750.bad_number"


def test_datetime_and_date() -> None:
    assert fmt_datetime(datetime(2017, 3, 31, 15, 20)) == "201703311520"  # the official example
    assert fmt_datetime(datetime(2024, 1, 5, 0, 7, 59)) == "202401050007"  # seconds dropped
    assert fmt_date(date(2024, 1, 5)) == "20240105"
    assert fmt_date(datetime(2024, 1, 5, 23, 59)) == "20240105"
    assert fmt_date(date(987, 6, 5)) == "09870605"


def test_aware_datetimes_are_written_in_vietnam_time() -> None:
    assert fmt_datetime(datetime(2024, 12, 31, 20, 0, tzinfo=UTC)) == "202501010300"
    assert fmt_date(datetime(2024, 12, 31, 20, 0, tzinfo=UTC)) == "20250101"
    plus7 = timezone(timedelta(hours=7))
    assert fmt_datetime(datetime(2024, 6, 1, 8, 30, tzinfo=plus7)) == "202406010830"


def test_datetime_needs_a_datetime() -> None:
    with pytest.raises(DomainError) as caught:
        fmt_datetime(date(2024, 1, 5))  # type: ignore[arg-type]
    assert caught.value.code == "qd4750.bad_date"
    with pytest.raises(DomainError):
        fmt_date("20240105")  # type: ignore[arg-type]
