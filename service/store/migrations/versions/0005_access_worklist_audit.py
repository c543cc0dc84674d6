"""Access and audit: API tokens, AuditEvent rows, and the worklist's version and owner on proposals

Revision ID: 5e8b1d4f2c61
Revises: 4d2a7c9e1b30
"""

import sqlalchemy as sa
from alembic import op

revision = "5e8b1d4f2c61"
down_revision = "4d2a7c9e1b30"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("subtype", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("agent_name", sa.String(length=120), nullable=True),
        sa.Column("agent_role", sa.String(length=16), nullable=True),
        sa.Column("agent_kind", sa.String(length=16), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_recorded"), ["recorded"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_agent_name"), ["agent_name"], unique=False)
    op.create_table(
        "audit_event_entities",
        sa.Column("audit_event_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["audit_event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_event_entities_audit_event_id_audit_events"),
        ),
        sa.PrimaryKeyConstraint("audit_event_id", "reference", name=op.f("pk_audit_event_entities")),
    )
    with op.batch_alter_table("audit_event_entities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_entities_reference"), ["reference"], unique=False)
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("owner", sa.String(length=300), nullable=True))
        batch_op.create_index(batch_op.f("ix_proposals_owner"), ["owner"], unique=False)
    _backfill_owners()


def _backfill_owners() -> None:
    """Tasks whose owner was set in the EHR before this revision: make them searchable by owner."""
    proposals = sa.table(
        "proposals",
        sa.column("id", sa.String),
        sa.column("resource_type", sa.String),
        sa.column("resource", sa.JSON),
        sa.column("owner", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(proposals.c.id, proposals.c.resource).where(proposals.c.resource_type == "Task"))
    for proposal_id, resource in rows.all():
        owner = ((resource or {}).get("owner") or {}).get("reference")
        if owner:
            connection.execute(sa.update(proposals).where(proposals.c.id == proposal_id).values(owner=owner[:300]))


def downgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_owner"))
        batch_op.drop_column("owner")
        batch_op.drop_column("version")
    with op.batch_alter_table("audit_event_entities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_entities_reference"))
    op.drop_table("audit_event_entities")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_agent_name"))
        batch_op.drop_index(batch_op.f("ix_audit_events_recorded"))
    op.drop_table("audit_events")
    op.drop_table("api_tokens")
