"""Workers record a heartbeat row, so readiness and metrics know which workers are alive

Revision ID: 7d4f2b8c1e35
Revises: 6a9c3e5d7f12
"""

import sqlalchemy as sa
from alembic import op

revision = "7d4f2b8c1e35"
down_revision = "6a9c3e5d7f12"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
