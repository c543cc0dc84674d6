"""Evaluate a patient's pathway: a new event, a due checkpoint, or a Task closed in the EHR.

Every evaluation of one patient runs under that patient's lock; the state row's revision
guards against a second writer all the same. Decisions are unique per patient and key, so an
evaluation run twice decides once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog

from pathways import pathway
from pathways.definition import Definition
from pathways.fhir import inbound, outbound, readable, task_lifecycle
from pathways.model import ClinicalRecord, Evaluation, RecordStatus, clinical_order, pathway_key_of
from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.store import decisions, events, patients, traces
from service.store.database import commit_without_flush_wait, lock_patient, transaction
from service.store.state_codec import pathway_state_from_json, pathway_state_to_json
from service.usecases import replay
from service.usecases.definitions.registry import DefinitionUnavailable
from service.usecases.persist import persist_evaluation

log = structlog.get_logger(__name__)

MAX_EVENT_ATTEMPTS = 10  # a poison event is set aside instead of being re-queued forever
MAX_EVENTS_TOGETHER = 500  # a patient's pending events applied in one transaction; the rest follow
_NO_RECORD = (datetime.max.replace(tzinfo=UTC), 0, "")  # an event with nothing to apply sorts last
# A Patient on a pathway that reads the age (2.0) goes before every fact, as in a replay; never late.
_WHO = (datetime.min.replace(tzinfo=UTC), 0, "")
DELETION_SUFFIX = "-delete"  # channels of events that say a resource was deleted in the EHR


class Contention(RuntimeError):
    """Another process changed the same patient first; retrying re-reads and succeeds."""


def evaluate_event(services: Services, event_id: int) -> list[DeliveryOrder]:
    """Feed one stored event to the patient's pathway and record what it decided."""
    if not _begin_attempt(services, event_id):
        return []
    try:
        return _evaluate_together(services, event_id)
    except DefinitionUnavailable as unavailable:
        # The definition is at fault, not the event: keep it pending, its attempt unspent, for the
        # sweep to bring back once a version that loads is published.
        with transaction(services.db) as connection:
            events.wait_for_definition(connection, event_id, unavailable.reference)
        _alert(unavailable, "event kept pending", event_id=event_id)
        return []


def _alert(unavailable: DefinitionUnavailable, outcome: str, **ids: object) -> None:
    """An ERROR naming the definition and why it cannot be loaded (its problems hold no patient data)."""
    log.error(
        f"pathway definition cannot be loaded; {outcome}",
        definition=unavailable.reference,
        reason=unavailable.message,
        **ids,
    )


def _begin_attempt(services: Services, event_id: int) -> bool:
    """Count the attempt; False when the event is done, unknown, or has failed too often."""
    with transaction(services.db) as connection:
        # A count lost in a database crash only grants a poison event one more try: no need to
        # wait for the disk, which costs more than the rest of the attempt's bookkeeping.
        commit_without_flush_wait(connection)
        attempts = events.start_attempt(connection, event_id)
        if attempts is None:
            return False
        if attempts <= MAX_EVENT_ATTEMPTS:
            return True
        events.set_aside(connection, event_id, "failed", "too many attempts", services.clock())
    log.error("event failed too often; set aside", event_id=event_id)
    return False


def _evaluate_together(services: Services, event_id: int) -> list[DeliveryOrder]:
    """The event with the patient's other pending events; if they fail together, the event alone.

    So an event that cannot be evaluated costs only its own attempts, never its neighbours'.
    """
    try:
        return _evaluate_event(services, event_id, together=True)
    except (Contention, DefinitionUnavailable):
        raise
    except Exception as error:  # noqa: BLE001 - not swallowed: retried alone, which raises in turn
        log.warning(
            "pending events failed together; evaluating this one alone", event_id=event_id, error=type(error).__name__
        )
        return _evaluate_event(services, event_id, together=False)


def _evaluate_event(services: Services, event_id: int, *, together: bool) -> list[DeliveryOrder]:
    try:
        with transaction(services.db) as connection:
            event = events.load_event(connection, event_id)
            if event is None or event.status != "pending":
                return []
            lock_patient(connection, event.patient_id)
            # Read again under the lock: a copy of this message may have applied the event while
            # we waited for it, and a fact must count once.
            event = events.load_event(connection, event_id)
            if event is None or event.status != "pending":
                return []
            now = services.clock()
            patient = enrol(connection, services, event.patient_id)
            # Facts that arrived together (a Bundle, a notification) are applied in clinical-time
            # order, whatever order their messages are taken in: everything this patient has
            # pending goes now, in that order, and each one's own message then finds it done.
            batch = events.pending_of_patient(connection, event.patient_id, MAX_EVENTS_TOGETHER) if together else []
            if all(e.id != event.id for e in batch):
                batch.append(event)
            orders = _apply_events(connection, services, patient, batch, now)
            save(connection, patient, now)
    except patients.StaleState as error:
        raise Contention(str(error)) from error
    log.info("event evaluated", event_id=event_id, decisions=len(orders))
    return orders


def apply_pending(
    connection: sa.Connection, services: Services, patient_id: str, now: datetime, limit: int = MAX_EVENTS_TOGETHER
) -> tuple[list[DeliveryOrder], int]:
    """Under the patient's lock, apply its oldest `limit` pending events in clinical-time order; save the state.

    A batch's road (`service.usecases.drain`), in the batch's transaction. Returns the orders and
    the number of events applied; raises StaleState when another writer changed the patient first.
    """
    lock_patient(connection, patient_id)
    pending = events.pending_of_patient(connection, patient_id, min(limit, MAX_EVENTS_TOGETHER))
    if not pending:
        return [], 0  # another worker applied them while this one waited for the lock
    patient = enrol(connection, services, patient_id)
    orders = _apply_events(connection, services, patient, pending, now)
    save(connection, patient, now)
    return orders, len(pending)


def alert_unavailable(unavailable: DefinitionUnavailable, event_ids: list[int]) -> None:
    _alert(unavailable, "event kept pending", events=len(event_ids))


def evaluate_patient_events(services: Services, patient_id: str, event_ids: list[int]) -> list[DeliveryOrder]:
    """Evaluate a patient's stored events in clinical-time order, in one transaction (a bulk load's path).

    No attempts are counted: a failure rolls the whole batch back and raises, and the caller
    falls back to `evaluate_event` one by one, which counts them and sets a poison event aside.
    """
    try:
        with transaction(services.db) as connection:
            lock_patient(connection, patient_id)
            now = services.clock()
            patient = enrol(connection, services, patient_id)
            loaded = events.load_events(connection, event_ids)
            pending = [e for e in loaded if e.status == "pending" and e.patient_id == patient_id]
            orders = _apply_events(connection, services, patient, pending, now)
            save(connection, patient, now)
    except patients.StaleState as error:
        raise Contention(str(error)) from error
    log.info("events evaluated", patient_events=len(event_ids), decisions=len(orders))
    return orders


def _apply_events(
    connection: sa.Connection,
    services: Services,
    patient: Enrolment,
    stored: list[events.StoredEvent],
    now: datetime,
) -> list[DeliveryOrder]:
    """Apply events in clinical-time order; one the definition refuses is kept as rejected, never evaluated.

    The order is by resource: each resource's events go together, in the order they arrived (a
    correction after the value it corrects, a deletion after the resource it deletes), placed at
    the earliest clinical time any of them carries. A deletion is resolved when it is applied, so
    it finds the record an earlier event of the same batch filed.
    """
    carried: dict[int, list[ClinicalRecord]] = {}
    by_resource: dict[tuple[str, str], list[events.StoredEvent]] = {}
    for event in sorted(stored, key=lambda e: e.id):
        if not _is_deletion(event):
            try:
                carried[event.id] = inbound.records_from_resource(event.body, resource_id=event.resource_id)
            except inbound.RecordRejected as error:
                _reject(connection, event, error, now)
                continue
        by_resource.setdefault((event.resource_type, event.resource_id), []).append(event)
    # Sorted on the moment alone (stable: arrival order breaks ties), never on the events themselves.
    placed = sorted(
        ((_earliest(connection, patient, group, carried), group) for group in by_resource.values()),
        key=lambda item: item[0],
    )
    late = _late_fact(patient, placed) or _age_changed(connection, patient, placed, carried)
    held = patients.HeldRecords(connection, patient.patient_id, (e.resource_id for e in stored))
    orders: list[DeliveryOrder] = []
    applied: list[int] = []
    for _, group in placed:
        for event in group:
            records = carried[event.id] if event.id in carried else _records_of(connection, event)
            try:
                readable.check(patient.definition, records)
            except inbound.RecordRejected as error:
                _reject(connection, event, error, now)
                continue
            orders += _apply_event(connection, services, patient, held, event, records, now, replaying=late is not None)
            applied.append(event.id)
    events.mark_processed(connection, applied, now)
    if late is not None:
        replayed = replay.replay_patient(
            connection, services, patient.patient_id, patient.definition, patient.state, late, now
        )
        patient.state = replayed.state
        orders += replayed.orders
    return orders


Placed = list[tuple[tuple[datetime, int, str], list[events.StoredEvent]]]
"""A batch's events by resource, each group with the clinical moment it goes at, in clinical order."""


def _late_fact(patient: Enrolment, placed: Placed) -> str | None:
    """The batch's earliest fact when it is dated at or before a moment the pathway was evaluated at, else None.

    In clinical-time order the facts fold in one by one; a late one replays the pathway once for
    the whole batch. A fact at that very moment may belong before what was evaluated there.
    """
    evaluated = patient.state.horizon
    facts = [(moment, group) for moment, group in placed if moment != _WHO]
    if not facts or evaluated is None or facts[0][0][0] > evaluated:
        return None
    group = facts[0][1]
    return f"{group[0].resource_type}/{group[0].resource_id}"


def _age_changed(
    connection: sa.Connection, patient: Enrolment, placed: Placed, carried: dict[int, list[ClinicalRecord]]
) -> str | None:
    """A Patient that changes the age the open episodes were opened at: the batch replays, as a late fact does.

    Applied on its own it would rebuild the episodes as of now; the replay decides what the dry
    run decides with that age from the start, and withdraws what no longer stands.
    """
    for moment, group in placed:
        if moment != _WHO:
            continue
        for event in group:
            records = carried[event.id] if event.id in carried else _records_of(connection, event)
            if any(pathway.age_changes(patient.state, record) for record in records):
                return f"{event.resource_type}/{event.resource_id}"
    return None


def _reject(connection: sa.Connection, event: events.StoredEvent, error: inbound.RecordRejected, now: datetime) -> None:
    """Keep the event with the reason the pathway cannot read it; it is never evaluated."""
    events.set_aside(connection, event.id, events.REJECTED, f"{error.expression}: {error.message}", now)
    log.warning("event rejected", event_id=event.id, expression=error.expression)


def _earliest(
    connection: sa.Connection,
    patient: Enrolment,
    group: list[events.StoredEvent],
    carried: dict[int, list[ClinicalRecord]],
) -> tuple[datetime, int, str]:
    """Where a resource's events go in clinical order: the earliest moment any of them carries.

    A Patient carries no moment (`ClinicalRecord.is_event`) and is never a late fact: on a
    pathway that reads the age it goes first, as in a replay; on 1.x, which only keeps it, last.
    """
    records = [r for e in group for r in (carried[e.id] if e.id in carried else _records_of(connection, e))]
    if records and not any(r.is_event for r in records):
        return _WHO if patient.definition.runs_lines else _NO_RECORD
    return min((clinical_order(r) for r in records if r.is_event), default=_NO_RECORD)


def _apply_event(
    connection: sa.Connection,
    services: Services,
    patient: Enrolment,
    held: patients.HeldRecords,
    event: events.StoredEvent,
    records: list[ClinicalRecord],
    now: datetime,
    *,
    replaying: bool = False,
) -> list[DeliveryOrder]:
    """Feed one event's records to the patient's pathway and record what it decided (the caller marks it processed).

    When the batch is `replaying`, the records are only kept: the replay evaluates them all.
    """
    orders: list[DeliveryOrder] = []
    amended = _amended_away(held, records)
    for record in [*amended, *records]:
        # What an amendment took away is withdrawn now, even in a replay: a replay keeps red flags.
        if not held.save(record, event.id) or (replaying and record not in amended):
            continue  # an older version than the one already applied, or the replay's to evaluate
        if not record.is_event:
            # A Patient is kept for the engine to read with the facts; alone it decides nothing. A
            # pathway that reads the age (2.0) learns it now; one that changes the age its episodes
            # opened at made the batch a replay (`_age_changed`).
            if patient.definition.runs_lines:
                patient.state, _ = pathway.apply_record(patient.definition, patient.state, record, now)
            continue
        orders += _checkpoints_due(connection, services, patient, record.at, now)
        # Evaluated as of its clinical time, as a dry run does (never later than now): so facts
        # arriving in order end where the dry run ends, and the moment marks what a late fact is.
        moment = min(record.at, now)
        try:
            patient.state, evaluation = pathway.apply_record(patient.definition, patient.state, record, moment)
        except pathway.RebuildRequired:
            history = patients.load_records(connection, event.patient_id)
            patient.state, evaluation = pathway.rebuild(patient.definition, history, patient.state, moment)
        orders += _persist(connection, services, patient, evaluation, now)
    return orders


def _is_deletion(event: events.StoredEvent) -> bool:
    return event.channel.endswith(DELETION_SUFFIX)


def _records_of(connection: sa.Connection, event: events.StoredEvent) -> list[ClinicalRecord]:
    """The records an event carries; a deletion retracts the record Carepath holds."""
    if not _is_deletion(event):
        return inbound.records_from_resource(event.body, resource_id=event.resource_id)
    held = patients.filed_under(connection, event.resource_type, event.resource_id)
    if held is None:
        return []  # never seen, so nothing to retract
    patient_id, clinical_time = held
    return [inbound.deleted_record(event.resource_type, event.resource_id, patient_id, clinical_time)]


def _amended_away(held_records: patients.HeldRecords, records: list[ClinicalRecord]) -> list[ClinicalRecord]:
    """A retraction of the held version when a new version of the resource is coded otherwise.

    The engine retracts a fact when its status says so (entered-in-error, a deletion); a code
    amended in the EHR (a red-flag finding corrected to a harmless one) keeps the status, yet what
    the earlier version asserted no longer holds: it is retracted first, so what rested only on it
    is withdrawn with that reason, and the new version is then read as a new fact.
    """
    if len(records) != 1 or records[0].status is not RecordStatus.ACTIVE:
        return []
    (record,) = records
    held = held_records.held(record)
    if held is None or held.status is not RecordStatus.ACTIVE or set(held.codes) == set(record.codes):
        return []
    if not patients.newer_version(record.source.version_id, held.source.version_id):
        return []  # the same or an older version (a repeat, a late arrival): not an amendment of the held one
    return [inbound.deleted_record(held.source.resource_type, held.source.resource_id, held.patient_id, held.at)]


def run_due_checkpoint(services: Services, patient_id: str) -> list[DeliveryOrder]:
    """Evaluate a patient's pending checkpoint if it is due."""
    try:
        with transaction(services.db) as connection:
            lock_patient(connection, patient_id)
            now = services.clock()
            orders = _received_first(connection, services, patient_id, now)
            if events.has_pending(connection, patient_id):
                # Facts received but held by a batch in progress (or failing): the checkpoint waits
                # for them, so it never decides on part of the facts; the next sweep brings it back.
                return orders
            patient = enrol(connection, services, patient_id)
            orders += _checkpoints_due(connection, services, patient, now, now, inclusive=True)
            save(connection, patient, now)
    except patients.StaleState as error:
        raise Contention(str(error)) from error
    except DefinitionUnavailable as unavailable:
        _alert(unavailable, "checkpoint left due")  # the sweep queues it again while it stays due
        return []
    return orders


def _received_first(
    connection: sa.Connection, services: Services, patient_id: str, now: datetime
) -> list[DeliveryOrder]:
    """Apply the patient's events still waiting for a batch before a checkpoint is evaluated as of now.

    The checkpoint must see every fact received by then, as the dry run of those facts would; left
    to their batch, a fact dated before the checkpoint would replay the pathway afterwards. Should
    they fail, the checkpoint goes on without them: their batch sets a poison event aside.
    """
    try:
        with connection.begin_nested():
            orders, _ = apply_pending(connection, services, patient_id, now)
            return orders
    except (patients.StaleState, DefinitionUnavailable):
        raise
    except Exception as error:  # noqa: BLE001 - the batch evaluates them again, counting attempts
        log.warning("pending events failed before a checkpoint", error=type(error).__name__)
        return []


@dataclass
class Enrolment:
    """One patient on the pathway version it started with, loaded under the patient's lock."""

    patient_id: str
    definition: Definition
    state: pathway.State
    revision: int  # 0 for a patient not yet stored


def enrol(connection: sa.Connection, services: Services, patient_id: str) -> Enrolment:
    """Load a patient's state and pinned definition; a new patient starts on the active version."""
    stored = patients.load_state(connection, patient_id)
    if stored is None:
        active = services.definitions.active(connection)
        return Enrolment(patient_id, active, pathway.new_state(active), 0)
    definition = services.definitions.get(connection, stored.definition)
    return Enrolment(patient_id, definition, pathway_state_from_json(stored.state), stored.revision)


def save(connection: sa.Connection, patient: Enrolment, now: datetime) -> None:
    """Store the patient's new state (raises StaleState if another writer got there first)."""
    patients.save_state(
        connection,
        patient.patient_id,
        definition=patient.definition.reference,
        state=pathway_state_to_json(patient.state),
        revision=patient.revision,
        checkpoint_due_at=patient.state.checkpoint_due_at,
        now=now,
    )


def _persist(
    connection: sa.Connection, services: Services, patient: Enrolment, evaluation: Evaluation, now: datetime
) -> list[DeliveryOrder]:
    return persist_evaluation(connection, services, patient.patient_id, patient.definition.reference, evaluation, now)


def _checkpoints_due(
    connection: sa.Connection,
    services: Services,
    patient: Enrolment,
    moment: datetime,
    now: datetime,
    *,
    inclusive: bool = False,
) -> list[DeliveryOrder]:
    """Fire checkpoints that fell due before `moment` (facts at an instant go before its checkpoint)."""
    orders: list[DeliveryOrder] = []
    while (due := patient.state.checkpoint_due_at) is not None and (due < moment or (inclusive and due <= moment)):
        if due > now:
            break
        patient.state, evaluation = pathway.run_checkpoint(patient.definition, patient.state, due)
        orders += _persist(connection, services, patient, evaluation, now)
    return orders


def recent_evaluations(services: Services, patient_id: str) -> list[dict[str, object]]:
    with transaction(services.db) as connection:
        return traces.evaluations_of(connection, patient_id)


def task_changed(services: Services, ehr_task: dict[str, Any]) -> list[DeliveryOrder]:
    """The EHR's copy of one of our Tasks changed: record it; a closed Task feeds the pathway."""
    try:
        key = outbound.key_of(ehr_task)
    except ValueError:
        return []  # not one of ours
    with transaction(services.db) as connection:
        found = decisions.proposal_by_key(connection, key)
        if found is None or found.resource_type != "Task":
            return []
        lock_patient(connection, found.patient_id)
        found = decisions.proposal_by_key(connection, key) or found  # as it is now we hold the lock
        if found.sync_pending:
            return []  # our newer change is on its way there; the sync settles which side wins
        merged = dict(found.resource)
        merged.update({k: ehr_task[k] for k in task_lifecycle.ADOPTED if k in ehr_task})
        if merged == found.resource:
            return []
        orders = apply_task_change(connection, services, found, merged, services.clock(), sync_pending=False)
    if orders:
        log.info("task closed in the EHR", decision=found.decision_key, status=merged.get("status"))
    return orders


def apply_task_change(
    connection: sa.Connection,
    services: Services,
    task: decisions.StoredProposal,
    changed: dict[str, Any],
    now: datetime,
    *,
    sync_pending: bool,
) -> list[DeliveryOrder]:
    """Store a new version of one of our Tasks (under the patient's lock); a Task that closes feeds the pathway.

    The one path for a change from either side: the EHR's (reconciliation) or a coordinator's (worklist).
    """
    decisions.update_proposal(connection, task.id, changed, now, sync_pending=sync_pending)
    if not (task_lifecycle.closes(task.status, changed.get("status")) and _closes_decision(connection, task)):
        return []
    patient = enrol(connection, services, task.patient_id)
    closed = pathway_key_of(task.decision_key)  # the engine knows every issue of a decision by one key
    patient.state, evaluation = pathway.close_task(patient.definition, patient.state, closed, now)
    orders = _persist(connection, services, patient, evaluation, now)
    orders += _checkpoints_due(connection, services, patient, now, now, inclusive=True)
    save(connection, patient, now)
    return orders


def _closes_decision(connection: sa.Connection, task: decisions.StoredProposal) -> bool:
    """The decision's own Task closes it; an approve Task only when the decision has no other."""
    if not task.identifier.endswith(outbound.APPROVE_SUFFIX):
        return True
    siblings = decisions.proposals_of_decision(connection, task.decision_id)
    return not any(p.resource_type == "Task" and not p.identifier.endswith(outbound.APPROVE_SUFFIX) for p in siblings)
