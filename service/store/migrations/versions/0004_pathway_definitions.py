"""Pathway definitions: uploaded versions, their status and source

Revision ID: 4d2a7c9e1b30
Revises: 3c1f0e2a7b44
"""

import sqlalchemy as sa
from alembic import op

revision = "4d2a7c9e1b30"
down_revision = "3c1f0e2a7b44"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pathway_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pathway_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=120), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pathway_definitions")),
        sa.UniqueConstraint("url", "version", name="uq_pathway_definitions_url_version"),
    )
    with op.batch_alter_table("pathway_definitions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pathway_definitions_pathway_id"), ["pathway_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pathway_definitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pathway_definitions_pathway_id"))
    op.drop_table("pathway_definitions")
