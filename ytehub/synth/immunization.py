"""Synthetic childhood immunization histories, written as a vaccination site would export them.

Each child under six follows the national schedule (:mod:`ytehub.immunization`) with coverage
and delays that differ by commune (:func:`commune_profiles`): most communes reach 90–98 % for
the first doses and lose a little with every month of age; about one commune in eight is
"hard to reach", with markedly lower coverage and longer delays. Commune health stations
vaccinate on one or two fixed session days a month (ngày tiêm chủng), so doses cluster on
those days; birth doses (HepB0, often BCG) are given where the child was born.

CSV layout (``write_vaccinations_csv``): UTF-8 without BOM, comma-separated, header row, CRLF
line ends, fields quoted only when needed (RFC 4180); dates ``YYYY-MM-DD``. One row per dose.

=================  ======================================================================
Column             Meaning
=================  ======================================================================
record_id          the site's id of this vaccination record (unique per site)
site_code          5-digit facility code (mã cơ sở KBCB) of the site that gave the dose
site_patient_id    the site's own id for the child ("TC" + 10 digits; differs per site)
full_name          child's full name as recorded (họ tên)
birth_date         date of birth
sex                1 = male (Nam), 2 = female (Nữ), 3 = unknown — as GIOI_TINH (QĐ 4750)
cccd               12-digit personal id (số định danh cá nhân); empty when not recorded
mother_name        mother's full name (họ tên mẹ); empty when unknown
commune_code       5-digit code of the child's commune of residence (2025 units)
vaccine_code       code in ``urn:ytehub:cs:tcmr-vaccine`` (BCG, HepB0, DTP-HepB-Hib, …)
dose_number        dose number within the series (MR at 18 months is 2, DTP4 is 4)
date_given         date the dose was given
lot_number         vaccine lot (số lô)
=================  ======================================================================

The ground-truth ``person_id`` and ``on_time`` flag stay on :class:`VaccinationRecord` and
are never written to the CSV. :func:`immunization_bundle` writes the same records as a FHIR R4
transaction Bundle (see its docstring for the identifier systems).
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from statistics import NormalDist
from typing import IO, Any

from ytehub.core.units import commune, communes, province
from ytehub.immunization import (
    CVX_SYSTEM,
    VACCINE_SYSTEM,
    Dose,
    DoseWindow,
    dose_window,
    is_on_time,
    national_schedule,
)
from ytehub.synth.csvio import rows_text, write_rows
from ytehub.synth.model import Facility, Person

__all__ = [
    "CSV_COLUMNS",
    "CSV_LAYOUT_DOC",
    "SID_CCCD",
    "SID_FACILITY",
    "SID_SITE_PATIENT",
    "SID_SITE_RECORD",
    "CommuneProfile",
    "VaccinationRecord",
    "VaccinationSites",
    "commune_profiles",
    "immunization_bundle",
    "immunization_history",
    "site_patient_id",
    "vaccinations_csv_text",
    "write_vaccinations_csv",
]

# Identifier systems ytehub owns (documented in CSV_LAYOUT_DOC and docs/).
SID_CCCD = "urn:ytehub:sid:cccd"
SID_SITE_PATIENT = "urn:ytehub:sid:site-patient-id"
SID_SITE_RECORD = "urn:ytehub:sid:site-record-id"
SID_FACILITY = "urn:ytehub:sid:facility"
EXT_COMMUNE = "urn:ytehub:ext:commune-code"

# (column, Vietnamese term, type, meaning): the one source of the header and the docs.
_CSV_SPEC: tuple[tuple[str, str, str, str], ...] = (
    (
        "record_id",
        "mã bản ghi",
        "text",
        "the site's id of this vaccination record, unique per site",
    ),
    ("site_code", "mã cơ sở tiêm", "5 digits", "facility code (mã cơ sở KBCB) of the site"),
    (
        "site_patient_id",
        "mã đối tượng tại cơ sở",
        "text",
        "the site's own id for the child (`TC` + 10 digits); differs between sites",
    ),
    ("full_name", "họ tên", "text", "child's full name as recorded"),
    ("birth_date", "ngày sinh", "date", "date of birth"),
    (
        "sex",
        "giới tính",
        "1/2/3",
        "1 male (Nam), 2 female (Nữ), 3 unknown — as `GIOI_TINH` in QĐ 4750",
    ),
    ("cccd", "số định danh cá nhân", "12 digits or empty", "personal id; empty if not recorded"),
    ("mother_name", "họ tên mẹ", "text or empty", "mother's full name; empty when unknown"),
    (
        "commune_code",
        "mã xã cư trú",
        "5 digits",
        "child's commune of residence (units in force since 2025-07-01)",
    ),
    (
        "vaccine_code",
        "mã vắc xin",
        "code",
        "code in `urn:ytehub:cs:tcmr-vaccine`: `BCG`, `HepB0`, `DTP-HepB-Hib`, `OPV`, `IPV`, "
        "`Measles`, `MR`, `DTP4`, `Td`, `JE`, `Rota`",
    ),
    (
        "dose_number",
        "mũi thứ",
        "integer ≥ 1",
        "dose number within the series (MR at 18 months is 2, `DTP4` is 4)",
    ),
    ("date_given", "ngày tiêm", "date", "date the dose was given"),
    ("lot_number", "số lô", "text", "vaccine lot number"),
)

CSV_COLUMNS: tuple[str, ...] = tuple(spec[0] for spec in _CSV_SPEC)

CSV_LAYOUT_DOC: str = (
    "Vaccination-site export (one row per dose). UTF-8 without BOM, comma-separated, header\n"
    "row, CRLF line ends, RFC 4180 quoting; dates `YYYY-MM-DD`.\n\n"
    "| Column | Vietnamese | Type | Meaning |\n|---|---|---|---|\n"
    + "".join(f"| `{c}` | {vi} | {t} | {m} |\n" for c, vi, t, m in _CSV_SPEC)
    + "\nFHIR identifier systems for the same data: `urn:ytehub:sid:cccd` (CCCD),\n"
    "`urn:ytehub:sid:site-patient-id` (the site's child id; `assigner` names the site),\n"
    "`urn:ytehub:sid:site-record-id` (`record_id`), `urn:ytehub:sid:facility` (facility\n"
    "code); vaccine codes `urn:ytehub:cs:tcmr-vaccine` plus CDC CVX\n"
    "(`http://hl7.org/fhir/sid/cvx`) where mapped; extension `urn:ytehub:ext:commune-code`\n"
    "(valueCode) on `Patient.address`. Bundle type `transaction`.\n"
)

_SEX_CODE = {"male": "1", "female": "2"}
_FHIR_GENDER = {"male": "male", "female": "female"}
_BIRTH_LEVELS = ("medical_centre", "regional_hospital", "provincial_hospital")
_MAX_DELAY_DAYS = 180  # catch-up campaigns (tiêm bù) reach nearly everyone within ~6 months
_SERIES_CORRELATION = 0.7  # a child who misses one series tends to miss others
_DOSE_FACTOR = {"HepB0": 0.97, "IPV-2": 0.95, "Rota-1": 0.85, "Rota-2": 0.85}
_LOT_PREFIX = {
    "BCG": "BCG",
    "HepB0": "HB",
    "DTP-HepB-Hib": "PV",
    "OPV": "BOPV",
    "IPV": "IPV",
    "Measles": "MV",
    "MR": "MR",
    "DTP4": "DPT",
    "Td": "TD",
    "JE": "JEV",
    "Rota": "RV",
}


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class CommuneProfile:
    """How well one commune's children are vaccinated (ground truth for coverage tests)."""

    commune_code: str
    early_coverage: float  # share receiving the first doses (BCG, DTP-HepB-Hib 1, OPV 1)
    decline_per_year: float  # coverage falls by exp(-rate × recommended age in years)
    first_session_share: float  # share of families who come to the first session after due
    delay_median_days: float  # the others come this many days late (median, lognormal)
    delay_sigma: float
    hepb0_within_24h: float  # share of HepB0 doses given within 24 hours
    session_days: tuple[int, ...]  # days of the month the commune station vaccinates
    rota_offered: bool  # rotavirus introduced in this province (phased roll-out)
    hard_to_reach: bool

    def coverage(self, dose: Dose) -> float:
        """Probability that a child of this commune eventually receives ``dose`` (before
        truncation by the end of the period or a maximum age)."""
        if dose.phased and not self.rota_offered:
            return 0.0
        years = dose.recommended_age.approx_days() / 365.25
        value = self.early_coverage * math.exp(-self.decline_per_year * years)
        return min(0.995, value * _DOSE_FACTOR.get(dose.id, 1.0))


def commune_profiles(province_code: str, seed: int) -> dict[str, CommuneProfile]:
    """One profile per current commune of the province, deterministic from ``seed``.

    About 12 % of communes are hard to reach (first-dose coverage 60–80 %, steeper decline,
    30–50 % of families at the first session a dose is due, the rest a median 20–40 days
    late); the others reach 90–98 %, 65–85 % at the first session, the rest 5–15 days late.
    Rotavirus is offered province-wide with probability 0.65 (41 of the former 63 provinces
    by 2025 per the reference notes). Raises ValueError for an unknown province.
    """
    units = communes(province_code)
    if not units:
        raise ValueError(f"unknown province code {province_code!r}")
    rng = random.Random(f"immunization-profiles:{province_code}:{seed}")
    rota = rng.random() < 0.65
    profiles: dict[str, CommuneProfile] = {}
    for unit in units:
        hard = rng.random() < 0.12
        if hard:
            early = rng.uniform(0.60, 0.80)
            decline = rng.uniform(0.06, 0.12)
            prompt = rng.uniform(0.30, 0.50)
            median = rng.uniform(20.0, 40.0)
            sigma = rng.uniform(0.9, 1.2)
            timely = rng.uniform(0.45, 0.70)
        else:
            early = rng.uniform(0.90, 0.98)
            decline = rng.uniform(0.01, 0.05)
            prompt = rng.uniform(0.65, 0.85)
            median = rng.uniform(5.0, 15.0)
            sigma = rng.uniform(0.6, 0.9)
            timely = rng.uniform(0.75, 0.92)
        first = rng.randint(1, 26)
        sessions = (first, first + 1) if rng.random() < 0.4 else (first,)
        profiles[unit.code] = CommuneProfile(
            commune_code=unit.code,
            early_coverage=round(early, 4),
            decline_per_year=round(decline, 4),
            first_session_share=round(prompt, 3),
            delay_median_days=round(median, 2),
            delay_sigma=round(sigma, 3),
            hepb0_within_24h=round(timely, 3),
            session_days=sessions,
            rota_offered=rota,
            hard_to_reach=hard,
        )
    return profiles


# --------------------------------------------------------------------------- sites


class VaccinationSites:
    """Which facility vaccinates a child: the commune health station of the child's commune
    when there is one, else a medical centre of the province; birth doses at a medical
    centre or hospital. Build once per facility list; choices are deterministic."""

    def __init__(self, facilities: Iterable[Facility]) -> None:
        self._all = sorted(facilities, key=lambda f: f.code)
        self._stations: dict[str, Facility] = {}
        self._centres: dict[str, list[Facility]] = {}
        self._birth: dict[str, list[Facility]] = {}
        self._any: dict[str, list[Facility]] = {}
        for f in self._all:
            self._any.setdefault(f.province_code, []).append(f)
            if f.level == "commune_station":
                self._stations.setdefault(f.commune_code, f)
            if f.level == "medical_centre":
                self._centres.setdefault(f.province_code, []).append(f)
            if f.level in _BIRTH_LEVELS:
                self._birth.setdefault(f.province_code, []).append(f)

    @staticmethod
    def _pick(options: Sequence[Facility], person: Person) -> Facility:
        """Same commune first, else a stable hash of the commune: neighbours share a site."""
        for f in options:
            if f.commune_code == person.commune_code:
                return f
        return options[_stable_int(person.commune_code) % len(options)]

    def routine(self, person: Person) -> Facility:
        """The site of routine doses; ValueError when the province has no facility at all."""
        station = self._stations.get(person.commune_code)
        if station is not None:
            return station
        for pool in (self._centres, self._any):
            options = pool.get(person.province_code)
            if options:
                return self._pick(options, person)
        raise ValueError(f"no facility in province {person.province_code!r} to vaccinate at")

    def birth(self, person: Person) -> Facility:
        """Where a birth dose is given: a medical centre or hospital, else the routine site."""
        options = self._birth.get(person.province_code)
        return self._pick(options, person) if options else self.routine(person)


_LAST_SITES: list[tuple[Sequence[Facility], int, VaccinationSites]] = []


def _sites(facilities: Sequence[Facility] | VaccinationSites) -> VaccinationSites:
    """Index a facility list once: callers pass the same list for every child."""
    if isinstance(facilities, VaccinationSites):
        return facilities
    if _LAST_SITES:
        known, size, sites = _LAST_SITES[0]
        if known is facilities and size == len(facilities):
            return sites
    sites = VaccinationSites(facilities)
    _LAST_SITES[:] = [(facilities, len(facilities), sites)]
    return sites


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class VaccinationRecord:
    """One dose as the site recorded it, plus ground truth (``person_id``, ``on_time``)."""

    record_id: str
    person_id: str  # ground truth; never exported
    facility_code: str
    site_patient_id: str
    full_name: str
    birth_date: date
    sex: str  # "male" / "female"
    cccd: str  # "" when none
    mother_name: str  # "" when unknown
    commune_code: str
    vaccine_code: str
    dose_number: int  # within the series
    series: str
    dose_id: str
    date_given: date
    lot_number: str
    on_time: bool  # ground truth: given within the dose's on-time window

    def csv_row(self) -> dict[str, str]:
        """The row :func:`write_vaccinations_csv` writes."""
        return {
            "record_id": self.record_id,
            "site_code": self.facility_code,
            "site_patient_id": self.site_patient_id,
            "full_name": self.full_name,
            "birth_date": self.birth_date.isoformat(),
            "sex": _SEX_CODE.get(self.sex, "3"),
            "cccd": self.cccd,
            "mother_name": self.mother_name,
            "commune_code": self.commune_code,
            "vaccine_code": self.vaccine_code,
            "dose_number": str(self.dose_number),
            "date_given": self.date_given.isoformat(),
            "lot_number": self.lot_number,
        }


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _stable_int(*parts: str) -> int:
    return int(_digest(*parts)[:15], 16)


def site_patient_id(facility_code: str, person_id: str) -> str:
    """The id a site uses for a child: stable per (site, child), reveals nothing of either."""
    return f"TC{_stable_int('site-patient', facility_code, person_id) % 10**10:010d}"


def _lot(vaccine: str, facility: Facility, day: date) -> str:
    """Lots come from the province's cold chain by quarter; a site uses one of two at a time."""
    quarter = (day.month - 1) // 3 + 1
    batch = _stable_int("lot", facility.province_code, vaccine, str(day.year), str(quarter))
    which = _stable_int("lot-site", facility.code, vaccine, str(day.year), str(quarter)) % 2
    return f"{_LOT_PREFIX.get(vaccine, 'VX')}{day.year % 100:02d}{(batch + which) % 900 + 100:03d}"


def _next_session(day: date, sessions: Sequence[int]) -> date:
    """The first session day on or after ``day`` (a session on the 30th falls on the last day
    of a shorter month)."""
    for offset in range(0, 63):
        candidate = day + timedelta(days=offset)
        nxt = candidate + timedelta(days=1)
        last_day = nxt.month != candidate.month
        if candidate.day in sessions or (last_day and max(sessions) > candidate.day):
            return candidate
    return day  # pragma: no cover - a session falls within any 63-day span


_NORMAL = NormalDist()


def _delay(uniform: float, profile: CommuneProfile) -> int:
    """Days from due date to the date the family comes: 0 for those who come to the first
    session, else lognormal, capped (catch-up). One uniform decides both."""
    prompt = profile.first_session_share
    if uniform < prompt:
        return 0
    rest = (uniform - prompt) / (1.0 - prompt)
    z = _NORMAL.inv_cdf(min(max(rest, 1e-9), 1 - 1e-9))
    days = math.exp(math.log(profile.delay_median_days) + profile.delay_sigma * z)
    return min(_MAX_DELAY_DAYS, int(days))


def immunization_history(
    person: Person,
    until: date,
    rng: random.Random,
    commune_profile: CommuneProfile,
    facilities: Sequence[Facility] | VaccinationSites,
    *,
    mother_name: str = "",
    max_age_years: int = 6,
) -> list[VaccinationRecord]:
    """The doses ``person`` received up to ``until`` (inclusive), in date order.

    Only children younger than ``max_age_years`` on ``until`` get a history (others: ``[]``).
    The generator is consumed in a fixed pattern (one normal per child, one normal per
    series, two uniforms per dose), so the same state gives the same history. Every dose
    respects its minimum age, minimum interval and maximum age; a child who misses a dose
    misses the rest of that series (drop-out). ``facilities`` is the province's facility
    list (indexed once and reused while the same list is passed) or a
    :class:`VaccinationSites`. ``mother_name`` fills the CSV's mother column.
    """
    if person.birth_date > until or person.age_on(until) >= max_age_years:
        return []
    sites = _sites(facilities)
    sched = national_schedule()
    last_day = until if person.death_date is None else min(until, person.death_date)
    child_z = rng.gauss(0.0, 1.0)
    spread = math.sqrt(1.0 - _SERIES_CORRELATION**2)
    records: list[VaccinationRecord] = []
    for series in sched.series_names():
        # One latent propensity per series, correlated across series (Gaussian copula):
        # marginal coverage stays exactly the profile's, misses cluster in the same children.
        u = _NORMAL.cdf(_SERIES_CORRELATION * child_z + spread * rng.gauss(0.0, 1.0))
        members = sched.series(series)
        draws = [(rng.random(), rng.random()) for _ in members]
        previous: date | None = None
        for dose, (a, b) in zip(members, draws, strict=True):
            if u >= commune_profile.coverage(dose):
                break
            window = dose_window(dose, person.birth_date, previous)
            given, site = _when_and_where(dose, person, window, commune_profile, sites, a, b)
            if given < window.earliest or given > last_day:
                break
            if window.expires is not None and given > window.expires:
                break
            records.append(_record(person, dose, given, site, mother_name))
            previous = given
    records.sort(key=lambda r: (r.date_given, r.series, r.dose_number))
    return records


def _when_and_where(
    dose: Dose,
    person: Person,
    window: DoseWindow,
    profile: CommuneProfile,
    sites: VaccinationSites,
    a: float,
    b: float,
) -> tuple[date, Facility]:
    """Date and site of one dose from two uniforms: birth doses where the child was born,
    the rest at the first session day after the due date plus a delay."""
    birth = person.birth_date
    if dose.vaccine == "HepB0":
        offset = (0 if b < 0.8 else 1) if a < profile.hepb0_within_24h else 2 + int(b * 6)
        return birth + timedelta(days=offset), sites.birth(person)
    if dose.vaccine == "BCG" and a < (0.45 if profile.hard_to_reach else 0.85):
        return birth + timedelta(days=int(b * 4)), sites.birth(person)
    target = max(window.earliest, window.due + timedelta(days=_delay(b, profile)))
    return _next_session(target, profile.session_days), sites.routine(person)


def _record(
    person: Person, dose: Dose, given: date, site: Facility, mother_name: str
) -> VaccinationRecord:
    sid = site_patient_id(site.code, person.person_id)
    rid = _digest("record", site.code, person.person_id, dose.id, given.isoformat())
    return VaccinationRecord(
        record_id=f"{site.code}-{rid[:10].upper()}",
        person_id=person.person_id,
        facility_code=site.code,
        site_patient_id=sid,
        full_name=person.full_name,
        birth_date=person.birth_date,
        sex=person.sex,
        cccd=person.cccd or "",
        mother_name=mother_name,
        commune_code=person.commune_code,
        vaccine_code=dose.vaccine,
        dose_number=dose.dose_number,
        series=dose.series,
        dose_id=dose.id,
        date_given=given,
        lot_number=_lot(dose.vaccine, site, given),
        on_time=is_on_time(dose, person.birth_date, given),
    )


# --------------------------------------------------------------------------- writers


def write_vaccinations_csv(
    records: Iterable[VaccinationRecord],
    path_or_handle: str | Path | IO[str],
    *,
    header: bool = True,
) -> int:
    """Write records in the documented layout (:data:`CSV_LAYOUT_DOC`); returns the count."""
    return write_rows(records, path_or_handle, CSV_COLUMNS, header=header)


def vaccinations_csv_text(records: Iterable[VaccinationRecord]) -> str:
    """The CSV as a string (for tests and small exports)."""
    return rows_text(records, CSV_COLUMNS)


_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ytehub:synth:immunization")


def _facility_ref(code: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "identifier": {"system": SID_FACILITY, "value": code}}


def immunization_bundle(person: Person, records: Sequence[VaccinationRecord]) -> dict[str, Any]:
    """A FHIR R4 ``transaction`` Bundle: one Patient and one Immunization per record.

    Why a transaction, not a collection: the bundle is what a site submits for storage. A
    transaction is processed atomically, its ``urn:uuid`` references are resolved by the
    server, and each entry's conditional create (``ifNoneExist`` on the CCCD, else the
    site's child id, and on the record id) makes resubmitting the same export harmless.

    Identifier systems: ``urn:ytehub:sid:cccd``, ``urn:ytehub:sid:site-patient-id`` (with the
    site in ``assigner``), ``urn:ytehub:sid:site-record-id``, ``urn:ytehub:sid:facility``.
    Vaccines use ``urn:ytehub:cs:tcmr-vaccine`` plus CVX where mapped. The ground-truth
    ``person_id`` is never written. The output validates with ``fhir.resources.R4B`` (R4B
    Patient, Immunization and Bundle are R4's; plain ``fhir.resources`` is R5).
    """
    sched = national_schedule()
    sites = dict.fromkeys((r.facility_code, r.site_patient_id) for r in records)
    key = "|".join([person.cccd or "", *(f"{s}:{p}" for s, p in sites)])
    patient_url = f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, 'patient|' + key)}"
    identifiers: list[dict[str, Any]] = []
    if person.cccd:
        identifiers.append({"use": "official", "system": SID_CCCD, "value": person.cccd})
    for site_code, pid in sites:
        identifiers.append(
            {
                "use": "secondary",
                "system": SID_SITE_PATIENT,
                "value": pid,
                "assigner": _facility_ref(site_code, "Organization"),
            }
        )
    name: dict[str, Any] = {"use": "official", "text": person.full_name}
    if person.family_name:
        name["family"] = person.family_name
    given_names = [p for p in (person.middle_name, person.given_name) if p]
    if given_names:
        name["given"] = given_names
    unit = commune(person.commune_code)
    prov = province(person.province_code)
    address: dict[str, Any] = {
        "use": "home",
        "country": "VN",
        "extension": [{"url": EXT_COMMUNE, "valueCode": person.commune_code}],
    }
    if person.street_address:
        address["line"] = [person.street_address]
    if unit is not None:
        address["city"] = unit.name
    if prov is not None:
        address["state"] = prov.name
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [name],
        "gender": _FHIR_GENDER.get(person.sex, "unknown"),
        "birthDate": person.birth_date.isoformat(),
        "address": [address],
    }
    if identifiers:
        patient["identifier"] = identifiers
    mother = next((r.mother_name for r in records if r.mother_name), "")
    if mother:
        patient["contact"] = [
            {
                "relationship": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                "code": "MTH",
                                "display": "mother",
                            }
                        ],
                        "text": "Mẹ",
                    }
                ],
                "name": {"text": mother},
            }
        ]
    if person.cccd:
        match = f"identifier={SID_CCCD}|{person.cccd}"
    elif sites:
        match = f"identifier={SID_SITE_PATIENT}|{next(iter(sites))[1]}"
    else:
        match = ""
    patient_request: dict[str, Any] = {"method": "POST", "url": "Patient"}
    if match:
        patient_request["ifNoneExist"] = match
    entries: list[dict[str, Any]] = [
        {"fullUrl": patient_url, "resource": patient, "request": patient_request}
    ]
    for record in records:
        vaccine = sched.vaccines[record.vaccine_code]
        coding = [{"system": VACCINE_SYSTEM, "code": vaccine.code, "display": vaccine.name_vi}]
        if vaccine.cvx:
            coding.append(
                {"system": CVX_SYSTEM, "code": vaccine.cvx, "display": vaccine.cvx_display}
            )
        series_doses = len(sched.series(record.series))
        immunization = {
            "resourceType": "Immunization",
            "identifier": [{"system": SID_SITE_RECORD, "value": record.record_id}],
            "status": "completed",
            "vaccineCode": {"coding": coding, "text": vaccine.name_vi},
            "patient": {"reference": patient_url},
            "occurrenceDateTime": record.date_given.isoformat(),
            "primarySource": True,
            "location": _facility_ref(record.facility_code, "Location"),
            "lotNumber": record.lot_number,
            "performer": [{"actor": _facility_ref(record.facility_code, "Organization")}],
            "protocolApplied": [
                {
                    "series": record.series,
                    "authority": {"display": f"TCMR {sched.version}"},
                    "doseNumberPositiveInt": record.dose_number,
                    "seriesDosesPositiveInt": series_doses,
                }
            ],
        }
        url = f"urn:uuid:{uuid.uuid5(_UUID_NAMESPACE, 'immunization|' + record.record_id)}"
        entries.append(
            {
                "fullUrl": url,
                "resource": immunization,
                "request": {
                    "method": "POST",
                    "url": "Immunization",
                    "ifNoneExist": f"identifier={SID_SITE_RECORD}|{record.record_id}",
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
