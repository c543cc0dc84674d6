"""Validation at the API edge: what is wrong with a payload, and exactly where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.fhir.validation import (
    InvalidResource,
    Issue,
    fhir_path,
    operation_outcome,
    validate_bundle,
    validate_resource,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fhir"
CLINICAL_FIXTURES = [
    "observation-pain",
    "encounter-pt-visit",
    "condition-radicular",
    "procedure-injection",
    "diagnostic-report-mri",
]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def issues_of(payload: Any, expected_type: str | None = None) -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidResource) as caught:
        validate_resource(payload, expected_type)
    return [(issue.expression, issue.code) for issue in caught.value.issues]


@pytest.mark.parametrize("name", CLINICAL_FIXTURES)
def test_a_valid_clinical_resource_passes(name: str) -> None:
    resource = fixture(name)
    validate_resource(resource, resource["resourceType"])


@pytest.mark.parametrize("payload", [[], "Observation", 7, None])
def test_a_payload_that_is_not_a_json_object_is_a_structure_issue(payload: Any) -> None:
    assert issues_of(payload, "Observation") == [("Observation", "structure")]


def test_a_payload_without_resource_type_names_the_missing_element() -> None:
    resource = fixture("observation-pain")
    del resource["resourceType"]
    assert issues_of(resource) == [("Resource.resourceType", "required")]


def test_a_resource_of_another_type_than_expected_is_invalid_at_its_resource_type() -> None:
    assert issues_of(fixture("encounter-pt-visit"), "Observation") == [("Observation.resourceType", "invalid")]


@pytest.mark.parametrize("resource_type", ["NotAType", "Coding", "DomainResource"])
def test_an_unknown_or_non_resource_type_is_not_supported(resource_type: str) -> None:
    assert issues_of({"resourceType": resource_type}) == [("Resource.resourceType", "not-supported")]


def test_an_unknown_element_is_named_in_the_issue() -> None:
    resource = fixture("observation-pain") | {"painLevel": 7}
    assert issues_of(resource) == [("Observation.painLevel", "structure")]


@pytest.mark.parametrize("element", ["status", "code"])
def test_a_missing_required_observation_element_is_named(element: str) -> None:
    resource = fixture("observation-pain")
    del resource[element]
    assert issues_of(resource) == [(f"Observation.{element}", "required")]


def test_a_missing_status_is_reported_even_when_the_model_stops_at_another_missing_element() -> None:
    resource = fixture("encounter-pt-visit")
    del resource["status"], resource["class"]
    assert sorted(issues_of(resource)) == [("Encounter.class", "required"), ("Encounter.status", "required")]


@pytest.mark.parametrize("when", ["2026-01-05T10:00:00", "2026-02-30", "yesterday"])
def test_a_bad_date_time_is_a_value_issue_at_its_element(when: str) -> None:
    resource = fixture("observation-pain") | {"effectiveDateTime": when}
    assert issues_of(resource) == [("Observation.effectiveDateTime", "value")]


def test_a_nested_type_error_is_located_down_to_the_list_index() -> None:
    resource = fixture("observation-pain")
    resource["code"]["coding"][0]["system"] = 42
    assert issues_of(resource) == [("Observation.code.coding[0].system", "structure")]


def test_two_values_at_once_are_reported_at_the_choice_element() -> None:
    resource = fixture("observation-pain") | {"valueInteger": 7}
    assert issues_of(resource) == [("Observation.value[x]", "structure")]


def test_an_element_with_a_python_keyword_name_is_reported_by_its_json_name() -> None:
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "for": {"reference": 5}}
    assert issues_of(task) == [("Task.for.reference", "structure")]


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("for_fhir", "reference"), "Task.for.reference"),
        (("class_fhir",), "Task.class"),
        (("status__ext", "extension", 0, "url"), "Task._status.extension[0].url"),
        (("resource_type",), "Task.resourceType"),
        (("input", 2, "function-after[validate(), str]"), "Task.input[2]"),
    ],
)
def test_pydantic_locations_become_fhir_element_paths(loc: tuple[Any, ...], expected: str) -> None:
    assert fhir_path("Task", loc) == expected


@pytest.mark.parametrize(
    ("name", "element"),
    [
        ("observation-pain", "status"),
        ("encounter-pt-visit", "status"),
        ("procedure-injection", "status"),
        ("diagnostic-report-mri", "status"),
    ],
)
def test_a_status_outside_its_required_value_set_is_a_value_issue(name: str, element: str) -> None:
    resource = fixture(name) | {element: "bogus"}
    assert issues_of(resource) == [(f"{resource['resourceType']}.{element}", "value")]


@pytest.mark.parametrize(
    ("element", "system"),
    [
        ("clinicalStatus", "http://terminology.hl7.org/CodeSystem/condition-clinical"),
        ("verificationStatus", "http://terminology.hl7.org/CodeSystem/condition-ver-status"),
    ],
)
def test_a_condition_status_code_outside_its_code_system_is_a_value_issue(element: str, system: str) -> None:
    resource = fixture("condition-radicular") | {element: {"coding": [{"system": system, "code": "bogus"}]}}
    assert issues_of(resource) == [(f"Condition.{element}.coding[0].code", "value")]


def test_a_condition_status_without_a_standard_coding_is_a_value_issue() -> None:
    resource = fixture("condition-radicular") | {"clinicalStatus": {"coding": [{"system": "urn:x", "code": "on"}]}}
    assert issues_of(resource) == [("Condition.clinicalStatus.coding", "value")]


def _request(resource_type: str, **elements: Any) -> dict[str, Any]:
    subject = "for" if resource_type == "Task" else "subject"
    base = {"resourceType": resource_type, "status": "draft", "intent": "proposal", subject: {"reference": "Patient/1"}}
    return base | elements


@pytest.mark.parametrize("resource_type", ["Task", "ServiceRequest"])
@pytest.mark.parametrize("element", ["status", "intent", "priority"])
def test_task_and_service_request_codes_outside_their_value_sets_are_value_issues(
    resource_type: str, element: str
) -> None:
    assert issues_of(_request(resource_type, **{element: "bogus"})) == [(f"{resource_type}.{element}", "value")]


@pytest.mark.parametrize("resource_type", ["Task", "ServiceRequest"])
def test_task_and_service_request_without_intent_are_missing_a_required_element(resource_type: str) -> None:
    request = _request(resource_type)
    del request["intent"]
    assert issues_of(request) == [(f"{resource_type}.intent", "required")]


def test_a_bogus_bundle_type_is_a_value_issue() -> None:
    assert issues_of(fixture("transaction-bundle-observations") | {"type": "pile"}) == [("Bundle.type", "value")]


# --- bundles ------------------------------------------------------------------------------------


def test_a_valid_bundle_yields_its_entry_resources_in_order() -> None:
    resources = validate_bundle(fixture("transaction-bundle-observations"))
    assert [r["resourceType"] for r in resources] == ["Patient", "Observation", "Observation"]


def test_bundle_entries_without_a_resource_are_skipped() -> None:
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [{"fullUrl": "https://ehr/fhir/Task/1"}]}
    assert validate_bundle(bundle) == []


def test_a_bundle_entry_of_an_unknown_resource_type_is_located_at_its_entry() -> None:
    bundle = fixture("transaction-bundle-observations")
    bundle["entry"][2]["resource"]["resourceType"] = "NotAType"
    with pytest.raises(InvalidResource) as caught:
        validate_bundle(bundle)
    assert [(i.expression, i.code) for i in caught.value.issues] == [
        ("Bundle.entry[2].resource.resourceType", "not-supported")
    ]


def test_a_bundle_entry_without_a_resource_type_is_located_at_its_entry() -> None:
    bundle = fixture("transaction-bundle-observations")
    del bundle["entry"][1]["resource"]["resourceType"]
    assert issues_of(bundle) == [("Bundle.entry[1].resource.resourceType", "required")]


def test_bundle_entry_problems_are_located_per_entry() -> None:
    bundle = fixture("transaction-bundle-observations")
    bundle["entry"][1]["resource"]["status"] = "bogus"
    bundle["entry"][2]["resource"]["effectiveDateTime"] = "2026-01-06T08:00:00"
    assert sorted(issues_of(bundle)) == [
        ("Bundle.entry[1].resource.status", "value"),
        ("Bundle.entry[2].resource.effectiveDateTime", "value"),
    ]


def test_a_bundle_entry_missing_its_status_is_located_at_the_entry() -> None:
    bundle = fixture("transaction-bundle-observations")
    del bundle["entry"][2]["resource"]["status"]
    assert issues_of(bundle) == [("Bundle.entry[2].resource.status", "required")]


def test_validate_bundle_refuses_a_resource_that_is_not_a_bundle() -> None:
    with pytest.raises(InvalidResource) as caught:
        validate_bundle(fixture("observation-pain"))
    assert caught.value.issues[0].expression == "Bundle.resourceType"


# --- OperationOutcome ---------------------------------------------------------------------------


def test_an_operation_outcome_carries_one_error_issue_per_problem_and_validates() -> None:
    issues = [
        Issue("Observation.status", "value", "'bogus' is not a status"),
        Issue(None, "structure", "not JSON"),
    ]
    outcome = operation_outcome(issues)
    assert outcome["issue"][0] == {
        "severity": "error",
        "code": "value",
        "details": {"text": "'bogus' is not a status"},
        "diagnostics": "'bogus' is not a status",
        "expression": ["Observation.status"],
    }
    assert "expression" not in outcome["issue"][1]
    validate_resource(outcome, "OperationOutcome")


def test_an_operation_outcome_needs_at_least_one_issue() -> None:
    with pytest.raises(ValueError):
        operation_outcome([])


def test_invalid_resource_is_a_value_error_whose_message_names_each_element() -> None:
    resource = fixture("observation-pain") | {"status": "bogus", "painLevel": 7}
    with pytest.raises(ValueError, match=r"Observation\.painLevel: .*; Observation\.status: "):
        validate_resource(resource)
