"""Resources the pathway refused to read (kept as rejected, never evaluated), for administrators.

They name patients, so every read is audited, whoever asks (the admin page or the command line).
"""

from __future__ import annotations

from service import audit
from service.bootstrap import Services
from service.store import events
from service.store.database import transaction


def rejected_events(services: Services, actor: audit.Actor, description: str) -> list[events.RejectedEvent]:
    """The rejected events, newest first, with the read audited."""
    with transaction(services.db) as connection:
        found = events.rejected(connection)
        entities = sorted({f"Patient/{e.patient_id}" for e in found})
        audit.record(connection, actor, audit.READ, "search", entities, services.clock(), description=description)
    return found
