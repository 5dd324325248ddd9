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
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
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
_HEAD = AuditHead.__table__
# Built once: Core statements whose compiled form SQLAlchemy caches, since every request of the
# API appends an event and the ORM unit of work cost more than the work it audited.
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_APPEND = insert(_EVENTS)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def record(session: Session, entry: AuditEntry, at: datetime | None = None) -> int:
    """Append ``entry`` to the chain inside the caller's transaction; its sequence number."""
    return _append(session, [(at or datetime.now(UTC), entry)])


def defer(session: Session, entry: AuditEntry) -> None:
    """Append ``entry`` when the caller's transaction commits, with the transaction's other
    events in one statement: the API's hot path, where a bundle audits every entry."""
    deferred.held(session, "audit", _PendingEvents).entries.append((datetime.now(UTC), entry))


def _append(session: Session, entries: list[tuple[datetime, AuditEntry]]) -> int:
    connection = session.connection()
    seq, prev_hash = connection.execute(_LOCK_HEAD).one()
    rows = []
    for at, entry in entries:
        seq += 1
        digest = chain_hash(prev_hash, seq, at, entry)
        rows.append({"seq": seq, "at": at, "prev_hash": prev_hash, "hash": digest, **asdict(entry)})
        prev_hash = digest
    connection.execute(_APPEND, rows)
    connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev_hash})
    return seq


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
