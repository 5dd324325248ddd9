"""The national immunization schedule (TCMR) as validated data, and pure forecasting rules.

The schedule lives in ``schedule.toml`` beside this module so that a change of the law is a
data change with a version, not a code change. It is loaded and validated on first use; a
malformed entry raises :class:`~ytehub.core.errors.DomainError` naming the entry, so a bad
edit fails at start-up rather than producing wrong forecasts.

Rules (all pure functions of dates):

* A dose is *valid* when given on or after its earliest date: the minimum age, and the
  minimum interval after the previous valid dose of the same series. Invalid (too early)
  doses do not count and the slot stays open, as in other forecasters (CDC CDSi).
* A dose is *on time* (đúng lịch) when given between its minimum age and its latest on-time
  age; the window is a ytehub convention recorded in the TOML (see ``unconfirmed_items``).
* :func:`due_doses` returns, for every series, the next dose still to give, with status
  ``upcoming`` (before its due date), ``due`` (within its on-time window) or ``overdue``.
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from ytehub.core.errors import DomainError, Text

__all__ = [
    "CVX_SYSTEM",
    "SCHEDULE_PATH",
    "VACCINE_SYSTEM",
    "Dose",
    "DoseStatus",
    "DoseWindow",
    "DueDose",
    "Schedule",
    "Span",
    "Vaccine",
    "dose_window",
    "due_doses",
    "is_on_time",
    "load_schedule",
    "national_schedule",
]

SCHEDULE_PATH = Path(__file__).with_name("schedule.toml")
VACCINE_SYSTEM = "urn:ytehub:cs:tcmr-vaccine"  # ytehub's own code system for EPI vaccines
CVX_SYSTEM = "http://hl7.org/fhir/sid/cvx"

DoseStatus = Literal["upcoming", "due", "overdue"]

_SPAN = re.compile(r"^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?$")
_DOSE_KEYS = frozenset(
    {
        "id",
        "vaccine",
        "accepts",
        "series",
        "dose_number",
        "min_age",
        "recommended_age",
        "latest_on_time_age",
        "max_age",
        "min_interval",
        "recommended_interval",
        "introduced",
        "phased",
        "unconfirmed",
        "note",
    }
)
_VACCINE_KEYS = frozenset({"name_vi", "name_en", "cvx", "cvx_display"})
_TOP_KEYS = frozenset(
    {
        "version",
        "source",
        "confirmed_against_official_text",
        "unconfirmed_items",
        "vaccines",
        "doses",
    }
)


def _add_months(day: date, months: int) -> date:
    """Calendar months, clamping the day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class Span:
    """An age or interval as the schedule states it ("2m", "1y2w"): calendar months first,
    then days, because "2 months" is a calendar notion for parents and health workers."""

    months: int
    days: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Span:
        """Parse ``[Ny][Nm][Nw][Nd]`` (at least one part); ValueError otherwise."""
        match = _SPAN.match(text) if isinstance(text, str) else None
        if not text or match is None:
            raise ValueError(f"{text!r} is not a span like '2m', '6w', '1y2w' or '0d'")
        years, months, weeks, days = (int(g) if g else 0 for g in match.groups())
        return cls(months=years * 12 + months, days=weeks * 7 + days, text=text)

    def after(self, start: date) -> date:
        """The date this span after ``start``."""
        return _add_months(start, self.months) + timedelta(days=self.days)

    def approx_days(self) -> float:
        """Length in days (a month counts 30.4375 days); only for ordering checks."""
        return self.months * 30.4375 + self.days

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Vaccine:
    """A vaccine code of ``urn:ytehub:cs:tcmr-vaccine`` with its names and CVX mapping."""

    code: str
    name_vi: str
    name_en: str
    cvx: str | None
    cvx_display: str | None


@dataclass(frozen=True, slots=True)
class Dose:
    """One dose of the schedule (one ``[[doses]]`` entry)."""

    id: str
    vaccine: str
    accepts: tuple[str, ...]  # every vaccine code that fills this dose, preferred first
    series: str
    dose_number: int
    min_age: Span
    recommended_age: Span
    latest_on_time_age: Span
    max_age: Span | None
    min_interval: Span | None
    recommended_interval: Span | None
    introduced: date | None
    phased: bool
    unconfirmed: bool
    note: str


@dataclass(frozen=True, slots=True)
class DueDose:
    """The next dose of one series for one child, with the dates that bound it."""

    dose: Dose
    status: DoseStatus
    earliest: date  # first valid date (minimum age, minimum interval, introduction)
    due: date  # recommended date
    latest_on_time: date  # last on-time date
    expires: date | None  # after this date the dose is no longer given (max age)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated, versioned schedule."""

    version: str
    source: str
    confirmed_against_official_text: bool
    unconfirmed_items: tuple[str, ...]
    vaccines: Mapping[str, Vaccine]
    doses: tuple[Dose, ...]

    def series_names(self) -> tuple[str, ...]:
        """Series in the order their first dose appears in the file."""
        return tuple(dict.fromkeys(d.series for d in self.doses))

    def series(self, name: str) -> tuple[Dose, ...]:
        """The doses of one series, by dose number."""
        return tuple(sorted((d for d in self.doses if d.series == name), key=_dose_number))

    def dose(self, dose_id: str) -> Dose:
        """The dose with this id; KeyError if there is none."""
        for d in self.doses:
            if d.id == dose_id:
                return d
        raise KeyError(dose_id)

    def series_of(self, vaccine_code: str) -> str | None:
        """The series a vaccine code counts towards, ``None`` for codes outside the schedule."""
        for d in self.doses:
            if vaccine_code in d.accepts:
                return d.series
        return None

    def dose_for(self, vaccine_code: str, dose_number: int) -> Dose | None:
        """The dose a record "vaccine code, dose number" refers to (number within series)."""
        name = self.series_of(vaccine_code)
        if name is None:
            return None
        for d in self.series(name):
            if d.dose_number == dose_number:
                return d
        return None


def _dose_number(dose: Dose) -> int:
    return dose.dose_number


# --------------------------------------------------------------------------- loading


def _invalid(entry: str, problem_en: str, problem_vi: str, value: Any = None) -> DomainError:
    """The one error the loader raises: names the entry so the editor knows where to look."""
    return DomainError(
        code="immunization.schedule_invalid",
        message=Text(
            f"Lịch tiêm chủng không hợp lệ tại mục {entry}: {problem_vi}",
            f"Invalid immunization schedule entry {entry}: {problem_en}",
        ),
        status=500,
        field=entry,
        value=value,
    )


def _text(raw: Mapping[str, Any], key: str, entry: str, *, required: bool = True) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(
            entry,
            f"'{key}' must be a non-empty string",
            f"'{key}' phải là chuỗi không rỗng",
            value,
        )
    return value


def _span(raw: Mapping[str, Any], key: str, entry: str, *, required: bool = True) -> Span | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    try:
        return Span.parse(value)
    except (ValueError, TypeError) as exc:
        raise _invalid(
            entry,
            f"'{key}' = {value!r} is not a span like '2m', '6w', '1y2w' or '0d'",
            f"'{key}' = {value!r} không phải khoảng thời gian dạng '2m', '6w', '1y2w', '0d'",
            value,
        ) from exc


def _flag(raw: Mapping[str, Any], key: str, entry: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise _invalid(
            entry, f"'{key}' must be true or false", f"'{key}' phải là true/false", value
        )
    return value


def _unknown_keys(raw: Mapping[str, Any], allowed: frozenset[str], entry: str) -> None:
    """Reject unknown keys: a misspelt "min_interval" would otherwise silently vanish."""
    extra = sorted(set(raw) - allowed)
    if extra:
        raise _invalid(
            entry,
            f"unknown key(s) {', '.join(extra)}",
            f"khóa không xác định {', '.join(extra)}",
            extra,
        )


def _parse_vaccine(code: str, raw: Any) -> Vaccine:
    entry = f"vaccines.{code}"
    if not isinstance(raw, Mapping):
        raise _invalid(entry, "must be a table", "phải là một bảng")
    _unknown_keys(raw, _VACCINE_KEYS, entry)
    cvx = _text(raw, "cvx", entry, required=False)
    if cvx is not None and not cvx.isdigit():
        raise _invalid(entry, f"cvx {cvx!r} must be digits", f"cvx {cvx!r} phải là chữ số", cvx)
    return Vaccine(
        code=code,
        name_vi=_text(raw, "name_vi", entry) or "",
        name_en=_text(raw, "name_en", entry) or "",
        cvx=cvx,
        cvx_display=_text(raw, "cvx_display", entry, required=cvx is not None),
    )


def _parse_dose(index: int, raw: Any, vaccines: Mapping[str, Vaccine]) -> Dose:
    if not isinstance(raw, Mapping):
        raise _invalid(f"doses[{index}]", "must be a table", "phải là một bảng")
    raw_id = raw.get("id")
    entry = f"doses[{index}] ({raw_id})" if isinstance(raw_id, str) else f"doses[{index}]"
    _unknown_keys(raw, _DOSE_KEYS, entry)
    dose_id = _text(raw, "id", entry) or ""
    vaccine = _text(raw, "vaccine", entry) or ""
    accepts_raw = raw.get("accepts", [])
    if not isinstance(accepts_raw, list) or not all(isinstance(a, str) for a in accepts_raw):
        raise _invalid(
            entry,
            "'accepts' must be a list of codes",
            "'accepts' phải là danh sách mã",
            accepts_raw,
        )
    accepts = tuple(dict.fromkeys([vaccine, *accepts_raw]))
    for code in accepts:
        if code not in vaccines:
            raise _invalid(
                entry,
                f"vaccine code {code!r} is not defined under [vaccines]",
                f"mã vắc xin {code!r} chưa khai báo trong [vaccines]",
                code,
            )
    number = raw.get("dose_number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise _invalid(
            entry,
            "'dose_number' must be an integer ≥ 1",
            "'dose_number' phải là số nguyên ≥ 1",
            number,
        )
    introduced = raw.get("introduced")
    if introduced is not None and (not isinstance(introduced, date) or hasattr(introduced, "hour")):
        raise _invalid(
            entry,
            "'introduced' must be a TOML date (2024-11-01)",
            "'introduced' phải là ngày TOML (2024-11-01)",
            str(introduced),
        )
    note = raw.get("note", "")
    if not isinstance(note, str):
        raise _invalid(entry, "'note' must be a string", "'note' phải là chuỗi", note)
    dose = Dose(
        id=dose_id,
        vaccine=vaccine,
        accepts=accepts,
        series=_text(raw, "series", entry) or "",
        dose_number=number,
        min_age=_span(raw, "min_age", entry),  # type: ignore[arg-type]
        recommended_age=_span(raw, "recommended_age", entry),  # type: ignore[arg-type]
        latest_on_time_age=_span(raw, "latest_on_time_age", entry),  # type: ignore[arg-type]
        max_age=_span(raw, "max_age", entry, required=False),
        min_interval=_span(raw, "min_interval", entry, required=False),
        recommended_interval=_span(raw, "recommended_interval", entry, required=False),
        introduced=introduced,
        phased=_flag(raw, "phased", entry),
        unconfirmed=_flag(raw, "unconfirmed", entry),
        note=note,
    )
    _check_dose(dose, entry)
    return dose


def _check_dose(dose: Dose, entry: str) -> None:
    """Ages must be ordered and intervals present exactly where a previous dose exists."""
    ordered = [
        ("min_age", dose.min_age),
        ("recommended_age", dose.recommended_age),
        ("latest_on_time_age", dose.latest_on_time_age),
    ]
    if dose.max_age is not None:
        ordered.append(("max_age", dose.max_age))
    for (name_a, a), (name_b, b) in pairwise(ordered):
        if a.approx_days() > b.approx_days():
            raise _invalid(
                entry,
                f"{name_a} {a} is later than {name_b} {b}",
                f"{name_a} {a} muộn hơn {name_b} {b}",
                {name_a: a.text, name_b: b.text},
            )
    if dose.dose_number == 1 and (dose.min_interval or dose.recommended_interval):
        raise _invalid(
            entry,
            "dose 1 of a series cannot have an interval from a previous dose",
            "mũi 1 của một loạt không thể có khoảng cách với mũi trước",
        )
    if dose.dose_number > 1 and dose.min_interval is None:
        raise _invalid(
            entry,
            f"dose {dose.dose_number} needs 'min_interval' from the previous dose",
            f"mũi {dose.dose_number} cần 'min_interval' tính từ mũi trước",
        )
    if (
        dose.min_interval is not None
        and dose.recommended_interval is not None
        and dose.recommended_interval.approx_days() < dose.min_interval.approx_days()
    ):
        raise _invalid(
            entry,
            "recommended_interval is shorter than min_interval",
            "recommended_interval ngắn hơn min_interval",
        )


def _check_series(doses: Sequence[Dose]) -> None:
    """Each series numbers its doses 1..n in age order; each vaccine code has one series."""
    series: dict[str, list[Dose]] = {}
    for d in doses:
        series.setdefault(d.series, []).append(d)
    for name, members in series.items():
        members.sort(key=_dose_number)
        numbers = [d.dose_number for d in members]
        if numbers != list(range(1, len(members) + 1)):
            raise _invalid(
                f"series {name}",
                f"dose numbers {numbers} are not 1..{len(members)}",
                f"số mũi {numbers} không liên tục 1..{len(members)}",
                numbers,
            )
        for prev, nxt in pairwise(members):
            if nxt.recommended_age.approx_days() < prev.recommended_age.approx_days():
                raise _invalid(
                    f"doses ({nxt.id})",
                    f"recommended_age {nxt.recommended_age} is before that of {prev.id}",
                    f"recommended_age {nxt.recommended_age} sớm hơn mũi {prev.id}",
                )
    owner: dict[str, str] = {}
    for d in doses:
        for code in d.accepts:
            if owner.setdefault(code, d.series) != d.series:
                raise _invalid(
                    f"doses ({d.id})",
                    f"vaccine code {code!r} is used in series {owner[code]} and {d.series}",
                    f"mã vắc xin {code!r} dùng cho cả loạt {owner[code]} và {d.series}",
                    code,
                )


def _parse(raw: Mapping[str, Any]) -> Schedule:
    _unknown_keys(raw, _TOP_KEYS, "(top level)")
    version = _text(raw, "version", "version") or ""
    source = _text(raw, "source", "source") or ""
    items = raw.get("unconfirmed_items", [])
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise _invalid(
            "unconfirmed_items", "must be a list of strings", "phải là danh sách chuỗi", items
        )
    vaccines_raw = raw.get("vaccines")
    if not isinstance(vaccines_raw, Mapping) or not vaccines_raw:
        raise _invalid("vaccines", "at least one vaccine is required", "cần ít nhất một vắc xin")
    vaccines = {code: _parse_vaccine(code, v) for code, v in vaccines_raw.items()}
    doses_raw = raw.get("doses")
    if not isinstance(doses_raw, list) or not doses_raw:
        raise _invalid("doses", "at least one dose is required", "cần ít nhất một mũi tiêm")
    doses = [_parse_dose(i, d, vaccines) for i, d in enumerate(doses_raw)]
    seen: set[str] = set()
    for i, d in enumerate(doses):
        if d.id in seen:
            raise _invalid(f"doses[{i}] ({d.id})", "duplicate id", "trùng id", d.id)
        seen.add(d.id)
    _check_series(doses)
    return Schedule(
        version=version,
        source=source,
        confirmed_against_official_text=bool(raw.get("confirmed_against_official_text", False)),
        unconfirmed_items=tuple(items),
        vaccines=vaccines,
        doses=tuple(doses),
    )


def load_schedule(path: Path | str = SCHEDULE_PATH) -> Schedule:
    """Read and validate a schedule file; DomainError ``immunization.schedule_invalid``
    naming the entry for any problem (including TOML syntax)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(
            path.name, f"not valid TOML ({exc})", f"không phải TOML hợp lệ ({exc})"
        ) from exc
    return _parse(raw)


@cache
def national_schedule() -> Schedule:
    """The packaged national schedule, loaded and validated once."""
    return load_schedule(SCHEDULE_PATH)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class DoseWindow:
    """When one dose may and should be given, for one child and one previous dose."""

    earliest: date  # first valid date (minimum age, minimum interval, introduction)
    due: date  # recommended date
    latest_on_time: date  # last on-time date
    expires: date | None  # after this date the dose is no longer given (max age)


def dose_window(dose: Dose, birth_date: date, previous: date | None) -> DoseWindow:
    """The window of ``dose`` for a child born on ``birth_date`` whose previous valid dose of
    the same series was given on ``previous`` (``None`` for a first dose).

    A late previous dose shifts the due date; the on-time window keeps the width the
    schedule gives it, so a child delayed once is not counted late for every later dose.
    """
    age_due = dose.recommended_age.after(birth_date)
    age_latest = dose.latest_on_time_age.after(birth_date)
    earliest = dose.min_age.after(birth_date)
    due = age_due
    if previous is not None:
        if dose.min_interval is not None:
            earliest = max(earliest, dose.min_interval.after(previous))
        if dose.recommended_interval is not None:
            due = max(due, dose.recommended_interval.after(previous))
    if dose.introduced is not None:
        earliest = max(earliest, dose.introduced)
    due = max(due, earliest)
    latest = max(age_latest, due + (age_latest - age_due))
    expires = dose.max_age.after(birth_date) if dose.max_age is not None else None
    return DoseWindow(earliest, due, latest, expires)


def _valid_given(series: Sequence[Dose], birth_date: date, given: Iterable[date]) -> list[date]:
    """Dates of the valid doses of one series, in order: too-early doses are skipped."""
    valid: list[date] = []
    for day in sorted(given):
        if len(valid) >= len(series):
            break
        window = dose_window(series[len(valid)], birth_date, valid[-1] if valid else None)
        if day >= window.earliest:
            valid.append(day)
    return valid


def due_doses(
    birth_date: date,
    given: Sequence[tuple[str, date]],
    on: date,
    *,
    include_phased: bool = True,
    schedule: Schedule | None = None,
) -> list[DueDose]:
    """The next dose of every unfinished series for a child on ``on``, ordered by due date.

    ``given`` holds (vaccine code, date) pairs; codes outside the schedule (service vaccines
    such as PCV) are ignored, as are doses dated after ``on``. Doses whose maximum age has
    passed, or that were introduced too late for this child, are left out. With
    ``include_phased=False`` doses offered only in some provinces (rotavirus) are left out.
    """
    sched = schedule or national_schedule()
    by_series: dict[str, list[date]] = {}
    for code, day in given:
        name = sched.series_of(code)
        if name is not None and day <= on:
            by_series.setdefault(name, []).append(day)
    result: list[DueDose] = []
    for name in sched.series_names():
        members = sched.series(name)
        done = _valid_given(members, birth_date, by_series.get(name, ()))
        if len(done) >= len(members):
            continue
        dose = members[len(done)]
        if dose.phased and not include_phased:
            continue
        w = dose_window(dose, birth_date, done[-1] if done else None)
        if w.expires is not None and (on > w.expires or w.earliest > w.expires):
            continue
        status: DoseStatus = (
            "upcoming" if on < w.due else "due" if on <= w.latest_on_time else "overdue"
        )
        result.append(DueDose(dose, status, w.earliest, w.due, w.latest_on_time, w.expires))
    order = {d.id: i for i, d in enumerate(sched.doses)}
    result.sort(key=lambda d: (d.due, order[d.dose.id]))
    return result


def is_on_time(
    dose: Dose | str, birth_date: date, given_on: date, *, schedule: Schedule | None = None
) -> bool:
    """True when a dose (a :class:`Dose` or its id) given on ``given_on`` was on time: not
    before its minimum age and not after its latest on-time age."""
    if isinstance(dose, str):
        dose = (schedule or national_schedule()).dose(dose)
    return dose.min_age.after(birth_date) <= given_on <= dose.latest_on_time_age.after(birth_date)
