"""What a pathway refuses to read, and how panel components and adherence units are read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pathways.classify import classify
from pathways.definition import default_definition
from pathways.fhir import readable
from pathways.fhir.inbound import RecordRejected, records_from_resource
from pathways.model import ClinicalRecord
from pathways.rules.aggregate import absorb
from pathways.state import new_state

DEFINITION = default_definition()
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"
PAIN = {"coding": [{"system": LOINC, "code": "72514-3"}]}
PAIN_OTHER_CODE = {"coding": [{"system": LOINC, "code": "38208-5"}]}
ODI = {"coding": [{"system": LOINC, "code": "97909-6"}]}
PANEL = {"coding": [{"system": LOINC, "code": "x-intake-panel"}]}
ADHERENCE = {"coding": [{"system": LOCAL, "code": "hep-adherence-pct"}]}
ABSENT = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-declined"}]}


def observation(code: dict[str, Any], rid: str = "obs-1", **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "meta": {"versionId": "1"},
        "status": "final",
        "code": code,
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-02-01T09:00:00Z",
    } | value


def record(resource: dict[str, Any]) -> ClinicalRecord:
    (only,) = records_from_resource(resource)
    return only


def refusal(resource: dict[str, Any]) -> RecordRejected | None:
    try:
        readable.check(DEFINITION, [record(resource)])
    except RecordRejected as error:
        return error
    return None


def component(code: dict[str, Any], **value: Any) -> dict[str, Any]:
    return {"code": code} | value


# --- a measure needs a number of its own ---------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expression", "says"),
    [
        (observation(PAIN), "Observation.value[x]", "no value"),
        (observation(PAIN, dataAbsentReason=ABSENT), "Observation.value[x]", "dataAbsentReason"),
        (
            observation(PAIN, component=[component(PAIN, valueInteger=4)]),
            "Observation.value[x]",
            "only inside a component",
        ),
        (observation(PAIN, valueQuantity={"unit": "score"}), "Observation.value[x]", "without a number"),
        (observation(ODI, valueString="moderate"), "Observation.value[x]", "not a number"),
        (observation(PANEL, valueQuantity={"code": "{score}"}), "Observation.value[x]", "no number"),
        (
            observation(PANEL, component=[component(ODI, valueQuantity={"value": 30}), component(PAIN)]),
            "Observation.component[1].value[x]",
            "pain component needs a number",
        ),
        (observation(ADHERENCE, dataAbsentReason=ABSENT), "Observation.value[x]", "adherence value is needed"),
    ],
)
def test_a_fact_without_the_number_the_pathway_needs_is_refused_naming_the_element(
    resource: dict[str, Any], expression: str, says: str
) -> None:
    refused = refusal(resource)
    assert refused is not None
    assert refused.expression == expression and says in refused.message


@pytest.mark.parametrize(
    "resource",
    [
        observation(PAIN, valueInteger=6),
        observation(PAIN, valueQuantity={"value": 6.5, "code": "{score}"}),
        observation(PAIN, status="entered-in-error"),  # a retraction is never blocked by its value
        observation({"coding": [{"system": LOCAL, "code": "rf-night-pain"}]}),  # a finding needs no value
        observation(PANEL, component=[component({"coding": [{"system": LOINC, "code": "8480-6"}]})]),
    ],
)
def test_a_fact_with_what_the_pathway_needs_is_accepted(resource: dict[str, Any]) -> None:
    assert refusal(resource) is None


# --- panel components ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("components", "values"),
    [
        ([component(PAIN, valueInteger=3)], (("pain", 3.0),)),
        (
            [component(PAIN, valueInteger=3), component(ODI, valueQuantity={"value": 24})],
            (("odi", 24.0), ("pain", 3.0)),
        ),
        # Two values of one measure in one panel: the later component is that instant's value.
        ([component(PAIN, valueInteger=3), component(PAIN_OTHER_CODE, valueInteger=5)], (("pain", 5.0),)),
        ([component({"coding": [{"system": LOINC, "code": "8480-6"}]}, valueInteger=120)], ()),
    ],
)
def test_a_panel_gives_one_value_per_measure_coded_component(
    components: list[dict[str, Any]], values: tuple[tuple[str, float], ...]
) -> None:
    facts = classify(DEFINITION, record(observation(PANEL, component=components)))
    assert facts.counts or not values
    assert facts.measure_values == values


def test_a_measure_observation_ignores_its_components_and_reads_its_own_value() -> None:
    resource = observation(PAIN, valueInteger=7, component=[component(ODI, valueInteger=40)])
    assert classify(DEFINITION, record(resource)).measure_values == (("pain", 7.0),)


@pytest.mark.parametrize(
    ("panel_id", "other_id", "latest"),
    [
        ("obs-b", "obs-a", 3.0),  # same instant and version: the resource id last alphabetically wins
        ("obs-a", "obs-b", 8.0),
    ],
)
def test_a_component_and_another_observation_at_one_instant_follow_the_tie_rule_of_latest(
    panel_id: str, other_id: str, latest: float
) -> None:
    panel = record(observation(PANEL, panel_id, component=[component(PAIN, valueInteger=3)]))
    other = record(observation(PAIN, other_id, valueInteger=8))
    for order in ((panel, other), (other, panel)):
        state = new_state()
        for item in order:
            state = absorb(DEFINITION, state, classify(DEFINITION, item))
        assert state.measure("pain").latest is not None
        assert state.measure("pain").latest.number == latest


# --- adherence units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "percent"),
    [
        ({"value": 80, "unit": "%", "system": UCUM, "code": "%"}, 80.0),
        ({"value": 80, "unit": "%"}, 80.0),
        ({"value": 0.92, "system": UCUM, "code": "1"}, 92.0),
        ({"value": 0, "system": UCUM, "code": "1"}, 0.0),
        ({"value": 1, "system": UCUM, "code": "1"}, 100.0),
        ({"value": 75}, 75.0),
        ({"value": 100}, 100.0),
    ],
)
def test_adherence_is_read_as_a_percentage_by_its_unit(quantity: dict[str, Any], percent: float) -> None:
    resource = observation(ADHERENCE, valueQuantity=quantity)
    assert refusal(resource) is None
    assert classify(DEFINITION, record(resource)).adherence_pct == pytest.approx(percent)


@pytest.mark.parametrize(
    ("quantity", "says"),
    [
        ({"value": 0.92}, "ambiguous"),
        ({"value": 1}, "ambiguous"),
        ({"value": 0}, "ambiguous"),
        ({"value": 80, "system": UCUM, "code": "/wk"}, "unit '/wk'"),
        ({"value": 4, "unit": "days"}, "unit 'days'"),
        ({"value": 120, "code": "%"}, "outside 0-100"),
        ({"value": -5, "code": "%"}, "outside 0-100"),
        ({"value": 1.5, "system": UCUM, "code": "1"}, "outside 0-100"),
        ({"value": 130}, "outside 0-100"),
    ],
)
def test_adherence_in_a_refused_unit_or_range_is_refused_naming_the_quantity(
    quantity: dict[str, Any], says: str
) -> None:
    resource = observation(ADHERENCE, valueQuantity=quantity)
    refused = refusal(resource)
    assert refused is not None
    assert refused.expression == "Observation.valueQuantity" and says in refused.message
    assert classify(DEFINITION, record(resource)).adherence_pct is None  # never counts, even if stored earlier


def test_the_clinical_time_of_a_panel_value_is_the_observation_s_own() -> None:
    facts = classify(DEFINITION, record(observation(PANEL, component=[component(PAIN, valueInteger=3)])))
    assert facts.at == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def test_a_measure_whose_status_does_not_count_yet_is_not_refused_for_its_missing_value() -> None:
    # A `registered` placeholder carries no value yet; refusing it would refuse a whole transaction.
    assert refusal(observation(PAIN, status="registered")) is None
    assert refusal(observation(PAIN, status="final")) is not None


@pytest.mark.parametrize(
    "resource",
    [
        observation(PAIN),
        observation(PAIN, dataAbsentReason=ABSENT),
        observation(PANEL, component=[component(PAIN)]),
        observation(ADHERENCE, valueQuantity={"value": 0.5}),
        observation(ADHERENCE, valueQuantity={"value": 92, "unit": "hours", "code": "h", "system": UCUM}),
    ],
)
def test_whatever_the_definition_refuses_is_flagged_as_worth_checking(resource: dict[str, Any]) -> None:
    assert refusal(resource) is not None
    assert readable.may_be_refused([record(resource)])


def test_any_number_is_worth_checking_since_a_definition_may_give_its_measure_a_range() -> None:
    assert readable.may_be_refused([record(observation(PAIN, valueInteger=7))])
    assert readable.may_be_refused([record(observation(PANEL, component=[component(PAIN, valueInteger=7)]))])


def test_an_observation_with_nothing_to_read_yet_needs_no_definition_to_be_read() -> None:
    assert not readable.may_be_refused([record(observation(PAIN, status="registered"))])
    assert not readable.may_be_refused([record(observation(PAIN, status="entered-in-error", valueInteger=70))])
