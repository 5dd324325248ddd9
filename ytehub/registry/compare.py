"""The comparisons of the matching model, each written twice: in Python for the registry's own
online scorer, and in SQL for Splink's parameter estimation and the batch run in DuckDB.

Both forms sit side by side so they cannot drift apart, and a test evaluates every level of
both on the same pairs. Levels are tried in order; the first that holds is the pair's level.
A comparison is "null" (no evidence either way) when a side lacks the value. Edit distances
are Damerau–Levenshtein (one typo: a wrong, missing, extra or swapped character), which gives
the same integer in Python (jellyfish) and in DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jellyfish

from ytehub.registry.normalize import SourceRecord


def typo(a: str, b: str) -> bool:
    return jellyfish.damerau_levenshtein_distance(a, b) <= 1


@dataclass(frozen=True, slots=True)
class Level:
    label: str
    sql: str
    tf_column: str | None = None  # the level's evidence depends on how common the value is


@dataclass(frozen=True, slots=True)
class Comparison:
    name: str
    description: str
    null_sql: str
    levels: tuple[Level, ...]  # most agreeing first; the last is "else"
    # Python twin of the SQL: the level's index, or None for null.
    classify: Callable[[SourceRecord, SourceRecord], int | None]


def _words(name: str | None) -> set[str]:
    return set(name.split(" ")) if name else set()


def _name_part(field: str) -> Callable[[SourceRecord, SourceRecord], int | None]:
    """Exact, one typo, found elsewhere in the other name (order swapped), different."""

    def classify(a: SourceRecord, b: SourceRecord) -> int | None:
        x, y = getattr(a, field), getattr(b, field)
        if not x or not y:
            return None
        if x == y:
            return 0
        if typo(x, y):
            return 1
        if x in _words(b.name) or y in _words(a.name):
            return 2
        return 3

    return classify


def _middle(a: SourceRecord, b: SourceRecord) -> int | None:
    if not a.middle and not b.middle:
        return None
    if not a.middle or not b.middle:
        return 1
    if a.middle == b.middle:
        return 0
    if typo(a.middle, b.middle):
        return 2
    return 3


def _birth(a: SourceRecord, b: SourceRecord) -> int | None:
    if a.birth_year is None or b.birth_year is None:
        return None
    same_year = a.birth_year == b.birth_year
    full = None not in (a.birth_month, a.birth_day, b.birth_month, b.birth_day)
    if same_year and full and (a.birth_month, a.birth_day) == (b.birth_month, b.birth_day):
        return 0
    if same_year and full and (a.birth_month, a.birth_day) == (b.birth_day, b.birth_month):
        return 1
    if same_year and a.birth_month is not None and a.birth_month == b.birth_month:
        return 2
    if same_year and (a.birth_month is None or b.birth_month is None):
        return 3
    if (
        full
        and (a.birth_month, a.birth_day) == (b.birth_month, b.birth_day)
        and typo(str(a.birth_year), str(b.birth_year))
    ):
        return 4
    return 5


def _exact(field: str) -> Callable[[SourceRecord, SourceRecord], int | None]:
    def classify(a: SourceRecord, b: SourceRecord) -> int | None:
        x, y = getattr(a, field), getattr(b, field)
        if x is None or y is None:
            return None
        return 0 if x == y else 1

    return classify


def _exact_or_typo(field: str) -> Callable[[SourceRecord, SourceRecord], int | None]:
    def classify(a: SourceRecord, b: SourceRecord) -> int | None:
        x, y = getattr(a, field), getattr(b, field)
        if x is None or y is None:
            return None
        if x == y:
            return 0
        return 1 if typo(x, y) else 2

    return classify


def _dl(column: str) -> str:
    """One typo, in SQL. A cheap necessary condition goes first (lengths within one, and the
    first or last k characters equal, k = (shorter length - 2) // 2: one edit touches at most
    two neighbouring characters), since the edit distance itself costs a microsecond a pair
    and most pairs differ at once. The level is the same with or without it."""
    a, b = f"{column}_l", f"{column}_r"
    k = f"greatest((least(length({a}), length({b})) - 2) // 2, 0)"
    return (
        f"(abs(length({a}) - length({b})) <= 1"
        f" AND (left({a}, {k}) = left({b}, {k}) OR right({a}, {k}) = right({b}, {k}))"
        f" AND damerau_levenshtein({a}, {b}) <= 1)"
    )


def _in_other(column: str) -> str:
    return (
        f"(list_contains(string_split(name_r, ' '), {column}_l)"
        f" OR list_contains(string_split(name_l, ' '), {column}_r))"
    )


_FULL = (
    "birth_month_l IS NOT NULL AND birth_day_l IS NOT NULL"
    " AND birth_month_r IS NOT NULL AND birth_day_r IS NOT NULL"
)


def _name_comparison(field: str, description: str) -> Comparison:
    return Comparison(
        field,
        description,
        f"{field}_l IS NULL OR {field}_r IS NULL",
        (
            Level("exact", f"{field}_l = {field}_r", field),
            Level("one typo", _dl(field)),
            Level("found elsewhere in the other name (order swapped)", _in_other(field)),
            Level("different", "TRUE"),
        ),
        _name_part(field),
    )


COMPARISONS: tuple[Comparison, ...] = (
    _name_comparison("given", "tên (given name), folded; adjusted for how common the name is"),
    _name_comparison(
        "family", "họ (family name), folded; 'Nguyễn' says little, a rare family name much"
    ),
    Comparison(
        "middle",
        "tên đệm (middle names); often left out, so missing on one side is its own level",
        "middle_l IS NULL AND middle_r IS NULL",
        (
            Level("exact", "middle_l = middle_r", "middle"),
            Level("missing on one side", "middle_l IS NULL OR middle_r IS NULL"),
            Level("one typo", _dl("middle")),
            Level("different", "TRUE"),
        ),
        _middle,
    ),
    Comparison(
        "birth",
        "date of birth with unknown parts (0000) and day and month swapped",
        "birth_year_l IS NULL OR birth_year_r IS NULL",
        (
            Level(
                "exact",
                f"birth_year_l = birth_year_r AND {_FULL}"
                " AND birth_month_l = birth_month_r AND birth_day_l = birth_day_r",
            ),
            Level(
                "day and month swapped",
                f"birth_year_l = birth_year_r AND {_FULL}"
                " AND birth_month_l = birth_day_r AND birth_day_l = birth_month_r",
            ),
            Level(
                "year and month",
                "birth_year_l = birth_year_r AND birth_month_l IS NOT NULL"
                " AND birth_month_l = birth_month_r",
            ),
            Level(
                "year, month unknown on a side",
                "birth_year_l = birth_year_r AND (birth_month_l IS NULL OR birth_month_r IS NULL)",
            ),
            Level(
                "day and month, year one typo",
                f"{_FULL} AND birth_month_l = birth_month_r AND birth_day_l = birth_day_r"
                " AND damerau_levenshtein(CAST(birth_year_l AS VARCHAR),"
                " CAST(birth_year_r AS VARCHAR)) <= 1",
            ),
            Level("different", "TRUE"),
        ),
        _birth,
    ),
    Comparison(
        "sex",
        "giới tính",
        "sex_l IS NULL OR sex_r IS NULL",
        (Level("same", "sex_l = sex_r"), Level("different", "TRUE")),
        _exact("sex"),
    ),
    Comparison(
        "cccd",
        "12-digit personal id: strong, but typed by hand",
        "cccd_l IS NULL OR cccd_r IS NULL",
        (
            Level("exact", "cccd_l = cccd_r"),
            Level("one typo", _dl("cccd")),
            Level("different", "TRUE"),
        ),
        _exact_or_typo("cccd"),
    ),
    Comparison(
        "cmnd",
        "legacy 9-digit identity card",
        "cmnd_l IS NULL OR cmnd_r IS NULL",
        (Level("exact", "cmnd_l = cmnd_r"), Level("different", "TRUE")),
        _exact("cmnd"),
    ),
    Comparison(
        "bhxh",
        "social-insurance number (the last ten characters of the BHYT card)",
        "bhxh_l IS NULL OR bhxh_r IS NULL",
        (
            Level("exact", "bhxh_l = bhxh_r"),
            Level("one typo", _dl("bhxh")),
            Level("different", "TRUE"),
        ),
        _exact_or_typo("bhxh"),
    ),
    Comparison(
        "commune",
        "commune of residence, legacy codes converted to the 2025 units",
        "commune_l IS NULL OR commune_r IS NULL",
        (Level("same", "commune_l = commune_r"), Level("different", "TRUE")),
        _exact("commune"),
    ),
    Comparison(
        "phone",
        "phone number",
        "phone_l IS NULL OR phone_r IS NULL",
        (Level("same", "phone_l = phone_r"), Level("different", "TRUE")),
        _exact("phone"),
    ),
)

# The columns every comparison reads, as the SQL side names them (``<column>_l``/``_r``).
COLUMNS = (
    "name",
    "family",
    "middle",
    "given",
    "birth_year",
    "birth_month",
    "birth_day",
    "sex",
    "cccd",
    "cmnd",
    "bhxh",
    "commune",
    "phone",
)


def levels(a: SourceRecord, b: SourceRecord) -> tuple[int | None, ...]:
    """The level of each comparison for one pair (None: no evidence)."""
    return tuple(comparison.classify(a, b) for comparison in COMPARISONS)
