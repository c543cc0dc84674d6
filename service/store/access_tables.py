"""Tables of access control and the audit trail: API tokens, web UI sessions and AuditEvent rows.

Kept apart from `tables.py` but on the same `metadata`, so one Alembic history covers both.
"""

from __future__ import annotations

import sqlalchemy as sa

from service.store.tables import UtcDateTime, metadata, numbered_table

# API bearer tokens. Only the SHA-256 of the token is kept: the token is shown once, at creation.
api_tokens = numbered_table(
    "api_tokens",
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # ehr | coordinator | admin
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(120)),
    sa.Column("last_used_at", UtcDateTime()),
    sa.Column("revoked_at", UtcDateTime()),
)

# Signed-in web UI sessions. The cookie carries a random session id; only its SHA-256 is kept, so
# this table opens no session. A row points at the API token it was opened with (re-checked on every
# request) or, for an OIDC sign-in, keeps the JWT encrypted with a key derived from the session id,
# which only the cookie holds. Deleted at sign-out, on expiry and when the token is revoked.
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id"), index=True),  # None for an OIDC sign-in
    sa.Column("sealed_jwt", sa.Text),  # None for an API token
    sa.Column("name", sa.String(120), nullable=False),  # who, as the credential proved at sign-in
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
)

# One row per audited access or change: who, what was done, to what, when, with what outcome.
# Entity references only (Task/123, Patient/abc) and search parameters; never resource bodies.
audit_events = numbered_table(
    "audit_events",
    sa.Column("recorded", UtcDateTime(), nullable=False, index=True),
    sa.Column("action", sa.String(1), nullable=False),  # C | R | U | D | E
    sa.Column("subtype", sa.String(40), nullable=False),  # read, search, transition, token-create, ...
    sa.Column("outcome", sa.Integer, nullable=False),  # 0 success | 4 minor | 8 serious | 12 major failure
    sa.Column("agent_name", sa.String(120), index=True),  # None when no credentials were presented
    sa.Column("agent_role", sa.String(16)),
    sa.Column("agent_kind", sa.String(16)),  # token | oidc | cli
    sa.Column("request_id", sa.String(64)),
    sa.Column("description", sa.String(300)),  # method and route template, or the command
    sa.Column("query", sa.Text),  # the search parameters of a search
)

audit_event_entities = sa.Table(
    "audit_event_entities",
    metadata,
    sa.Column("audit_event_id", sa.Integer, sa.ForeignKey("audit_events.id"), primary_key=True),
    sa.Column("reference", sa.String(300), primary_key=True, index=True),
)
