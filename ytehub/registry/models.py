"""Client-registry tables: persons, the source records linked to them, candidate keys, the link
history, the review queue, the versioned match models and the population-register extract."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ytehub.core.db import Base, JsonDoc


class RegistryPerson(Base):
    """A golden person: one citizen, whatever facilities call them."""

    __tablename__ = "registry_persons"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # active, or merged (then merged_into names the survivor)
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into: Mapped[str | None] = mapped_column(String(64))
    # The best value of each field over the linked records (see service.golden_record).
    golden: Mapped[dict[str, object]] = mapped_column(JsonDoc)
    commune_code: Mapped[str | None] = mapped_column(String(5))
    cccd: Mapped[str | None] = mapped_column(String(12))
    # Against the population register: verified, mismatch, not_found (None: not checked yet).
    verification: Mapped[str | None] = mapped_column(String(16))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verification_source: Mapped[str | None] = mapped_column(String(64))
    verification_detail: Mapped[dict[str, object] | None] = mapped_column(JsonDoc)

    __table_args__ = (
        Index("ix_registry_persons_commune", "commune_code", "verification"),
        Index("ix_registry_persons_cccd", "cccd"),
    )


class RegistrySource(Base):
    """One facility's record of a person (MA_BN at a facility), normalised, and its link."""

    __tablename__ = "registry_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(64))  # facility code, "register", "fhir"
    local_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(ForeignKey("registry_persons.id"))
    fields: Mapped[dict[str, object]] = mapped_column(JsonDoc)  # SourceRecord.plain()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("system", "local_id"),
        Index("ix_registry_sources_person", "person_id"),
    )


class RegistryKey(Base):
    """Candidate keys of each source record (``blocking.blocking_keys``)."""

    __tablename__ = "registry_keys"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("registry_sources.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_registry_keys_source", "source_id"),)


class RegistryLink(Base):
    """Every link decision ever made, never rewritten: link, relink, merge, unmerge."""

    __tablename__ = "registry_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(16))  # new, link, review, relink, merge, unmerge
    source_id: Mapped[int | None] = mapped_column(Integer, index=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    from_person_id: Mapped[str | None] = mapped_column(String(64))
    probability: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(256))
    model_version: Mapped[int | None] = mapped_column(Integer)


class RegistryReview(Base):
    """A potential match or a conflict, waiting for a person to decide."""

    __tablename__ = "registry_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("registry_sources.id"))
    candidate_person_id: Mapped[str] = mapped_column(String(64))
    probability: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(64))  # potential, conflict:sex, conflict:birth_year
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, linked, not_a_match
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_registry_reviews_status", "status", "created_at"),)


class RegistryModel(Base):
    """A match model (m/u, frequencies, thresholds); the newest active one is used."""

    __tablename__ = "registry_models"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    params: Mapped[dict[str, object]] = mapped_column(JsonDoc)


class PopulationEntry(Base):
    """One row of a population-register extract, as loaded (see ``verification``)."""

    __tablename__ = "registry_population"

    so_dinh_danh: Mapped[str] = mapped_column(String(12), primary_key=True)
    ho_ten: Mapped[str] = mapped_column(String(128))
    name_folded: Mapped[str] = mapped_column(String(128))
    ngay_sinh: Mapped[str | None] = mapped_column(String(10))
    gioi_tinh: Mapped[str | None] = mapped_column(String(1))
    dia_chi: Mapped[str | None] = mapped_column(String(512))
    ma_xa: Mapped[str | None] = mapped_column(String(5))
    ma_tinh: Mapped[str | None] = mapped_column(String(2))
    source: Mapped[str] = mapped_column(String(128))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_registry_population_name", "name_folded", "ngay_sinh"),)
