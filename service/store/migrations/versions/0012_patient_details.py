"""What the EHR's Patient says of each patient the UI shows: name and birth date, cached

Revision ID: 4d2f6a8c0e13
Revises: 4e7a9c1b3d55
"""

import sqlalchemy as sa
from alembic import op


revision = "4d2f6a8c0e13"
down_revision = "4e7a9c1b3d55"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_details",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("birth_date", sa.String(length=10), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )


def downgrade() -> None:
    op.drop_table("patient_details")
