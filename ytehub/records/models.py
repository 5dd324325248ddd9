"""Record-store tables: current resources, every version, and the search indexes.

Resources are keyed by (resource_type, id); ``person_id`` (the Patient a resource belongs to)
is the partition key, so the store can later be sharded by person. Index tables are plain
Core tables rewritten in the same transaction as each write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column

from ytehub.core.db import Base, JsonDoc


class FhirResource(Base):
    """The current version of every resource (deleted ones keep a tombstone)."""

    __tablename__ = "fhir_resources"

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer)
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    person_id: Mapped[str | None] = mapped_column(String(64))
    # For Patients: the commune of residence (2025 code), for commune-scoped access.
    commune_code: Mapped[str | None] = mapped_column(String(5))
    # The facility whose system or staff wrote it, for facility-scoped access.
    facility_code: Mapped[str | None] = mapped_column(String(16))
    content: Mapped[dict[str, object] | None] = mapped_column(JsonDoc)

    __table_args__ = (
        Index("ix_fhir_resources_type_updated", "resource_type", "last_updated", "id"),
        Index("ix_fhir_resources_person", "person_id", "resource_type"),
        Index("ix_fhir_resources_commune", "commune_code"),
        Index("ix_fhir_resources_facility", "facility_code", "person_id"),
    )


class FhirVersion(Base):
    """Every version ever written (history, vread); deletions are versions without content."""

    __tablename__ = "fhir_versions"

    resource_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    method: Mapped[str] = mapped_column(String(8))  # POST, PUT, DELETE
    content: Mapped[dict[str, object] | None] = mapped_column(JsonDoc)

    __table_args__ = (Index("ix_fhir_versions_updated", "last_updated"),)


def _index_table(name: str, *columns: Column) -> Table:  # type: ignore[type-arg]
    return Table(
        name,
        Base.metadata,
        Column("resource_type", String(64), nullable=False),
        Column("resource_id", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
    )


token_index = _index_table(
    "fhir_idx_token",
    Column("system", String(256)),
    Column("code", String(256)),
)
Index(
    "ix_fhir_idx_token_lookup",
    token_index.c.resource_type,
    token_index.c.param,
    token_index.c.code,
    token_index.c.system,
)
Index("ix_fhir_idx_token_owner", token_index.c.resource_type, token_index.c.resource_id)

string_index = _index_table(
    "fhir_idx_string",
    Column("value", String(512)),  # folded: lower case, no diacritics (Vietnamese-aware)
    Column("exact", String(512)),  # as written, for :exact
)
Index(
    "ix_fhir_idx_string_lookup",
    string_index.c.resource_type,
    string_index.c.param,
    string_index.c.value,
)
Index("ix_fhir_idx_string_owner", string_index.c.resource_type, string_index.c.resource_id)

date_index = _index_table(
    "fhir_idx_date",
    Column("low", DateTime(timezone=True)),
    Column("high", DateTime(timezone=True)),
)
Index(
    "ix_fhir_idx_date_lookup",
    date_index.c.resource_type,
    date_index.c.param,
    date_index.c.low,
    date_index.c.high,
)
Index("ix_fhir_idx_date_owner", date_index.c.resource_type, date_index.c.resource_id)

reference_index = _index_table(
    "fhir_idx_reference",
    Column("target_type", String(64)),
    Column("target_id", String(64)),
    Column("url", String(512)),
)
Index(
    "ix_fhir_idx_reference_lookup",
    reference_index.c.target_type,
    reference_index.c.target_id,
    reference_index.c.param,
    reference_index.c.resource_type,
)
Index("ix_fhir_idx_reference_owner", reference_index.c.resource_type, reference_index.c.resource_id)

quantity_index = _index_table(
    "fhir_idx_quantity",
    Column("value", Numeric(24, 8)),
    Column("system", String(256)),
    Column("code", String(64)),
    Column("unit", String(64)),
)
Index(
    "ix_fhir_idx_quantity_lookup",
    quantity_index.c.resource_type,
    quantity_index.c.param,
    quantity_index.c.value,
)
Index("ix_fhir_idx_quantity_owner", quantity_index.c.resource_type, quantity_index.c.resource_id)

INDEX_TABLES = (token_index, string_index, date_index, reference_index, quantity_index)
# The column order of each index table, which the store's held row tuples follow.
INDEX_COLUMNS = {table: tuple(column.name for column in table.columns) for table in INDEX_TABLES}
