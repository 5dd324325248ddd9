"""The personal health record (hồ sơ sức khỏe điện tử) as JSON, PDF and FHIR document.

``GET /api/v1/persons/{id}/record`` (JSON), ``…/record.pdf`` (printable),
``GET /fhir/Patient/{id}/$summary`` (a FHIR document Bundle with a Composition). Each read is
authorised like a FHIR read of the Patient (scope, citizen compartment, area) and audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from ytehub.api.context import request_language
from ytehub.api.deps import Access, authorize_resource, current_principal, get_session
from ytehub.core.security import Principal
from ytehub.records.api import fhir_base, fhir_response
from ytehub.records.errors import FhirError
from ytehub.records.phr import PersonalRecord, build_record
from ytehub.records.phr_pdf import record_pdf
from ytehub.records.search import visible
from ytehub.records.store import RecordStore

router = APIRouter(tags=["personal health record"])
MAX_RESOURCES = 20_000  # a lifetime record fits; larger ones are cut, oldest types last


def load_record(session: Session, access: Access, patient_id: str, channel: str) -> PersonalRecord:
    """Read a person's whole compartment under the caller's authority, audited once."""
    store = RecordStore(session)
    patient = store.read("Patient", patient_id).resource
    if access.compartment is not None and access.compartment != patient_id:
        raise FhirError.single(
            403,
            "forbidden",
            "Người dân chỉ được xem hồ sơ của chính mình.",
            "Citizens may only access their own record.",
        )
    if not visible(session, "Patient", patient_id, access.principal.area):
        raise FhirError.single(
            403,
            "forbidden",
            "Người này ở ngoài địa bàn được giao.",
            "This person is outside your assigned area.",
        )
    rows, _total = store.compartment(patient_id, 0, MAX_RESOURCES)
    resources = [row.content for row in rows if row.content and row.resource_type != "Patient"]
    access.audit(
        session,
        f"record.{channel}",
        resource_type="Patient",
        resource_id=patient_id,
        person_id=patient_id,
        detail={"resources": len(resources)},
    )
    return build_record(patient, resources)


def _load(
    request: Request, principal: Principal, session: Session, patient_id: str, channel: str
) -> PersonalRecord:
    access = authorize_resource(request, principal, "Patient", "read")
    record = load_record(session, access, patient_id, channel)
    session.commit()
    return record


@router.get("/api/v1/persons/{patient_id}/record")
def record_json(
    patient_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    return _load(request, principal, session, patient_id, "json").as_dict()


@router.get("/api/v1/persons/{patient_id}/record.pdf")
def record_pdf_download(
    patient_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    record = _load(request, principal, session, patient_id, "pdf")
    pdf = record_pdf(record, lang=request_language(request), generated_at=datetime.now(UTC))
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="ho-so-suc-khoe-{patient_id}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/fhir/Patient/{patient_id}/$summary")
def record_document(
    patient_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    session: Session = Depends(get_session),
) -> Response:
    record = _load(request, principal, session, patient_id, "document")
    base = fhir_base(request)
    bundle = record.as_document_bundle(base, datetime.now(UTC))
    return fhir_response(bundle)
