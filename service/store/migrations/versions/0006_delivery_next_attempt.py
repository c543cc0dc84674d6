"""Deliveries remember when their scheduled retry is due, so the sweeper does not duplicate it

Revision ID: 6a9c3e5d7f12
Revises: 5e8b1d4f2c61
"""

import sqlalchemy as sa
from alembic import op

revision = "6a9c3e5d7f12"
down_revision = "5e8b1d4f2c61"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")
