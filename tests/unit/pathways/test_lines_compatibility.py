"""Compatibility (spec 2.0, section 0.2): a spine-only patient decides exactly what 1.1 decides.

Journeys of spine facts — visits, measures, adherence, barriers, red-flag findings, diagnoses,
imaging and injections, newer versions, retractions and Task closures, arriving in any order —
are fed to the 1.1 engine and to the engine of episode lines with a definition that adds the
joint lines; every evaluation must make the same decisions and withdrawals, apart from the
definition version they name.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pathways.model import ClinicalRecord, Decision, Evaluation
from tests.unit.pathways.lines_timeline import LINES, RegionalPatient
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    CERVICAL_RADICULOPATHY,
    CHRONIC_PAIN,
    EPIDURAL_LUMBAR,
    FEVER,
    FRACTURE,
    LUMBAR_DISC,
    MALIGNANCY,
    MRI_CONTRAINDICATED,
    MRI_LUMBAR,
    NIGHT_PAIN,
    RADICULOPATHY,
    V1_1,
    WEAKNESS,
    WEIGHT_LOSS,
    Patient,
    Timeline,
    day,
    new_version,
    retracted,
)

KINDS = (
    "visit",
    "visit",
    "visit",
    "pain",
    "pain",
    "odi",
    "psfs",
    "adherence",
    "barrier",
    "fever",
    "weight-loss",
    "night-pain",
    "weakness",
    "cauda-equina",
    "malignancy",
    "radicular",
    "cervical",
    "disc",
    "fracture",
    "chronic-pain",
    "mri",
    "injection",
    "contraindicated",
)


def _record(t: Timeline, kind: str, at: float, value: int) -> ClinicalRecord:
    builders = {
        "visit": lambda: t.visit(at),
        "pain": lambda: t.pain(at, value % 11),
        "odi": lambda: t.odi(at, value),
        "psfs": lambda: t.psfs(at, value % 11),
        "adherence": lambda: t.adherence(at, value),
        "barrier": lambda: t.barrier(at, "barrier-time"),
        "fever": lambda: t.finding(at, FEVER),
        "weight-loss": lambda: t.finding(at, WEIGHT_LOSS),
        "night-pain": lambda: t.finding(at, NIGHT_PAIN),
        "weakness": lambda: t.finding(at, WEAKNESS),
        "cauda-equina": lambda: t.finding(at, CAUDA_EQUINA),
        "malignancy": lambda: t.condition(at, MALIGNANCY, clinical="remission"),
        "radicular": lambda: t.condition(at, RADICULOPATHY, verification="confirmed" if value % 3 else "provisional"),
        "cervical": lambda: t.condition(at, CERVICAL_RADICULOPATHY),
        "disc": lambda: t.condition(at, LUMBAR_DISC),
        "fracture": lambda: t.condition(at, FRACTURE),
        "chronic-pain": lambda: t.condition(at, CHRONIC_PAIN),
        "mri": lambda: t.report(at, MRI_LUMBAR),
        "injection": lambda: t.procedure(at, EPIDURAL_LUMBAR),
        "contraindicated": lambda: t.finding(at, MRI_CONTRAINDICATED),
    }
    return builders[kind]()


@st.composite
def journeys(draw: st.DrawFn) -> list[tuple[str, object, float]]:
    """Arrivals: (`record`, record, arrival day) or (`close`, index of a decision to close, day), in arrival order."""
    t = Timeline()
    events: list[tuple[str, object, float]] = []
    newest: dict[str, ClinicalRecord] = {}
    clock = 0.0
    for _ in range(draw(st.integers(1, 40))):
        clock += draw(st.sampled_from((0, 0, 1, 3, 7, 14)))
        action = draw(st.sampled_from(("add",) * 8 + ("revise", "retract", "close")))
        if action == "close":
            events.append(("close", draw(st.integers(0, 5)), clock))
            continue
        at = clock - draw(st.sampled_from((0, 0, 0, 1, 10, 40)))  # most facts on time, some late
        if action != "add" and newest:
            old = newest[draw(st.sampled_from(sorted(newest)))]
            record = retracted(old) if action == "retract" else new_version(old, at=day(at))
        else:
            record = _record(t, draw(st.sampled_from(KINDS)), at, draw(st.integers(0, 100)))
        newest[record.source.reference] = record
        events.append(("record", record, clock))
    events.append(("end", None, clock + draw(st.sampled_from((0, 30, 120, 400)))))
    return events


def _outcome(evaluations: list[Evaluation]) -> list[tuple[tuple[Decision, ...], tuple[object, ...]]]:
    """Each evaluation's decisions (without the definition version and 2.0's region tag) and withdrawals."""
    return [
        (tuple(replace(d, definition="", region=None) for d in e.decisions), tuple(sorted(e.withdrawals, key=repr)))
        for e in evaluations
    ]


def _drive(patient: Patient | RegionalPatient, events: list[tuple[str, object, float]]) -> None:
    for kind, item, at in events:
        if kind == "record":
            assert isinstance(item, ClinicalRecord)
            patient.receive(item, now=max(at, (item.at - day(0)) / timedelta(days=1)))
        elif kind == "close":
            assert isinstance(item, int)
            open_ones = [d for d in patient.decisions]
            if open_ones:
                patient.close(open_ones[item % len(open_ones)], at)
        else:
            patient.advance(at)


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)  # the same 1,000 in every run
@given(journeys())
def test_a_spine_only_patient_decides_exactly_what_1_1_decides(events: list[tuple[str, object, float]]) -> None:
    v1, v2 = Patient(V1_1), RegionalPatient(LINES)
    _drive(v1, events)
    _drive(v2, events)
    assert _outcome(v2.evaluations) == _outcome(v1.evaluations)
    assert v2.state.whole  # one lane: the whole pathway, as in 1.x
