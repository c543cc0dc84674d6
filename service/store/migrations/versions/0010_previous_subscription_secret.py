"""A subscription's previous secret, accepted until a moment after its reactivation rotated it

Revision ID: 9b3d5e7f1a28
Revises: 9c3e5a7b1d24
"""

import sqlalchemy as sa
from alembic import op

revision = "9b3d5e7f1a28"
down_revision = "9c3e5a7b1d24"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_subscriptions_previous_secret_hash"), ["previous_secret_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_previous_secret_hash"))
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_secret_hash")
