"""subscriptions: registered EHR subscriptions, event numbers seen, gaps and their recovery

Revision ID: 89722393b688
Revises: 6c2cb963a9bd
"""

import sqlalchemy as sa
from alembic import op

revision = "89722393b688"
down_revision = "6c2cb963a9bd"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=400), nullable=True),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("payload", sa.String(length=16), nullable=False),
        sa.Column("endpoint", sa.String(length=400), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ehr_status", sa.String(length=16), nullable=True),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=True),
        sa.Column("events_since_start", sa.BigInteger(), nullable=False),
        sa.Column("contiguous_through", sa.BigInteger(), nullable=False),
        sa.Column("reconciled_through", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_subscriptions_secret_hash")),
    )
    op.create_table(
        "subscription_events",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("event_number", sa.BigInteger(), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["subscriptions.id"],
            name=op.f("fk_subscription_events_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", "event_number", name=op.f("pk_subscription_events")),
    )
    op.create_table(
        "subscription_gaps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("from_number", sa.BigInteger(), nullable=False),
        sa.Column("to_number", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["subscriptions.id"],
            name=op.f("fk_subscription_gaps_subscription_id_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_gaps")),
    )
    with op.batch_alter_table("subscription_gaps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscription_gaps_recovered_at"), ["recovered_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_subscription_gaps_subscription_id"), ["subscription_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscription_gaps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_gaps_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_subscription_gaps_recovered_at"))
    op.drop_table("subscription_gaps")
    op.drop_table("subscription_events")
    op.drop_table("subscriptions")
