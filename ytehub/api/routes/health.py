"""Liveness and readiness: the database answers and its schema is current."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ytehub import __version__
from ytehub.api.deps import get_database
from ytehub.core import migrate
from ytehub.core.db import Database

router = APIRouter(tags=["health"])


@router.get("/health", summary="Database reachable and migrations current")
def health(db: Database = Depends(get_database)) -> JSONResponse:
    checks: dict[str, object] = {"version": __version__, "database": db.engine.dialect.name}
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(db.engine)
    except SQLAlchemyError as exc:
        checks.update(status="fail", reason=f"database unreachable: {type(exc).__name__}")
        return JSONResponse(checks, status_code=503)
    head = migrate.head_revision()
    checks.update(schema=current, schema_expected=head)
    if current != head:
        checks.update(status="fail", reason="schema not current: run `ytehub init`")
        return JSONResponse(checks, status_code=503)
    checks["status"] = "pass"
    return JSONResponse(checks)
