"""Task feedback: reconciliation watermarks and proposals whose EHR copy must follow ours

Revision ID: 3c1f0e2a7b44
Revises: 89722393b688
"""

import sqlalchemy as sa
from alembic import op

revision = "3c1f0e2a7b44"
down_revision = "89722393b688"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_watermarks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sync_watermarks")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sync_pending", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("sync_pending")
    op.drop_table("sync_watermarks")
