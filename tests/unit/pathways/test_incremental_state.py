"""Incremental state: JSON round trip, out-of-order facts, newer versions, retractions, rebuilds."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathways.engine import RebuildRequired, apply_record, rebuild
from pathways.model import ClinicalRecord
from pathways.state import PatientState, new_state
from service.store.state_codec import state_from_json, state_to_json
from tests.unit.pathways.timeline import (
    CAUDA_EQUINA,
    CHRONIC_PAIN,
    DEFINITION,
    FEVER,
    FRACTURE,
    MRI_LUMBAR,
    RADICULOPATHY,
    Patient,
    Timeline,
    day,
    new_version,
    retracted,
    week,
)


def _live(records: list[ClinicalRecord], until: float) -> Patient:
    patient = Patient()
    for record in records:
        patient.receive(record)
    patient.advance(until)
    return patient


def test_state_json_round_trips_exactly() -> None:
    t = Timeline()
    t.nonresponder()
    t.barrier(30, "barrier-time")
    t.finding(30, CAUDA_EQUINA)
    t.condition(20, RADICULOPATHY, verification="provisional")
    t.report(25, MRI_LUMBAR)
    patient = _live(t.records, 50)
    state = patient.state
    assert state.checkpoint is not None and state.checkpoint.held
    assert [i.code for i in state.interventions] == [MRI_LUMBAR]  # the study, to name it in explanations
    data = json.loads(json.dumps(state_to_json(state)))
    assert state_from_json(data) == state
    assert state_to_json(state_from_json(data)) == data
    born = replace(state, birth_date=date(1961, 6, 1))
    assert state_from_json(json.loads(json.dumps(state_to_json(born)))) == born


def test_a_state_stored_before_imaging_kept_its_code_still_reads() -> None:
    t = Timeline()
    t.nonresponder()
    t.report(25, MRI_LUMBAR)
    data = json.loads(json.dumps(state_to_json(_live(t.records, 30).state)))
    data["interventions"] = [entry[:3] for entry in data["interventions"]]
    assert [i.code for i in state_from_json(data).interventions] == [None]


def test_a_state_stored_before_decisions_kept_their_items_still_reads() -> None:
    t = Timeline()
    t.weekly_visits(2)
    t.finding(3, CAUDA_EQUINA)
    data = json.loads(json.dumps(state_to_json(_live(t.records, 5).state)))
    assert [f["items"] for f in data["fired"]] == [["task", "physician-review"]]
    for fired in data["fired"]:
        del fired["items"]
    assert [f.items for f in state_from_json(data).fired] == [()]


def test_an_unknown_state_format_is_refused() -> None:
    data = state_to_json(new_state())
    data["format"] = 99
    with pytest.raises(ValueError, match="unknown patient state format"):
        state_from_json(data)


def test_a_late_older_value_within_the_window_becomes_the_baseline() -> None:
    t = Timeline()
    t.nonresponder()  # pain 7 at t0 → 6: not a response
    patient = _live(t.records, 41)
    patient.receive(t.pain(-10, 8), now=41)  # arrives late: 8 → 6 is a response
    assert patient.state.measure("pain").baseline is not None
    assert patient.state.measure("pain").baseline.number == 8
    patient.advance(60)
    assert patient.decisions == []


def test_a_late_value_before_the_baseline_window_is_ignored() -> None:
    t = Timeline()
    t.nonresponder()
    patient = _live(t.records, 41)
    patient.receive(t.pain(-15, 8), now=41)
    assert patient.state.measure("pain").baseline.number == 7  # type: ignore[union-attr]


def test_a_late_earlier_pt_visit_needs_a_rebuild_and_moves_t0_and_the_first_checkpoint() -> None:
    t = Timeline()
    t.weekly_visits(3, start=10)
    patient = _live(t.records, 12)
    assert patient.state.checkpoint_due_at == day(10) + timedelta(weeks=6)
    early = t.visit(0)
    assert patient.state.needs_rebuild_for(early)
    with pytest.raises(RebuildRequired):
        apply_record(DEFINITION, patient.state, early, day(13))
    patient.receive(early, now=13)
    assert patient.state.t0 == day(0)
    assert patient.state.checkpoint_due_at == week(6)


def test_the_first_visit_after_earlier_measures_needs_a_rebuild_that_finds_the_baseline() -> None:
    t = Timeline()
    t.pain(-30, 9)  # outside t0 − 14 days
    t.pain(-5, 7)  # the baseline
    visit = t.visit(0)
    patient = Patient()
    for record in t.records[:2]:
        patient.receive(record)
    assert patient.state.needs_rebuild_for(visit)
    patient.receive(visit)
    assert patient.state.measure("pain").baseline.number == 7  # type: ignore[union-attr]


def test_a_retracted_latest_value_needs_a_rebuild_and_the_previous_value_becomes_latest() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.adherence(39, 92)
    t.pain(0, 7)
    t.pain(20, 6)
    latest = t.pain(40, 3)
    patient = _live(t.records, 41)
    retraction = retracted(latest)
    assert patient.state.needs_rebuild_for(retraction)
    patient.receive(retraction, now=41)
    assert patient.state.measure("pain").latest.number == 6  # type: ignore[union-attr]
    patient.advance(43)
    assert [d.step for d in patient.decisions] == ["reassessment"]


def test_a_newer_version_replaces_the_older_one() -> None:
    t = Timeline()
    t.weekly_visits(3)
    weakness = t.finding(5, FEVER)
    patient = _live(t.records, 6)
    patient.receive(new_version(weakness, value_boolean=False), now=7)
    assert patient.state.findings == ()


def test_a_decision_stands_when_the_facts_it_rested_on_change_value() -> None:
    t = Timeline()
    t.nonresponder()
    patient = _live(t.records, 43)
    latest = next(r for r in t.records if r.at == day(40) and r.codes[0].code == "72514-3")
    evaluation = patient.receive(new_version(latest, value_number=2), now=44)
    assert evaluation.withdrawals == ()
    assert [d.step for d in patient.decisions] == ["reassessment"]


def test_a_decision_is_withdrawn_when_every_fact_it_rested_on_is_retracted() -> None:
    t = Timeline()
    t.weekly_visits(3)
    fracture = t.condition(5, FRACTURE)
    patient = _live(t.records, 6)
    consult = patient.decisions[0]
    evaluation = patient.receive(retracted(fracture), now=7)
    assert [w.decision_key for w in evaluation.withdrawals] == [consult.key]


def test_withdrawing_an_urgent_red_flag_releases_its_hold() -> None:
    t = Timeline()
    t.nonresponder()
    flag = t.finding(30, CAUDA_EQUINA)
    patient = _live(t.records, 43)
    assert [d.step for d in patient.decisions] == ["red-flags"]
    evaluation = patient.receive(retracted(flag), now=44)
    assert [w.decision_key for w in evaluation.withdrawals] == ["1/red-flags:major/1"]
    assert [d.step for d in evaluation.decisions] == ["reassessment"]


def test_rebuild_keeps_decisions_and_does_not_fire_them_twice() -> None:
    t = Timeline()
    t.nonresponder()
    t.condition(week(7), CHRONIC_PAIN)
    patient = _live(t.records, week(8))
    before = [d.key for d in patient.decisions]
    state, evaluation = rebuild(DEFINITION, t.records, patient.state, week(8))
    assert evaluation.decisions == ()
    assert [f.key for f in state.fired] == before


def test_state_size_does_not_grow_with_observations() -> None:
    def size(observations: int) -> int:
        t = Timeline()
        t.weekly_visits(9)
        patient = _live(t.records, 1)
        state = patient.state
        for i in range(observations):
            record = t.pain(1 + i * 30 / observations, 5 + i % 3)
            state, _ = apply_record(DEFINITION, state, record, record.at)
        return len(json.dumps(state_to_json(state)))

    assert size(10) == size(1000)


# Live incremental folding (with the rebuilds it asks for) keeps the same aggregates as a rebuild.

KINDS = ("visit", "pain", "odi", "adherence", "barrier", "fever", "radicular")


@st.composite
def histories(draw: st.DrawFn) -> list[ClinicalRecord]:
    """Records in arrival order: new facts, newer versions (moved in time) and retractions."""
    t = Timeline()
    arrivals: list[ClinicalRecord] = []
    newest: dict[str, ClinicalRecord] = {}
    for _ in range(draw(st.integers(1, 25))):
        action = draw(st.sampled_from(("add", "add", "add", "revise", "retract")))
        at = draw(st.integers(-40, 80)) + draw(st.sampled_from((0, 0.5)))
        if action != "add" and newest:
            old = newest[draw(st.sampled_from(sorted(newest)))]
            record = retracted(old) if action == "retract" else new_version(old, at=day(at))
        else:
            record = _record(t, draw(st.sampled_from(KINDS)), at, draw(st.integers(0, 100)))
        newest[record.source.reference] = record
        arrivals.append(record)
    return arrivals


def _record(t: Timeline, kind: str, at: float, value: int) -> ClinicalRecord:
    builders = {
        "visit": lambda: t.visit(at),
        "pain": lambda: t.pain(at, value % 11),
        "odi": lambda: t.odi(at, value),
        "adherence": lambda: t.adherence(at, value),
        "barrier": lambda: t.barrier(at, "barrier-time"),
        "fever": lambda: t.finding(at, FEVER),
        "radicular": lambda: t.condition(at, RADICULOPATHY),
    }
    return builders[kind]()


def _aggregates(state: PatientState, now_day: float) -> tuple[object, ...]:
    window = day(now_day) - timedelta(days=30)
    return (
        set(state.visits),
        state.measures,
        state.adherence,
        {b for b in state.barriers if b.at >= window},
        set(state.findings),
        set(state.diagnoses),
        state.t0,
    )


@settings(max_examples=60, deadline=None)
@given(histories())
def test_incremental_aggregates_equal_a_rebuild_from_every_record(arrivals: list[ClinicalRecord]) -> None:
    patient = Patient()
    now = min(r.at for r in arrivals)
    for record in arrivals:
        now = max(now, record.at)
        patient.state, _ = _receive(patient.state, record, list(patient.stored.values()), now)
        patient.stored[record.source.reference] = record
    rebuilt, _ = rebuild(DEFINITION, list(patient.stored.values()), patient.state, now)
    now_day = (now - day(0)) / timedelta(days=1)
    assert _aggregates(patient.state, now_day) == _aggregates(rebuilt, now_day)


def _receive(state: PatientState, record: ClinicalRecord, stored: list[ClinicalRecord], now: object):  # type: ignore[no-untyped-def]
    everything = [*stored, record]
    if state.needs_rebuild_for(record):
        return rebuild(DEFINITION, everything, state, now)  # type: ignore[arg-type]
    return apply_record(DEFINITION, state, record, now)  # type: ignore[arg-type]


def test_only_the_latest_record_of_each_barrier_is_kept_and_its_retraction_needs_a_rebuild() -> None:
    t = Timeline()
    t.weekly_visits(9)
    t.adherence(39, 92)
    t.pain(0, 7)
    t.pain(40, 6)
    t.barrier(20, "barrier-time")
    later = t.barrier(30, "barrier-time")
    patient = _live(t.records, 41)
    assert [b.source for b in patient.state.barriers] == [later.source]
    retraction = retracted(later)
    assert patient.state.needs_rebuild_for(retraction)
    patient.receive(retraction, now=41)
    assert [b.at for b in patient.state.barriers] == [day(20)]  # the earlier one, still within 30 days
    patient.advance(43)
    assert [d.step for d in patient.decisions] == ["adherence"]


def test_rebuild_withdraws_a_decision_once_its_last_reason_is_retracted() -> None:
    t = Timeline()
    t.nonresponder()
    patient = _live(t.records, 43)
    reassessment = patient.decisions[0]
    reasons = [r for r in t.records if r.source in reassessment.reasons]
    assert {r.source.resource_type for r in reasons} == {"Observation"}
    withdrawals = []
    for reason in reasons:
        retraction = retracted(reason)
        assert patient.state.needs_rebuild_for(retraction)  # each held a baseline, latest or adherence
        withdrawals += patient.receive(retraction, now=44).withdrawals
    assert [w.decision_key for w in withdrawals] == [reassessment.key]
    assert withdrawals[0].reason.startswith("every fact it rested on was retracted")
