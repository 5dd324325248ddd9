"""Synthetic 115 calls have the configured volume, daily and weekly rhythm, and mix."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

import ytehub.synth.emergency as emergency
from ytehub.core.units import communes
from ytehub.synth.emergency import (
    CALLS_CSV_COLUMNS,
    CALLS_CSV_LAYOUT_DOC,
    COMPLAINTS,
    EmergencyCall,
    calls_csv_text,
    emergency_calls,
    holiday_kind,
    write_calls_csv,
)

PROVINCE = "46"
START = date(2025, 3, 3)  # a Monday; no holiday in the following eight weeks
DAYS = 56
POPULATION = 1_000_000
RATE = 20.0


@pytest.fixture(scope="module")
def calls() -> list[EmergencyCall]:
    return list(emergency_calls(PROVINCE, START, DAYS, POPULATION, seed=3))


def _share(calls: list[EmergencyCall], keep, test) -> float:
    chosen = [c for c in calls if keep(c)]
    return sum(1 for c in chosen if test(c)) / len(chosen)


def test_table_is_consistent() -> None:
    assert abs(sum(c.share for c in COMPLAINTS) - 1.0) < 1e-9
    assert len({c.code for c in COMPLAINTS}) == len(COMPLAINTS)
    for complaint in COMPLAINTS:
        assert abs(sum(complaint.priority) - 1.0) < 1e-9
        assert complaint.notes and all(p in (1, 2, 3) for p, _ in complaint.notes)


def test_daily_counts_are_near_the_configured_rate(calls) -> None:
    expected = POPULATION / 100_000 * RATE
    per_day = Counter(c.received_at.date() for c in calls)
    assert set(per_day) == {START + timedelta(days=i) for i in range(DAYS)}
    mean = len(calls) / DAYS
    assert abs(mean - expected) < 0.05 * expected
    assert all(0.6 * expected < n < 1.5 * expected for n in per_day.values())
    assert len(set(per_day.values())) > 10  # counts vary from day to day (Poisson)


def test_calls_are_in_time_order_with_unique_ids(calls) -> None:
    times = [c.received_at for c in calls]
    assert times == sorted(times)
    assert len({c.call_id for c in calls}) == len(calls)
    assert all(c.received_at.utcoffset() == timedelta(hours=7) for c in calls)


def test_evening_injuries_and_morning_elderly_calls(calls) -> None:
    def evening(c: EmergencyCall) -> bool:
        return 18 <= c.received_at.hour <= 23

    def morning(c: EmergencyCall) -> bool:
        return 5 <= c.received_at.hour <= 9

    def injury(c: EmergencyCall) -> bool:
        return c.complaint in {"traffic_accident", "assault", "poisoning", "burn"}

    def elderly(c: EmergencyCall) -> bool:
        return c.complaint in {"stroke_symptoms", "chest_pain", "breathing_difficulty"}

    injury_evening = _share(calls, injury, evening)
    elderly_evening = _share(calls, elderly, evening)
    assert injury_evening > 6 / 24 + 0.08  # uniform would give 0.25
    assert injury_evening > elderly_evening + 0.1
    elderly_morning = _share(calls, elderly, morning)
    assert elderly_morning > 5 / 24 + 0.08
    assert elderly_morning > _share(calls, injury, morning) + 0.1
    assert _share(calls, lambda c: True, lambda c: 1 <= c.received_at.hour <= 4) < 4 / 24


def test_weekend_share_rises_for_injuries_only(calls) -> None:
    def weekend(c: EmergencyCall) -> bool:
        return c.received_at.weekday() >= 5

    traffic = _share(calls, lambda c: c.complaint in {"traffic_accident", "assault"}, weekend)
    assert traffic > 2 / 7 + 0.04
    illness = _share(calls, lambda c: c.complaint == "other_illness", weekend)
    assert abs(illness - 2 / 7) < 0.03


def test_priority_distribution_follows_the_table(calls) -> None:
    expected = [sum(c.share * c.priority[p] for c in COMPLAINTS) for p in range(3)]
    counts = Counter(c.priority for c in calls)
    for p in (1, 2, 3):
        assert abs(counts[p] / len(calls) - expected[p - 1]) < 0.02
    strokes = [c for c in calls if c.complaint == "stroke_symptoms"]
    assert sum(c.priority == 1 for c in strokes) / len(strokes) > 0.7


def test_places_phones_and_notes(calls) -> None:
    codes = {c.code for c in communes(PROVINCE)}
    assert {c.commune_code for c in calls} <= codes
    assert len({c.commune_code for c in calls}) > len(codes) * 0.8
    for call in calls[:2000]:
        assert 15.5 < call.latitude < 17.2 and 107.0 < call.longitude < 108.3  # Huế
        assert len(call.caller_phone) == 10 and call.caller_phone.startswith("0")
        assert call.caller_phone.isdigit()
        assert call.note and call.note[0].isupper()
        assert "{" not in call.note
        assert call.patient_sex in {"male", "female"}
    assert any(c.patient_age is None for c in calls)
    children = [c for c in calls if c.complaint == "child_fever_seizure"]
    assert all(c.patient_age is not None and c.patient_age <= 6 for c in children)
    births = [c for c in calls if c.complaint == "childbirth"]
    assert all(c.patient_sex == "female" for c in births)


def test_commune_weights_restrict_locations() -> None:
    target = communes(PROVINCE)[5].code
    calls = list(
        emergency_calls(PROVINCE, START, 3, 200_000, seed=1, commune_weights={target: 1.0})
    )
    assert calls and {c.commune_code for c in calls} == {target}
    with pytest.raises(ValueError):
        list(emergency_calls(PROVINCE, START, 1, 1000, seed=1, commune_weights={}))
    with pytest.raises(ValueError):
        list(emergency_calls("99", START, 1, 1000, seed=1))


def test_tet_adds_traffic_accidents() -> None:
    assert holiday_kind(date(2025, 1, 29)) == "tet"
    assert holiday_kind(date(2025, 9, 2)) == "holiday"
    assert holiday_kind(date(2025, 3, 3)) is None
    tet_week = date(2025, 1, 27)

    def traffic(holidays: bool) -> int:
        calls = emergency_calls(PROVINCE, tet_week, 8, 1_000_000, seed=4, holidays=holidays)
        return sum(c.complaint == "traffic_accident" for c in calls)

    assert traffic(True) > 1.3 * traffic(False)


def test_csv_has_the_documented_columns_and_round_trips(calls, tmp_path: Path) -> None:
    sample = calls[:500]
    path = tmp_path / "calls.csv"
    assert write_calls_csv(sample, path) == len(sample)
    raw = path.read_bytes()
    assert raw.split(b"\r\n", 1)[0].decode() == ",".join(CALLS_CSV_COLUMNS)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CALLS_CSV_COLUMNS
        rows = list(reader)
    assert rows == [c.csv_row() for c in sample]
    for row, call in zip(rows, sample, strict=True):
        assert datetime.fromisoformat(row["received_at"]) == call.received_at
        assert row["received_at"].endswith("+07:00")
        assert row["priority"] in {"1", "2", "3"}
        assert row["patient_sex"] in {"1", "2"}
        assert row["note"] == call.note
    documented = emergency.__doc__ or ""
    for column in CALLS_CSV_COLUMNS:
        assert f"| `{column}` |" in CALLS_CSV_LAYOUT_DOC
        assert column in documented
    for complaint in COMPLAINTS:
        assert f"`{complaint.code}`" in CALLS_CSV_LAYOUT_DOC


def test_same_seed_same_bytes() -> None:
    def run(seed: int) -> str:
        return calls_csv_text(emergency_calls(PROVINCE, START, 7, 300_000, seed=seed))

    first = run(9)
    assert first == run(9)
    assert first != run(10)
    buffer = io.StringIO(newline="")
    write_calls_csv(emergency_calls(PROVINCE, START, 7, 300_000, seed=9), buffer)
    assert buffer.getvalue() == first


def test_chunked_csv_equals_single_write(calls) -> None:
    whole = calls_csv_text(calls[:300])
    chunked = io.StringIO(newline="")
    write_calls_csv(calls[:100], chunked)
    write_calls_csv(calls[100:300], chunked, header=False)
    assert chunked.getvalue() == whole
