"""Audit trail access for administrators: verify the chain, read recent events."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from ytehub.api.deps import Access, authorize, get_session
from ytehub.core import audit
from ytehub.core.models import AuditEvent

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class ChainOut(BaseModel):
    ok: bool
    checked: int
    broken_seq: int | None
    reason: str | None
    head_seq: int
    head_hash: str


class EventOut(BaseModel):
    seq: int
    at: datetime
    actor: str | None
    role: str | None
    client_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    person_id: str | None
    purpose: str | None
    outcome: str
    source: str | None


@router.get("/verify", response_model=ChainOut)
def verify_chain(
    access: Access = Depends(authorize("admin/audit.read")),
    session: Session = Depends(get_session),
) -> ChainOut:
    report = audit.verify(session)
    access.audit(session, "audit.verify", outcome="success" if report.ok else "broken")
    session.commit()
    return ChainOut(**{name: getattr(report, name) for name in ChainOut.model_fields})


@router.get("/events", response_model=list[EventOut])
def list_events(
    before: int | None = Query(default=None, description="keyset: events with seq below this"),
    limit: int = Query(default=50, ge=1, le=500),
    person_id: str | None = None,
    access: Access = Depends(authorize("admin/audit.read")),
    session: Session = Depends(get_session),
) -> list[EventOut]:
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    if person_id is not None:
        query = query.where(AuditEvent.person_id == person_id)
    events = session.scalars(query).all()
    access.audit(session, "audit.read", person_id=person_id, detail={"count": len(events)})
    session.commit()
    return [EventOut.model_validate(event, from_attributes=True) for event in events]
