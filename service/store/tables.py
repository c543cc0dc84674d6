"""Database tables (SQLAlchemy Core). Migrations in `service/store/migrations` create them.

The same schema runs on PostgreSQL (production) and SQLite (embedded default). JSON columns
hold FHIR bodies and engine state; everything queried by the service is a real column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores none natively)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC-aware values")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def patient_id() -> sa.Column[str]:
    """The patient a row is about (the EHR's Patient id); indexed, as such rows are read per patient."""
    return sa.Column("patient_id", sa.String(64), nullable=False, index=True)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def numbered_table(name: str, *columns: sa.schema.SchemaItem) -> sa.Table:
    """A table on `metadata` whose rows have no natural key: the database numbers them (`id`)."""
    return sa.Table(name, metadata, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True), *columns)


# The raw inbound event, committed before the sender gets its 2xx. `dedup_key` is
# type/id/versionId (or a content hash without a version): a second delivery is a no-op.
inbound_events = numbered_table(
    "inbound_events",
    sa.Column("dedup_key", sa.String(300), nullable=False, unique=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("resource_type", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(64), nullable=False),
    sa.Column("version_id", sa.String(64)),
    patient_id(),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("processed_at", UtcDateTime()),
    sa.Column("status", sa.String(16), nullable=False, default="pending", index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.String(300)),  # why an event was set aside, or waits; an error class, never PHI
    # `urgent` when intake saw a code that may be a red flag: drained first, never behind a routine batch.
    sa.Column("lane", sa.String(16), nullable=False, server_default="routine"),
    # When a worker last claimed the pending event for a batch; another claims it only once that is stale.
    sa.Column("claimed_at", UtcDateTime()),
)
# The drain's claim reads the oldest pending events of a lane: only pending rows are indexed.
sa.Index(
    "ix_inbound_events_pending_lane",
    inbound_events.c.lane,
    inbound_events.c.id,
    postgresql_where=inbound_events.c.status == "pending",
    sqlite_where=inbound_events.c.status == "pending",
)

# One row per lane: set when a drain message was sent and no worker has taken it up yet, so
# intake sends at most one pending wake-up per lane instead of one message per event.
wake_signals = sa.Table(
    "wake_signals",
    metadata,
    sa.Column("lane", sa.String(16), primary_key=True),
    sa.Column("signalled_at", UtcDateTime()),
)

# Every clinical record of a patient in its latest version: the timeline the engine was fed,
# re-read only for a rebuild (a retraction, an earlier episode start) or a dry run.
patient_records = sa.Table(
    "patient_records",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("resource_type", sa.String(64), primary_key=True),
    sa.Column("resource_id", sa.String(64), primary_key=True),
    sa.Column("version_id", sa.String(64)),
    sa.Column("clinical_time", UtcDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("inbound_events.id")),
)

# Per-patient engine state. `revision` is an optimistic lock: two evaluations of one patient
# never both commit. `checkpoint_due_at` is the pending timer that beat sweeps.
patient_states = sa.Table(
    "patient_states",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("definition", sa.String(300), nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False, default=1),
    sa.Column("checkpoint_due_at", UtcDateTime(), index=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # when the patient's records were last compared with what the EHR holds (deletions it never notified)
    sa.Column("ehr_reconciled_at", UtcDateTime(), index=True),
)

decisions = numbered_table(
    "decisions",
    patient_id(),
    sa.Column("decision_key", sa.String(200), nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("definition", sa.String(300), nullable=False),
    sa.Column("decided_at", UtcDateTime(), nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, default="active"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # the episode line (body region) of a pathway with lines; NULL: the patient's red flags, or 1.x
    sa.Column("region", sa.String(64), index=True),
    sa.UniqueConstraint("patient_id", "decision_key", name="uq_decisions_patient_key"),
)

# Carepath's own copy of each Task / ServiceRequest / Provenance it decided, searchable with or
# without an EHR. `ehr_id` is filled once the EHR holds it.
proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id"), nullable=False, index=True),
    patient_id(),
    sa.Column("resource_type", sa.String(64), nullable=False),
    sa.Column("identifier", sa.String(400), nullable=False, unique=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("priority", sa.String(16)),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("authored_on", UtcDateTime(), nullable=False),
    sa.Column("resource", sa.JSON, nullable=False),
    sa.Column("ehr_id", sa.String(64)),
    sa.Column("last_updated", UtcDateTime(), nullable=False),
    # set when Carepath changed its copy (a withdrawal) and the EHR's copy must follow
    sa.Column("sync_pending", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # our copy's version (meta.versionId, the ETag): 1 when stored, +1 on every change by any path
    sa.Column("version", sa.Integer, nullable=False, default=1, server_default="1"),
    sa.Column("owner", sa.String(300), index=True),  # Task.owner.reference, for the worklist's owner search
)

# The codings of each Task's and ServiceRequest's `code`, for the `code` token search. A proposal's
# code is set when it is rendered and never changes, so its rows are written once, with the proposal.
proposal_codes = sa.Table(
    "proposal_codes",
    metadata,
    sa.Column("proposal_id", sa.String(64), sa.ForeignKey("proposals.id"), primary_key=True),
    sa.Column("system", sa.String(300), primary_key=True),  # "" for a coding without a system
    sa.Column("code", sa.String(200), primary_key=True, index=True),
)

# Outbox: one delivery per decision, retried on its own budget, never re-running clinical logic.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, default="pending", index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("urgent", sa.Boolean, nullable=False, default=False),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("delivered_at", UtcDateTime()),
    # when the retry already scheduled on the broker is due: the sweeper leaves it alone until then
    sa.Column("next_attempt_at", UtcDateTime()),
)

# The evaluation trace: every rule tried, the values seen, and why it fired or not.
evaluations = numbered_table(
    "evaluations",
    patient_id(),
    sa.Column("evaluated_at", UtcDateTime(), nullable=False),
    sa.Column("trigger", sa.String(200), nullable=False),
    sa.Column("definition", sa.String(300), nullable=False),
    sa.Column("checks", sa.JSON, nullable=False),
    sa.Column("decision_keys", sa.JSON, nullable=False),
    sa.Column("next_checkpoint_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# Every delivery attempt: when, what came back. Answers "what happened to this decision?".
delivery_attempts = numbered_table(
    "delivery_attempts",
    sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id"), nullable=False, index=True),
    sa.Column("attempted_at", UtcDateTime(), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # delivered | synced | unavailable | rejected | conflict
    sa.Column("http_status", sa.Integer),
    sa.Column("detail", sa.JSON),  # the EHR's OperationOutcome, or the error class; never PHI
)

# Deliveries the EHR refused (4xx) or that ran out of retries: kept for an administrator to replay.
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("decision_id", sa.Integer, sa.ForeignKey("decisions.id"), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),  # rejected | retries-exhausted
    sa.Column("http_status", sa.Integer),
    sa.Column("outcome", sa.JSON),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("dead_at", UtcDateTime(), nullable=False),
    sa.Column("replayed_at", UtcDateTime()),
    # An urgent decision's dead letter raises an alert (sent once per burial) and a banner until
    # it is replayed or dismissed; a new burial clears all three.
    sa.Column("alerted_at", UtcDateTime()),
    sa.Column("dismissed_at", UtcDateTime()),
    sa.Column("dismissed_by", sa.String(120)),
)

# Per-EHR circuit breaker: stop calling an EHR that keeps failing, probe it again later.
circuit_breakers = sa.Table(
    "circuit_breakers",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # closed | open | half-open
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("opened_at", UtcDateTime()),
    sa.Column("next_probe_at", UtcDateTime()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# One row per running worker, refreshed every WORKER_HEARTBEAT_SECONDS: readiness and metrics read
# worker liveness here, without a round trip through the broker.
worker_heartbeats = sa.Table(
    "worker_heartbeats",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),  # the Celery node name, unique per worker
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("connected_at", UtcDateTime(), nullable=False),  # last (re)connection to the broker
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
)

# High-water marks of periodic reconciliations with the EHR (e.g. Task statuses changed there).
sync_watermarks = sa.Table(
    "sync_watermarks",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", UtcDateTime(), nullable=False),
)

# Pathway definitions administrators upload: immutable versions, one published per pathway.
# Enrolled patients stay on the version they started with (patient_states.definition).
pathway_definitions = numbered_table(
    "pathway_definitions",
    sa.Column("pathway_id", sa.String(64), nullable=False, index=True),
    sa.Column("url", sa.String(255), nullable=False),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # draft | active | retired
    sa.Column("source", sa.Text, nullable=False),  # the YAML as uploaded
    sa.Column("uploaded_at", UtcDateTime(), nullable=False),
    sa.Column("uploaded_by", sa.String(120)),
    sa.Column("published_at", UtcDateTime()),
    sa.Column("retired_at", UtcDateTime()),
    # Who published it; empty when Carepath made one of its shipped versions active itself.
    sa.Column("published_by", sa.String(120)),
    sa.UniqueConstraint("url", "version", name="uq_pathway_definitions_url_version"),
)

# What the EHR's Patient says of each patient the UI shows (name, birth date): a cache refreshed
# on demand, so a worklist of fifty rows costs no fifty EHR reads. `known` False: the EHR answered
# that it holds no such Patient.
patient_details = sa.Table(
    "patient_details",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("known", sa.Boolean, nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("birth_date", sa.String(10), nullable=True),  # FHIR date: YYYY, YYYY-MM or YYYY-MM-DD
    sa.Column("fetched_at", UtcDateTime(), nullable=False),
)
