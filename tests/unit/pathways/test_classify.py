"""Classifying records into pathway facts through the definition's bindings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pathways.classify import classify
from pathways.model import Coding, RecordStatus
from tests.unit.pathways.timeline import (
    BARRIER,
    CAUDA_EQUINA,
    CERVICAL_RADICULOPATHY,
    DEFINITION,
    EPIDURAL_LUMBAR,
    LOCAL,
    LOINC,
    LUMBAR_DISC,
    MRI_CONTRAINDICATED,
    MRI_LUMBAR,
    PAIN_GENERIC,
    RADICULOPATHY,
    SNOMED,
    Timeline,
)


def test_a_finished_encounter_with_a_bound_code_is_a_pt_visit() -> None:
    t = Timeline()
    assert classify(DEFINITION, t.visit(0)).pt_visit
    other = t.add("Encounter", 0, ((SNOMED, "185349003"),))  # some other encounter type
    assert not classify(DEFINITION, other).pt_visit


def test_an_unfinished_encounter_does_not_count() -> None:
    facts = classify(DEFINITION, Timeline().visit(0, status=RecordStatus.INACTIVE))
    assert facts.pt_visit and not facts.counts


def test_any_bound_pain_code_is_the_one_pain_measure() -> None:
    facts = classify(DEFINITION, Timeline().measure(PAIN_GENERIC, 0, 6.5))
    assert facts.measure_values == (("pain", 6.5),)


def test_a_measure_without_a_value_is_not_read() -> None:
    t = Timeline()
    facts = classify(DEFINITION, t.add("Observation", 0, (PAIN_GENERIC,)))
    assert facts.measure_values == () and not facts.bound


def test_codes_match_on_system_and_code_never_display() -> None:
    t = Timeline()
    wrong_system = t.add("Observation", 0, (("http://example.org/other", "72514-3"),), value_number=5)
    assert not classify(DEFINITION, wrong_system).bound
    pain_display = Coding(LOINC, "11111-1", "Pain severity - 0-10 verbal numeric rating [Score] - Reported")
    same_words = replace(t.pain(0, 5), codes=(pain_display,))
    assert not classify(DEFINITION, same_words).bound


def test_a_barrier_observation_names_its_barrier_values() -> None:
    t = Timeline()
    facts = classify(DEFINITION, t.barrier(0, "barrier-time", "barrier-forgetting"))
    assert set(facts.barriers) == {"barrier-time", "barrier-forgetting"}
    unknown = t.add("Observation", 0, (BARRIER,), value_codes=(Coding(LOCAL, "barrier-weather"),))
    assert classify(DEFINITION, unknown).barriers == ()


@pytest.mark.parametrize(("present", "found"), [(True, True), (None, True), (False, False)])
def test_a_finding_is_present_unless_its_value_is_false(present: bool | None, found: bool) -> None:
    facts = classify(DEFINITION, Timeline().finding(0, CAUDA_EQUINA, present=present))
    assert (facts.findings == ("cauda-equina",)) is found


def test_mri_contraindication_is_read_from_an_observation_or_a_condition() -> None:
    t = Timeline()
    assert classify(DEFINITION, t.finding(0, MRI_CONTRAINDICATED)).mri_contraindicated
    assert classify(DEFINITION, t.condition(0, MRI_CONTRAINDICATED)).mri_contraindicated


@pytest.mark.parametrize(
    ("clinical", "verification", "counts", "triggers"),
    [
        ("active", "confirmed", True, True),
        (None, None, True, True),
        ("recurrence", "confirmed", True, True),
        ("relapse", None, True, True),
        ("active", "provisional", True, False),
        ("active", "differential", True, False),
        ("active", "refuted", False, False),
        ("active", "entered-in-error", False, False),
        ("resolved", "confirmed", False, True),
        ("inactive", "confirmed", False, True),
    ],
)
def test_diagnoses_count_and_trigger_by_their_statuses(
    clinical: str | None, verification: str | None, counts: bool, triggers: bool
) -> None:
    facts = classify(DEFINITION, Timeline().condition(0, RADICULOPATHY, verification=verification, clinical=clinical))
    assert facts.diagnosis_groups == ("radicular",)
    assert (facts.counts, facts.triggers) == (counts, triggers)


def test_a_code_may_belong_to_several_diagnosis_groups() -> None:
    facts = classify(DEFINITION, Timeline().condition(0, (SNOMED, "202735001")))
    assert set(facts.diagnosis_groups) == {"radicular", "disc-herniation"}


@pytest.mark.parametrize(("code", "region"), [(CERVICAL_RADICULOPATHY, "cervical"), (LUMBAR_DISC, None)])
def test_cervical_codes_name_the_region(code: tuple[str, str], region: str | None) -> None:
    assert classify(DEFINITION, Timeline().condition(0, code)).region == region


def test_interventions_come_from_procedures_and_imaging_also_from_reports() -> None:
    t = Timeline()
    assert classify(DEFINITION, t.procedure(0, EPIDURAL_LUMBAR)).interventions == ("injection",)
    assert classify(DEFINITION, t.procedure(0, MRI_LUMBAR)).interventions == ("imaging",)
    assert classify(DEFINITION, t.report(0, MRI_LUMBAR)).interventions == ("imaging",)
    assert classify(DEFINITION, t.report(0, EPIDURAL_LUMBAR)).interventions == ()


def test_a_retracted_record_stops_counting() -> None:
    facts = classify(DEFINITION, Timeline().pain(0, 5, status=RecordStatus.RETRACTED))
    assert facts.measure_values == (("pain", 5.0),) and not facts.counts
