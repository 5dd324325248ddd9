"""The tamper-evident audit trail (nhật ký truy cập).

Each event stores the hash of the one before; ``verify`` recomputes the chain and names the
first broken link, so an altered, inserted or deleted event is found. Events are written in
the caller's transaction: the work and its audit record commit or vanish together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

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


def record(session: Session, entry: AuditEntry, at: datetime | None = None) -> AuditEvent:
    """Append ``entry`` to the chain inside the caller's transaction."""
    at = at or datetime.now(UTC)
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    seq = head.seq + 1
    digest = chain_hash(head.hash, seq, at, entry)
    event = AuditEvent(seq=seq, at=at, prev_hash=head.hash, hash=digest, **asdict(entry))
    session.add(event)
    head.seq, head.hash = seq, digest
    session.flush()
    return event


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


def verify(
    session: Session, batch: int = 5_000, on_progress: Callable[[int], None] | None = None
) -> ChainReport:
    """Walk the whole chain in ``seq`` order, streaming, and report the first broken link."""
    head = session.get(AuditHead, 1)
    assert head is not None, "audit head row missing: schema not migrated"
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    rows: Iterator[AuditEvent] = session.scalars(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    )
    for event in rows:
        if event.seq != expected_seq:
            return ChainReport(
                False,
                checked,
                expected_seq,
                f"event {expected_seq} is missing",
                head.seq,
                head.hash,
            )
        if event.prev_hash != prev_hash:
            return ChainReport(
                False,
                checked,
                event.seq,
                "link to the previous event does not match",
                head.seq,
                head.hash,
            )
        if chain_hash(prev_hash, event.seq, event.at, _entry_of(event)) != event.hash:
            return ChainReport(
                False, checked, event.seq, "event content was altered", head.seq, head.hash
            )
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
        if on_progress is not None and checked % batch == 0:
            on_progress(checked)
    if head.seq != expected_seq - 1 or head.hash != prev_hash:
        return ChainReport(
            False,
            checked,
            expected_seq,
            f"events after {expected_seq - 1} are missing (head is {head.seq})",
            head.seq,
            head.hash,
        )
    return ChainReport(True, checked, head_seq=head.seq, head_hash=head.hash)
