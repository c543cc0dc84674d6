"""Dead letters of urgent decisions: when their alert was sent, and who dismissed their banner

Revision ID: 9c3e5a7b1d24
Revises: 8e2a6c4d9f17
"""

import sqlalchemy as sa
from alembic import op

revision = "9c3e5a7b1d24"
down_revision = "8e2a6c4d9f17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dismissed_by", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_column("dismissed_by")
        batch_op.drop_column("dismissed_at")
        batch_op.drop_column("alerted_at")
