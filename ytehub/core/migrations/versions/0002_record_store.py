"""record store: resources, versions, search indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 21:36:18.085614
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_idx_date",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("low", sa.DateTime(timezone=True), nullable=True),
        sa.Column("high", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("fhir_idx_date", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fhir_idx_date_lookup", ["resource_type", "param", "low", "high"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_idx_date_owner", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "fhir_idx_quantity",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Numeric(precision=24, scale=8), nullable=True),
        sa.Column("system", sa.String(length=256), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
    )
    with op.batch_alter_table("fhir_idx_quantity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fhir_idx_quantity_lookup", ["resource_type", "param", "value"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_idx_quantity_owner", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "fhir_idx_reference",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("url", sa.String(length=512), nullable=True),
    )
    with op.batch_alter_table("fhir_idx_reference", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fhir_idx_reference_lookup",
            ["target_type", "target_id", "param", "resource_type"],
            unique=False,
        )
        batch_op.create_index(
            "ix_fhir_idx_reference_owner", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "fhir_idx_string",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=True),
        sa.Column("exact", sa.String(length=512), nullable=True),
    )
    with op.batch_alter_table("fhir_idx_string", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fhir_idx_string_lookup", ["resource_type", "param", "value"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_idx_string_owner", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "fhir_idx_token",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=256), nullable=True),
        sa.Column("code", sa.String(length=256), nullable=True),
    )
    with op.batch_alter_table("fhir_idx_token", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fhir_idx_token_lookup", ["resource_type", "param", "code", "system"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_idx_token_owner", ["resource_type", "resource_id"], unique=False
        )

    op.create_table(
        "fhir_resources",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("commune_code", sa.String(length=5), nullable=True),
        sa.Column("facility_code", sa.String(length=16), nullable=True),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("resource_type", "id", name=op.f("pk_fhir_resources")),
    )
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.create_index("ix_fhir_resources_commune", ["commune_code"], unique=False)
        batch_op.create_index(
            "ix_fhir_resources_facility", ["facility_code", "person_id"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_resources_person", ["person_id", "resource_type"], unique=False
        )
        batch_op.create_index(
            "ix_fhir_resources_type_updated", ["resource_type", "last_updated", "id"], unique=False
        )

    op.create_table(
        "fhir_versions",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("resource_type", "id", "version_id", name=op.f("pk_fhir_versions")),
    )
    with op.batch_alter_table("fhir_versions", schema=None) as batch_op:
        batch_op.create_index("ix_fhir_versions_updated", ["last_updated"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fhir_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_versions_updated")

    op.drop_table("fhir_versions")
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_resources_type_updated")
        batch_op.drop_index("ix_fhir_resources_person")
        batch_op.drop_index("ix_fhir_resources_facility")
        batch_op.drop_index("ix_fhir_resources_commune")

    op.drop_table("fhir_resources")
    with op.batch_alter_table("fhir_idx_token", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_idx_token_owner")
        batch_op.drop_index("ix_fhir_idx_token_lookup")

    op.drop_table("fhir_idx_token")
    with op.batch_alter_table("fhir_idx_string", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_idx_string_owner")
        batch_op.drop_index("ix_fhir_idx_string_lookup")

    op.drop_table("fhir_idx_string")
    with op.batch_alter_table("fhir_idx_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_idx_reference_owner")
        batch_op.drop_index("ix_fhir_idx_reference_lookup")

    op.drop_table("fhir_idx_reference")
    with op.batch_alter_table("fhir_idx_quantity", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_idx_quantity_owner")
        batch_op.drop_index("ix_fhir_idx_quantity_lookup")

    op.drop_table("fhir_idx_quantity")
    with op.batch_alter_table("fhir_idx_date", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_idx_date_owner")
        batch_op.drop_index("ix_fhir_idx_date_lookup")

    op.drop_table("fhir_idx_date")
