"""Synthetic FHIR R4 content for bench_fhir: Patients from the synthetic population, and the
Encounters, Conditions and Observations that hang off them.

Everything is deterministic for a given seed, and every resource passes the store's validation.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from ytehub.synth.facilities import generate_facilities
from ytehub.synth.model import Person
from ytehub.synth.people import PopulationConfig, generate_people

SID_CCCD = "urn:ytehub:sid:cccd"
SID_BHYT = "urn:ytehub:sid:bhyt"
COMMUNE_EXTENSION = "urn:ytehub:ext:commune-code"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# (LOINC code, display, UCUM unit, low, high, category)
VITALS: tuple[tuple[str, str, str, float, float, str], ...] = (
    ("8867-4", "Heart rate", "/min", 55, 110, "vital-signs"),
    ("8310-5", "Body temperature", "Cel", 36.0, 39.5, "vital-signs"),
    ("29463-7", "Body weight", "kg", 8, 95, "vital-signs"),
    ("8302-2", "Body height", "cm", 60, 185, "vital-signs"),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 175, "vital-signs"),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55, 105, "vital-signs"),
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 250, "laboratory"),
    ("4548-4", "Hemoglobin A1c", "%", 4.5, 11, "laboratory"),
)
CONDITIONS: tuple[tuple[str, str], ...] = (
    ("I10", "Tăng huyết áp vô căn"),
    ("E11", "Đái tháo đường type 2"),
    ("J06.9", "Nhiễm trùng hô hấp trên cấp"),
    ("K29.7", "Viêm dạ dày"),
    ("J45", "Hen phế quản"),
    ("M54.5", "Đau thắt lưng"),
)
PERIOD_START = date(2024, 1, 1)
PERIOD_DAYS = 700


def population(people: int, seed: int = 1, province: str = "79") -> list[Person]:
    """``people`` synthetic residents (babies born during the period are dropped)."""
    workforce = generate_facilities(province, seed)
    config = PopulationConfig(people=people, province_code=province, seed=seed)
    out: list[Person] = []
    for person in generate_people(config, workforce.facilities):
        if person.mother_id is None:
            out.append(person)
            if len(out) >= people:
                break
    return out


def cccd_of(person: Person) -> str:
    """The CCCD, or a stand-in made from the ground-truth id for the few who lack one."""
    return person.cccd or f"9{int(person.person_id[1:]):011d}"


def patient(person: Person, cccd: str | None = None) -> dict[str, Any]:
    given = [p for p in (person.middle_name, person.given_name) if p]
    identifiers = [{"system": SID_CCCD, "value": cccd or cccd_of(person)}]
    if person.bhyt_card:
        identifiers.append({"system": SID_BHYT, "value": person.bhyt_card})
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": identifiers,
        "active": True,
        "name": [
            {
                "use": "official",
                "text": " ".join([person.family_name, *given]),
                "family": person.family_name,
                "given": given,
            }
        ],
        "gender": person.sex,
        "birthDate": person.birth_date.isoformat(),
        "address": [
            {
                "use": "home",
                "line": [person.street_address],
                "extension": [{"url": COMMUNE_EXTENSION, "valueCode": person.commune_code}],
                "country": "VN",
            }
        ],
    }
    if person.phone:
        body["telecom"] = [{"system": "phone", "value": person.phone, "use": "mobile"}]
    return body


def _day(rng: random.Random) -> date:
    return PERIOD_START + timedelta(days=rng.randrange(PERIOD_DAYS))


def encounter(rng: random.Random, subject: str, day: date | None = None) -> dict[str, Any]:
    day = day or _day(rng)
    hour = rng.randrange(7, 17)
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": subject},
        "period": {
            "start": f"{day.isoformat()}T{hour:02d}:00:00+07:00",
            "end": f"{day.isoformat()}T{hour:02d}:40:00+07:00",
        },
    }


def condition(
    rng: random.Random, subject: str, encounter_ref: str | None, day: date | None = None
) -> dict[str, Any]:
    code, display = rng.choice(CONDITIONS)
    day = day or _day(rng)
    body: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
        "subject": {"reference": subject},
        "onsetDateTime": day.isoformat(),
        "recordedDate": day.isoformat(),
    }
    if encounter_ref:
        body["encounter"] = {"reference": encounter_ref}
    return body


def observation(
    rng: random.Random,
    subject: str,
    encounter_ref: str | None,
    day: date | None = None,
    vital: int | None = None,
) -> dict[str, Any]:
    code, display, unit, low, high, category = VITALS[
        rng.randrange(len(VITALS)) if vital is None else vital % len(VITALS)
    ]
    day = day or _day(rng)
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": subject},
        "effectiveDateTime": f"{day.isoformat()}T09:{rng.randrange(60):02d}:00+07:00",
        "valueQuantity": {
            "value": round(rng.uniform(low, high), 1),
            "unit": unit,
            "system": UCUM,
            "code": unit,
        },
    }
    if encounter_ref:
        body["encounter"] = {"reference": encounter_ref}
    return body


def shape(per_patient: int) -> tuple[int, int, int]:
    """(encounters, conditions, observations) for one patient with ``per_patient`` resources
    in all, the Patient included: about a quarter encounters, a quarter conditions, the rest
    observations."""
    others = max(per_patient - 1, 0)
    encounters = max(1, others // 4) if others else 0
    conditions = min(others - encounters, others // 4)
    return encounters, conditions, others - encounters - conditions


def clinical(
    rng: random.Random, subject: str, per_patient: int, ref: Any = None
) -> Iterator[dict[str, Any]]:
    """The non-Patient resources of one patient; ``ref(kind, index)`` names each encounter
    (default: no encounter references, for the direct load where ids come later)."""
    encounters, conditions, observations = shape(per_patient)
    days = sorted(_day(rng) for _ in range(max(encounters, 1)))
    for e in range(encounters):
        yield encounter(rng, subject, days[e])
    for c in range(conditions):
        e = c % max(encounters, 1)
        yield condition(rng, subject, ref(e) if ref and encounters else None, days[e])
    for o in range(observations):
        e = o % max(encounters, 1)
        yield observation(rng, subject, ref(e) if ref and encounters else None, days[e], vital=o)


def transaction_bundle(
    rng: random.Random, person: Person, cccd: str, size: int = 100
) -> dict[str, Any]:
    """A transaction Bundle of ``size`` resources: one new Patient, then Encounters, Conditions
    and Observations, all linked by ``urn:uuid:`` references."""
    patient_urn = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"
    encounters, _conditions, _observations = shape(size)
    encounter_urns = [f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(encounters)]
    entries = [
        {
            "fullUrl": patient_urn,
            "resource": patient(person, cccd),
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for index, resource in enumerate(
        clinical(rng, patient_urn, size, ref=lambda e: encounter_urns[e])
    ):
        full_url = (
            encounter_urns[index]
            if index < encounters
            else f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"
        )
        entries.append(
            {
                "fullUrl": full_url,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
