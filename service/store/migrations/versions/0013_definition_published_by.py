"""Who published a pathway version: an administrator's publication, a rollback included, is never taken over

Revision ID: 0b4e6f8a2c39
Revises: 4d2f6a8c0e13
"""

import sqlalchemy as sa
from alembic import op

revision = "0b4e6f8a2c39"
down_revision = "4d2f6a8c0e13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pathway_definitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_by", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pathway_definitions", schema=None) as batch_op:
        batch_op.drop_column("published_by")
