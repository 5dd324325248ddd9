"""The audit chain: written with the work, and any altered, inserted or deleted event is found."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import sqlite

from ytehub.core import audit
from ytehub.core.db import Database
from ytehub.core.models import AuditEvent, AuditHead, User
from ytehub.core.security import AreaScope, service


def _write(db: Database, count: int) -> None:
    with db.session() as session:
        for n in range(count):
            audit.record(
                session,
                audit.AuditEntry(
                    action="record.read",
                    actor=f"user{n % 3}",
                    role="clinician",
                    resource_type="Patient",
                    resource_id=f"p{n}",
                    person_id=f"p{n}",
                    purpose="TREAT",
                    source="127.0.0.1",
                    detail={"n": n, "note": "Nguyễn"},
                ),
            )


def test_intact_chain_verifies(db: Database) -> None:
    _write(db, 12)
    with db.session() as session:
        report = audit.verify(session, batch=5)
    assert report.ok and report.checked == 12 and report.head_seq == 12


def test_empty_chain_verifies(db: Database) -> None:
    with db.session() as session:
        assert audit.verify(session).ok


def test_altered_event_is_named(db: Database) -> None:
    _write(db, 10)
    with db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(actor="someone-else"))
    with db.session() as session:
        report = audit.verify(session)
    assert not report.ok and report.broken_seq == 4 and "altered" in (report.reason or "")


def test_altered_time_is_named(db: Database) -> None:
    _write(db, 5)
    with db.session() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.seq == 2)
            .values(at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    with db.session() as session:
        assert audit.verify(session).broken_seq == 2


def test_deleted_event_is_named(db: Database) -> None:
    _write(db, 10)
    with db.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq == 6))
    with db.session() as session:
        report = audit.verify(session)
    assert not report.ok and report.broken_seq == 6 and "missing" in (report.reason or "")


def test_deleted_tail_is_found(db: Database) -> None:
    _write(db, 10)
    with db.session() as session:
        session.execute(delete(AuditEvent).where(AuditEvent.seq >= 9))
    with db.session() as session:
        report = audit.verify(session)
    assert not report.ok and report.broken_seq == 9


def test_inserted_event_is_named(db: Database) -> None:
    _write(db, 6)
    with db.session() as session:
        # Make room after event 3 and forge an event that links to it correctly.
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > 3).order_by(AuditEvent.seq.desc())
        ).all()
        for row in rows:
            session.execute(
                update(AuditEvent).where(AuditEvent.seq == row.seq).values(seq=row.seq + 1)
            )
        session.expunge_all()
        third = session.get(AuditEvent, 3)
        assert third is not None
        forged = audit.AuditEntry(action="record.read", actor="intruder")
        at = datetime.now(UTC)
        forged_hash = audit.chain_hash(third.hash, 4, at, forged)
        session.add(
            AuditEvent(seq=4, at=at, prev_hash=third.hash, hash=forged_hash, **asdict(forged))
        )
    with db.session() as session:
        report = audit.verify(session)
    # The forged event itself hashes correctly; the next one no longer links to it.
    assert not report.ok and report.broken_seq == 5


def test_raw_sql_tampering_is_found(db: Database) -> None:
    """Tamper the way an intruder with database access would: plain SQL, no ORM."""
    _write(db, 3)
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET outcome = 'success' , purpose = 'HPAYMT' WHERE seq = 1")
        )
    with db.session() as session:
        assert audit.verify(session).broken_seq == 1


def test_audit_rolls_back_with_the_work(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as session:
        service.create_user(
            session,
            username="an",
            full_name="An",
            password="correct-horse-42",
            role="clinician",
            area=AreaScope.province(),
        )
        audit.record(session, audit.AuditEntry(action="users.create", resource_id="an"))
        raise RuntimeError("the work failed after the audit record was written")
    with db.session() as session:
        assert session.scalars(select(User)).all() == []
        assert session.scalars(select(AuditEvent)).all() == []
        assert session.get(AuditHead, 1).seq == 0  # type: ignore[union-attr]
        assert audit.verify(session).ok


def test_archive_moves_old_events_and_keeps_both_parts_verifiable(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write(db, 8)
    cut = datetime.now(UTC)
    _write(db, 4)
    out = tmp_path / "audit-archive.jsonl.gz"
    with db.session() as session:
        assert audit.archive(session, cut, out) == 8
    archived = audit.verify_archive(out)
    assert archived.ok and archived.checked == 8 and archived.head_seq == 8
    with db.session() as session:
        remaining = audit.verify(session)
        assert remaining.ok and remaining.checked == 4 and remaining.head_seq == 12
        head = session.get(AuditHead, 1)
        assert head is not None and head.base_hash == archived.head_hash
    _write(db, 1)  # the chain goes on after archiving
    with db.session() as session:
        assert audit.verify(session).ok


def test_tampered_archive_is_found(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gzip

    _write(db, 5)
    out = tmp_path / "a.jsonl.gz"
    with db.session() as session:
        audit.archive(session, datetime.now(UTC), out)
    lines = gzip.decompress(out.read_bytes()).splitlines()
    lines[2] = lines[2].replace(b'"user2"', b'"user9"')
    out.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    report = audit.verify_archive(out)
    assert not report.ok and report.broken_seq == 3


def test_archive_with_nothing_old_changes_nothing(db: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write(db, 3)
    with db.session() as session:
        assert audit.archive(session, datetime(2000, 1, 1, tzinfo=UTC), tmp_path / "x.gz") == 0
        assert audit.verify(session).checked == 3
    assert not (tmp_path / "x.gz").exists()


def test_prepared_hash_is_the_chain_hash() -> None:
    """Events are hashed from their canonical body made before the head is locked; the result
    must be exactly ``chain_hash``, which ``verify`` recomputes."""
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    entries = [
        audit.AuditEntry(action="fhir.read"),
        audit.AuditEntry(action="x", actor="a", source="10.0.0.1", detail={"q": 'Nguyễn "x"'}),
        audit.AuditEntry(action="x", detail={"seq": 0, "nested": {"seq": 0}}),  # the mark twice
        audit.AuditEntry(action="x", source='"seq":0', detail={"list": [1, 2]}),
    ]
    converters = audit._converters(sqlite.dialect())
    for seq, entry in enumerate(entries, start=7):
        prepared = audit._prepare(at, entry, converters)
        assert audit._digest("ab" * 32, seq, prepared) == audit.chain_hash(
            "ab" * 32, seq, at, entry
        )


def test_events_of_every_shape_verify(db: Database) -> None:
    """One event and many per transaction, recorded and deferred, with details that defeat the
    prepared hash: the chain verifies on both databases."""
    odd = {"seq": 0, "note": "Nguyễn"}
    with db.session() as session:
        assert audit.record(session, audit.AuditEntry(action="one")) == 1
        audit.record(session, audit.AuditEntry(action="odd", detail=odd))
    with db.session() as session:
        for n in range(5):
            audit.defer(session, audit.AuditEntry(action="many", detail={"n": n}))
        audit.defer(session, audit.AuditEntry(action="many", detail=odd))
    with db.session() as session:
        audit.defer(session, audit.AuditEntry(action="alone", source="127.0.0.1"))
    with db.session() as session:
        report = audit.verify(session)
        stored = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert report.ok and report.head_seq == 9
    assert [e.action for e in stored] == ["one", "odd", *["many"] * 6, "alone"]
    assert stored[1].detail == odd and stored[0].detail is None
    assert [e.prev_hash for e in stored[1:]] == [e.hash for e in stored[:-1]]


def test_a_request_transaction_commits_with_its_audit_event(db: Database) -> None:
    """A transaction whose last held write is one audit event commits with it (on PostgreSQL
    in the same round trip): the work and the event are both there, the chain verifies, and
    a session with ORM changes still pending commits the ordinary way, changes included."""
    from ytehub.ingest.models import IngestFile
    from ytehub.records.store import RecordStore

    with db.session() as session:
        RecordStore(session).create({"resourceType": "Patient", "gender": "female"})
        audit.defer(session, audit.AuditEntry(action="record.create", resource_type="Patient"))
        session.commit()
        audit.defer(session, audit.AuditEntry(action="ingest.file", resource_type="IngestFile"))
        session.add(
            IngestFile(
                sha256="0" * 64,
                name="pending.xml",
                channel="cli",
                received_at=datetime.now(UTC),
                size=1,
                status="done",
            )
        )
        session.commit()
    with db.session() as session:
        actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert actions[-2:] == ["record.create", "ingest.file"]
        assert session.get(IngestFile, "0" * 64) is not None
        assert session.execute(text("SELECT count(*) FROM fhir_resources")).scalar_one() == 1
        assert audit.verify(session).ok
