"""The client registry over HTTP: FHIR ``Patient/$match`` and the registry's own JSON API
(register-or-match, persons with their records and history, the review queue, merge, unmerge).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ytehub.api.deps import (
    Access,
    authorize,
    authorize_resource,
    current_principal,
    get_session,
)
from ytehub.core.security import AreaScope, Principal
from ytehub.records.api import fhir_body, fhir_response
from ytehub.records.errors import FhirError
from ytehub.registry import service
from ytehub.registry.fhir import golden_patient
from ytehub.registry.models import RegistryPerson, RegistrySource
from ytehub.registry.normalize import from_patient, record

router = APIRouter(tags=["client registry"])
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
MAX_MATCHES = 50


def _in_area(area: AreaScope, person: RegistryPerson) -> bool:
    if area.kind == "province":
        return True
    if area.kind == "communes":
        return person.commune_code is not None and person.commune_code in area.codes
    return False  # facility scopes see persons through their own records (checked by caller)


def _visible(session: Session, area: AreaScope, person: RegistryPerson) -> bool:
    if area.kind == "facility":
        return (
            session.scalar(
                select(RegistrySource.id).where(
                    RegistrySource.person_id == person.id, RegistrySource.system.in_(area.codes)
                )
            )
            is not None
        )
    return _in_area(area, person)


def _parameters(body: Any) -> tuple[dict[str, Any], int, bool]:
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise FhirError.single(
            400,
            "invalid",
            "Cần một Parameters chứa tham số resource (Patient).",
            "Expected a Parameters resource with a resource parameter (a Patient).",
            "Parameters",
        )
    patient, count, certain_only = None, 10, False
    for index, parameter in enumerate(body.get("parameter") or []):
        if not isinstance(parameter, dict):
            continue
        name = parameter.get("name")
        if name == "resource":
            patient = parameter.get("resource")
        elif name == "count":
            count = parameter.get("valueInteger")
            if not isinstance(count, int) or not 1 <= count <= MAX_MATCHES:
                raise FhirError.single(
                    400,
                    "invalid",
                    f"count phải từ 1 đến {MAX_MATCHES}.",
                    f"count must be between 1 and {MAX_MATCHES}.",
                    f"Parameters.parameter[{index}].valueInteger",
                )
        elif name == "onlyCertainMatches":
            certain_only = parameter.get("valueBoolean") is True
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise FhirError.single(
            400,
            "required",
            "Thiếu tham số resource là một Patient.",
            "The resource parameter (a Patient) is missing.",
            "Parameters.parameter.resource",
        )
    return patient, count, certain_only


@router.post("/fhir/Patient/$match")
def patient_match(
    request: Request,
    body: dict[str, Any] = Depends(fhir_body),
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Any:
    """Candidates for a Patient, best first, each with a score and a match grade."""
    access = authorize_resource(request, principal, "Patient", "read")
    if access.compartment is not None:
        raise FhirError.single(
            403, "forbidden", "Người dân không dùng được $match.", "Citizens cannot use $match."
        )
    patient, count, certain_only = _parameters(body)
    query = from_patient(patient, system="$match")
    gap = query.identifying_gap()
    if gap is not None:
        raise FhirError.single(422, "incomplete", gap.vi, gap.en, "Parameters.parameter.resource")
    entries = []
    people: list[str] = []
    for candidate in service.match(session, query):
        if candidate.grade is None or (certain_only and candidate.grade.label != "certain"):
            continue
        person = session.get(RegistryPerson, candidate.person_id)
        if person is None or not _visible(session, access.principal.area, person):
            continue
        people.append(person.id)
        entries.append(
            {
                "fullUrl": f"{str(request.base_url).rstrip('/')}/fhir/Patient/{person.id}",
                "resource": golden_patient(person, service.sources_of(session, person.id)),
                "search": {
                    "mode": "match",
                    "score": round(candidate.probability, 6),
                    "extension": [{"url": MATCH_GRADE, "valueCode": candidate.grade.label}],
                },
            }
        )
        if len(entries) >= count:
            break
    access.audit(session, "registry.match", resource_type="Patient", detail={"candidates": people})
    session.commit()
    return fhir_response(
        {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    )


# --- the registry's JSON API ----------------------------------------------------------------


class RecordIn(BaseModel):
    """A facility's record of a person, as written (any field may be missing)."""

    system: str = Field(min_length=1, max_length=64, description="facility code")
    local_id: str = Field(min_length=1, max_length=64, description="the facility's patient id")
    name: str | None = Field(default=None, max_length=128)
    birth: str | None = Field(default=None, max_length=16, description="yyyymmdd[HHMM] or ISO")
    sex: str | None = Field(default=None, max_length=8)
    document: str | None = Field(default=None, max_length=15, description="CCCD, CMND or passport")
    bhyt_card: str | None = Field(default=None, max_length=15)
    commune: str | None = Field(default=None, max_length=5)
    phone: str | None = Field(default=None, max_length=15)


class DecisionIn(BaseModel):
    decision: Literal["link", "not_a_match"]


class MergeIn(BaseModel):
    merged: str = Field(min_length=1, max_length=64, description="the person merged away")


def _candidate(c: service.Candidate) -> dict[str, Any]:
    return {
        "person_id": c.person_id,
        "probability": round(c.probability, 6),
        "grade": c.grade.label if c.grade else None,
        "conflict": c.conflict,
    }


@router.post("/api/v1/registry/records")
def register_record(
    body: RecordIn,
    access: Access = Depends(authorize("registry/persons.write")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Register-or-match one source record: linked, new, review or updated."""
    decision = service.register(
        session, record(**body.model_dump()), actor=access.principal.subject
    )
    session.commit()
    return {
        "action": decision.action,
        "person_id": decision.person_id,
        "source_id": decision.source_id,
        "probability": decision.probability,
        "review_id": decision.review_id,
        "reason": decision.reason,
        "candidates": [_candidate(c) for c in decision.candidates[:5]],
    }


def person_view(session: Session, access: Access, person_id: str) -> dict[str, Any]:
    person = service.get_person(session, person_id)
    if not _visible(session, access.principal.area, person):
        raise service.not_found("person", person_id)
    sources = service.sources_of(session, person_id)
    return {
        "id": person.id,
        "status": person.status,
        "merged_into": person.merged_into,
        "golden": person.golden,
        "verification": {
            "status": person.verification,
            "at": person.verified_at.isoformat() if person.verified_at else None,
            "source": person.verification_source,
            "detail": person.verification_detail,
        },
        "records": [
            {"id": s.id, "system": s.system, "local_id": s.local_id, "fields": s.fields}
            for s in sources
        ],
        "history": [
            {
                "at": link.at.isoformat(),
                "action": link.action,
                "source_id": link.source_id,
                "person_id": link.person_id,
                "from_person_id": link.from_person_id,
                "probability": link.probability,
                "actor": link.actor,
                "reason": link.reason,
            }
            for link in service.history_of(session, person_id)
        ],
        "fhir": golden_patient(person, sources),
    }


@router.get("/api/v1/registry/persons/{person_id}")
def get_person(
    person_id: str,
    access: Access = Depends(authorize("registry/persons.read")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    view = person_view(session, access, person_id)
    access.audit(
        session,
        "registry.read",
        resource_type="RegistryPerson",
        resource_id=person_id,
        person_id=person_id,
    )
    session.commit()
    return view


@router.get("/api/v1/registry/reviews")
def list_reviews(
    limit: int = 50,
    access: Access = Depends(authorize("registry/persons.read")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    reviews = service.open_reviews(session, max(1, min(limit, 200)))
    items = []
    for review in reviews:
        source = session.get(RegistrySource, review.source_id)
        items.append(
            {
                "id": review.id,
                "reason": review.reason,
                "probability": review.probability,
                "created_at": review.created_at.isoformat(),
                "record": source.fields if source else None,
                "record_person_id": source.person_id if source else None,
                "candidate_person_id": review.candidate_person_id,
            }
        )
    access.audit(session, "registry.reviews", detail={"count": len(items)})
    session.commit()
    return {"items": items}


@router.post("/api/v1/registry/reviews/{review_id}/decision")
def decide_review(
    review_id: int,
    body: DecisionIn,
    access: Access = Depends(authorize("registry/persons.write")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    review = service.decide(
        session, review_id, body.decision == "link", actor=access.principal.subject
    )
    session.commit()
    return {"id": review.id, "status": review.status}


@router.post("/api/v1/registry/persons/{person_id}/merge")
def merge_person(
    person_id: str,
    body: MergeIn,
    access: Access = Depends(authorize("registry/persons.write")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    moved = service.merge(session, person_id, body.merged, actor=access.principal.subject)
    session.commit()
    return {"survivor": person_id, "merged": body.merged, "records_moved": moved}


@router.post("/api/v1/registry/persons/{person_id}/unmerge")
def unmerge_person(
    person_id: str,
    access: Access = Depends(authorize("registry/persons.write")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    moved = service.unmerge(session, person_id, actor=access.principal.subject)
    session.commit()
    return {"person": person_id, "records_moved": moved}
