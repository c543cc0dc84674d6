"""Events are drained from the database in batches: each event's lane, its claim, and the wake-up signals

Revision ID: 9d2b7c4e1a86
Revises: 7c3e9a1f5b20
"""

import sqlalchemy as sa
from alembic import op

revision = "9d2b7c4e1a86"
down_revision = "7c3e9a1f5b20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.String(length=16), nullable=False, server_default="routine"))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    # The drain's claim reads the oldest pending events of a lane: only pending rows are indexed.
    op.create_index(
        "ix_inbound_events_pending_lane",
        "inbound_events",
        ["lane", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    signals = op.create_table(
        "wake_signals",
        sa.Column("lane", sa.String(length=16), nullable=False),
        sa.Column("signalled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("lane", name=op.f("pk_wake_signals")),
    )
    # One row per lane from the start: raising a signal is then a single UPDATE.
    op.bulk_insert(signals, [{"lane": "urgent", "signalled_at": None}, {"lane": "routine", "signalled_at": None}])


def downgrade() -> None:
    op.drop_table("wake_signals")
    op.drop_index("ix_inbound_events_pending_lane", table_name="inbound_events")
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("lane")
