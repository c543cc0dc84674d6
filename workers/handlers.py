"""Handlers: plain functions that orchestrate store, engine and EHR. No Celery in here.

Each handler is safe to run twice: evaluation skips events already processed and decisions are
unique per patient and key; delivery writes with conditional creates on deterministic
identifiers. Handlers return the follow-up work; the task queues it after the commit.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog

from pathways import engine, fhir_in
from pathways.model import ClinicalRecord
from service.bootstrap import Services
from service.ehr.errors import EhrConflict, EhrError, EhrRejected, EhrUnavailable
from service.store import decisions, events, outbox, patients, traces
from service.store.database import lock_patient, transaction
from workers import breaker
from workers.delivery import deliver_resources, existing_ids
from workers.dispatch import DeliveryOrder, SweepWork
from workers.persist import persist_evaluation

log = structlog.get_logger(__name__)

STRANDED_AFTER = timedelta(minutes=2)  # longer than any normal queue wait; shorter than a human notices
MAX_EVENT_ATTEMPTS = 10  # a poison event is set aside instead of being re-queued forever


class Contention(RuntimeError):
    """Another process changed the same patient first; retrying re-reads and succeeds."""


def evaluate_event(services: Services, event_id: int) -> list[DeliveryOrder]:
    """Feed one stored event to the patient's pathway and record what it decided."""
    if not _begin_attempt(services, event_id):
        return []
    try:
        return _evaluate_event(services, event_id)
    except fhir_in.RecordRejected as error:
        # Validated at intake, so only a mapping change can get here: keep the event, stop retrying.
        with transaction(services.db) as connection:
            events.set_aside(connection, event_id, "rejected", f"{error.expression}: {error.code}", services.clock())
        log.warning("event set aside", event_id=event_id, expression=error.expression)
        return []


def _begin_attempt(services: Services, event_id: int) -> bool:
    """Count the attempt; False when the event is done, unknown, or has failed too often."""
    with transaction(services.db) as connection:
        event = events.load_event(connection, event_id)
        if event is None or event.status != "pending":
            return False
        if events.start_attempt(connection, event_id) <= MAX_EVENT_ATTEMPTS:
            return True
        events.set_aside(connection, event_id, "failed", "too many attempts", services.clock())
    log.error("event failed too often; set aside", event_id=event_id)
    return False


def _evaluate_event(services: Services, event_id: int) -> list[DeliveryOrder]:
    definition = services.definition
    try:
        with transaction(services.db) as connection:
            event = events.load_event(connection, event_id)
            if event is None or event.status != "pending":
                return []
            lock_patient(connection, event.patient_id)
            now = services.clock()
            state = _load_state(connection, event.patient_id)
            orders: list[DeliveryOrder] = []
            for record in _records_of(event):
                if not patients.save_record(connection, record, event.id):
                    continue  # an older version than the one already applied
                state, due = _run_due_checkpoint_before(connection, services, event.patient_id, state, record.at, now)
                orders += due
                if state.needs_rebuild_for(record):
                    history = patients.load_records(connection, event.patient_id)
                    state, evaluation = engine.rebuild(definition, history, state, now)
                else:
                    state, evaluation = engine.apply_record(definition, state, record, now)
                orders += persist_evaluation(connection, services, event.patient_id, evaluation, now)
            _save_state(connection, services, event.patient_id, state, now)
            events.mark_processed(connection, event_id, now)
    except patients.StaleState as error:
        raise Contention(str(error)) from error
    log.info("event evaluated", event_id=event_id, decisions=len(orders))
    return orders


def _records_of(event: events.StoredEvent) -> list[ClinicalRecord]:
    return fhir_in.records_from_resource(event.body, resource_id=event.resource_id)


def run_due_checkpoint(services: Services, patient_id: str) -> list[DeliveryOrder]:
    """Evaluate a patient's pending checkpoint if it is due."""
    try:
        with transaction(services.db) as connection:
            lock_patient(connection, patient_id)
            now = services.clock()
            state = _load_state(connection, patient_id)
            state, orders = _run_due_checkpoint_before(
                connection, services, patient_id, state, now, now, inclusive=True
            )
            _save_state(connection, services, patient_id, state, now)
    except patients.StaleState as error:
        raise Contention(str(error)) from error
    return orders


def _run_due_checkpoint_before(
    connection: sa.Connection,
    services: Services,
    patient_id: str,
    state: engine.PatientState,
    moment: datetime,
    now: datetime,
    *,
    inclusive: bool = False,
) -> tuple[engine.PatientState, list[DeliveryOrder]]:
    """Fire checkpoints that fell due before `moment` (facts at an instant go before its checkpoint)."""
    orders: list[DeliveryOrder] = []
    while (due := state.checkpoint_due_at) is not None and (due < moment or (inclusive and due <= moment)):
        if due > now:
            break
        state, evaluation = engine.run_checkpoint(services.definition, state, due)
        orders += persist_evaluation(connection, services, patient_id, evaluation, now)
    return state, orders


def _load_state(connection: sa.Connection, patient_id: str) -> engine.PatientState:
    data, revision = patients.load_state(connection, patient_id)
    state = engine.new_state() if data is None else engine.PatientState.from_json(data)
    connection.info["carepath_revision"] = revision
    return state


def _save_state(
    connection: sa.Connection, services: Services, patient_id: str, state: engine.PatientState, now: datetime
) -> None:
    patients.save_state(
        connection,
        patient_id,
        definition=services.definition.reference,
        state=state.to_json(),
        revision=connection.info.pop("carepath_revision"),
        checkpoint_due_at=state.checkpoint_due_at,
        now=now,
    )


def deliver_decision(services: Services, decision_id: int) -> None:
    """Write a decision's resources to the EHR once; a no-op when done, dead, or with no EHR.

    Transient failures (EhrUnavailable) propagate for the task to retry; a refusal goes to the
    dead letters; a conflict is settled by re-reading what the EHR already holds.
    """
    ehr = services.ehr
    if ehr is None:
        return
    with transaction(services.db) as connection:
        delivery = decisions.load_delivery(connection, decision_id)
    if delivery is None or delivery.status != "pending":
        return
    breaker_name = services.settings.ehr_base_url or "ehr"
    breaker.before_call(services.db, breaker_name, services.clock())
    try:
        ehr_ids = deliver_resources(ehr, delivery.resources)
    except EhrUnavailable as error:
        breaker.failed(services.db, breaker_name, services.clock())
        _record(services, decision_id, "unavailable", error)
        raise
    except EhrRejected as error:
        breaker.succeeded(services.db, breaker_name, services.clock())
        _record(services, decision_id, "rejected", error, bury_as="rejected")
        log.error("delivery rejected; dead-lettered", decision_id=decision_id, status=error.status)
        return
    except EhrConflict as error:
        breaker.succeeded(services.db, breaker_name, services.clock())
        _record(services, decision_id, "conflict", error)
        ehr_ids = existing_ids(ehr, delivery.resources)  # raises EhrUnavailable if still ambiguous
    else:
        breaker.succeeded(services.db, breaker_name, services.clock())
    now = services.clock()
    with transaction(services.db) as connection:
        for key, ehr_id in ehr_ids.items():
            decisions.record_ehr_id(connection, key, ehr_id, now)
        outbox.record_attempt(connection, decision_id, outcome="delivered", now=now)
    log.info("decision delivered", decision_id=decision_id, resources=len(ehr_ids))


def give_up_delivery(services: Services, decision_id: int, error: EhrError) -> None:
    """Retries are spent: dead-letter the delivery so an administrator can replay it."""
    with transaction(services.db) as connection:
        outbox.bury(
            connection,
            decision_id,
            reason="retries-exhausted",
            now=services.clock(),
            http_status=error.status,
            outcome=error.outcome,
        )
    log.error("delivery retries exhausted; dead-lettered", decision_id=decision_id)


def _record(services: Services, decision_id: int, outcome: str, error: EhrError, *, bury_as: str | None = None) -> None:
    """Log the failed attempt (its own transaction, so a retry keeps it) and maybe bury it."""
    detail = error.outcome or {"error": type(error).__name__}
    now = services.clock()
    with transaction(services.db) as connection:
        outbox.record_attempt(
            connection, decision_id, outcome=outcome, now=now, http_status=error.status, detail=detail
        )
        if bury_as is not None:
            outbox.bury(
                connection, decision_id, reason=bury_as, now=now, http_status=error.status, outcome=error.outcome
            )


def replay_dead_letters(services: Services, decision_ids: list[int] | None) -> list[DeliveryOrder]:
    """Put dead letters (all, or the ones named) back in the outbox; return what to queue."""
    now = services.clock()
    with transaction(services.db) as connection:
        candidates = decision_ids or [d.decision_id for d in outbox.list_dead_letters(connection)]
        revived = [d for d in candidates if outbox.revive(connection, d, now)]
        orders = []
        for decision_id in revived:
            delivery = decisions.load_delivery(connection, decision_id)
            if delivery is not None:
                orders.append(DeliveryOrder(decision_id, urgent=delivery.urgent))
    return orders


def retry_delay(retries: int, retry_after: float | None, cap_seconds: float) -> float:
    """Exponential backoff with full jitter, capped; an EHR's Retry-After wins when longer."""
    backoff = random.uniform(0, min(cap_seconds, 2.0 ** (retries + 1)))
    return max(backoff, retry_after or 0.0)


def sweep(services: Services) -> SweepWork:
    """Find due checkpoints and work whose queue message was lost."""
    now = services.clock()
    cutoff = now - STRANDED_AFTER
    with transaction(services.db) as connection:
        work = SweepWork(
            due_patients=patients.due_checkpoints(connection, now),
            stranded_events=events.unprocessed_before(connection, cutoff),
            stranded_deliveries=[
                DeliveryOrder(decision_id, urgent)
                for decision_id, urgent in decisions.undelivered_before(connection, cutoff)
            ]
            if services.ehr is not None
            else [],
        )
    return work


def recent_evaluations(services: Services, patient_id: str) -> list[dict[str, object]]:
    with transaction(services.db) as connection:
        return traces.evaluations_of(connection, patient_id)
