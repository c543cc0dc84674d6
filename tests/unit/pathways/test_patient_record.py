"""A Patient record is kept with the facts but is no fact: nothing 1.x decides changes with it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from pathways.engine import new_state, rebuild
from pathways.model import TIMELESS, ClinicalRecord, RecordStatus, SourceRef
from tests.unit.pathways.timeline import DEFINITION, Timeline, day, run, week


def patient_record(birth: date | None = date(1961, 3, 1)) -> ClinicalRecord:
    return ClinicalRecord(SourceRef("Patient", "p1", "1"), "p1", TIMELESS, RecordStatus.ACTIVE, (), birth_date=birth)


def test_a_dry_run_decides_and_traces_the_same_with_a_patient_record() -> None:
    t = Timeline()
    t.nonresponder()
    without = run(t, week(12))
    t.records.append(patient_record())
    with_patient = run(t, week(12))
    assert with_patient == without
    assert without and all("Patient" not in e.trigger for e in with_patient)


def test_a_rebuild_with_a_patient_record_ends_in_the_same_state() -> None:
    t = Timeline()
    t.nonresponder()
    before, _ = rebuild(DEFINITION, t.records, new_state(), day(50))
    after, _ = rebuild(DEFINITION, [patient_record(), *t.records], new_state(), day(50))
    assert after == before


def test_a_retracted_patient_record_changes_nothing_either() -> None:
    t = Timeline()
    t.nonresponder()
    without = run(t, week(12))
    t.records.append(replace(patient_record(None), status=RecordStatus.RETRACTED))
    assert run(t, week(12)) == without
