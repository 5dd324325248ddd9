"""FHIR date, dateTime and instant values as ranges of UTC instants.

Every FHIR date value stands for an interval: ``2024`` is the whole year, ``2024-05-01T08:30``
the whole minute. Search (``birthdate=ge2024``) and indexing both compare intervals, so one
parser turns any form into a :class:`DateRange` with inclusive UTC bounds.

Values without a timezone (every ``date``, and a search ``dateTime`` written without one) are
read as Vietnam time, +07:00. FHIR leaves the zone of such values to the server; ytehub serves a
provincial Department of Health whose facilities, clinicians and citizens all live in +07:00, so
"born on 2024-05-01" means that local calendar day and a clinician's ``date=2024-05-01`` means
their day, not the UTC day that starts at 07:00 local. A fixed offset (not the Asia/Ho_Chi_Minh
zone with its pre-1975 history) keeps every stored range reproducible.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

from ytehub.records.errors import FhirError

VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
"""Vietnam time (UTC+07:00, no daylight saving): the zone of values written without one."""

Precision = Literal["year", "month", "day", "minute", "second", "microsecond"]

_DATE_PRECISIONS: frozenset[str] = frozenset({"year", "month", "day"})
_ONE_MICROSECOND = timedelta(microseconds=1)
_MAX_SHOWN = 80

# ASCII digits only: ``\d`` would also accept Arabic-Indic and other Unicode digits.
_FORM = re.compile(
    r"(?P<year>[0-9]{4})"
    r"(?:-(?P<month>[0-9]{2})"
    r"(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?"
    r")?)?)?"
)


@dataclass(frozen=True, slots=True)
class DateRange:
    """The instants a FHIR date value covers, ``low`` to ``high`` inclusive, both UTC.

    ``high`` is the last microsecond of the value's precision (``2024`` ends at
    ``2024-12-31T23:59:59.999999+07:00``), so ``low <= t <= high`` tests membership and two
    ranges overlap when ``a.low <= b.high and b.low <= a.high``. A fractional second with fewer
    than six digits covers the unstated digits (``.5`` is ``.500000`` to ``.599999``).
    """

    low: datetime
    high: datetime
    precision: Precision

    def contains(self, moment: datetime) -> bool:
        """Whether the aware ``moment`` falls inside the range."""
        return self.low <= moment <= self.high


def _invalid(text: str, expression: str | None, vi: str, en: str) -> FhirError:
    shown = text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "…"
    return FhirError.single(
        400,
        "invalid",
        f"Giá trị ngày/giờ không hợp lệ '{shown}': {vi}",
        f"Invalid date/time value '{shown}': {en}",
        expression,
    )


def _offset(tz: str | None, text: str, expression: str | None) -> timezone:
    """The zone of the value: Vietnam time when none is written (see the module docstring)."""
    if tz is None:
        return VIETNAM_TZ
    if tz == "Z":
        return UTC
    hours, minutes = int(tz[1:3]), int(tz[4:6])
    if minutes > 59 or hours > 14 or (hours == 14 and minutes):
        raise _invalid(
            text,
            expression,
            "múi giờ phải nằm trong khoảng -14:00 đến +14:00",
            "the timezone offset must lie between -14:00 and +14:00",
        )
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if tz[0] == "-" else delta)


def _to_utc(
    local: datetime, zone: timezone, precision: Precision, text: str, expression: str | None
) -> datetime:
    """Attach the zone and convert; a calendar date at the edge of year 1 or 9999 is clamped.

    Python cannot represent instants before 0001-01-01T00:00Z or after 9999-12-31T23:59:59Z.
    A whole year/month/day that crosses that edge is clamped (its meaning is unambiguous); a
    written time that lands outside it is refused.
    """
    try:
        return local.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:
        if precision in _DATE_PRECISIONS:
            edge = datetime.min if local.year == 1 else datetime.max
            return edge.replace(tzinfo=UTC)
        raise _invalid(
            text,
            expression,
            "thời điểm nằm ngoài khoảng năm 0001-9999",
            "the instant lies outside years 0001-9999",
        ) from None


def parse_fhir_date(text: str, *, expression: str | None = None) -> DateRange:
    """Parse a FHIR date, dateTime or instant (or a search date value) into its UTC range.

    Accepts ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` and ``YYYY-MM-DDThh:mm[:ss[.f…]][Z|±hh:mm]``
    (minutes-only times are allowed because FHIR search accepts them). ``T24:00[:00[.0…]]``
    is the midnight that ends the day (ISO 8601); a leap second ``:60`` is folded into ``:59``
    because Python has no 61st second. Anything else raises :class:`FhirError` 400 ``invalid``
    naming the value; ``expression`` says where it came from (a search parameter, an element).
    """
    match = _FORM.fullmatch(text)
    if match is None:
        raise _invalid(
            text,
            expression,
            "dùng dạng YYYY, YYYY-MM, YYYY-MM-DD hoặc YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]",
            "use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]",
        )
    g = match.groupdict()
    year = int(g["year"])
    month = int(g["month"]) if g["month"] else 1
    day = int(g["day"]) if g["day"] else 1
    if year == 0:
        raise _invalid(text, expression, "không có năm 0000", "there is no year 0000")
    if not 1 <= month <= 12:
        raise _invalid(text, expression, "tháng phải từ 01 đến 12", "the month must be 01 to 12")
    last_day = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last_day:
        raise _invalid(
            text,
            expression,
            f"tháng {month:02d}/{year:04d} chỉ có {last_day} ngày",
            f"{year:04d}-{month:02d} has only {last_day} days",
        )

    precision: Precision
    if g["hour"] is None:
        precision = "day" if g["day"] else "month" if g["month"] else "year"
        low = datetime(year, month, day)
        if precision == "year":
            high = datetime(year, 12, 31)
        elif precision == "month":
            high = datetime(year, month, last_day)
        else:
            high = low
        high = high.replace(hour=23, minute=59, second=59, microsecond=999999)
        return DateRange(
            _to_utc(low, VIETNAM_TZ, precision, text, expression),
            _to_utc(high, VIETNAM_TZ, precision, text, expression),
            precision,
        )

    zone = _offset(g["tz"], text, expression)
    hour, minute = int(g["hour"]), int(g["minute"])
    second = int(g["second"]) if g["second"] else 0
    fraction = g["fraction"] or ""
    if hour == 24:
        if minute or second or fraction.strip("0"):
            raise _invalid(
                text,
                expression,
                "giờ 24 chỉ được viết là 24:00 (nửa đêm cuối ngày)",
                "hour 24 is only allowed as 24:00 (the midnight ending the day)",
            )
        if (year, month, day) == (9999, 12, 31):
            raise _invalid(
                text,
                expression,
                "thời điểm nằm ngoài khoảng năm 0001-9999",
                "the instant lies outside years 0001-9999",
            )
        hour, base = 0, datetime(year, month, day) + timedelta(days=1)
    else:
        base = datetime(year, month, day)
    if hour > 23 or minute > 59 or second > 60:
        raise _invalid(
            text,
            expression,
            "giờ phải từ 00:00 đến 23:59, giây từ 00 đến 59",
            "the time must be 00:00 to 23:59 and seconds 00 to 59",
        )
    second = min(second, 59)

    if g["second"] is None:
        precision, width = "minute", timedelta(minutes=1)
    elif not fraction:
        precision, width = "second", timedelta(seconds=1)
    else:
        precision = "microsecond"
        width = timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    low = base.replace(hour=hour, minute=minute, second=second, microsecond=micro)
    low_utc = _to_utc(low, zone, precision, text, expression)
    try:
        high_utc = low_utc + (width - _ONE_MICROSECOND)
    except OverflowError:
        raise _invalid(
            text,
            expression,
            "thời điểm nằm ngoài khoảng năm 0001-9999",
            "the instant lies outside years 0001-9999",
        ) from None
    return DateRange(low_utc, high_utc, precision)


def format_fhir_date(value: DateRange) -> str:
    """The canonical text of a range: ``parse_fhir_date(format_fhir_date(r)) == r``.

    Calendar precisions are written in Vietnam time (they were read in it); times are written
    in UTC with ``Z`` so a URL never has to carry a ``+``. Used for ``Bundle.link`` URLs.
    """
    if value.precision in _DATE_PRECISIONS:
        local = value.low.astimezone(VIETNAM_TZ)
        if value.precision == "year":
            return f"{local.year:04d}"
        if value.precision == "month":
            return f"{local.year:04d}-{local.month:02d}"
        return f"{local.year:04d}-{local.month:02d}-{local.day:02d}"
    low = value.low.astimezone(UTC)
    text = f"{low.year:04d}-{low.month:02d}-{low.day:02d}T{low.hour:02d}:{low.minute:02d}"
    if value.precision == "minute":
        return text + "Z"
    text += f":{low.second:02d}"
    if value.precision == "second":
        return text + "Z"
    width_us = (value.high - value.low) // _ONE_MICROSECOND + 1
    digits = 6
    while digits > 1 and width_us >= 10:
        width_us //= 10
        digits -= 1
    return text + "." + f"{low.microsecond:06d}"[:digits] + "Z"
