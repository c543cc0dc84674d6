"""Compact hand-made timelines of one patient's `ClinicalRecord`s, and drivers to replay them.

t = Timeline()
t.visits(0, 7, 14, 21, 28, 35)
t.pain(0, 7); t.pain(40, 6)
decisions = fired(simulate(DEFINITION, t.records, day(60)))
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pathways.definition import (
    SHIPPED_VERSIONS,
    Definition,
    DefinitionError,
    load_definition_file,
    load_definition_text,
)
from pathways.engine import apply_record, close_task, rebuild, run_checkpoint
from pathways.model import (
    CAREPATH_CODE_SYSTEM,
    ClinicalRecord,
    Coding,
    Decision,
    Evaluation,
    RecordStatus,
    SourceRef,
)
from pathways.simulate import simulate
from pathways.state import PatientState, new_state

DEFINITION = load_definition_file(SHIPPED_VERSIONS[0])
"""The shipped pt-nonresponse 1.0.0: the rules of spec 1.0, which patients enrolled on it keep."""
V1_1 = load_definition_file(SHIPPED_VERSIONS[1])
"""The shipped pt-nonresponse 1.1.0: the rules new in spec 1.1 are switched on by its data."""
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
LOCAL = CAREPATH_CODE_SYSTEM

PT = (SNOMED, "91251008")
PAIN = (LOINC, "72514-3")
PAIN_GENERIC = (LOINC, "38208-5")
ODI = (LOINC, "97909-6")
PSFS = (LOCAL, "psfs-mean-score")
ADHERENCE = (LOCAL, "hep-adherence-pct")
BARRIER = (LOCAL, "hep-barrier")
MRI_CONTRAINDICATED = (LOCAL, "mri-contraindicated")
# Red flags
CAUDA_EQUINA = (SNOMED, "192970008")
CAUDA_EQUINA_BLADDER = (SNOMED, "12454008")
FEVER = (SNOMED, "386661006")
CHILLS = (SNOMED, "43724002")
WEIGHT_LOSS = (SNOMED, "422868009")
WEIGHT_LOSS_SYNONYM = (SNOMED, "448765001")
WEAKNESS = (SNOMED, "26544005")
NUMBNESS = (SNOMED, "44077006")
NIGHT_PAIN = (LOCAL, "rf-night-pain")
MALIGNANCY = (SNOMED, "363346000")
# Diagnoses
RADICULOPATHY = (SNOMED, "128196005")
CERVICAL_RADICULOPATHY = (SNOMED, "54404000")
LUMBAR_DISC = (SNOMED, "202708005")
STENOSIS = (ICD10, "M48.061")
CERVICAL_STENOSIS = (ICD10, "M48.02")
SPONDYLOLISTHESIS = (SNOMED, "274152003")
FRACTURE = (SNOMED, "50448004")
CERVICAL_FRACTURE = (SNOMED, "125606003")
CHRONIC_PAIN = (SNOMED, "82423001")
# Interventions
EPIDURAL_LUMBAR = (CPT, "62323")
MRI_LUMBAR = (CPT, "72148")


def day(n: float) -> datetime:
    """T0 + n days (T0 is the first PT visit in most timelines)."""
    return T0 + timedelta(days=n)


def week(n: float) -> datetime:
    return day(7 * n)


def coding(code: tuple[str, str]) -> Coding:
    return Coding(*code)


class Timeline:
    """Builds records with fresh ids; each builder returns the record it added."""

    def __init__(self, patient: str = "p1") -> None:
        self.patient = patient
        self.records: list[ClinicalRecord] = []
        self._count = 0

    def add(
        self, kind: str, at: float | datetime, codes: tuple[tuple[str, str], ...], **fields: object
    ) -> ClinicalRecord:
        self._count += 1
        resource_id = str(fields.pop("resource_id", f"{kind[:3].lower()}{self._count:04d}"))
        moment = at if isinstance(at, datetime) else day(at)
        record = ClinicalRecord(
            source=SourceRef(kind, resource_id, str(fields.pop("version", "1"))),
            patient_id=self.patient,
            at=moment,
            status=fields.pop("status", RecordStatus.ACTIVE),  # type: ignore[arg-type]
            codes=tuple(coding(c) for c in codes),
            **fields,  # type: ignore[arg-type]
        )
        self.records.append(record)
        return record

    def visit(self, at: float | datetime, **fields: object) -> ClinicalRecord:
        return self.add("Encounter", at, (PT,), **fields)

    def visits(self, *days: float) -> list[ClinicalRecord]:
        return [self.visit(d) for d in days]

    def weekly_visits(self, count: int, start: float = 0) -> list[ClinicalRecord]:
        """`count` visits, one every 4 days from `start` (t0 = `start`)."""
        return [self.visit(start + 4 * i) for i in range(count)]

    def measure(self, code: tuple[str, str], at: float | datetime, value: float, **fields: object) -> ClinicalRecord:
        return self.add("Observation", at, (code,), value_number=value, **fields)

    def pain(self, at: float | datetime, value: float, **fields: object) -> ClinicalRecord:
        return self.measure(PAIN, at, value, **fields)

    def odi(self, at: float | datetime, value: float, **fields: object) -> ClinicalRecord:
        return self.measure(ODI, at, value, **fields)

    def psfs(self, at: float | datetime, value: float, **fields: object) -> ClinicalRecord:
        return self.measure(PSFS, at, value, **fields)

    def adherence(self, at: float | datetime, pct: float, **fields: object) -> ClinicalRecord:
        return self.add("Observation", at, (ADHERENCE,), value_number=pct, value_unit="%", **fields)

    def barrier(self, at: float | datetime, *barriers: str) -> ClinicalRecord:
        values = tuple(Coding(LOCAL, b) for b in barriers)
        return self.add("Observation", at, (BARRIER,), value_codes=values)

    def finding(
        self, at: float | datetime, code: tuple[str, str], present: bool | None = True, **fields: object
    ) -> ClinicalRecord:
        return self.add("Observation", at, (code,), value_boolean=present, **fields)

    def condition(
        self,
        at: float | datetime,
        *codes: tuple[str, str],
        verification: str | None = "confirmed",
        clinical: str | None = "active",
        **fields: object,
    ) -> ClinicalRecord:
        return self.add("Condition", at, codes, verification=verification, clinical_status=clinical, **fields)

    def procedure(self, at: float | datetime, code: tuple[str, str], **fields: object) -> ClinicalRecord:
        return self.add("Procedure", at, (code,), **fields)

    def report(self, at: float | datetime, code: tuple[str, str], **fields: object) -> ClinicalRecord:
        return self.add("DiagnosticReport", at, (code,), **fields)

    def nonresponder(self, weeks: float = 6, visits: int = 9) -> None:
        """Adherent non-responder by the first checkpoint: Pain 7 → 6, ODI 42 → 40, adherence 92 %."""
        self.weekly_visits(visits)
        self.pain(0, 7)
        self.odi(0, 42)
        self.pain(7 * weeks - 2, 6)
        self.odi(7 * weeks - 2, 40)
        self.adherence(7 * weeks - 3, 92)


def load(data: Any) -> Definition:
    """A definition from parsed data, read as its JSON text is."""
    return load_definition_text(json.dumps(data))


def problems_of(data: Any) -> list[str]:
    """Every problem the definition `data` is refused with, as `path: reason`."""
    with pytest.raises(DefinitionError) as caught:
        load(data)
    return [str(p) for p in caught.value.problems]


def nonresponder() -> Timeline:
    """An adherent non-responder at six weeks (see `Timeline.nonresponder`)."""
    t = Timeline()
    t.nonresponder()
    return t


def only_visits() -> Timeline:
    """Nine PT visits and no measure: nothing is evaluable."""
    t = Timeline()
    t.weekly_visits(9)
    return t


def not_adherent() -> Timeline:
    """Pain 7 → 6 with adherence 50 %: a non-responder who is not adherent."""
    t = Timeline()
    t.weekly_visits(9)
    t.pain(0, 7)
    t.pain(40, 6)
    t.adherence(39, 50)
    return t


def new_version(record: ClinicalRecord, **changes: object) -> ClinicalRecord:
    """The next version of `record` with `changes` (e.g. status, at, value_number)."""
    version = str(int(record.source.version_id or "1") + 1)
    return replace(record, source=replace(record.source, version_id=version), **changes)  # type: ignore[arg-type]


def retracted(record: ClinicalRecord) -> ClinicalRecord:
    return new_version(record, status=RecordStatus.RETRACTED)


def run(timeline: Timeline, until: float | datetime, definition: Definition = DEFINITION) -> list[Evaluation]:
    """Dry run of the timeline up to `until` (days after T0, or a moment)."""
    return simulate(definition, timeline.records, until if isinstance(until, datetime) else day(until))


def fired(evaluations: list[Evaluation]) -> list[Decision]:
    return [d for e in evaluations for d in e.decisions]


def steps(evaluations: list[Evaluation]) -> list[str]:
    return [d.step for d in fired(evaluations)]


def only(evaluations: list[Evaluation], step: str) -> Decision:
    """The single decision of `step`; fails when there are none or several."""
    found = [d for d in fired(evaluations) if d.step == step]
    assert len(found) == 1, f"expected one {step} decision, got {[(d.step, d.at) for d in fired(evaluations)]}"
    return found[0]


def codes_of(decision: Decision, item: str) -> set[str]:
    return {c.code for p in decision.proposals if p.item == item for c in p.codes}


def checks(evaluations: list[Evaluation], rule: str) -> list[tuple[bool, str]]:
    return [(c.fired, c.reason) for e in evaluations for c in e.checks if c.rule == rule]


class Patient:
    """Feeds records one at a time as the live worker does: due checkpoints first, rebuild when asked."""

    def __init__(self, definition: Definition = DEFINITION) -> None:
        self.definition = definition
        self.state: PatientState = new_state()
        self.stored: dict[str, ClinicalRecord] = {}
        self.evaluations: list[Evaluation] = []

    def receive(self, record: ClinicalRecord, now: float | datetime | None = None) -> Evaluation:
        moment = record.at if now is None else (now if isinstance(now, datetime) else day(now))
        self.advance(min(record.at, moment), inclusive=False)
        self.stored[record.source.reference] = record
        if self.state.needs_rebuild_for(record):
            self.state, evaluation = rebuild(self.definition, list(self.stored.values()), self.state, moment)
        else:
            self.state, evaluation = apply_record(self.definition, self.state, record, moment)
        self.evaluations.append(evaluation)
        return evaluation

    def advance(self, until: float | datetime, inclusive: bool = True) -> None:
        """Run the checkpoints that fall due up to `until`, each at its due moment."""
        moment = until if isinstance(until, datetime) else day(until)
        while (due := self.state.checkpoint_due_at) is not None and (due < moment or (inclusive and due <= moment)):
            self.state, evaluation = run_checkpoint(self.definition, self.state, due)
            self.evaluations.append(evaluation)

    def close(self, decision: Decision, at: float | datetime) -> Evaluation:
        moment = at if isinstance(at, datetime) else day(at)
        self.advance(moment, inclusive=False)
        self.state, evaluation = close_task(self.definition, self.state, decision.key, moment)
        self.evaluations.append(evaluation)
        return evaluation

    @property
    def decisions(self) -> list[Decision]:
        return fired(self.evaluations)
