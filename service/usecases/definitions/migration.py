"""Moving enrolled patients to another pathway version: first a dry-run diff, then on purpose.

The diff replays each enrolled patient's records under their current version and under the
target version up to now (as `carepath simulate` does) and lists the proposals that would
differ. Migration is explicit and per patient: the patient's aggregates are rebuilt under the
target version; decisions already made stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from pathways import pathway
from pathways.definition import Definition
from pathways.model import ClinicalRecord, Decision
from pathways.simulate import simulate
from service.bootstrap import Services
from service.store import patients
from service.store.state_codec import pathway_state_from_json, pathway_state_to_json

DIFF_LIMIT = 200  # patients per diff request: replaying histories is the costly part


@dataclass(frozen=True)
class PatientDiff:
    patient_id: str
    current: str
    only_current: tuple[str, ...]  # proposals the current version makes and the target would not
    only_target: tuple[str, ...]  # proposals the target version would make and the current does not
    said: Mapping[str, str] = field(default_factory=dict)  # each of them in plain words, with its date

    def words(self, described: str) -> str:
        return self.said.get(described, described)


def _proposals(definition: Definition, records: list[ClinicalRecord], now: datetime) -> dict[str, str]:
    """Each decision the version makes, by its key, priority and codes: in plain words with its date."""
    return {_describe(d): _in_words(definition, d) for e in simulate(definition, records, now) for d in e.decisions}


def _in_words(definition: Definition, decision: Decision) -> str:
    """ "Imaging, routine, as of 14 Apr 2026: Lumbar spine MRI without contrast"."""
    title = next((s.title for s in definition.steps if s.id == decision.step), decision.step)
    on = f"{decision.at.day} {decision.at:%b %Y}"
    proposed = "; ".join(p.text for p in decision.proposals)
    return f"{title}, {decision.priority.value}, as of {on}: {proposed}"


def _describe(decision: Decision) -> str:
    codes = ",".join(sorted(c.code for p in decision.proposals for c in p.codes))
    return f"{decision.key} {decision.priority.value} [{codes}]"


def diff(
    services: Services, connection: sa.Connection, target: Definition, limit: int = DIFF_LIMIT
) -> list[PatientDiff]:
    """Which proposals would change, patient by patient, if the enrolled moved to `target`."""
    now = services.clock()
    changes = []
    for patient_id, current_reference in patients.enrolled_elsewhere(connection, target.url, target.reference, limit):
        records = patients.load_records(connection, patient_id)
        current = services.definitions.get(connection, current_reference)
        before, after = _proposals(current, records, now), _proposals(target, records, now)
        if before.keys() != after.keys():
            only_current, only_target = sorted(before.keys() - after.keys()), sorted(after.keys() - before.keys())
            said = {k: before[k] for k in only_current} | {k: after[k] for k in only_target}
            changes.append(PatientDiff(patient_id, current_reference, tuple(only_current), tuple(only_target), said))
    return changes


def migrate_patient(
    services: Services, connection: sa.Connection, patient_id: str, target: Definition, now: datetime
) -> pathway.State | None:
    """Rebuild one patient's aggregates under `target` and pin the patient to it (caller holds the lock)."""
    stored = patients.load_state(connection, patient_id)
    if stored is None or stored.definition == target.reference:
        return None
    state = pathway.state_for(target, pathway_state_from_json(stored.state))
    records = patients.load_records(connection, patient_id)
    # As of the last moment the pathway was evaluated, not now: rebuilding at now would move that
    # moment, and the next fact, dated before the migration but after every evaluation, would count
    # as late and replay the patient under the target, withdrawing the decisions that stand.
    state, _ = pathway.rebuild(target, records, state, state.horizon or now)
    patients.save_state(
        connection,
        patient_id,
        definition=target.reference,
        state=pathway_state_to_json(state),
        revision=stored.revision,
        checkpoint_due_at=state.checkpoint_due_at,
        now=now,
    )
    return state
