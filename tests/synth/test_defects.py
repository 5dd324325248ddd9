"""Identity defects: stable per facility, at the configured rates, recorded as ground truth."""

from __future__ import annotations

from collections import Counter
from datetime import date, time

from ytehub.core.ids import check_cccd
from ytehub.core.units import fold
from ytehub.synth.defects import DefectRates, IdentityFactory, birth_string, strip_diacritics
from ytehub.synth.model import Facility, Person

FACILITY = Facility("79001", "BV", "provincial_hospital", "79", "26740", 10.78, 106.70)
OTHER = Facility("79002", "TYT", "commune_station", "79", "26740", 10.78, 106.70)


def _person(n: int) -> Person:
    return Person(
        person_id=f"P{n:08d}",
        household_id="H1",
        family_name="Nguyễn",
        middle_name="Thị",
        given_name="Hường",
        sex="female",
        birth_date=date(1990, 3 if n % 2 else 11, 5 + n % 20),
        birth_time=None,
        birth_province_code="79",
        province_code="79",
        commune_code="26740",
        street_address="12 Lê Lợi",
        cccd=f"0791900{n:05d}",
        cmnd=f"02{n:07d}",
        bhyt_card="GD4797912345678",
        bhyt_registered_facility="79002",
        bhxh_number="7912345678",
        phone="0912345678",
        ethnicity_code="01",
        occupation_code="00000",
    )


def test_clean_identity_matches_the_person() -> None:
    factory = IdentityFactory(1, DefectRates().scaled(0), date(2025, 7, 1))
    person = _person(1)
    (identity,) = factory.identities(person, FACILITY)
    assert identity.ho_ten == "Nguyễn Thị Hường" and identity.so_cccd == person.cccd
    assert identity.ngay_sinh == birth_string(person) and identity.defects == ()
    assert identity.maxa_cu_tru == "26740" and identity.mahuyen_cu_tru == ""
    assert check_cccd(identity.so_cccd, sex="female", birth_year=1990).valid


def test_identity_is_stable_per_facility_and_differs_across() -> None:
    factory = IdentityFactory(1, DefectRates(), date(2025, 7, 1))
    person = _person(2)
    assert factory.identities(person, FACILITY) == factory.identities(person, FACILITY)
    assert (
        factory.identities(person, FACILITY)[0].ma_bn != factory.identities(person, OTHER)[0].ma_bn
    )


def test_rates_are_respected() -> None:
    rates = DefectRates(ascii_system=0.0)
    factory = IdentityFactory(7, rates, date(2025, 7, 1))
    counts: Counter[str] = Counter()
    total = 6000
    for n in range(total):
        for identity in factory.identities(_person(n), FACILITY):
            counts.update(identity.defects)
    assert abs(counts["missing_cccd"] / total - rates.missing_cccd) < 0.015
    assert abs(counts["legacy_address"] / total - rates.legacy_address) < 0.015
    assert abs(counts["no_diacritics"] / total - rates.no_diacritics) < 0.012
    assert abs(counts["duplicate_registration"] / total - rates.duplicate_registration) < 0.01
    assert abs(counts["year_only"] / total - rates.year_only) < 0.01


def test_each_defect_looks_right() -> None:
    factory = IdentityFactory(3, DefectRates(), date(2025, 7, 1))
    seen: set[str] = set()
    for n in range(4000):
        person = _person(n)
        for identity in factory.identities(person, FACILITY):
            seen.update(identity.defects)
            if "no_diacritics" in identity.defects:
                assert identity.ho_ten.isascii()
                same_name = fold(identity.ho_ten) == fold(person.full_name)
                assert same_name or "name_typo" in identity.defects
            if "year_only" in identity.defects:
                assert identity.ngay_sinh == "199000000000"
            if "swapped_day_month" in identity.defects:
                assert identity.ngay_sinh[4:8] == f"{person.birth_date:%d%m}"
            if "legacy_cmnd" in identity.defects:
                assert identity.so_cccd == person.cmnd
            if "legacy_address" in identity.defects:
                assert identity.mahuyen_cu_tru == "760" and identity.maxa_cu_tru in {
                    "26737",
                    "26740",
                }
            if "cccd_typo" in identity.defects:
                assert identity.so_cccd != person.cccd and len(identity.so_cccd) == 12
    assert {"no_diacritics", "year_only", "legacy_address", "missing_cccd", "name_typo"} <= seen


def test_ascii_systems_strip_every_record() -> None:
    factory = IdentityFactory(1, DefectRates(ascii_system=1.0), date(2025, 7, 1))
    assert all(factory.identities(_person(n), FACILITY)[0].ho_ten.isascii() for n in range(50))
    assert strip_diacritics("Đặng Thị Ngọc Ánh") == "Dang Thi Ngoc Anh"


def test_newborn_birth_time() -> None:
    person = _person(1)
    person.birth_time = time(14, 5)
    assert birth_string(person).endswith("1405")
