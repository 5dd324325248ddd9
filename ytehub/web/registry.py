"""Console pages of the client registry: the verified share per commune, the review queue,
and the side-by-side review of one potential match with its link / not-a-match decision.

The pages authorise with the same scopes as the registry API (registry/persons.read and
.write) and every read of a person's data is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from ytehub.api.context import request_language
from ytehub.api.deps import Access, check_scope, get_database, get_session, get_settings
from ytehub.core.db import Database
from ytehub.core.errors import DomainError
from ytehub.core.i18n import N_
from ytehub.core.security import Principal, Scope
from ytehub.core.settings import Settings
from ytehub.registry import service
from ytehub.registry.models import RegistrySource
from ytehub.registry.verification import verified_share_by_commune
from ytehub.web import session as console
from ytehub.web.routes import page

router = APIRouter(include_in_schema=False)
FIELDS = (
    ("display_name", N_("Full name")),
    ("birth_date", N_("Date of birth")),
    ("sex", N_("Sex")),
    ("cccd", N_("CCCD")),
    ("cmnd", N_("CMND (old identity card)")),
    ("bhxh", N_("BHXH number")),
    ("commune", N_("Commune")),
    ("phone", N_("Phone")),
)


# What the review screen calls each comparison and level (the model's own names are English).
COMPARISON_NAMES = {
    "given": N_("Given name"),
    "family": N_("Family name"),
    "middle": N_("Middle name"),
    "birth": N_("Date of birth"),
    "sex": N_("Sex"),
    "cccd": N_("CCCD"),
    "cmnd": N_("CMND (old identity card)"),
    "bhxh": N_("BHXH number"),
    "commune": N_("Commune"),
    "phone": N_("Phone"),
}
LEVEL_NAMES = (
    N_("exact"),
    N_("one typo"),
    N_("found elsewhere in the other name (order swapped)"),
    N_("different"),
    N_("missing on one side"),
    N_("day and month swapped"),
    N_("year and month"),
    N_("year, month unknown on a side"),
    N_("day and month, year one typo"),
    N_("same"),
    N_("null"),
)
READ, WRITE = Scope.parse("registry/persons.read"), Scope.parse("registry/persons.write")


def _fields(fields: dict[str, Any]) -> dict[str, Any]:
    record = service.record_of(fields)
    return {
        "display_name": record.display_name or record.name or "",
        "birth_date": record.birth_date or "",
        "sex": {"male": "Male", "female": "Female"}.get(record.sex or "", ""),
        "cccd": record.cccd or "",
        "cmnd": record.cmnd or "",
        "bhxh": record.bhxh or "",
        "commune": record.commune or "",
        "phone": record.phone or "",
    }


def _reader_page(
    request: Request,
    settings: Settings,
    db: Database,
    template: str,
    build: Callable[[Access], dict[str, Any]],
) -> Response:
    """A registry page for a signed-in user with registry/persons.read; a refusal or a missing
    item shows as the page's error."""
    lang = request_language(request)

    def guarded(principal: Principal) -> dict[str, Any]:
        try:
            return build(check_scope(request, principal, READ))
        except DomainError as error:
            return {"error": error.message.in_language(lang)}

    return page(request, settings, db, template, guarded, active="registry")


@router.get("/registry", response_class=HTMLResponse)
def registry_home(
    request: Request,
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
    session: Session = Depends(get_session),
) -> Response:
    def build(access: Access) -> dict[str, Any]:
        shares = [
            s
            for s in verified_share_by_commune(session)
            if s.commune_code is None or access.principal.area.covers_commune(s.commune_code)
        ]
        access.audit(session, "console.registry_overview", detail={"communes": len(shares)})
        session.commit()
        total = sum(s.total for s in shares)
        verified = sum(s.verified for s in shares)
        return {
            "shares": shares,
            "total": total,
            "verified": verified,
            "share": verified / total if total else 0.0,
            "open_reviews": service.open_review_count(session),
        }

    return _reader_page(request, settings, db, "registry_home.html", build)


@router.get("/registry/reviews", response_class=HTMLResponse)
def review_queue(
    request: Request,
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
    session: Session = Depends(get_session),
) -> Response:
    def build(access: Access) -> dict[str, Any]:
        items = []
        for review in service.open_reviews(session, 100):
            source = session.get(RegistrySource, review.source_id)
            items.append(
                {
                    "id": review.id,
                    "reason": review.reason,
                    "probability": review.probability,
                    "record": _fields(source.fields) if source else {},
                    "system": source.system if source else "",
                }
            )
        access.audit(session, "console.registry_reviews", detail={"count": len(items)})
        session.commit()
        return {"items": items}

    return _reader_page(request, settings, db, "registry_reviews.html", build)


@router.get("/registry/reviews/{review_id}", response_class=HTMLResponse)
def review_page(
    request: Request,
    review_id: int,
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
    session: Session = Depends(get_session),
) -> Response:
    def build(access: Access) -> dict[str, Any]:
        view = service.review_view(session, review_id)
        for person_id in (view["record_person_id"], view["candidate_person_id"]):
            access.audit(
                session,
                "console.registry_review",
                resource_type="RegistryPerson",
                resource_id=person_id,
                person_id=person_id,
                detail={"review": review_id},
            )
        session.commit()
        return {
            "review": view,
            "fields": FIELDS,
            "comparison_names": COMPARISON_NAMES,
            "left": _fields(view["record"]),
            "right": _fields(view["candidate_golden"]),
        }

    return _reader_page(request, settings, db, "registry_review.html", build)


@router.post("/registry/reviews/{review_id}")
def review_decision(
    request: Request,
    review_id: int,
    decision: str = Form(default=""),
    csrf: str = Form(default=""),
    settings: Settings = Depends(get_settings),
    db: Database = Depends(get_database),
    session: Session = Depends(get_session),
) -> Response:
    principal, _renewed = console.signed_in(request, settings, db)
    if principal is None or not console.csrf_ok(request, csrf):
        return RedirectResponse(f"/registry/reviews/{review_id}", status_code=303)
    lang = request_language(request)
    try:
        access = check_scope(request, principal, WRITE)
        if decision not in ("link", "not_a_match"):
            raise service.not_found("decision", decision)
        service.decide(session, review_id, decision == "link", actor=access.principal.subject)
        session.commit()
    except DomainError as error:
        return page(
            request,
            settings,
            db,
            "registry_reviews.html",
            active="registry",
            items=[],
            error=error.message.in_language(lang),
        )
    return RedirectResponse("/registry/reviews", status_code=303)
