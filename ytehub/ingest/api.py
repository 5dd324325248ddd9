"""``POST /api/v1/ingest/qd4750``: a facility's system sends a GIAMDINHHS file and gets the
validation report and what was stored back. Facility-scoped clients may send only their own
facility's files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ytehub.api.context import request_language
from ytehub.api.deps import Access, authorize, get_database
from ytehub.core.db import Database
from ytehub.ingest.pipeline import Ingest

router = APIRouter(tags=["ingest"])


async def raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/api/v1/ingest/qd4750",
    summary="Nhận tệp QĐ 4750 (GIAMDINHHS) / receive a QĐ 4750 file",
    responses={422: {"description": "the file was rejected: unreadable, unsafe or malformed"}},
)
def ingest_qd4750(
    request: Request,
    data: bytes = Depends(raw_body),
    access: Access = Depends(authorize("system/Encounter.write")),
    db: Database = Depends(get_database),
) -> JSONResponse:
    area = access.principal.area
    run = Ingest(
        db,
        channel="api",
        actor=access.principal.subject,
        facility_scope=area.codes[0] if area.kind == "facility" else None,
    )
    name = request.headers.get("x-file-name", "upload.xml")[:200]
    outcome = run.file_now(name, data)
    body: dict[str, Any] = outcome.as_dict(request_language(request))
    return JSONResponse(body, status_code=422 if outcome.status == "rejected" else 200)
