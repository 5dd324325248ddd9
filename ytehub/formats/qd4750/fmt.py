"""Value formatting of QĐ 130 / QĐ 4750 (reference notes vn-formats.md §1.4).

* Money: rounded half-up to 2 decimals, "." as decimal separator, no thousands separator.
* Quantities (SO_LUONG, unit prices): 3 decimals.
* Date-times: 12 characters ``yyyymmddHHMM`` (24-hour); dates: 8 characters ``yyyymmdd``.

These run millions of times in the synthetic generator, so integers and naive datetimes take
short paths. Floats are converted through their shortest ``repr`` (``2.675`` means 2.675, which
rounds to ``2.68``), not their exact binary value (2.67499…).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ytehub.formats.qd4750._errors import error

__all__ = ["VIETNAM", "fmt_date", "fmt_datetime", "fmt_money", "fmt_qty"]

#: Vietnam time (UTC+7, no daylight saving): aware datetimes are converted to it.
VIETNAM = timezone(timedelta(hours=7), "ICT")

_CENT = Decimal("0.01")
_MILLI = Decimal("0.001")


def _decimal(value: Decimal | float | int) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise error(
            "qd4750.bad_number",
            f"Không phải số: {value!r}",
            f"Not a number: {value!r}",
            value=repr(value),
        )
    if not number.is_finite():
        raise error(
            "qd4750.bad_number",
            f"Số không hữu hạn: {value!r}",
            f"Not a finite number: {value!r}",
            value=repr(value),
        )
    return number


def _fixed(value: Decimal | float | int, step: Decimal, zero: str) -> str:
    try:
        text = format(_decimal(value).quantize(step, rounding=ROUND_HALF_UP), "f")
    except InvalidOperation:  # more digits than the decimal context allows
        raise error(
            "qd4750.bad_number",
            f"Số quá lớn: {value!r}",
            f"Number too large: {value!r}",
            value=repr(value),
        ) from None
    return zero if text == "-" + zero else text  # never write "-0.00"


def fmt_money(value: Decimal | float | int) -> str:
    """Money with 2 decimals, half-up: ``Decimal("12345.675")`` → ``"12345.68"``."""
    if type(value) is int:
        return f"{value}.00"
    return _fixed(value, _CENT, "0.00")


def fmt_qty(value: Decimal | float | int) -> str:
    """Quantity with 3 decimals, half-up: ``14`` → ``"14.000"``."""
    if type(value) is int:
        return f"{value}.000"
    return _fixed(value, _MILLI, "0.000")


def _check_date(value: object, kind: type) -> None:
    if not isinstance(value, kind):
        what = "datetime" if kind is datetime else "date"
        raise error(
            "qd4750.bad_date",
            f"Cần giá trị kiểu {what}, nhận được {type(value).__name__}",
            f"Expected a {what}, got {type(value).__name__}",
            value=repr(value),
        )


def fmt_datetime(value: datetime) -> str:
    """``yyyymmddHHMM``; an aware datetime is first converted to Vietnam time (UTC+7)."""
    _check_date(value, datetime)
    if value.tzinfo is not None:
        value = value.astimezone(VIETNAM)
    return f"{value.year:04d}{value.month:02d}{value.day:02d}{value.hour:02d}{value.minute:02d}"


def fmt_date(value: date) -> str:
    """``yyyymmdd``; a datetime is accepted (aware ones converted to Vietnam time first)."""
    _check_date(value, date)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(VIETNAM)
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"
