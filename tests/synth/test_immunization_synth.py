"""Synthetic immunization histories follow the schedule with commune-specific coverage."""

from __future__ import annotations

import csv
import io
import math
import random
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle

import ytehub.synth.immunization as synth_imm
from ytehub.core.ids import make_cccd
from ytehub.core.units import communes
from ytehub.immunization import dose_window, is_on_time, national_schedule
from ytehub.synth.immunization import (
    CSV_COLUMNS,
    CSV_LAYOUT_DOC,
    SID_CCCD,
    SID_FACILITY,
    SID_SITE_PATIENT,
    CommuneProfile,
    VaccinationRecord,
    VaccinationSites,
    commune_profiles,
    immunization_bundle,
    immunization_history,
    write_vaccinations_csv,
)
from ytehub.synth.model import Facility, Person

PROVINCE = "46"
UNTIL = date(2025, 12, 31)
CHILDREN = 3000


def _person(i: int, commune_code: str, birth: date, rng: random.Random) -> Person:
    sex = "male" if i % 2 else "female"
    has_id = rng.random() < 0.7
    return Person(
        person_id=f"P{i:08d}",
        household_id=f"H{i:08d}",
        family_name=rng.choice(["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng"]),
        middle_name=rng.choice(["Văn", "Thị", "Minh", ""]),
        given_name=rng.choice(["An", "Bình", "Chi", "Dũng", "Hà"]),
        sex=sex,
        birth_date=birth,
        birth_time=None,
        birth_province_code="46",
        province_code=PROVINCE,
        commune_code=commune_code,
        street_address=f"{i % 200 + 1} Lê Lợi",
        cccd=make_cccd("46", sex, birth.year, i) if has_id else None,
        cmnd=None,
        bhyt_card=None,
        bhyt_registered_facility=None,
        bhxh_number=f"{4600000000 + i}",
        phone=None,
        ethnicity_code="01",
        occupation_code="00000",
    )


def _facilities() -> list[Facility]:
    units = communes(PROVINCE)
    stations = [
        Facility(
            f"46{n:03d}", f"Trạm Y tế {u.name}", "commune_station", PROVINCE, u.code, 16.4, 107.6
        )
        for n, u in enumerate(units)
        if n % 4 != 3  # every fourth commune has no station in the list
    ]
    centres = [
        Facility(
            "46900", "Trung tâm Y tế A", "medical_centre", PROVINCE, units[0].code, 16.4, 107.6
        ),
        Facility(
            "46901", "Trung tâm Y tế B", "medical_centre", PROVINCE, units[20].code, 16.3, 107.5
        ),
    ]
    return stations + centres


def _cohort(seed: int, count: int) -> tuple[list[Person], dict[str, CommuneProfile], list]:
    profiles = commune_profiles(PROVINCE, seed)
    codes = sorted(profiles)
    rng = random.Random(seed)
    people = []
    first = date(2020, 1, 1)
    for i in range(count):
        birth = first + timedelta(days=rng.randrange((UNTIL - first).days))
        people.append(_person(i, codes[i % len(codes)], birth, rng))
    sites = VaccinationSites(_facilities())
    hist_rng = random.Random(seed + 1)
    histories = [
        immunization_history(
            p,
            UNTIL,
            hist_rng,
            profiles[p.commune_code],
            facilities=sites,
            mother_name="Lê Thị Mai" if i % 3 else "",
        )
        for i, p in enumerate(people)
    ]
    return people, profiles, histories


@pytest.fixture(scope="module")
def cohort() -> tuple[list[Person], dict[str, CommuneProfile], list]:
    return _cohort(11, CHILDREN)


def test_profiles_are_deterministic_and_differ_by_commune() -> None:
    first = commune_profiles(PROVINCE, 11)
    assert first == commune_profiles(PROVINCE, 11)
    assert first != commune_profiles(PROVINCE, 12)
    assert set(first) == {c.code for c in communes(PROVINCE)}
    hard = [p for p in first.values() if p.hard_to_reach]
    easy = [p for p in first.values() if not p.hard_to_reach]
    assert hard and easy
    assert all(0.90 <= p.early_coverage <= 0.98 for p in easy)
    assert max(p.early_coverage for p in hard) < min(p.early_coverage for p in easy)
    assert min(p.delay_median_days for p in hard) > max(p.delay_median_days for p in easy)
    dose = national_schedule().dose
    for p in first.values():  # later doses have lower coverage
        assert p.coverage(dose("DTP-HepB-Hib-1")) > p.coverage(dose("DTP-HepB-Hib-3"))
        assert p.coverage(dose("DTP-HepB-Hib-3")) > p.coverage(dose("MR-2"))
    with pytest.raises(ValueError):
        commune_profiles("99", 1)


def _has(history: list[VaccinationRecord], dose_id: str) -> bool:
    return any(r.dose_id == dose_id for r in history)


def test_dtp3_coverage_matches_profiles_and_communes_differ(cohort) -> None:
    people, profiles, histories = cohort
    dtp3 = national_schedule().dose("DTP-HepB-Hib-3")
    # Children old enough that every capped delay has played out.
    old = [(p, h) for p, h in zip(people, histories, strict=True) if p.age_on(UNTIL) * 12 >= 30]
    assert len(old) > 1000
    expected = sum(profiles[p.commune_code].coverage(dtp3) for p, _ in old)
    variance = sum(
        profiles[p.commune_code].coverage(dtp3) * (1 - profiles[p.commune_code].coverage(dtp3))
        for p, _ in old
    )
    observed = sum(_has(h, dtp3.id) for _, h in old)
    assert abs(observed - expected) <= 4 * math.sqrt(variance) + 1

    groups: dict[bool, list[int]] = defaultdict(list)
    for p, h in old:
        groups[profiles[p.commune_code].hard_to_reach].append(_has(h, dtp3.id))
    hard_rate = sum(groups[True]) / len(groups[True])
    easy_rate = sum(groups[False]) / len(groups[False])
    expected_hard = sum(
        profiles[p.commune_code].coverage(dtp3)
        for p, _ in old
        if profiles[p.commune_code].hard_to_reach
    ) / len(groups[True])
    assert abs(hard_rate - expected_hard) < 0.08
    assert 0.85 < easy_rate < 0.99
    assert easy_rate - hard_rate > 0.10


def test_every_dose_respects_ages_intervals_and_flags(cohort) -> None:
    people, _, histories = cohort
    sched = national_schedule()
    assert sum(len(h) for h in histories) > 20_000
    for person, history in zip(people, histories, strict=True):
        if person.age_on(UNTIL) >= 6:
            assert history == []
            continue
        previous: dict[str, date] = {}
        numbers: dict[str, int] = defaultdict(int)
        for record in sorted(history, key=lambda r: (r.series, r.dose_number)):
            dose = sched.dose(record.dose_id)
            assert sched.dose_for(record.vaccine_code, record.dose_number) == dose
            numbers[record.series] += 1
            assert record.dose_number == numbers[record.series]  # no gaps in a series
            window = dose_window(dose, person.birth_date, previous.get(record.series))
            assert window.earliest <= record.date_given <= UNTIL
            assert window.expires is None or record.date_given <= window.expires
            assert record.on_time == is_on_time(dose, person.birth_date, record.date_given)
            previous[record.series] = record.date_given
        assert [r.date_given for r in history] == sorted(r.date_given for r in history)


def test_sites_are_station_else_medical_centre(cohort) -> None:
    people, _, histories = cohort
    facilities = {f.code: f for f in _facilities()}
    stations = {f.commune_code: f.code for f in facilities.values() if f.level == "commune_station"}
    for person, history in zip(people, histories, strict=True):
        for record in history:
            site = facilities[record.facility_code]
            at_birth = (record.date_given - person.birth_date).days <= 7 and record.dose_id in (
                "HepB0",
                "BCG",
            )
            if at_birth:
                assert site.level in ("medical_centre", "commune_station")
            elif person.commune_code in stations:
                assert record.facility_code == stations[person.commune_code]
            else:
                assert site.level == "medical_centre"
            assert record.site_patient_id == synth_imm.site_patient_id(site.code, person.person_id)
            assert person.person_id not in record.site_patient_id


def test_on_time_shares_are_plausible(cohort) -> None:
    _, _, histories = cohort
    records = [r for h in histories for r in h]
    share = sum(r.on_time for r in records) / len(records)
    assert 0.4 < share < 0.9
    hepb0 = [r for r in records if r.vaccine_code == "HepB0"]
    assert 0.6 < sum(r.on_time for r in hepb0) / len(hepb0) < 0.95


def test_csv_round_trips_with_exactly_the_documented_columns(cohort, tmp_path: Path) -> None:
    _, _, histories = cohort
    records = [r for h in histories[:400] for r in h]
    path = tmp_path / "vaccinations.csv"
    assert write_vaccinations_csv(records, path) == len(records)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.split(b"\r\n", 1)[0].decode() == ",".join(CSV_COLUMNS)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert rows == [r.csv_row() for r in records]
    for row in rows:
        assert row["sex"] in {"1", "2"}
        assert row["cccd"] == "" or (len(row["cccd"]) == 12 and row["cccd"].isdigit())
        assert date.fromisoformat(row["date_given"]) >= date.fromisoformat(row["birth_date"])
        assert len(row["site_code"]) == 5 and len(row["commune_code"]) == 5
    assert any(row["mother_name"] == "" for row in rows)
    assert any(row["cccd"] == "" for row in rows)
    documented = synth_imm.__doc__ or ""
    for column in CSV_COLUMNS:
        assert f"| `{column}` |" in CSV_LAYOUT_DOC
        assert column in documented
    assert CSV_LAYOUT_DOC.count("\n| `") == len(CSV_COLUMNS)


def test_every_bundle_validates_as_fhir_r4(cohort) -> None:
    people, _, histories = cohort
    checked = 0
    for person, history in zip(people, histories, strict=True):
        if not history:
            continue
        bundle = immunization_bundle(person, history)
        parsed = Bundle.model_validate(bundle)
        assert parsed.type == "transaction"
        resources = [e.resource for e in parsed.entry]
        assert resources[0].get_resource_type() == "Patient"
        assert [r.get_resource_type() for r in resources[1:]] == ["Immunization"] * len(history)
        checked += 1
    assert checked > 2000


def test_bundle_content(cohort) -> None:
    people, _, histories = cohort
    person, history = next(
        (p, h) for p, h in zip(people, histories, strict=True) if p.cccd and len(h) > 10
    )
    bundle = immunization_bundle(person, history)
    patient = bundle["entry"][0]["resource"]
    systems = {i["system"]: i["value"] for i in patient["identifier"]}
    assert systems[SID_CCCD] == person.cccd
    assert SID_SITE_PATIENT in systems
    assert patient["birthDate"] == person.birth_date.isoformat()
    assert person.person_id not in str(bundle)
    assert bundle["entry"][0]["request"]["ifNoneExist"] == f"identifier={SID_CCCD}|{person.cccd}"
    patient_url = bundle["entry"][0]["fullUrl"]
    for entry, record in zip(bundle["entry"][1:], history, strict=True):
        imm = entry["resource"]
        assert imm["status"] == "completed"
        assert imm["patient"]["reference"] == patient_url
        assert imm["occurrenceDateTime"] == record.date_given.isoformat()
        assert imm["lotNumber"] == record.lot_number
        codes = {c["system"]: c["code"] for c in imm["vaccineCode"]["coding"]}
        assert codes["urn:ytehub:cs:tcmr-vaccine"] == record.vaccine_code
        assert codes.get("http://hl7.org/fhir/sid/cvx") == (
            national_schedule().vaccines[record.vaccine_code].cvx
        )
        assert imm["performer"][0]["actor"]["identifier"] == {
            "system": SID_FACILITY,
            "value": record.facility_code,
        }
        assert imm["location"]["identifier"]["value"] == record.facility_code
        applied = imm["protocolApplied"][0]
        assert applied["doseNumberPositiveInt"] == record.dose_number
        assert applied["series"] == record.series
    assert immunization_bundle(person, history) == bundle  # deterministic


def test_older_children_and_unborn_get_no_history() -> None:
    profile = next(iter(commune_profiles(PROVINCE, 1).values()))
    rng = random.Random(0)
    sites = VaccinationSites(_facilities())
    old = _person(1, profile.commune_code, date(2019, 1, 1), rng)
    assert immunization_history(old, UNTIL, rng, profile, facilities=sites) == []
    unborn = _person(2, profile.commune_code, date(2026, 1, 5), rng)
    assert immunization_history(unborn, UNTIL, rng, profile, facilities=sites) == []
    with pytest.raises(ValueError):
        young = _person(3, profile.commune_code, date(2025, 1, 5), rng)
        immunization_history(young, UNTIL, random.Random(1), profile, facilities=[])


def test_same_seed_gives_same_csv_bytes(tmp_path: Path) -> None:
    outputs = []
    for n in range(2):
        _, _, histories = _cohort(5, 300)
        path = tmp_path / f"run{n}.csv"
        write_vaccinations_csv((r for h in histories for r in h), path)
        outputs.append(path.read_bytes())
    assert outputs[0] == outputs[1]
    _, _, other = _cohort(6, 300)
    buffer = io.StringIO(newline="")
    write_vaccinations_csv((r for h in other for r in h), buffer)
    assert buffer.getvalue().encode() != outputs[0]


def test_plain_facility_list_and_chunked_csv_match(cohort) -> None:
    people, profiles, _ = cohort
    facilities = _facilities()
    sample = [p for p in people[:300] if p.age_on(UNTIL) < 6]

    def run(sites) -> list[VaccinationRecord]:
        rng = random.Random(77)
        out: list[VaccinationRecord] = []
        for p in sample:
            out += immunization_history(p, UNTIL, rng, profiles[p.commune_code], sites)
        return out

    records = run(facilities)
    assert records == run(VaccinationSites(facilities))
    whole = io.StringIO(newline="")
    write_vaccinations_csv(records, whole)
    chunked = io.StringIO(newline="")
    half = len(records) // 2
    write_vaccinations_csv(records[:half], chunked)
    write_vaccinations_csv(records[half:], chunked, header=False)
    assert chunked.getvalue() == whole.getvalue()
