"""Console pages of the health record: find a person, read their record.

The pages use the same authorisation, area scopes, search and audit as the FHIR API.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from ytehub.api.context import request_language
from ytehub.api.deps import authorize_resource, get_database, get_session, get_settings
from ytehub.core import units
from ytehub.core.db import Database
from ytehub.core.errors import DomainError
from ytehub.core.i18n import N_
from ytehub.core.security import Principal
from ytehub.core.settings import Settings
from ytehub.records.errors import FhirError
from ytehub.records.person_api import load_record
from ytehub.records.phr import display_date
from ytehub.records.query import parse_search
from ytehub.records.search import run_search
from ytehub.records.store import commune_of
from ytehub.web.routes import page

router = APIRouter(include_in_schema=False)
CCCD = re.compile(r"^\d{9}(\d{3})?$")
GENDERS = {
    "male": N_("Male"),
    "female": N_("Female"),
    "other": N_("Other"),
    "unknown": N_("Unknown"),
}
BHYT = re.compile(r"^[A-Za-z]{2}\d{13}$")


def query_for(text: str) -> tuple[str, list[tuple[str, str]]]:
    """What a clerk typed, as a Patient search: a CCCD/CMND, a BHYT card number, or a name."""
    text = " ".join(text.split())
    if CCCD.match(text):
        return "cccd", [("identifier", f"urn:ytehub:sid:cccd|{text}")]
    if BHYT.match(text):
        return "bhyt", [("identifier", f"urn:ytehub:sid:bhyt|{text.upper()}")]
    return "name", [("name", text)]


def _row(resource: dict[str, Any]) -> dict[str, Any]:
    name = (resource.get("name") or [{}])[0]
    full = " ".join([name.get("family", ""), *name.get("given", [])]).strip() or name.get("text")
    cccd = next(
        (
            i.get("value")
            for i in resource.get("identifier", [])
            if i.get("system") == "urn:ytehub:sid:cccd"
        ),
        "",
    )
    commune_code = commune_of(resource)
    commune = units.commune(commune_code) if commune_code else None
    return {
        "id": resource.get("id"),
        "name": full or "—",
        "gender": GENDERS.get(resource.get("gender", ""), ""),
        "birth_date": resource.get("birthDate", ""),
        "cccd": cccd,
        "commune": commune.name if commune else "",
    }


@router.get("/records", response_class=HTMLResponse)
def records_search(
    request: Request,
    q: str = "",
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
    session: Session = Depends(get_session),
) -> Response:
    def build(principal: Principal) -> dict[str, Any]:
        if not q.strip():
            return {"q": "", "results": None}
        try:
            access = authorize_resource(request, principal, "Patient", "read")
            kind, pairs = query_for(q)
            plan = parse_search("Patient", [*pairs, ("_count", "50")], strict=True)
            result = run_search(session, plan, access.compartment, principal.area)
        except (DomainError, FhirError) as error:
            message = (
                error.message.in_language(None) if isinstance(error, DomainError) else str(error)
            )
            return {"q": q, "results": [], "error": message}
        for row in result.matches:
            access.audit(
                session,
                "console.person_search",
                resource_type="Patient",
                resource_id=row.id,
                person_id=row.id,
                detail={"kind": kind},
            )
        session.commit()
        return {
            "q": q,
            "kind": kind,
            "total": result.total,
            "results": [_row(row.content or {}) for row in result.matches],
        }

    return page(request, settings, db, "records_search.html", build, active="records")


@router.get("/records/{patient_id}", response_class=HTMLResponse)
def person_page(
    request: Request,
    patient_id: str,
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
    session: Session = Depends(get_session),
) -> Response:
    lang = request_language(request)

    def build(principal: Principal) -> dict[str, Any]:
        try:
            access = authorize_resource(request, principal, "Patient", "read")
            record = load_record(session, access, patient_id, "console")
        except (DomainError, FhirError) as error:
            message = (
                error.message.in_language(lang)
                if isinstance(error, DomainError)
                else "; ".join(i.text.in_language(lang) for i in error.issues)
            )
            return {"error": message, "record": None}
        session.commit()
        return {
            "record": record,
            "patient_id": patient_id,
            "person_name": record.administrative.full_name,
            "sections": [(s.title.in_language(lang), s.tables(lang)) for s in record.sections()],
            "timeline": [
                {
                    "date": display_date(e.date, lang),
                    "kind": e.kind,
                    "label": e.label.in_language(lang),
                }
                for e in record.timeline[:200]
            ],
        }

    return page(request, settings, db, "records_person.html", build, active="records")
