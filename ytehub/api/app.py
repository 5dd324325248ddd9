"""The FastAPI application: API, console and static assets behind one set of middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ytehub import __version__
from ytehub.api import errors
from ytehub.api.middleware import Edge
from ytehub.api.routes import audit, auth, health, identifiers, units, users
from ytehub.core.db import Database
from ytehub.core.settings import Settings

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


CHECKPOINT_SECONDS = 0.5


async def _keep_wal_checkpointed(db: Database) -> None:
    """Checkpoint SQLite's WAL in the background, so that requests do not (see
    ``ytehub.core.db.WAL_AUTOCHECKPOINT_PAGES``)."""
    while True:
        try:
            await asyncio.to_thread(db.checkpoint)
        except Exception:  # a busy or failed checkpoint is retried, or done by a commit
            log.exception("checkpointing the database failed")
        await asyncio.sleep(CHECKPOINT_SECONDS)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    db: Database = app.state.db
    tasks = [asyncio.create_task(_keep_planner_statistics(db))]
    if db.checkpoints:
        tasks.append(asyncio.create_task(_keep_wal_checkpointed(db)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
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

    from ytehub.ingest.api import router as ingest
    from ytehub.records.api import FastInteractions
    from ytehub.records.api import router as fhir
    from ytehub.records.person_api import router as person_record
    from ytehub.registry.api import router as registry
    from ytehub.web.records import router as console_records
    from ytehub.web.registry import router as console_registry
    from ytehub.web.routes import router as console

    # The FHIR routes (and the two routers that must precede them) first: a request is tried
    # against the routes in order, and FHIR takes most requests. No path of the routers after
    # them starts with /fhir, so the order changes no match, only how many routes are tried.
    app.include_router(person_record)  # before /fhir so that Patient/{id}/$summary matches
    app.include_router(registry)  # before /fhir so that Patient/$match matches
    app.router.routes.append(FastInteractions())  # the generic FHIR routes' hot path
    app.include_router(fhir)
    for module in (health, auth, users, audit, identifiers, units):
        app.include_router(module.router)
    app.include_router(ingest)
    app.include_router(console_records)
    app.include_router(console_registry)

    app.include_router(console)
    app.mount(
        "/static", StaticFiles(directory=str(files("ytehub.web").joinpath("static"))), "static"
    )
    app.add_middleware(Edge, limit=settings.max_body_bytes)
    return app
