"""Tables of the subscription intake: registered EHR subscriptions, events seen, gaps recovered.

Kept apart from `tables.py` but on the same `metadata`, so one Alembic history covers both.
"""

from __future__ import annotations

import sqlalchemy as sa

from service.store.tables import UtcDateTime, metadata, numbered_table

# One row per Subscription Carepath registered on the EHR, keyed by the EHR's id (Carepath
# chooses it and creates the Subscription with a PUT, so a handshake can never outrun the row).
# Only the secret's SHA-256 is kept: the EHR holds the secret itself in `channel.header`.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # backport | classic
    sa.Column("topic", sa.String(400)),  # topic canonical (backport only)
    sa.Column("criteria", sa.JSON, nullable=False),  # ["Type?query", ...]: filters, or the classic criteria
    sa.Column("payload", sa.String(16), nullable=False),  # empty | id-only | full-resource
    sa.Column("endpoint", sa.String(400), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    # The secret before the last reactivation's, accepted until `previous_secret_until` (SECRET_GRACE_SECONDS).
    sa.Column("previous_secret_hash", sa.String(64), index=True),
    sa.Column("previous_secret_until", UtcDateTime()),
    sa.Column("status", sa.String(16), nullable=False),  # registering | active | off
    sa.Column("ehr_status", sa.String(16)),  # as the EHR last reported it: requested | active | error | off
    sa.Column("heartbeat_seconds", sa.Integer),
    sa.Column("events_since_start", sa.BigInteger, nullable=False, default=0),  # highest count the EHR reported
    sa.Column("contiguous_through", sa.BigInteger, nullable=False, default=0),  # every event up to here is in
    sa.Column("reconciled_through", UtcDateTime()),  # `_lastUpdated` cursor, on the EHR's clock
    sa.Column("last_seen_at", UtcDateTime()),  # liveness: any authenticated notification
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Every event number received, so a redelivered notification is acknowledged and skipped.
subscription_events = sa.Table(
    "subscription_events",
    metadata,
    sa.Column("subscription_id", sa.String(64), sa.ForeignKey("subscriptions.id"), primary_key=True),
    sa.Column("event_number", sa.BigInteger, primary_key=True),
    sa.Column("event_at", UtcDateTime()),  # the EHR's timestamp of the event
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("outcome", sa.String(200), nullable=False),
)

# Each run of event numbers that never arrived, and how it was made good.
subscription_gaps = numbered_table(
    "subscription_gaps",
    sa.Column("subscription_id", sa.String(64), sa.ForeignKey("subscriptions.id"), nullable=False, index=True),
    sa.Column("from_number", sa.BigInteger, nullable=False),
    sa.Column("to_number", sa.BigInteger, nullable=False),
    sa.Column("detected_at", UtcDateTime(), nullable=False),
    sa.Column("recovered_at", UtcDateTime(), index=True),
    sa.Column("method", sa.String(32)),  # events-operation | search | late-delivery
    sa.Column("outcome", sa.String(200)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)
