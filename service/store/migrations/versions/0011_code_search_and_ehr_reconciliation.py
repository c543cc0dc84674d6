"""Proposal codes for the `code` search; when each patient was last reconciled with the EHR

Revision ID: 4e7a9c1b3d55
Revises: 9b3d5e7f1a28
"""

import sqlalchemy as sa
from alembic import op

revision = "4e7a9c1b3d55"
down_revision = "9b3d5e7f1a28"
branch_labels = None
depends_on = None


def upgrade() -> None:
    codes = op.create_table(
        "proposal_codes",
        sa.Column("proposal_id", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=300), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["proposal_id"], ["proposals.id"], name=op.f("fk_proposal_codes_proposal_id_proposals")),
        sa.PrimaryKeyConstraint("proposal_id", "system", "code", name=op.f("pk_proposal_codes")),
    )
    with op.batch_alter_table("proposal_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposal_codes_code"), ["code"], unique=False)
    with op.batch_alter_table("patient_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ehr_reconciled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_patient_states_ehr_reconciled_at"), ["ehr_reconciled_at"], unique=False)
    # Proposals stored before: their codes, read from the stored resource (frozen here as written).
    proposals = sa.table("proposals", sa.column("id"), sa.column("resource_type"), sa.column("resource", sa.JSON))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(proposals.c.id, proposals.c.resource).where(proposals.c.resource_type.in_(["Task", "ServiceRequest"]))
    )
    found = set()
    for row in rows:
        for coding in ((row.resource or {}).get("code") or {}).get("coding") or []:
            if coding.get("code"):
                found.add((row.id, str(coding.get("system") or "")[:300], str(coding["code"])[:200]))
    if found:
        op.bulk_insert(codes, [{"proposal_id": i, "system": s, "code": c} for i, s, c in sorted(found)])


def downgrade() -> None:
    with op.batch_alter_table("patient_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_states_ehr_reconciled_at"))
        batch_op.drop_column("ehr_reconciled_at")
    with op.batch_alter_table("proposal_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposal_codes_code"))
    op.drop_table("proposal_codes")
