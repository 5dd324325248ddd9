"""The schema migrates on both databases and the engine is configured as documented."""

from __future__ import annotations

from sqlalchemy import inspect, text

from ytehub.core import migrate
from ytehub.core.db import Database


def test_schema_is_current(db: Database) -> None:
    assert migrate.current_revision(db.engine) == migrate.head_revision()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "clients", "refresh_tokens", "login_throttle", "audit_events"} <= tables


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db.engine)
    assert migrate.current_revision(db.engine) == migrate.head_revision()


def test_sqlite_pragmas(db: Database, backend: str) -> None:
    with db.engine.connect() as connection:
        if backend == "sqlite":
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        else:
            assert connection.execute(text("SHOW server_encoding")).scalar() == "UTF8"
