"""Writes a transaction holds back and sends together: one statement per table, not per row.

A transaction Bundle of a hundred resources wrote seven rows for each (resource, version, five
index tables) and three for each audit event, one statement at a time; the statements cost
more than the work. Writers put their rows here instead, and the rows go to the database,
table by table, before anything could see them missing: before the session runs a query that
may read them (``do_orm_execute``: a query of the writer's mapped classes, or one whose classes
cannot be told), before every commit (savepoints included) and when a writer asks. A rollback
(of the transaction or of a savepoint) drops what was held.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

_KEY = "ytehub.deferred"


class Deferred(Protocol):
    # The mapped classes whose queries must see the rows (the records' tables); empty when no
    # read in the transaction needs them (the audit trail).
    read_by: frozenset[type]

    def flush(self, session: Session) -> None: ...

    def discard(self) -> None: ...


D = TypeVar("D", bound=Deferred)


def held(session: Session, name: str, factory: Callable[[], D]) -> D:
    """The session's writer of kind ``name``, made on first use."""
    writers: dict[str, Deferred] = session.info.setdefault(_KEY, {})
    writer = writers.get(name)
    if writer is None:
        writer = writers[name] = factory()
    return writer  # type: ignore[return-value]


def flush(session: Session, reading: frozenset[type] | None = None) -> None:
    """Send what is held; with ``reading`` (the classes a query reads, empty when unknown) only
    what that query may read."""
    for writer in list(session.info.get(_KEY, {}).values()):
        if reading is None or (writer.read_by and (not reading or reading & writer.read_by)):
            writer.flush(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Send everything; the writers no query reads (the audit trail) last.

    On PostgreSQL the audit takes the row lock every audited request queues on, held until
    the commit. When this is the transaction's own commit and nothing else is left to write,
    the last writer may send COMMIT in the same round trip (``flush_committing``), so the lock
    is held while the database works, not while this process waits for its turn to run."""
    writers = sorted(session.info.get(_KEY, {}).values(), key=lambda writer: not writer.read_by)
    if not writers:
        return
    for writer in writers[:-1]:
        writer.flush(session)
    last = writers[-1]
    committing = getattr(last, "flush_committing", None)
    if (
        committing is not None
        and not session.in_nested_transaction()
        and not (session.new or session.dirty or session.deleted)
    ):
        committing(session)
    else:
        last.flush(session)


@event.listens_for(Session, "do_orm_execute")
def _before_query(state: ORMExecuteState) -> None:
    if state.session.info.get(_KEY):
        flush(state.session, frozenset(mapper.class_ for mapper in state.all_mappers))


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    for writer in session.info.get(_KEY, {}).values():
        writer.discard()
