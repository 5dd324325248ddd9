"""Statistical sanity of the synthetic population (ytehub.synth.people) on ~20,000 residents.

Tolerances are a few standard errors of what 20,000 people allow: the checks catch a broken
table or rule, not sampling noise. One population is generated per module and shared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
import time
import unicodedata
from collections import Counter, defaultdict
from datetime import date, timedelta
from importlib import resources

import pytest

from ytehub.core import units
from ytehub.core.ids import check_bhyt, check_cccd
from ytehub.synth.model import Facility, FacilityLevel, Person
from ytehub.synth.names import family_name_shares, load_data
from ytehub.synth.people import (
    BHYT_COVERAGE,
    PopulationConfig,
    age_sex_table,
    generate_people,
    merged_old_provinces,
)

CONFIG = PopulationConfig(people=20_000, province_code="79", seed=7)
END = CONFIG.start + timedelta(days=CONFIG.days)
YEARS = CONFIG.days / 365.25


def make_facilities(province_code: str) -> list[Facility]:
    """Stations in every third commune, ten district-level centres, one provincial hospital."""
    communes = units.communes(province_code)

    def facility(code: str, level: FacilityLevel, commune_code: str) -> Facility:
        return Facility(code, f"Cơ sở {code}", level, province_code, commune_code, 10.8, 106.7)

    out = [
        facility(f"{province_code}{i:03d}", "commune_station", c.code)
        for i, c in enumerate(communes[::3])
    ]
    out += [
        facility(f"{province_code}{500 + i}", "medical_centre", communes[i * 5].code)
        for i in range(10)
    ]
    out.append(facility(f"{province_code}900", "provincial_hospital", communes[1].code))
    return out


FACILITIES = make_facilities("79")


def digest(people: list[Person]) -> str:
    h = hashlib.sha256()
    for p in people:
        h.update(repr(dataclasses.astuple(p)).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return list(generate_people(CONFIG, FACILITIES))


@pytest.fixture(scope="module")
def residents(people: list[Person]) -> list[Person]:
    return [p for p in people if p.birth_date < CONFIG.start]


@pytest.fixture(scope="module")
def babies(people: list[Person]) -> list[Person]:
    return [p for p in people if p.birth_date >= CONFIG.start]


@pytest.fixture(scope="module")
def hanoi() -> list[Person]:
    return list(generate_people(PopulationConfig(people=10_000, province_code="01", seed=3), []))


# --------------------------------------------------------------------------- structure


def test_resident_count_and_ids(people: list[Person], residents: list[Person]) -> None:
    assert len(residents) == CONFIG.people
    assert [p.person_id for p in people] == [f"P{i:08d}" for i in range(1, len(people) + 1)]
    assert all(re.fullmatch(r"H\d{7}", p.household_id) for p in people)
    assert all(p.province_code == "79" and p.nationality_code == "000" for p in people)


def test_age_pyramid_matches_the_census_table(residents: list[Person]) -> None:
    table = age_sex_table()
    assert sum(table.values()) == pytest.approx(1.0)
    counts: Counter[tuple[int, str]] = Counter()
    for p in residents:
        counts[(min(80, p.age_on(CONFIG.start) // 5 * 5), p.sex)] += 1
    n = len(residents)
    for (lo, _hi, sex), share in table.items():
        got = counts[(lo, sex)] / n
        assert got == pytest.approx(share, abs=0.004), (lo, sex)

    def broad(lo: int, hi: int) -> tuple[float, float]:
        want = sum(s for (a, _, _), s in table.items() if lo <= a <= hi)
        got = sum(v for (a, _), v in counts.items() if lo <= a <= hi) / n
        return got, want

    for lo, hi in ((0, 14), (15, 64), (65, 80)):
        got, want = broad(lo, hi)
        assert got == pytest.approx(want, abs=0.01), (lo, hi)
    assert max(p.age_on(CONFIG.start) for p in residents) <= 100


def test_sex_ratio(residents: list[Person], babies: list[Person]) -> None:
    males = sum(p.sex == "male" for p in residents) / len(residents)
    assert 0.485 <= males <= 0.51  # 2019 census: 49.8% male
    old = [p for p in residents if p.age_on(CONFIG.start) >= 70]
    assert sum(p.sex == "female" for p in old) > 1.2 * sum(p.sex == "male" for p in old)
    young = [p for p in residents if p.age_on(CONFIG.start) < 10]
    ratio = sum(p.sex == "male" for p in young) / sum(p.sex == "female" for p in young)
    assert 1.0 <= ratio <= 1.2  # sex ratio at birth about 1.11
    assert 0.42 <= sum(p.sex == "male" for p in babies) / len(babies) <= 0.64


def test_households(people: list[Person], residents: list[Person]) -> None:
    sizes = Counter(p.household_id for p in residents)
    assert set(sizes.values()) <= set(range(1, 8))
    mean = len(residents) / len(sizes)
    assert 3.0 <= mean <= 4.0
    singles = sum(1 for s in sizes.values() if s == 1) / len(sizes)
    assert 0.08 <= singles <= 0.18
    assert sum(1 for s in sizes.values() if s >= 5) / len(sizes) > 0.1
    # Households are contiguous in the stream (newborns follow their household) and share
    # their commune and address.
    seen: set[str] = set()
    previous = ""
    where: dict[str, tuple[str, str]] = {}
    for p in people:
        if p.household_id != previous:
            assert p.household_id not in seen
            seen.add(p.household_id)
            previous = p.household_id
        assert where.setdefault(p.household_id, (p.commune_code, p.street_address)) == (
            p.commune_code,
            p.street_address,
        )


def test_spouses_usually_have_different_family_names(residents: list[Person]) -> None:
    by_household: dict[str, list[Person]] = defaultdict(list)
    for p in residents:
        by_household[p.household_id].append(p)
    couples = same = 0
    for members in by_household.values():
        head = members[0]
        if len(members) >= 2 and head.sex == "male" and members[1].sex == "female":
            gap = members[1].birth_date.year - head.birth_date.year
            if -8 <= gap <= 15:
                couples += 1
                same += head.family_name == members[1].family_name
    assert couples > 3000
    assert same / couples < 0.3


# --------------------------------------------------------------------------- places


def test_communes_and_addresses(residents: list[Person]) -> None:
    communes = {c.code: c for c in units.communes("79")}
    assert all(p.commune_code in communes for p in residents)
    used = {p.commune_code for p in residents}
    assert len(used) > 0.9 * len(communes)
    per_kind: dict[str, list[int]] = defaultdict(list)
    counts = Counter(p.commune_code for p in residents)
    for code, c in communes.items():
        per_kind[c.kind].append(counts[code])
    mean = {kind: sum(v) / len(v) for kind, v in per_kind.items()}
    assert mean["phường"] > 1.5 * mean["xã"]
    assert mean["đặc khu"] < mean["phường"]

    streets = set(load_data("addresses.json")["streets"])
    for p in residents:
        kind = communes[p.commune_code].kind
        if kind == "phường":
            m = re.fullmatch(r"(?:Số )?(?:\d+/)?\d+(?: ngõ \d+)? (.+)", p.street_address)
            assert m and m.group(1) in streets, p.street_address
        else:
            assert re.fullmatch(r"(Thôn|Xóm|Ấp|Tổ) \d+", p.street_address), p.street_address


# --------------------------------------------------------------------------- names


def test_family_name_shares(residents: list[Person]) -> None:
    shares = Counter(p.family_name for p in residents)
    n = len(residents)
    assert shares["Nguyễn"] / n == pytest.approx(0.38, abs=0.03)
    assert shares["Trần"] / n == pytest.approx(0.11, abs=0.02)
    assert shares["Lê"] / n == pytest.approx(0.095, abs=0.02)
    assert shares["Phạm"] / n == pytest.approx(0.07, abs=0.015)
    assert shares["Phan"] / n == pytest.approx(0.045, abs=0.015)
    # The South: Huỳnh over Hoàng, Võ over Vũ.
    assert shares["Huỳnh"] > 2 * shares["Hoàng"]
    assert shares["Võ"] > 2 * shares["Vũ"]
    assert len(shares) >= 50  # a long tail
    expected = family_name_shares("south")
    assert expected["Nguyễn"] == pytest.approx(0.384, abs=0.01)


def test_middle_names_follow_generations(residents: list[Person]) -> None:
    def thi_share(lo: int, hi: int) -> float:
        women = [p for p in residents if p.sex == "female" and lo <= p.birth_date.year < hi]
        return sum(p.middle_name.split(" ")[0] == "Thị" for p in women) / len(women)

    assert thi_share(1900, 1960) > 0.7
    assert thi_share(2005, 2030) < 0.35
    men = [p for p in residents if p.sex == "male"]
    assert any(p.middle_name.startswith("Văn") for p in men)
    assert any(" " in p.middle_name for p in residents)  # two-word middle names
    assert any(p.middle_name == "" for p in residents)
    assert len({p.given_name for p in men}) >= 60
    assert len({p.given_name for p in residents if p.sex == "female"}) >= 60


def test_names_are_nfc(people: list[Person], hanoi: list[Person]) -> None:
    for p in itertools.chain(people, hanoi):
        for text in (p.family_name, p.middle_name, p.given_name, p.street_address):
            assert unicodedata.normalize("NFC", text) == text
        assert p.family_name and p.given_name
        assert p.full_name == " ".join(x for x in (p.family_name, p.middle_name, p.given_name) if x)


def test_data_files_are_package_data_and_nfc() -> None:
    folder = resources.files("ytehub.synth.data.people")
    names = {entry.name for entry in folder.iterdir()}
    assert {"names.json", "age_sex_2019.json", "bhyt.json", "ethnicity.json"} <= names
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            text = entry.read_text(encoding="utf-8")
            assert unicodedata.normalize("NFC", text) == text, entry.name


def test_common_name_boost() -> None:
    common = load_data("names.json")["common_full_names"]
    wanted = {" ".join(x for x in row if x) for rows in common.values() for row in rows}

    def share(boost: float) -> float:
        config = PopulationConfig(people=4_000, seed=11, common_name_boost=boost)
        people = list(generate_people(config, []))
        return sum(p.full_name in wanted for p in people) / len(people)

    assert share(0.3) > share(0.0) + 0.1


# --------------------------------------------------------------------------- identifiers


def test_cccd_valid_unique_and_birth_province(people: list[Person]) -> None:
    merged = set(merged_old_provinces("79"))
    assert merged == {"74", "77", "79"}
    values = [p.cccd for p in people]
    assert all(values) and len(set(values)) == len(values)
    for p in people:
        assert p.cccd is not None
        result = check_cccd(p.cccd, sex=p.sex, birth_year=p.birth_date.year, today=END)
        assert result.valid, (p.cccd, result.reason)
        assert result.details["province_code"] == p.birth_province_code
    migrants = sum(p.birth_province_code not in merged for p in people) / len(people)
    assert 0.17 <= migrants <= 0.32  # about a quarter of a big city's people were born elsewhere
    local = Counter(p.birth_province_code for p in people if p.birth_province_code in merged)
    assert local["79"] > local["74"] > local["77"] > 0


def test_cmnd_for_some_older_people(people: list[Person]) -> None:
    with_cmnd = [p for p in people if p.cmnd is not None]
    assert all(re.fullmatch(r"\d{9}", p.cmnd or "") for p in with_cmnd)
    assert all(p.birth_date.year < 1990 for p in with_cmnd)
    assert len({p.cmnd for p in with_cmnd}) == len(with_cmnd)
    older = [p for p in people if p.birth_date.year < 1990]
    assert len(with_cmnd) / len(older) == pytest.approx(0.3, abs=0.03)


def test_bhxh_numbers(people: list[Person]) -> None:
    numbers = [p.bhxh_number for p in people]
    assert len(set(numbers)) == len(numbers)
    merged = set(merged_old_provinces("79"))
    assert all(re.fullmatch(r"\d{10}", n) and n[:2] in merged for n in numbers)


def test_bhyt_cards(people: list[Person]) -> None:
    levels = load_data("bhyt.json")["benefit_levels"]
    codes = {f.code for f in FACILITIES}
    insured = [p for p in people if p.bhyt_card]
    assert len(insured) / len(people) == pytest.approx(BHYT_COVERAGE, abs=0.01)
    for p in insured:
        assert p.bhyt_card is not None
        result = check_bhyt(p.bhyt_card)
        assert result.valid, (p.bhyt_card, result.reason)
        d = result.details
        assert d["bhxh_number"] == p.bhxh_number
        assert d["province_code"] == p.bhxh_number[:2]
        assert d["benefit_level"] == levels[d["object_code"]]
        assert p.bhyt_registered_facility in codes
        age = p.age_on(CONFIG.start) if p.birth_date < CONFIG.start else 0
        if age < 6:
            assert d["object_code"] == "TE" and d["benefit_level"] == 1
    assert all(p.bhyt_registered_facility is None for p in people if not p.bhyt_card)
    assert all(p.bhyt_card for p in people if p.birth_date > date(CONFIG.start.year - 5, 1, 1))
    objects = Counter(p.bhyt_card[:2] for p in insured if p.bhyt_card)
    assert {"TE", "HS", "SV", "HT", "GD", "DN", "HC", "CN"} <= set(objects)
    assert objects["CN"] / len(people) == pytest.approx(0.025, abs=0.015)
    # Registration follows the commune: people of a commune with a station mostly use it.
    station = {f.commune_code: f.code for f in FACILITIES if f.level == "commune_station"}
    local = [p for p in insured if p.commune_code in station]
    at_station = sum(p.bhyt_registered_facility == station[p.commune_code] for p in local)
    assert at_station / len(local) > 0.7


def test_no_facilities_means_no_registration(hanoi: list[Person]) -> None:
    assert all(p.bhyt_registered_facility is None for p in hanoi)
    assert sum(p.bhyt_card is not None for p in hanoi) / len(hanoi) > 0.9


def test_phones(people: list[Person]) -> None:
    phones = [p.phone for p in people if p.phone]
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"0[35789]\d{8}", x) for x in phones)
    adults = [p for p in people if p.age_on(CONFIG.start) >= 18]
    assert sum(p.phone is not None for p in adults) / len(adults) > 0.8
    assert all(p.phone is None for p in people if p.age_on(CONFIG.start) < 12)


def test_ethnicity_and_occupation(residents: list[Person], hanoi: list[Person]) -> None:
    groups = load_data("ethnicity.json")["groups"]
    occupations = load_data("occupations.json")["codes"]
    assert all(p.ethnicity_code in groups for p in residents)
    assert all(p.occupation_code in occupations for p in residents)
    eth = Counter(p.ethnicity_code for p in residents)
    n = len(residents)
    assert eth["01"] / n > 0.9
    assert eth["04"] / n == pytest.approx(0.036, abs=0.015)  # Hoa in TP Hồ Chí Minh
    assert Counter(p.ethnicity_code for p in hanoi)["04"] < 0.005 * len(hanoi)
    pupils = [p for p in residents if 6 <= p.age_on(CONFIG.start) < 18]
    assert all(p.occupation_code == "00001" for p in pupils)


# --------------------------------------------------------------------------- events


def test_births(people: list[Person], residents: list[Person], babies: list[Person]) -> None:
    by_id = {p.person_id: p for p in people}
    rate = len(babies) / len(residents) / YEARS * 1000
    assert 11.0 <= rate <= 17.0  # configured crude birth rate 14 per 1000
    previous: dict[str, str] = {}
    for i, p in enumerate(people):
        previous[p.person_id] = people[i - 1].household_id if i else ""
    for baby in babies:
        assert CONFIG.start <= baby.birth_date < END
        assert baby.birth_time is not None
        assert baby.mother_id is not None
        mother = by_id[baby.mother_id]
        assert mother.sex == "female" and mother.household_id == baby.household_id
        assert 15 <= mother.age_on(baby.birth_date) <= 51
        assert mother.death_date is None or mother.death_date >= baby.birth_date
        assert previous[baby.person_id] == baby.household_id  # yielded right after
        assert baby.birth_province_code in merged_old_provinces("79")
    assert all(p.birth_time is None and p.mother_id is None for p in residents)
    # Children take the father's family name: someone older in the household shares it.
    shared = sum(
        any(
            q.family_name == b.family_name and q.sex == "male"
            for q in people
            if q.household_id == b.household_id and q.birth_date < CONFIG.start
        )
        for b in babies[:150]
    )
    assert shared / min(150, len(babies)) > 0.85


def test_deaths(people: list[Person], residents: list[Person]) -> None:
    dead = [p for p in people if p.death_date is not None]
    rate = len(dead) / len(residents) / YEARS * 1000
    assert 4.5 <= rate <= 9.0  # configured crude death rate 6.5 per 1000
    for p in dead:
        assert p.death_date is not None
        assert CONFIG.start <= p.death_date < END and p.death_date >= p.birth_date
    old = [p for p in residents if p.age_on(CONFIG.start) >= 70]
    young = [p for p in residents if 5 <= p.age_on(CONFIG.start) < 40]
    old_rate = sum(p.death_date is not None for p in old) / len(old)
    young_rate = sum(p.death_date is not None for p in young) / len(young)
    assert old_rate > 10 * young_rate


def test_twins() -> None:
    config = PopulationConfig(people=12_000, seed=5, twin_rate=0.2)
    people = list(generate_people(config, []))
    by_id = {p.person_id: p for p in people}
    babies = [p for p in people if p.birth_date >= config.start]
    twins = [p for p in babies if p.twin_of]
    deliveries = len(babies) - len(twins) // 2
    assert len(twins) / 2 / deliveries == pytest.approx(0.2, abs=0.08)
    for p in twins:
        other = by_id[p.twin_of or ""]
        assert other.twin_of == p.person_id
        assert other.birth_date == p.birth_date and other.mother_id == p.mother_id
        assert other.family_name == p.family_name
        assert p.birth_time is not None and other.birth_time is not None
        minutes = abs(
            (p.birth_time.hour * 60 + p.birth_time.minute)
            - (other.birth_time.hour * 60 + other.birth_time.minute)
        )
        assert 1 <= minutes <= 16
    # Residents include twins too (same birth date and household).
    resident_twins = [p for p in people if p.twin_of and p.birth_date < config.start]
    assert resident_twins
    for p in resident_twins:
        other = by_id[p.twin_of or ""]
        assert other.twin_of == p.person_id and other.birth_date == p.birth_date
        assert other.household_id == p.household_id


def test_default_twin_rate_gives_few_twins(people: list[Person], babies: list[Person]) -> None:
    assert sum(1 for p in babies if p.twin_of) <= 0.06 * len(babies)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_people(people: list[Person]) -> None:
    again = list(generate_people(CONFIG, FACILITIES))
    assert digest(again) == digest(people)
    # The facility list's order does not matter either.
    shuffled = list(generate_people(CONFIG, list(reversed(FACILITIES))))
    assert digest(shuffled) == digest(people)


def test_other_seed_other_people(people: list[Person]) -> None:
    config = dataclasses.replace(CONFIG, people=3_000, seed=8)
    other = list(generate_people(config, FACILITIES))
    prefix = list(generate_people(dataclasses.replace(CONFIG, people=3_000), FACILITIES))
    assert digest(other) != digest(prefix)
    assert {p.cccd for p in other} != {p.cccd for p in prefix}


def test_hanoi(hanoi: list[Person]) -> None:
    communes = {c.code for c in units.communes("01")}
    assert all(p.commune_code in communes and p.province_code == "01" for p in hanoi)
    names = Counter(p.family_name for p in hanoi)
    assert names["Hoàng"] > 3 * names["Huỳnh"]
    assert names["Vũ"] > 3 * names["Võ"]
    assert names["Nguyễn"] / len(hanoi) == pytest.approx(0.38, abs=0.04)
    born_here = sum(p.birth_province_code == "01" for p in hanoi) / len(hanoi)
    assert 0.7 <= born_here <= 0.9
    assert all(check_bhyt(p.bhyt_card).valid for p in hanoi if p.bhyt_card)
    xa = {c.code for c in units.communes("01") if c.kind == "xã"}
    rural = [p.street_address for p in hanoi if p.commune_code in xa]
    assert any(a.startswith(("Thôn", "Xóm")) for a in rural)
    assert not any(a.startswith("Ấp") for a in rural)  # a southern word
    urban = [p.street_address for p in hanoi if p.commune_code not in xa]
    assert all(a.startswith("Số ") for a in urban)
    assert any(re.fullmatch(r"Số \d+ ngõ \d+ .+", a) for a in urban)  # Hà Nội lanes


def test_rural_mountain_province() -> None:
    config = PopulationConfig(people=3_000, province_code="12", seed=2)  # Lai Châu
    people = list(generate_people(config, []))
    eth = Counter(p.ethnicity_code for p in people)
    assert eth["01"] / len(people) < 0.4  # mostly Mông, Thái, Dao
    assert {"03", "08"} <= set(eth)
    assert sum(p.birth_province_code == "12" for p in people) / len(people) > 0.9


# --------------------------------------------------------------------------- streaming


def test_streaming_starts_at_once() -> None:
    """Ten million residents: the first households come out immediately (nothing is built up
    front in proportion to the population)."""
    started = time.perf_counter()
    stream = generate_people(PopulationConfig(people=10_000_000, seed=4), [])
    first = list(itertools.islice(stream, 1_000))
    assert len(first) == 1_000
    assert time.perf_counter() - started < 5.0


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        generate_people(PopulationConfig(province_code="02"), [])  # an old, merged province
    with pytest.raises(ValueError):
        generate_people(PopulationConfig(days=0), [])
    with pytest.raises(ValueError):
        generate_people(PopulationConfig(twin_rate=1.5), [])
    assert list(generate_people(PopulationConfig(people=0), [])) == []
    assert len(list(generate_people(PopulationConfig(people=1), []))) >= 1
