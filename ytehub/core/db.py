"""Database engine and the one session factory.

SQLite is the embedded default (WAL, foreign keys on, write transactions taken with
``BEGIN IMMEDIATE`` so two writers queue instead of failing mid-transaction);
PostgreSQL (psycopg 3) is the production database. Same schema, same code.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, MetaData, create_engine, event, exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON on SQLite, JSONB on PostgreSQL.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, **kwargs: Any) -> Engine:
    # orjson: resources are stored and read on every request; the stdlib codec cost 5-10x more.
    kwargs.setdefault("json_serializer", _json_text)
    kwargs.setdefault("json_deserializer", orjson.loads)
    parsed = make_url(url)
    if parsed.database != ":memory:":
        # Room for every request thread (uvicorn's thread pool has 40) without reconnecting: a
        # connection returned beyond the pool's size is closed, and opening a new one (SQLite's
        # PRAGMAs, PostgreSQL's handshake) cost more than the request it served.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", 20)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        writers = _WriterQueue()
        connect_args = {"timeout": 30, "factory": writers.connection_class()}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        _tune_sqlite(engine)
        return engine
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


# A pooled connection that rested this long is tested before use (it may have been closed by
# the server, a restart or a firewall meanwhile); one in steady use is not.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping``, but only for connections that sat idle in the pool.

    Pinging on every checkout cost a round trip per request (SELECT 1) for connections that
    had served the request before by microseconds. A failed ping raises
    ``DisconnectionError``, on which the pool discards the connection and opens a new one.
    """

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["ytehub_idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("ytehub_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # just opened, or back from a request moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the request's transaction starts with its own work
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"connection failed its ping: {error}") from error


class _WriterQueue:
    """One SQLite writer at a time within the process, queued on a lock.

    SQLite itself makes a second writer wait in a sleep-and-retry loop whose sleeps grow to
    100 ms, so under concurrent requests most of the time went to sleeping. Threads of one
    process queue here instead and start the moment the previous writer commits; other
    processes (several server workers) still meet SQLite's own busy timeout.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self.lock = threading.Lock()
        self.timeout = timeout

    def acquire(self) -> None:
        if not self.lock.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked (writer queue timed out)")

    def connection_class(self) -> type[sqlite3.Connection]:
        queue = self

        class QueuedConnection(sqlite3.Connection):
            holds_writer_lock = False

            def begin_write(self) -> None:
                queue.acquire()
                self.holds_writer_lock = True
                try:
                    self.execute("BEGIN IMMEDIATE")
                except BaseException:
                    self._release()
                    raise

            def commit(self) -> None:
                try:
                    super().commit()
                finally:
                    self._release()

            def rollback(self) -> None:
                try:
                    super().rollback()
                finally:
                    self._release()

            def close(self) -> None:
                try:
                    super().close()
                finally:
                    self._release()

            def _release(self) -> None:
                if self.holds_writer_lock:
                    self.holds_writer_lock = False
                    queue.lock.release()

        return QueuedConnection


# SQLite copies the WAL back into the database (a checkpoint, with fsyncs) inside the commit
# that takes the WAL past this many pages, holding the write lock that every request needs
# (each audits). At SQLite's default of 1,000 pages the API paid for one every ~200 requests,
# about a tenth of its time, copying the same hot pages (the audit head, index leaves) again
# and again. The server checkpoints in the background instead (``Database.checkpoint``); this
# larger bound remains for processes that do not, and as a backstop.
WAL_AUTOCHECKPOINT_PAGES = 10_000


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.connection.dbapi_connection.begin_write()


class Database:
    """The engine and its session factory; one per process."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def optimize(self) -> None:
        """Refresh the query planner's statistics.

        Without them SQLite cannot tell that a resource id is nearly unique and a resource
        type is not: measured on 60,000 resources, a patient's Observations by code took
        13 ms scanning the type's index and 0.2 ms probing the id after ``ANALYZE``. The
        sampling limit keeps the run to tens of milliseconds at any size. PostgreSQL's
        autovacuum keeps its own statistics.
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")

    def analyze(self, *tables: str) -> None:
        """Refresh PostgreSQL's statistics of ``tables`` now, not when autovacuum gets to
        them: a bulk job filling tables from empty otherwise has its look-ups planned for the
        empty tables (the registry's candidate query took 3.5 ms a patient during an ingest
        instead of 0.1 ms). SQLite plans by its indexes and needs no such help."""
        if self.engine.dialect.name != "postgresql" or not tables:
            return
        with self.engine.begin() as connection:
            connection.exec_driver_sql(f"ANALYZE {', '.join(tables)}")

    @property
    def checkpoints(self) -> bool:
        """Whether this database keeps a WAL that ``checkpoint`` should copy back (SQLite)."""
        return self.engine.dialect.name == "sqlite"

    def checkpoint(self) -> None:
        """Copy the WAL back into the database file without waiting for anyone (SQLite's
        PASSIVE checkpoint), off the requests' path: writers go on meanwhile, and SQLite
        releases the GIL while it copies. Nothing to do on PostgreSQL."""
        if not self.checkpoints:
            return
        # The driver's connection, outside any transaction: SQLAlchemy would begin one, and
        # here that takes the writer's lock (``BEGIN IMMEDIATE``).
        connection = self.engine.raw_connection()
        try:
            connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def dispose(self) -> None:
        self.engine.dispose()
