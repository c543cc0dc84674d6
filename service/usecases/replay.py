"""Replay a patient's pathway after a late fact, and bring what was decided in line with it.

Spec, "Evaluating as of a moment": a fact dated before a moment the pathway has already been
evaluated at (a late fact) replays the pathway with every fact now held, as a dry run would,
and the decisions follow the replay (`pathways.replay.compare`):
- made again: they stand, with the same identifier;
- no longer made: withdrawn while their Tasks are untouched (Tasks cancelled with the reason "the
  facts changed: <the late fact>", ServiceRequests revoked, here and in the EHR); one someone has
  acted on stands and its Tasks get a note saying the replay would not have made it;
- added: made now, stored and delivered like any other;
- red flags: never withdrawn by a replay, only by the retraction of their findings.
The patient's state becomes the replay's, which was fed the Task closures at their moments.

Runs under the patient's lock, inside the caller's transaction; returns the writes to queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

from pathways import pathway
from pathways.definition import Definition
from pathways.fhir import outbound
from pathways.model import ClinicalRecord, Decision, Evaluation, RuleCheck, pathway_key_of
from pathways.replay import Closure, Comparison, compare, replay, retracted, standing_red_flags
from pathways.rules.red_flags import STEP as RED_FLAG_STEP
from service.bootstrap import Services
from service.queue import DeliveryOrder
from service.store import decisions, patients, traces
from service.usecases.persist import persist_evaluation

log = structlog.get_logger(__name__)

FACTS_CHANGED = "the facts changed: {late}"
NOT_AGAIN = "Replayed with the facts now held (the facts changed: {late}), the pathway would not have made it."
RETRACTED = "every fact it rested on was retracted: {facts}"


@dataclass
class Replay:
    """One patient's pathway after a replay: its new state and the writes to queue."""

    state: pathway.State
    orders: list[DeliveryOrder]


def replay_patient(
    connection: sa.Connection,
    services: Services,
    patient_id: str,
    definition: Definition,
    state: pathway.State,
    late: str,
    now: datetime,
) -> Replay:
    """Replay the pathway of `patient_id` with every record held, `late` (a reference) being the late fact."""
    records = patients.load_records(connection, patient_id)
    closures = [Closure(key, at) for key, at in traces.task_closures(connection, patient_id)]
    replayed = replay(
        definition,
        records,
        _replayed_until(state, records, now),
        closures=closures,
        standing=standing_red_flags(state, records),
        keep_future=True,
    )
    active = {
        pathway_key_of(d["decision_key"]): str(d["step"])
        for d in decisions.decisions_of(connection, patient_id)
        if d["status"] == "active"
    }
    made = replayed.decisions()
    comparison = _with_changed(connection, services, patient_id, compare(replayed, active), made)
    by_retraction = {k: facts for k, facts in retracted(state, records).items() if k in active and k not in made}
    orders, checks = _withdraw_or_note(connection, services, patient_id, comparison, late, set(by_retraction), now)
    for withdrawal in replayed.item_withdrawals():
        # Part of a decision the replay replaced (an MRI by a CT): withdrawn as the live engine does.
        if withdrawal.decision_key in comparison.kept:
            orders += _withdraw(
                connection, patient_id, withdrawal.decision_key, withdrawal.reason, now, withdrawal.items
            )
    for key, facts in by_retraction.items():
        # As the incremental engine does: a decision whose every fact was retracted is withdrawn, red flags too.
        reason = RETRACTED.format(facts=", ".join(facts))
        orders += _withdraw(connection, patient_id, key, reason, now)
        checks.append(RuleCheck("replay.withdraw", True, reason, (("decision", key),)))
    summary = Evaluation(
        at=now,
        trigger=f"replay after the late fact {late}",
        decisions=comparison.added,
        checks=(_summary(comparison, len(records)), *checks),
        next_checkpoint_at=replayed.state.checkpoint_due_at,
    )
    orders += persist_evaluation(connection, services, patient_id, definition.reference, summary, now)
    log.info(
        "pathway replayed after a late fact",
        kept=len(comparison.kept),
        no_longer=len(comparison.no_longer),
        added=len(comparison.added),
    )
    return Replay(replayed.state, orders)


def _replayed_until(state: pathway.State, records: list[ClinicalRecord], now: datetime) -> datetime:
    """How far the replay goes: as far as the pathway had been evaluated, or the latest fact held.

    Checkpoints that fell due after both are left pending, for the sweep (or the next fact) to
    evaluate, exactly as for facts that arrive in order; replaying them now would decide on the
    part of a backlog that has arrived so far.
    """
    latest = max((r.at for r in records), default=now)
    return min(now, max(latest, state.horizon or latest))


def _summary(comparison: Comparison, records: int) -> RuleCheck:
    return RuleCheck(
        "replay",
        True,
        f"replayed {records} records in clinical-time order",
        (
            ("kept", comparison.kept),
            ("no_longer_made", comparison.no_longer),
            ("added", tuple(d.key for d in comparison.added)),
        ),
    )


def _withdraw_or_note(
    connection: sa.Connection,
    services: Services,
    patient_id: str,
    comparison: Comparison,
    late: str,
    by_retraction: set[str],
    now: datetime,
) -> tuple[list[DeliveryOrder], list[RuleCheck]]:
    """Withdraw what the replay no longer makes (or superseded) while untouched; note it when acted on."""
    orders: list[DeliveryOrder] = []
    checks: list[RuleCheck] = []
    reasons = [(key, FACTS_CHANGED.format(late=late)) for key in comparison.no_longer if key not in by_retraction]
    for key, reason in [*reasons, *comparison.superseded]:
        if decisions.acted_on(connection, patient_id, key):
            if key in comparison.no_longer:
                orders += _note(connection, services, patient_id, key, NOT_AGAIN.format(late=late), now)
            checks.append(RuleCheck("replay.stands", False, "acted on: it stands", (("decision", key),)))
            continue
        orders += _withdraw(connection, patient_id, key, reason, now)
        checks.append(RuleCheck("replay.withdraw", True, reason, (("decision", key),)))
    return orders, checks


def _withdraw(
    connection: sa.Connection, patient_id: str, key: str, reason: str, now: datetime, items: tuple[str, ...] = ()
) -> list[DeliveryOrder]:
    to_sync = decisions.withdraw(connection, patient_id, key, reason, now, items)
    return [] if to_sync is None else [DeliveryOrder(*to_sync)]  # the EHR's copies follow through the same path


def _with_changed(
    connection: sa.Connection, services: Services, patient_id: str, comparison: Comparison, made: dict[str, Decision]
) -> Comparison:
    """A decision made again under its key but proposing something else (a CT where an MRI stood,
    another specialty) is not the same decision: the stored one goes as no longer made, and the
    replay's is added (under a new issue once the stored one is withdrawn)."""
    changed = [
        made[key]
        for key in comparison.kept
        if made[key].step != RED_FLAG_STEP
        and _stored_substance(connection, patient_id, key)
        != _substance(outbound.render_decision(made[key], patient_id, services.device.author).resources)
    ]
    if not changed:
        return comparison
    keys = {d.key for d in changed}
    return replace(
        comparison,
        kept=tuple(k for k in comparison.kept if k not in keys),
        no_longer=(*comparison.no_longer, *sorted(keys)),
        added=(*comparison.added, *changed),
    )


Substance = frozenset[tuple[str, str, tuple[tuple[str, str], ...], str]]


def _substance(resources: Iterable[Mapping[str, Any]]) -> Substance:
    """What a decision proposes, whatever its wording: each Task's and ServiceRequest's item, codes and priority."""
    return frozenset(
        (
            outbound.key_of(r).rsplit("|", 1)[-1],
            str(r["resourceType"]),
            tuple((str(c.get("system")), str(c.get("code"))) for c in (r.get("code") or {}).get("coding", [])),
            str(r.get("priority")),
        )
        for r in resources
        if r.get("resourceType") in ("Task", "ServiceRequest")
    )


def _stored_substance(connection: sa.Connection, patient_id: str, key: str) -> Substance:
    found = decisions.decision_by_key(connection, patient_id, key)
    if found is None:
        return frozenset()
    return _substance([p.resource for p in decisions.proposals_of_decision(connection, found[0])])


def _note(
    connection: sa.Connection, services: Services, patient_id: str, key: str, text: str, now: datetime
) -> list[DeliveryOrder]:
    """Add `text` as a note to the decision's Tasks; their EHR copies follow."""
    found = decisions.decision_by_key(connection, patient_id, key)
    if found is None:
        return []
    decision_id, urgent = found
    noted_ids = []
    for task in decisions.proposals_of_decision(connection, decision_id):
        if task.resource_type != "Task":
            continue
        notes = list(task.resource.get("note") or [])
        if any(n.get("text") == text for n in notes):
            continue  # noted by an earlier replay of the same late fact
        noted = {**task.resource, "note": [*notes, {"text": text}]}
        # A copy still on its way to the EHR follows when its delivery records the id (`record_ehr_id`).
        decisions.update_proposal(connection, task.id, noted, now, sync_pending=decisions.IF_DELIVERED)
        noted_ids.append(task.id)
    synced = decisions.delivered(connection, noted_ids)
    return [DeliveryOrder(decision_id, urgent=urgent)] if synced and services.ehr is not None else []
