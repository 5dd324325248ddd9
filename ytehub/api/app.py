"""The FastAPI application: API, console and static assets behind one set of middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ytehub import __version__
from ytehub.api import errors
from ytehub.api.middleware import BodySizeLimit, RequestId
from ytehub.api.routes import audit, auth, health, identifiers, units, users
from ytehub.core.db import Database
from ytehub.core.settings import Settings

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        b" frame-ancestors 'none'; form-action 'self'",
    ),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


PLANNER_REFRESH_SECONDS = 600.0
log = logging.getLogger("ytehub")


async def _keep_planner_statistics(db: Database) -> None:
    """Refresh the database's planner statistics now and every ten minutes, as data grows."""
    while True:
        try:
            await asyncio.to_thread(db.optimize)
        except Exception:  # a failed refresh must not stop the server; the next one retries
            log.exception("refreshing planner statistics failed")
        await asyncio.sleep(PLANNER_REFRESH_SECONDS)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_keep_planner_statistics(app.state.db))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="ytehub",
        version=__version__,
        description="Nền tảng dữ liệu y tế thông minh cấp tỉnh — provincial smart-health platform.",
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.resolved_database_url)
    errors.install(app)
    for module in (health, auth, users, audit, identifiers, units):
        app.include_router(module.router)

    from ytehub.ingest.api import router as ingest
    from ytehub.records.api import router as fhir
    from ytehub.records.person_api import router as person_record
    from ytehub.registry.api import router as registry
    from ytehub.web.records import router as console_records
    from ytehub.web.registry import router as console_registry
    from ytehub.web.routes import router as console

    app.include_router(person_record)  # before /fhir so that Patient/{id}/$summary matches
    app.include_router(registry)  # before /fhir so that Patient/$match matches
    app.include_router(fhir)
    app.include_router(ingest)
    app.include_router(console_records)
    app.include_router(console_registry)

    app.include_router(console)
    app.mount(
        "/static", StaticFiles(directory=str(files("ytehub.web").joinpath("static"))), "static"
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestId)
    return app
