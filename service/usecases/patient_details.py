"""Who a patient is: name, birth date and age from the EHR's Patient, cached here, and kept for the pathway.

The worklist and the patient page read the cache; a patient not yet cached is read from the EHR
once (a few per page at most; none once the EHR fails to answer, nor while the deliveries' circuit
breaker holds it down), and the patient page's refresh button reads again. Names and birth dates
are never logged: only the patient's id is.

The pathway reads the age too (2.0: no joint episode under 18; age-conditioned red flags), so
every Patient read is also stored as an event (channel `ehr-patient-read`) that the worker files
beside the patient's facts, and each fact reconciliation sweep reads the Patient of a few patients
never read (`read_unread`): an EHR that posts facts need not post the Patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import structlog

from pathways.fhir import patient as fhir_patient
from service import audit
from service.bootstrap import Services
from service.ehr import breaker
from service.ehr.errors import EhrError, EhrRejected
from service.settings import PATIENT_PLACEHOLDER
from service.store import patient_details as store
from service.store.database import transaction
from service.usecases.notifications import intake as notification_intake
from service.usecases.notifications import resolve

log = structlog.get_logger(__name__)

NOT_FOUND = (404, 410)  # the EHR holds no such Patient (410: it was deleted)
REFUSES_EVERYONE = (401, 403)  # Carepath may not read Patients at all: the same for every patient
READS_PER_PAGE = 10  # uncached patients one page view may read from the EHR; the rest wait for the next view
READS_PER_SWEEP = 20  # patients never read whose Patient one sweep reads for the pathway; the rest wait
PATIENT_READ = "ehr-patient-read"  # the channel of a Patient Carepath read from the EHR itself

KNOWN, UNKNOWN, NO_EHR, NOT_READ = "known", "unknown", "no-ehr", "not-read"


@dataclass(frozen=True)
class PatientDetails:
    """What the UI says of a patient; `state` tells why a name may be missing."""

    patient_id: str
    state: str  # known | unknown (the EHR holds no such Patient) | no-ehr | not-read (the EHR did not answer yet)
    name: str | None = None
    birth_date: str | None = None
    age: int | None = None
    fetched_at: datetime | None = None
    chart_url: str | None = None


def details(
    services: Services, patient_ids: Iterable[str], *, reads: int = READS_PER_PAGE
) -> dict[str, PatientDetails]:
    """Each patient's details from the cache, reading up to `reads` uncached ones from the EHR first."""
    wanted = sorted(set(patient_ids))
    with transaction(services.db) as connection:
        cached = store.read_many(connection, wanted)
    if services.ehr is not None and _ehr_answering(services):
        for patient_id in [p for p in wanted if p not in cached][:reads]:
            found = _read(services, patient_id)
            if found is None:
                break  # the EHR is not answering: the others would wait as long for nothing
            cached[patient_id] = found
    return {p: _shown(services, p, cached.get(p)) for p in wanted}


def _ehr_answering(services: Services) -> bool:
    """Deliveries found the EHR answering (its breaker is closed): a page need not wait on a down EHR."""
    return breaker.state_of(services.db, breaker.name_of(services.settings.ehr_base_url)) == "closed"


def refresh(services: Services, actor: audit.Actor, patient_id: str) -> PatientDetails:
    """Read the patient from the EHR again (the page's button); audited as a read of the patient."""
    found = _read(services, patient_id) if services.ehr is not None else None
    with transaction(services.db) as connection:
        audit.record(connection, actor, audit.READ, "patient-refresh", [f"Patient/{patient_id}"], services.clock())
        if found is None:
            found = store.read_many(connection, [patient_id]).get(patient_id)
    return _shown(services, patient_id, found)


def read_unread(services: Services, *, reads: int = READS_PER_SWEEP) -> list[int]:
    """Read the Patient of patients never read (for the pathway's age); return the events stored to evaluate."""
    if services.ehr is None or not _ehr_answering(services):
        return []
    with transaction(services.db) as connection:
        unread = store.never_read(connection, reads)
    stored: list[int] = []
    for patient_id in unread:
        try:
            _fetch_and_keep(services, patient_id, stored)
        except EhrRejected as refused:
            if refused.status in REFUSES_EVERYONE:
                break  # not allowed to read Patients at all: asking for the others would be refused too
        except EhrError:
            break  # the EHR is not answering: the others wait for the next sweep
    return stored


def _read(services: Services, patient_id: str) -> store.Cached | None:
    """The EHR's answer, cached and kept as the patient's Patient record; None when the EHR could not answer.

    The events stored wait for the sweep's re-queueing of pending events.
    """
    try:
        return _fetch_and_keep(services, patient_id, [])
    except EhrError:
        return None


def _fetch_and_keep(services: Services, patient_id: str, stored: list[int]) -> store.Cached:
    """Read the patient from the EHR, cache the answer and store a found Patient as an event (ids into `stored`).

    Raises `EhrError` (logged, by patient id only) when the EHR did not say who the patient is.
    """
    assert services.ehr is not None
    now = services.clock()
    try:
        resource = services.ehr.read("Patient", patient_id)
    except EhrRejected as refused:
        if refused.status not in NOT_FOUND:
            log.warning("patient details not read", patient=f"Patient/{patient_id}", status=refused.status)
            raise
        resource = None
    except EhrError as error:
        log.warning("patient details not read", patient=f"Patient/{patient_id}", error=type(error).__name__)
        raise
    cached = store.Cached(
        patient_id=patient_id,
        known=resource is not None,
        name=fhir_patient.display_name(resource) if resource else None,
        birth_date=fhir_patient.birth_date(resource) if resource else None,
        fetched_at=now,
    )
    with transaction(services.db) as connection:
        store.save(connection, cached)
        if resource is not None:
            items = resolve.accept(resource, PATIENT_READ).items
            stored.extend(notification_intake.store_items(connection, items, now))
    return cached


def _shown(services: Services, patient_id: str, cached: store.Cached | None) -> PatientDetails:
    template = services.settings.ehr_chart_url
    chart = template.replace(PATIENT_PLACEHOLDER, quote(patient_id, safe="")) if template else None
    if services.ehr is None:
        return PatientDetails(patient_id, NO_EHR, chart_url=chart)
    if cached is None:
        return PatientDetails(patient_id, NOT_READ, chart_url=chart)
    if not cached.known:
        return PatientDetails(patient_id, UNKNOWN, fetched_at=cached.fetched_at, chart_url=chart)
    age = fhir_patient.age_on(cached.birth_date, services.clock())
    return PatientDetails(patient_id, KNOWN, cached.name, cached.birth_date, age, cached.fetched_at, chart)
