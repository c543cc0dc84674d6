"""Task outcomes in: what coordinators changed in the EHR comes back to Carepath.

Coordinators work Tasks in the EHR or in Carepath's worklist. Changes made in the EHR come back by
periodic reconciliation (a search of our Tasks updated since the last mark); a closed Task feeds
the pathway. Changes made here go out by the one write path to the EHR (`outbound`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pathways.fhir import outbound
from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.store import watermarks
from service.store.database import transaction
from service.usecases import evaluation

TASK_WATERMARK = "ehr-task-statuses"
FIRST_LOOKBACK = timedelta(days=1)  # a new deployment looks back one day, not through all history


def reconcile_tasks(services: Services) -> list[DeliveryOrder]:
    """Read our Tasks the EHR changed since the last mark and feed each change back."""
    ehr = services.ehr
    if ehr is None:
        return []
    with transaction(services.db) as connection:
        since = watermarks.read(connection, TASK_WATERMARK) or services.clock() - FIRST_LOOKBACK
    changed = ehr.search(
        "Task",
        [
            ("identifier", f"{outbound.PROPOSAL_IDENTIFIER_SYSTEM}|"),
            ("_lastUpdated", f"ge{since.isoformat()}"),
            ("_count", "200"),
        ],
    )
    orders: list[DeliveryOrder] = []
    newest = since
    for task in changed:
        orders += evaluation.task_changed(services, task)
        newest = max(newest, _last_updated(task) or newest)
    with transaction(services.db) as connection:
        watermarks.advance(connection, TASK_WATERMARK, newest)
    return orders


def _last_updated(resource: dict[str, object]) -> datetime | None:
    meta = resource.get("meta")
    text = meta.get("lastUpdated") if isinstance(meta, dict) else None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
