"""The body region of each decision: a pathway with episode lines (2.0) decides per region

Revision ID: 7c3e9a1f5b20
Revises: 0b4e6f8a2c39
"""

import sqlalchemy as sa
from alembic import op

revision = "7c3e9a1f5b20"
down_revision = "0b4e6f8a2c39"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_decisions_region"), ["region"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decisions_region"))
        batch_op.drop_column("region")
