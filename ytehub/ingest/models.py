"""Ingest tables: the files received, the episodes stored from them, and the outbox of events
that later modules (surveillance, immunization, analytics) consume."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ytehub.core.db import Base, JsonDoc


class IngestFile(Base):
    """One file received, by content: the same bytes twice are recognised and skipped."""

    __tablename__ = "ingest_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    facility_code: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))  # cli, api, watch
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    size: Mapped[int] = mapped_column(Integer)
    # processing (started, not finished: a re-run resumes it), done, rejected
    status: Mapped[str] = mapped_column(String(16))
    episodes: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, object] | None] = mapped_column(JsonDoc)

    __table_args__ = (Index("ix_ingest_files_received", "received_at"),)


class IngestEpisode(Base):
    """The stored state of one episode of care (facility, MA_LK): which resources it wrote and
    the hash of the rows they came from, so a resubmission is recognised or replaces them."""

    __tablename__ = "ingest_episodes"

    facility_code: Mapped[str] = mapped_column(String(16), primary_key=True)
    ma_lk: Mapped[str] = mapped_column(String(100), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    file_sha256: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    resources: Mapped[list[str]] = mapped_column(JsonDoc)  # "Type/id" of every resource
    submissions: Mapped[int] = mapped_column(Integer, default=1)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OutboxEvent(Base):
    """An event written in the same transaction as what it announces (transactional outbox)."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    topic: Mapped[str] = mapped_column(String(64))  # e.g. episode.stored, episode.replaced
    key: Mapped[str] = mapped_column(String(128))  # facility|MA_LK
    payload: Mapped[dict[str, object]] = mapped_column(JsonDoc)

    __table_args__ = (Index("ix_outbox_events_topic", "topic", "id"),)
