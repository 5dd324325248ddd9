"""The schema migrates on both databases and the engine is configured as documented."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from ytehub.core import db as db_module
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


def test_sqlite_checkpoints_in_the_background(db: Database, backend: str) -> None:
    """Commits leave the WAL to the server's background checkpoint (a large automatic bound
    remains); ``checkpoint`` copies it back without taking the writer's lock."""
    with db.session() as session:
        session.execute(text("UPDATE audit_head SET hash = hash WHERE id = 1"))
    if backend != "sqlite":
        assert not db.checkpoints
        db.checkpoint()  # nothing to do
        return
    with db.engine.connect() as connection:
        pages = connection.execute(text("PRAGMA wal_autocheckpoint")).scalar()
    assert db.checkpoints and pages == db_module.WAL_AUTOCHECKPOINT_PAGES
    db.checkpoint()
    raw = db.engine.raw_connection()  # outside a transaction, as a checkpoint must run
    try:
        busy, logged, copied = raw.driver_connection.execute(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).fetchone()
    finally:
        raw.close()
    assert busy == 0 and copied == logged


def test_idle_pooled_connection_is_replaced_when_dead(
    db: Database, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled PostgreSQL connection that rested is pinged before use, and one the server
    closed meanwhile is replaced instead of failing the request."""
    if backend != "postgresql":
        pytest.skip("SQLite connections are files, not sockets")
    with db.engine.connect() as connection:
        doomed = connection.execute(text("SELECT pg_backend_pid()")).scalar()
    admin = create_engine(db.url, poolclass=NullPool)  # not a connection of the pool
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": doomed})
        connection.commit()
    admin.dispose()
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    for _ in range(2):  # whichever pooled connection comes back first
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != doomed
