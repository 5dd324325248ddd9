"""The tamper-evident audit trail (nhật ký truy cập).

Each event stores the hash of the one before; ``verify`` recomputes the chain and names the
first broken link, so an altered, inserted or deleted event is found. Events are written in
the caller's transaction: the work and its audit record commit or vanish together.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, delete, select
from sqlalchemy.orm import Session

from ytehub.core import deferred
from ytehub.core.models import AuditEvent, AuditHead

GENESIS = "0" * 64


@dataclass(slots=True)
class AuditEntry:
    """What happened, to whom, by whom and why (HL7 PurposeOfUse code in ``purpose``)."""

    action: str
    outcome: str = "success"
    actor: str | None = None
    role: str | None = None
    client_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    person_id: str | None = None
    purpose: str | None = None
    source: str | None = None
    detail: dict[str, Any] | None = field(default=None)


def _timestamp(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


def chain_hash(prev_hash: str, seq: int, at: datetime, entry: AuditEntry) -> str:
    body = {"seq": seq, "at": _timestamp(at), **asdict(entry)}
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


_EVENTS = AuditEvent.__table__
_COLUMNS = tuple(column.name for column in _EVENTS.columns)
_ENTRY_FIELDS = AuditEntry.__slots__
# Every request of the API appends an event while it holds the chain's head, so the statements
# are plain SQL sent through the driver (SQLAlchemy's statement handling cost more than the
# database's work) and as few as each database allows: on PostgreSQL the events and the new
# head go in one statement, one round trip less with the head locked.
_READ_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1"
_PG_ROWS_PER_STATEMENT = 1_000  # 15 parameters a row, well under PostgreSQL's 65,535


def record(session: Session, entry: AuditEntry, at: datetime | None = None) -> int:
    """Append ``entry`` to the chain inside the caller's transaction; its sequence number."""
    return _append(session, [(at or datetime.now(UTC), entry)])


def defer(session: Session, entry: AuditEntry) -> None:
    """Append ``entry`` when the caller's transaction commits, with the transaction's other
    events in one statement: the API's hot path, where a bundle audits every entry."""
    deferred.held(session, "audit", _PendingEvents).entries.append((datetime.now(UTC), entry))


@dataclass(frozen=True, slots=True)
class _Prepared:
    """An event made ready before the head is locked: its canonical body around ``seq`` (the
    only part, with the previous hash, that the chain decides) and its column values."""

    before_seq: bytes
    after_seq: bytes
    values: tuple[Any, ...]  # every column but seq, prev_hash and hash, converted
    at: datetime
    entry: AuditEntry


_SEQ_MARK = b'"seq":0'


def _prepare(
    at: datetime, entry: AuditEntry, converters: dict[str, Callable[[Any], Any] | None]
) -> _Prepared:
    fields = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    canonical = orjson.dumps(
        {"seq": 0, "at": _timestamp(at), **fields}, option=orjson.OPT_SORT_KEYS
    )
    # "seq" sorts after every field but "source", a string: its mark is the last one.
    cut = canonical.rfind(_SEQ_MARK)
    if canonical.count(_SEQ_MARK) != 1:  # an odd value carries the mark too: hash it whole
        cut = -1
    fields["at"] = at
    values = tuple(
        convert(fields[name]) if (convert := converters[name]) is not None else fields[name]
        for name in _COLUMNS[1:-2]
    )
    return _Prepared(
        canonical[: cut + len(_SEQ_MARK) - 1] if cut >= 0 else b"",
        canonical[cut + len(_SEQ_MARK) :] if cut >= 0 else b"",
        values,
        at,
        entry,
    )


def _digest(prev_hash: str, seq: int, event: _Prepared) -> str:
    """``chain_hash`` of the prepared event: the same bytes, without serialising it again."""
    if not event.before_seq:
        return chain_hash(prev_hash, seq, event.at, event.entry)
    return hashlib.sha256(
        prev_hash.encode() + event.before_seq + str(seq).encode() + event.after_seq
    ).hexdigest()


@lru_cache(maxsize=16)
def _converters(dialect: Dialect) -> dict[str, Callable[[Any], Any] | None]:
    return {
        column.name: column.type.dialect_impl(dialect).bind_processor(dialect)
        for column in _EVENTS.columns
    }


def _lone_postgres_event(
    connection: Connection, entries: list[tuple[datetime, AuditEntry]]
) -> _Prepared | None:
    """The event of ``entries`` when PostgreSQL can chain and append it in one statement
    (``_APPEND_ONE_PG``): one event, on PostgreSQL, whose body ``seq`` could be cut out of."""
    if connection.dialect.name != "postgresql" or len(entries) != 1:
        return None
    event = _prepare(*entries[0], _converters(connection.dialect))
    return event if event.before_seq else None


def _append(session: Session, entries: list[tuple[datetime, AuditEntry]]) -> int:
    connection = session.connection()
    lone = _lone_postgres_event(connection, entries)
    if lone is not None:
        return int(connection.exec_driver_sql(_APPEND_ONE_PG, _one_params(lone)).scalar_one())
    dialect = connection.dialect
    postgres = dialect.name == "postgresql"
    events = [_prepare(at, entry, _converters(dialect)) for at, entry in entries]
    # Locks the head on PostgreSQL; on SQLite the transaction already holds the write lock.
    head = _READ_HEAD + (" FOR UPDATE" if postgres else "")
    driver = connection.connection.driver_connection
    assert driver is not None
    seq, prev_hash = driver.execute(head).fetchone()
    rows = []
    for event in events:
        seq += 1
        digest = _digest(prev_hash, seq, event)
        rows.append((seq, *event.values, prev_hash, digest))
        prev_hash = digest
    if postgres:
        _write_postgres(connection, rows, seq, prev_hash)
    else:
        # The driver's own calls: SQLAlchemy's statement and result set-up cost more than
        # these two writes, which every audited request makes.
        columns = ", ".join(_COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        driver.executemany(f"INSERT INTO audit_events ({columns}) VALUES ({marks})", rows)
        driver.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev_hash))
    return seq


def _write_postgres(
    connection: Connection, rows: list[tuple[Any, ...]], seq: int, head: str
) -> None:
    """Insert the events and move the head in one statement (the last chunk's)."""
    columns = ", ".join(_COLUMNS)
    row_marks = "(" + ", ".join("%s" for _ in _COLUMNS) + ")"
    for start in range(0, len(rows), _PG_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _PG_ROWS_PER_STATEMENT]
        insert = (
            f"INSERT INTO audit_events ({columns}) VALUES {', '.join([row_marks] * len(chunk))}"
        )
        params = [value for row in chunk for value in row]
        if start + _PG_ROWS_PER_STATEMENT < len(rows):
            connection.exec_driver_sql(insert, tuple(params))
            continue
        connection.exec_driver_sql(
            f"WITH appended AS ({insert}) UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1",
            (*params, seq, head),
        )


# One event (a request's) on PostgreSQL: the head is locked, the event chained to it and
# written, and the head moved, all in one statement. The head's row lock is what every audited
# request queues on, and it is held until the commit; taking it in a statement of its own, then
# hashing in Python and writing in a second one, held it for a round trip and a wait for the
# interpreter more. The database computes the same SHA-256 over the same bytes that
# ``chain_hash`` hashes (the previous hash, then the canonical body with ``seq`` put in); the
# chain is checked in Python as always (``verify``).
_APPEND_ONE_PG = f"""
WITH head AS (
    SELECT seq + 1 AS seq, hash AS prev_hash FROM audit_head WHERE id = 1 FOR UPDATE
), chained AS (
    SELECT seq, prev_hash, encode(sha256(
        convert_to(prev_hash, 'UTF8') || %s::bytea || convert_to(seq::text, 'UTF8') || %s::bytea
    ), 'hex') AS hash
    FROM head
), appended AS (
    INSERT INTO audit_events ({", ".join(_COLUMNS)})
    SELECT chained.seq, {", ".join("%s" for _ in _COLUMNS[1:-2])}, chained.prev_hash, chained.hash
    FROM chained
    RETURNING seq, hash
)
UPDATE audit_head SET seq = appended.seq, hash = appended.hash
FROM appended WHERE audit_head.id = 1
RETURNING audit_head.seq
"""


def _one_params(event: _Prepared) -> tuple[Any, ...]:
    """The parameters of ``_APPEND_ONE_PG`` for ``event``."""
    return (event.before_seq, event.after_seq, *event.values)


class _PendingEvents:
    read_by: frozenset[type] = frozenset()

    def __init__(self) -> None:
        self.entries: list[tuple[datetime, AuditEntry]] = []

    def discard(self) -> None:
        self.entries = []

    def flush(self, session: Session) -> None:
        if self.entries:
            entries, self.entries = self.entries, []
            _append(session, entries)

    def flush_committing(self, session: Session) -> None:
        """The last flush of a transaction (see ``deferred``): on PostgreSQL one event (a
        request's) is appended and the transaction committed in one round trip, so the head's
        lock is released as soon as the database has done the work. The session's own commit
        that follows finds nothing left to commit."""
        connection = session.connection()
        event = _lone_postgres_event(connection, self.entries)
        if event is None:
            self.flush(session)
            return
        self.entries = []
        driver = connection.connection.driver_connection
        assert driver is not None
        with driver.pipeline(), driver.cursor() as cursor:
            cursor.execute(_APPEND_ONE_PG, _one_params(event))
            driver.commit()


def _entry_of(event: AuditEvent) -> AuditEntry:
    return AuditEntry(**{name: getattr(event, name) for name in AuditEntry.__slots__})


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS


@dataclass(frozen=True, slots=True)
class _Link:
    seq: int
    at: datetime
    prev_hash: str
    hash: str
    entry: AuditEntry


def _walk(
    links: Iterable[_Link],
    start_seq: int,
    start_hash: str,
    batch: int,
    on_progress: Callable[[int], None] | None,
) -> tuple[ChainReport | None, int, str, int]:
    """Check links in order from (start_seq, start_hash); the first break, or where it ended."""
    expected_seq, prev_hash, checked = start_seq + 1, start_hash, 0
    for link in links:
        if link.seq != expected_seq:
            return (
                ChainReport(False, checked, expected_seq, f"event {expected_seq} is missing"),
                expected_seq,
                prev_hash,
                checked,
            )
        if link.prev_hash != prev_hash:
            reason = "link to the previous event does not match"
            return ChainReport(False, checked, link.seq, reason), expected_seq, prev_hash, checked
        if chain_hash(prev_hash, link.seq, link.at, link.entry) != link.hash:
            reason = "event content was altered"
            return ChainReport(False, checked, link.seq, reason), expected_seq, prev_hash, checked
        prev_hash, expected_seq, checked = link.hash, expected_seq + 1, checked + 1
        if on_progress is not None and checked % batch == 0:
            on_progress(checked)
    return None, expected_seq, prev_hash, checked


def verify(
    session: Session, batch: int = 5_000, on_progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Walk the stored chain in ``seq`` order, streaming, and report the first broken link."""
    head = session.get(AuditHead, 1)
    assert head is not None, "audit head row missing: schema not migrated"
    rows: Iterator[AuditEvent] = session.scalars(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    )
    links = (_Link(e.seq, e.at, e.prev_hash, e.hash, _entry_of(e)) for e in rows)
    broken, expected_seq, prev_hash, checked = _walk(
        links, head.base_seq, head.base_hash, batch, on_progress
    )
    if broken is not None:
        return ChainReport(
            False, broken.checked, broken.broken_seq, broken.reason, head.seq, head.hash
        )
    if head.seq != expected_seq - 1 or head.hash != prev_hash:
        reason = f"events after {expected_seq - 1} are missing (head is {head.seq})"
        return ChainReport(False, checked, expected_seq, reason, head.seq, head.hash)
    return ChainReport(True, checked, head_seq=head.seq, head_hash=head.hash)


# --- retention: archive old events to a file, keep the chain verifiable ----------------------


def _event_line(event: AuditEvent) -> bytes:
    body = {
        "seq": event.seq,
        "at": _timestamp(event.at),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        **asdict(_entry_of(event)),
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS) + b"\n"


def archive(session: Session, before: datetime, out: Path) -> int:
    """Move events older than ``before`` to a gzip JSON-lines file; returns how many moved.

    The stored chain then starts after the last archived event (``AuditHead.base_*``), and the
    file can be checked on its own with :func:`verify_archive`. Nothing is deleted unless the
    file was written completely.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.at < before).order_by(AuditEvent.seq)
    ).all()
    prefix: list[AuditEvent] = []
    for event in events:  # only an unbroken prefix of the chain can be cut off
        if event.seq != head.base_seq + len(prefix) + 1:
            break
        prefix.append(event)
    if not prefix:
        return 0
    partial = out.with_name(out.name + ".partial")
    with gzip.open(partial, "wb") as handle:
        for event in prefix:
            handle.write(_event_line(event))
    partial.replace(out)
    last = prefix[-1]
    session.execute(delete(AuditEvent).where(AuditEvent.seq <= last.seq))
    head.base_seq, head.base_hash = last.seq, last.hash
    return len(prefix)


def verify_archive(path: Path) -> ChainReport:
    """Check an archive file's own chain (it starts from the hash its first event links to)."""
    with gzip.open(path, "rb") as handle:
        records = [orjson.loads(line) for line in handle if line.strip()]
    if not records:
        return ChainReport(True, 0)
    fields = AuditEntry.__slots__
    links = (
        _Link(
            r["seq"],
            datetime.fromisoformat(r["at"]),
            r["prev_hash"],
            r["hash"],
            AuditEntry(**{name: r[name] for name in fields}),
        )
        for r in records
    )
    first = records[0]
    broken, _seq, prev_hash, checked = _walk(
        links, first["seq"] - 1, first["prev_hash"], 5_000, None
    )
    return broken or ChainReport(True, checked, head_seq=records[-1]["seq"], head_hash=prev_hash)
