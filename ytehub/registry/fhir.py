"""The registry's persons in FHIR: the golden record as a Patient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ytehub.registry.models import RegistryPerson, RegistrySource
from ytehub.registry.normalize import (
    COMMUNE_EXTENSION,
    SID_BHXH,
    SID_BHYT,
    SID_CCCD,
    SID_CMND,
    SID_FACILITY_PREFIX,
    SID_PASSPORT,
)


def golden_patient(person: RegistryPerson, sources: Iterable[RegistrySource]) -> dict[str, Any]:
    """The golden record as a FHIR Patient; each facility record is an identifier and a link."""
    return patient_resource(
        person.id,
        person.golden,
        [(s.system, s.local_id) for s in sources],
        active=person.status == "active",
        replaced_by=person.merged_into,
    )


def patient_resource(
    person_id: str,
    golden: dict[str, Any],
    facility_ids: Iterable[tuple[str, str]],
    active: bool = True,
    replaced_by: str | None = None,
) -> dict[str, Any]:
    """A golden record as a FHIR Patient whose id is the person's: the one Patient every
    facility's episodes of this person refer to."""
    identifiers = [
        {"system": system, "value": golden[key]}
        for key, system in (
            ("cccd", SID_CCCD),
            ("cmnd", SID_CMND),
            ("passport", SID_PASSPORT),
            ("bhxh", SID_BHXH),
            ("bhyt_card", SID_BHYT),
        )
        if golden.get(key)
    ]
    local_ids = [
        {"system": f"{SID_FACILITY_PREFIX}{system}", "value": local_id}
        for system, local_id in facility_ids
    ]
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person_id,
        "active": active,
        "identifier": identifiers + local_ids,
    }
    display = golden.get("display_name")
    if display:
        words = display.split()
        patient["name"] = [
            {"use": "official", "text": display, "family": words[0], "given": words[1:]}
        ]
    if golden.get("sex"):
        patient["gender"] = golden["sex"]
    year, month, day = golden.get("birth_year"), golden.get("birth_month"), golden.get("birth_day")
    if year:
        patient["birthDate"] = "-".join(
            [f"{year:04d}"]
            + ([f"{month:02d}"] if month else [])
            + ([f"{day:02d}"] if month and day else [])
        )
    if golden.get("commune"):
        patient["address"] = [
            {"extension": [{"url": COMMUNE_EXTENSION, "valueCode": golden["commune"]}]}
        ]
    if golden.get("phone"):
        patient["telecom"] = [{"system": "phone", "value": golden["phone"]}]
    patient["link"] = [
        {"other": {"identifier": identifier}, "type": "seealso"} for identifier in local_ids
    ]
    if replaced_by:
        patient["link"].append(
            {"other": {"reference": f"Patient/{replaced_by}"}, "type": "replaced-by"}
        )
    return patient
