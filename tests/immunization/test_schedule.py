"""The TCMR schedule loads, validates, and forecasts the doses a child needs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ytehub.core.errors import DomainError
from ytehub.immunization import (
    SCHEDULE_PATH,
    Span,
    dose_window,
    due_doses,
    is_on_time,
    load_schedule,
    national_schedule,
)

BIRTH = date(2025, 1, 10)


def _by_id(items: list) -> dict:
    return {d.dose.id: d for d in items}


def test_packaged_schedule_loads_and_names_its_basis() -> None:
    sched = national_schedule()
    assert sched.version
    assert "TT 10/2024/TT-BYT" in sched.source
    assert sched.confirmed_against_official_text is False
    assert sched.unconfirmed_items, "unconfirmed facts must be listed in the data"
    for code in ("BCG", "HepB0", "DTP-HepB-Hib", "OPV", "IPV", "Measles", "MR", "DTP4", "JE"):
        vaccine = sched.vaccines[code]
        assert vaccine.name_vi and vaccine.name_en
        assert vaccine.cvx is None or vaccine.cvx.isdigit()
    assert [d.id for d in sched.series("DTP")][:4] == [
        "DTP-HepB-Hib-1",
        "DTP-HepB-Hib-2",
        "DTP-HepB-Hib-3",
        "DTP4",
    ]
    assert sched.dose_for("MR", 2).id == "MR-2"
    assert sched.dose_for("MR", 1).id == "MCV-1"  # MR accepted for the 9-month dose
    assert sched.dose_for("PCV", 1) is None
    assert load_schedule(SCHEDULE_PATH) == sched


def test_birth_doses_due_at_birth_and_dtp1_at_two_months() -> None:
    at_birth = _by_id(due_doses(BIRTH, [], BIRTH))
    assert at_birth["BCG"].status == "due"
    assert at_birth["HepB0"].status == "due"
    assert at_birth["HepB0"].due == BIRTH
    assert at_birth["HepB0"].latest_on_time == date(2025, 1, 11)  # within 24 h
    dtp1 = at_birth["DTP-HepB-Hib-1"]
    assert dtp1.status == "upcoming"
    assert dtp1.due == date(2025, 3, 10)

    given = [("BCG", BIRTH), ("HepB0", BIRTH)]
    at_two_months = _by_id(due_doses(BIRTH, given, date(2025, 3, 10)))
    assert "BCG" not in at_two_months and "HepB0" not in at_two_months
    assert at_two_months["DTP-HepB-Hib-1"].status == "due"
    assert at_two_months["OPV-1"].status == "due"
    assert at_two_months["IPV-1"].status == "upcoming"

    later = _by_id(due_doses(BIRTH, given, date(2025, 4, 11)))
    assert later["DTP-HepB-Hib-1"].status == "overdue"


def test_results_are_ordered_by_due_date() -> None:
    result = due_doses(BIRTH, [], BIRTH)
    assert [d.due for d in result] == sorted(d.due for d in result)


def test_minimum_interval_follows_a_late_previous_dose() -> None:
    late_first = date(2025, 4, 20)
    result = _by_id(due_doses(BIRTH, [("DTP-HepB-Hib", late_first)], date(2025, 5, 1)))
    second = result["DTP-HepB-Hib-2"]
    assert second.earliest == date(2025, 5, 20)  # ≥ 1 month after dose 1
    assert second.due >= second.earliest
    assert second.status == "upcoming"


def test_dose_given_before_minimum_interval_does_not_count() -> None:
    given = [("DTP-HepB-Hib", date(2025, 3, 10)), ("DTP-HepB-Hib", date(2025, 3, 24))]
    result = _by_id(due_doses(BIRTH, given, date(2025, 4, 12)))
    assert "DTP-HepB-Hib-2" in result  # the 2-week dose is invalid: slot 2 still open
    assert result["DTP-HepB-Hib-2"].earliest == date(2025, 4, 10)


def test_doses_after_on_date_and_unknown_codes_are_ignored() -> None:
    given = [("DTP-HepB-Hib", date(2025, 3, 10)), ("PCV", date(2025, 3, 10))]
    result = _by_id(due_doses(BIRTH, given, date(2025, 3, 9)))
    assert "DTP-HepB-Hib-1" in result


def test_complete_primary_series_moves_to_booster() -> None:
    given = [
        ("DTP-HepB-Hib", date(2025, 3, 10)),
        ("DTP-HepB-Hib", date(2025, 4, 10)),
        ("DTP-HepB-Hib", date(2025, 5, 10)),
    ]
    result = _by_id(due_doses(BIRTH, given, date(2025, 6, 1)))
    assert "DTP-HepB-Hib-3" not in result
    booster = result["DTP4"]
    assert booster.due == date(2026, 7, 10)  # 18 months
    assert booster.earliest >= date(2025, 11, 10)  # ≥ 6 months after dose 3


def test_measles_dose_accepts_mr_and_mr_booster_follows() -> None:
    result = _by_id(due_doses(BIRTH, [("MR", date(2025, 10, 10))], date(2025, 11, 1)))
    assert "MCV-1" not in result
    assert result["MR-2"].due == date(2026, 7, 10)


def test_birth_dose_expires_and_phased_doses_can_be_excluded() -> None:
    result = _by_id(due_doses(BIRTH, [], date(2025, 1, 20)))
    assert "HepB0" not in result  # past its maximum age (7 days)
    assert result["BCG"].status == "due"  # within its first month
    assert _by_id(due_doses(BIRTH, [], date(2025, 2, 11)))["BCG"].status == "overdue"
    assert "Rota-1" in result
    assert "Rota-1" not in _by_id(due_doses(BIRTH, [], BIRTH, include_phased=False))
    # A child who aged out before rotavirus was introduced is never offered it.
    older = date(2024, 1, 1)
    assert "Rota-1" not in _by_id(due_doses(older, [], date(2024, 3, 1)))


def test_is_on_time() -> None:
    assert is_on_time("HepB0", BIRTH, BIRTH)
    assert is_on_time("HepB0", BIRTH, date(2025, 1, 11))
    assert not is_on_time("HepB0", BIRTH, date(2025, 1, 13))
    assert is_on_time("DTP-HepB-Hib-1", BIRTH, date(2025, 3, 20))
    assert not is_on_time("DTP-HepB-Hib-1", BIRTH, date(2025, 2, 1))  # before 6 weeks
    assert not is_on_time("DTP-HepB-Hib-1", BIRTH, date(2025, 5, 1))
    dose = national_schedule().dose("MR-2")
    assert is_on_time(dose, BIRTH, date(2026, 7, 20))


def test_dose_window_and_spans() -> None:
    assert Span.parse("1y2w").after(date(2024, 2, 29)) == date(2025, 3, 14)
    assert Span.parse("1m").after(date(2025, 1, 31)) == date(2025, 2, 28)
    je2 = national_schedule().dose("JE-2")
    window = dose_window(je2, BIRTH, date(2026, 3, 1))  # JE-1 given late
    assert window.earliest == date(2026, 3, 8)
    assert window.due == date(2026, 3, 15)  # two weeks after dose 1
    with pytest.raises(ValueError):
        Span.parse("2 months")


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = SCHEDULE_PATH.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "schedule.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "entry", "words"),
    [
        (
            'id = "DTP-HepB-Hib-2"\nvaccine = "DTP-HepB-Hib"\nseries = "DTP"\ndose_number = 2\n'
            'min_age = "10w"',
            'id = "DTP-HepB-Hib-2"\nvaccine = "DTP-HepB-Hib"\nseries = "DTP"\ndose_number = 2\n'
            'min_age = "5m"',
            "DTP-HepB-Hib-2",
            "min_age",
        ),
        ('latest_on_time_age = "5m"', 'latest_on_time_age = "5 months"', "DTP-HepB-Hib-3", "span"),
        ('id = "OPV-2"\nvaccine = "OPV"', 'id = "OPV-2"\nvaccine = "OPV-X"', "OPV-2", "OPV-X"),
        ('min_interval = "4m"', 'min_intervall = "4m"', "IPV-2", "min_intervall"),
        ('id = "JE-3"', 'id = "JE-2"', "JE-2", "duplicate"),
        ('dose_number = 3\nmin_age = "2y"', 'dose_number = 4\nmin_age = "2y"', "JE", "1..3"),
    ],
)
def test_malformed_entry_is_rejected_naming_it(
    tmp_path: Path, old: str, new: str, entry: str, words: str
) -> None:
    with pytest.raises(DomainError) as caught:
        load_schedule(_broken(tmp_path, old, new))
    error = caught.value
    assert error.code == "immunization.schedule_invalid"
    assert entry in error.message.en and entry in error.message.vi
    assert words in error.message.en
    assert error.field is not None and entry in error.field


def test_missing_interval_and_bad_toml_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DomainError, match=r"OPV-3.*min_interval"):
        load_schedule(
            _broken(
                tmp_path,
                'latest_on_time_age = "5m"\nmin_interval = "1m"\nunconfirmed = false\nnote = "bOPV',
                'latest_on_time_age = "5m"\nunconfirmed = false\nnote = "bOPV',
            )
        )
    bad = tmp_path / "bad.toml"
    bad.write_text("version = \n", encoding="utf-8")
    with pytest.raises(DomainError, match=r"bad\.toml"):
        load_schedule(bad)
