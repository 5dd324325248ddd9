"""Alembic environment: run against the connection handed over by ``ytehub.core.migrate``."""

from __future__ import annotations

from alembic import context

import ytehub.core.models
import ytehub.ingest.models
import ytehub.records.models
import ytehub.registry.models  # noqa: F401
from ytehub.core.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via `alembic` on the command line
    raise RuntimeError("run migrations through `ytehub init`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
