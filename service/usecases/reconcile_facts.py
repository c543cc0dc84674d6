"""Compare the facts Carepath read from the EHR's subscriptions with what the EHR still holds.

A Subscription cannot tell of every change: R4 classic criteria are evaluated on the new version
only, so a deletion notifies nothing, and some EHRs (SEKMET among them) send nothing on delete
whatever the topic says. A `_lastUpdated` search cannot find a deleted resource either. So each
sweep takes a bounded number of patients (`RECONCILE_PATIENTS_PER_SWEEP`, those compared longest
ago first) and searches the EHR for each type of fact Carepath holds about them: a fact the EHR
no longer has is retracted exactly as a notified deletion is (what rested only on it is
withdrawn, here and in the EHR), and one the EHR holds in another version is stored as a missed
notification would have been (an amended code re-evaluates). Facts posted directly are not
compared: an EHR that pushes its facts pushes its deletions too (`DELETE /fhir/{type}/{id}`).
"""

from __future__ import annotations

from dataclasses import replace

import structlog

from pathways.fhir.outbound.requests import fhir_instant
from service.bootstrap import Services
from service.ehr import EhrClient, EhrError
from service.store import patients
from service.store.database import transaction, try_exclusive
from service.usecases import intake
from service.usecases.notifications import intake as notification_intake
from service.usecases.notifications import resolve

RECONCILED = "notification-reconcile"  # the channel of a changed version a reconciliation stores
# The channels of facts read from the EHR because a subscription told of them (or a reconciliation
# found them); a deletion it finds takes the notified deletion's channel, which evaluation retracts.
FROM_SUBSCRIPTIONS = (resolve.NOTIFICATION, resolve.SEARCH, RECONCILED)

log = structlog.get_logger(__name__)


def reconcile_patients(services: Services) -> list[int]:
    """Compare the facts of the patients due with the EHR; return the events stored (to evaluate)."""
    if services.ehr is None:
        return []
    with services.db.connect() as guard:
        # One reconciliation at a time across workers: two would compare the same patients twice.
        if not try_exclusive(guard, "fact-reconciliation"):
            return []
        due = patients.least_recently_reconciled(
            guard, FROM_SUBSCRIPTIONS, services.settings.reconcile_patients_per_sweep
        )
        event_ids: list[int] = []
        for patient_id in due:
            event_ids += reconcile_patient(services, services.ehr, patient_id)
    return event_ids


def reconcile_patient(services: Services, ehr: EhrClient, patient_id: str) -> list[int]:
    """One patient: retract what the EHR no longer holds, store what it holds in another version."""
    now = services.clock()
    with services.db.connect() as connection:
        held = patients.held_records(connection, patient_id, FROM_SUBSCRIPTIONS)
    items: list[resolve.Item] = []
    for resource_type in sorted({record.resource_type for record in held}):
        try:
            found = ehr.search(resource_type, [("patient", f"Patient/{patient_id}"), ("_count", "200")])
        except EhrError as error:
            # Retracting on a failed search would withdraw good decisions: try this patient next time.
            log.warning("reconciliation search failed", resource_type=resource_type, error=type(error).__name__)
            return []
        in_ehr = {str(resource.get("id")): resource for resource in found}
        for record in (r for r in held if r.resource_type == resource_type):
            current = in_ehr.get(record.resource_id)
            if current is None:
                gone = intake.deletion(resource_type, record.resource_id, patient_id, fhir_instant(now))
                # Keyed by the version it deletes, not the moment: a second sweep before the first
                # one's deletion is evaluated finds the same deletion, not another.
                once = f"{resource_type}/{record.resource_id}/{record.version_id}/deleted-in-ehr"
                items.append(resolve.Item(replace(gone, dedup_key=once), resolve.DELETION))
            elif record.version_id is not None and _version(current) != record.version_id:
                items += [resolve.Item(i.prepared, RECONCILED) for i in resolve.accept(current, RECONCILED).items]
    with transaction(services.db) as connection:
        event_ids = notification_intake.store_items(connection, items, now)
        patients.mark_reconciled(connection, patient_id, now)
    if event_ids:
        log.info("reconciliation found changes", patient_id=patient_id, stored=len(event_ids))
    return event_ids


def _version(resource: dict[str, object]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return str(version) if version is not None else None
