"""Inbound mapping: FHIR R4 resources become pathway-neutral ClinicalRecords, or are rejected precisely."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pathways.fhir.inbound import RecordRejected, deleted_record, parse_fhir_datetime, records_from_resource
from pathways.model import ClinicalRecord, Coding, RecordStatus, SourceRef

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fhir"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def only_record(resource: dict[str, Any], **kwargs: Any) -> ClinicalRecord:
    records = records_from_resource(resource, **kwargs)
    assert len(records) == 1
    return records[0]


def rejection(resource: dict[str, Any], **kwargs: Any) -> RecordRejected:
    with pytest.raises(RecordRejected) as caught:
        records_from_resource(resource, **kwargs)
    return caught.value


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- one resource of each type ------------------------------------------------------------------


def test_a_pain_observation_becomes_a_numeric_record_at_its_effective_time_in_utc() -> None:
    record = only_record(fixture("observation-pain"))
    assert record.source == SourceRef("Observation", "pain-1", "3")
    assert record.patient_id == "123"
    assert record.at == utc(2026, 1, 5, 9, 0)
    assert record.at.tzinfo is UTC
    assert record.status is RecordStatus.ACTIVE
    assert [c.key for c in record.codes] == [(LOINC, "72514-3")]
    assert record.value_number == 7.0
    assert record.value_unit == "{score}"


def test_a_finished_encounter_carries_its_type_and_service_type_codes_from_period_start() -> None:
    record = only_record(fixture("encounter-pt-visit"))
    assert record.status is RecordStatus.ACTIVE
    assert record.at == utc(2026, 1, 5, 9, 0)
    assert [c.key for c in record.codes] == [(SNOMED, "91251008"), ("http://www.ama-assn.org/go/cpt", "97110")]


def test_a_condition_is_dated_by_its_recorded_date_and_keeps_both_status_codes() -> None:
    record = only_record(fixture("condition-radicular"))
    assert record.at == utc(2026, 2, 20, 14, 30)
    assert record.status is RecordStatus.ACTIVE
    assert record.verification == "confirmed"
    assert record.clinical_status == "active"
    assert {c.key for c in record.codes} == {(SNOMED, "128196005"), ("http://hl7.org/fhir/sid/icd-10-cm", "M54.16")}


def test_a_completed_procedure_is_dated_by_its_performed_period_start() -> None:
    record = only_record(fixture("procedure-injection"))
    assert record.status is RecordStatus.ACTIVE
    assert record.at == utc(2026, 3, 10, 13, 15)
    assert record.source == SourceRef("Procedure", "proc-1", None)


def test_a_final_diagnostic_report_dated_without_a_time_counts_from_midnight_utc() -> None:
    record = only_record(fixture("diagnostic-report-mri"))
    assert record.status is RecordStatus.ACTIVE
    assert record.at == utc(2026, 3, 1)
    assert [c.code for c in record.codes] == ["394451000119106"]


# --- clinical time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-05", utc(2026, 1, 5)),
        ("2026-01", utc(2026, 1, 1)),
        ("2026", utc(2026, 1, 1)),
        ("2026-01-05T23:30:00-05:00", utc(2026, 1, 6, 4, 30)),
        ("2026-01-05T10:00:00Z", utc(2026, 1, 5, 10)),
        ("2026-01-05T10:00:00.1234567+00:00", datetime(2026, 1, 5, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_fhir_dates_and_times_become_the_first_utc_instant_they_denote(text: str, expected: datetime) -> None:
    assert parse_fhir_datetime(text) == expected


@pytest.mark.parametrize("text", ["2026-01-05T10:00:00", "2026-13-01", "05/01/2026", "2026-01-05T10:00Z"])
def test_a_malformed_or_zone_less_time_is_not_a_fhir_datetime(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fhir_datetime(text)


def test_an_observation_effective_period_is_dated_by_its_start() -> None:
    resource = fixture("observation-pain")
    del resource["effectiveDateTime"]
    resource["effectivePeriod"] = {"start": "2026-01-04T08:00:00Z", "end": "2026-01-05T08:00:00Z"}
    assert only_record(resource).at == utc(2026, 1, 4, 8)


def test_an_observation_effective_instant_is_used_when_nothing_else_dates_it() -> None:
    resource = fixture("observation-pain")
    del resource["effectiveDateTime"]
    resource["effectiveInstant"] = "2026-01-04T08:00:00.5+02:00"
    assert only_record(resource).at == datetime(2026, 1, 4, 6, 0, 0, 500000, tzinfo=UTC)


def test_a_condition_without_recorded_date_is_dated_by_its_onset() -> None:
    resource = fixture("condition-radicular")
    del resource["recordedDate"]
    assert only_record(resource).at == utc(2025, 12, 1)


def test_a_condition_with_only_an_onset_period_is_dated_by_its_start() -> None:
    resource = fixture("condition-radicular")
    del resource["recordedDate"], resource["onsetDateTime"]
    resource["onsetPeriod"] = {"start": "2025-11"}
    assert only_record(resource).at == utc(2025, 11, 1)


def test_a_procedure_performed_date_time_dates_it() -> None:
    resource = fixture("procedure-injection")
    del resource["performedPeriod"]
    resource["performedDateTime"] = "2026-03-10"
    assert only_record(resource).at == utc(2026, 3, 10)


def test_a_diagnostic_report_effective_period_is_dated_by_its_start() -> None:
    resource = fixture("diagnostic-report-mri")
    del resource["effectiveDateTime"]
    resource["effectivePeriod"] = {"start": "2026-03-01T12:00:00+00:00"}
    assert only_record(resource).at == utc(2026, 3, 1, 12)


@pytest.mark.parametrize(
    ("name", "remove", "expression"),
    [
        ("observation-pain", ["effectiveDateTime"], "Observation.effective[x]"),
        ("encounter-pt-visit", ["period"], "Encounter.period.start"),
        ("condition-radicular", ["recordedDate", "onsetDateTime"], "Condition.recordedDate"),
        ("procedure-injection", ["performedPeriod"], "Procedure.performed[x]"),
        ("diagnostic-report-mri", ["effectiveDateTime"], "DiagnosticReport.effective[x]"),
    ],
)
def test_a_resource_without_clinical_time_is_rejected_at_its_time_element(
    name: str, remove: list[str], expression: str
) -> None:
    resource = fixture(name)
    for element in remove:
        del resource[element]
    error = rejection(resource)
    assert error.expression == expression
    assert error.code == "required"


def test_a_period_without_start_is_rejected_at_its_start() -> None:
    resource = fixture("encounter-pt-visit")
    resource["period"] = {"end": "2026-01-05T10:00:00Z"}
    assert rejection(resource).expression == "Encounter.period.start"


def test_an_observation_timed_only_by_a_timing_schedule_is_rejected() -> None:
    resource = fixture("observation-pain")
    del resource["effectiveDateTime"]
    resource["effectiveTiming"] = {"event": ["2026-01-05T10:00:00Z"]}
    assert rejection(resource).expression == "Observation.effective[x]"


def test_a_zone_less_date_time_is_rejected_at_the_element_that_holds_it() -> None:
    resource = fixture("observation-pain")
    resource["effectiveDateTime"] = "2026-01-05T10:00:00"
    error = rejection(resource)
    assert (error.expression, error.code) == ("Observation.effectiveDateTime", "value")


# --- status mapping -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("final", RecordStatus.ACTIVE),
        ("amended", RecordStatus.ACTIVE),
        ("corrected", RecordStatus.ACTIVE),
        ("preliminary", RecordStatus.ACTIVE),
        ("entered-in-error", RecordStatus.RETRACTED),
        ("cancelled", RecordStatus.RETRACTED),
        ("registered", RecordStatus.INACTIVE),
        ("unknown", RecordStatus.INACTIVE),
    ],
)
def test_observation_status_decides_whether_it_counts(status: str, expected: RecordStatus) -> None:
    resource = fixture("observation-pain") | {"status": status}
    assert only_record(resource).status is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("finished", RecordStatus.ACTIVE),
        ("entered-in-error", RecordStatus.RETRACTED),
        ("cancelled", RecordStatus.RETRACTED),
        ("in-progress", RecordStatus.INACTIVE),
        ("planned", RecordStatus.INACTIVE),
    ],
)
def test_encounter_status_decides_whether_it_counts(status: str, expected: RecordStatus) -> None:
    assert only_record(fixture("encounter-pt-visit") | {"status": status}).status is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("completed", RecordStatus.ACTIVE),
        ("entered-in-error", RecordStatus.RETRACTED),
        ("not-done", RecordStatus.RETRACTED),
        ("in-progress", RecordStatus.INACTIVE),
        ("preparation", RecordStatus.INACTIVE),
    ],
)
def test_procedure_status_decides_whether_it_counts(status: str, expected: RecordStatus) -> None:
    assert only_record(fixture("procedure-injection") | {"status": status}).status is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("final", RecordStatus.ACTIVE),
        ("amended", RecordStatus.ACTIVE),
        ("corrected", RecordStatus.ACTIVE),
        ("appended", RecordStatus.ACTIVE),
        ("entered-in-error", RecordStatus.RETRACTED),
        ("cancelled", RecordStatus.RETRACTED),
        ("preliminary", RecordStatus.INACTIVE),
        ("partial", RecordStatus.INACTIVE),
    ],
)
def test_diagnostic_report_status_decides_whether_it_counts(status: str, expected: RecordStatus) -> None:
    assert only_record(fixture("diagnostic-report-mri") | {"status": status}).status is expected


@pytest.mark.parametrize("status", ["final", None, 5])
def test_a_resource_without_a_status_string_is_rejected_at_status(status: Any) -> None:
    resource = fixture("observation-pain")
    if status is None:
        del resource["status"]
    else:
        resource["status"] = status
    if status == "final":
        assert only_record(resource).status is RecordStatus.ACTIVE
    else:
        assert rejection(resource).expression == "Observation.status"


def _condition(clinical: str | None, verification: str | None) -> dict[str, Any]:
    resource = fixture("condition-radicular")
    for element, system, code in (
        ("clinicalStatus", "condition-clinical", clinical),
        ("verificationStatus", "condition-ver-status", verification),
    ):
        if code is None:
            del resource[element]
        else:
            resource[element] = {
                "coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": code}]
            }
    return resource


@pytest.mark.parametrize(
    ("clinical", "verification", "expected"),
    [
        ("active", "confirmed", RecordStatus.ACTIVE),
        ("recurrence", "provisional", RecordStatus.ACTIVE),
        ("relapse", "differential", RecordStatus.ACTIVE),
        (None, None, RecordStatus.ACTIVE),
        ("resolved", "confirmed", RecordStatus.INACTIVE),
        ("inactive", None, RecordStatus.INACTIVE),
        ("remission", "confirmed", RecordStatus.INACTIVE),
        ("active", "refuted", RecordStatus.RETRACTED),
        ("active", "entered-in-error", RecordStatus.RETRACTED),
        (None, "entered-in-error", RecordStatus.RETRACTED),
    ],
)
def test_condition_statuses_decide_whether_it_counts(
    clinical: str | None, verification: str | None, expected: RecordStatus
) -> None:
    record = only_record(_condition(clinical, verification))
    assert record.status is expected
    assert (record.clinical_status, record.verification) == (clinical, verification)


def test_a_condition_status_code_from_the_standard_system_wins_over_an_earlier_local_coding() -> None:
    resource = _condition("active", None)
    resource["verificationStatus"] = {
        "coding": [
            {"system": "urn:local", "code": "ok"},
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted"},
        ]
    }
    record = only_record(resource)
    assert (record.verification, record.status) == ("refuted", RecordStatus.RETRACTED)


# --- values -------------------------------------------------------------------------------------


def _observation(**value: Any) -> dict[str, Any]:
    resource = fixture("observation-pain")
    del resource["valueQuantity"]
    return resource | value


def test_a_value_integer_is_a_number() -> None:
    record = only_record(_observation(valueInteger=42))
    assert (record.value_number, record.value_unit) == (42.0, None)


def test_a_decimal_quantity_keeps_its_fraction_and_falls_back_to_the_unit_text() -> None:
    record = only_record(_observation(valueQuantity={"value": 6.5, "unit": "points"}))
    assert (record.value_number, record.value_unit) == (6.5, "points")


def test_a_coded_value_carries_its_codings() -> None:
    concept = {"coding": [{"system": LOCAL, "code": "barrier-time", "display": "Lack of time"}]}
    record = only_record(_observation(valueCodeableConcept=concept))
    assert record.value_codes == (Coding(LOCAL, "barrier-time"),)
    assert record.value_codes[0].display == "Lack of time"
    assert record.value_number is None


def test_a_finding_with_value_boolean_false_is_an_active_record_saying_absent() -> None:
    record = only_record(_observation(valueBoolean=False))
    assert record.status is RecordStatus.ACTIVE
    assert record.value_boolean is False


def test_a_finding_with_no_value_at_all_is_accepted_as_present() -> None:
    record = only_record(_observation())
    assert record.status is RecordStatus.ACTIVE
    assert (record.value_number, record.value_boolean, record.value_codes) == (None, None, ())


def test_an_observation_whose_value_is_explained_absent_does_not_count() -> None:
    reason = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "asked-unknown"}]
    }
    assert only_record(_observation(dataAbsentReason=reason)).status is RecordStatus.INACTIVE


def test_a_panel_whose_values_are_only_in_components_counts_with_no_value_at_the_top_level() -> None:
    component = {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120}}
    record = only_record(_observation(component=[component]))
    assert (record.status, record.value_number) == (RecordStatus.ACTIVE, None)
    assert record.value_missing == "a value only inside a component"


def test_a_quantity_without_a_number_is_kept_as_a_record_saying_so_for_the_definition_to_refuse() -> None:
    record = only_record(_observation(valueQuantity={"unit": "score"}))
    assert (record.status, record.value_number, record.value_missing) == (
        RecordStatus.INACTIVE,
        None,
        "a quantity without a number",
    )


def test_a_panel_keeps_each_component_with_its_number_in_panel_order() -> None:
    components = [
        {"code": {"coding": [{"system": LOINC, "code": "72514-3"}]}, "valueInteger": 3},
        {"code": {"coding": [{"system": LOINC, "code": "97909-6"}]}, "valueQuantity": {"value": 22.5, "unit": "%"}},
        {"code": {"coding": [{"system": LOINC, "code": "38208-5"}]}, "dataAbsentReason": {"text": "asked"}},
        {"code": {"coding": [{"system": LOINC, "code": "75261-8"}]}, "valueQuantity": {"value": "7"}},
    ]
    record = only_record(_observation(code={"coding": [{"system": LOINC, "code": "x-panel"}]}, component=components))
    assert [(c.index, c.codes[0].code, c.value_number) for c in record.components] == [
        (0, "72514-3", 3.0),
        (1, "97909-6", 22.5),
        (2, "38208-5", None),
        (3, "75261-8", None),
    ]
    assert record.components[1].value_unit == "%"


def test_an_unreadable_value_type_is_kept_as_a_record_without_a_value() -> None:
    record = only_record(_observation(valueString="moderate"))
    assert record.status is RecordStatus.ACTIVE
    assert record.value_number is None


@pytest.mark.parametrize(
    ("value", "expression"),
    [
        ({"valueQuantity": {"value": "7"}}, "Observation.valueQuantity.value"),
        ({"valueQuantity": {"value": True}}, "Observation.valueQuantity.value"),
        ({"valueQuantity": {"value": float("nan")}}, "Observation.valueQuantity.value"),
        ({"valueQuantity": {"value": 2, "comparator": "<"}}, "Observation.valueQuantity.comparator"),
        ({"valueQuantity": 7}, "Observation.valueQuantity"),
        ({"valueInteger": 6.5}, "Observation.valueInteger"),
        ({"valueInteger": "6"}, "Observation.valueInteger"),
        ({"valueBoolean": "false"}, "Observation.valueBoolean"),
        ({"valueCodeableConcept": "barrier-time"}, "Observation.valueCodeableConcept"),
        ({"valueInteger": 6, "valueBoolean": True}, "Observation.value[x]"),
    ],
)
def test_an_unusable_value_is_rejected_at_its_element(value: dict[str, Any], expression: str) -> None:
    assert rejection(_observation(**value)).expression == expression


def test_a_retracted_observation_is_accepted_whatever_its_value() -> None:
    resource = _observation(status="entered-in-error", valueQuantity={"unit": "score"})
    record = only_record(resource)
    assert record.status is RecordStatus.RETRACTED
    assert record.value_number is None


def test_codings_without_a_system_or_code_are_not_matchable_and_are_dropped() -> None:
    resource = fixture("observation-pain")
    resource["code"]["coding"] += [{"code": "72514-3"}, {"system": LOINC}]
    assert [c.key for c in only_record(resource).codes] == [(LOINC, "72514-3")]


# --- patient and identity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/123",
        "Patient/123/_history/4",
        "https://ehr.example.org/fhir/Patient/123",
        "http://ehr.example.org/fhir/Patient/123/_history/2",
    ],
)
def test_a_patient_reference_in_any_literal_form_names_the_patient(reference: str) -> None:
    resource = fixture("observation-pain") | {"subject": {"reference": reference}}
    assert only_record(resource).patient_id == "123"


def test_a_urn_uuid_subject_is_resolved_through_the_bundle_full_urls() -> None:
    bundle = fixture("transaction-bundle-observations")
    observation = bundle["entry"][1]["resource"]
    full_urls = {bundle["entry"][0]["fullUrl"]: "Patient/123"}
    record = only_record(observation, resource_id="odi-1", fullurl_map=full_urls)
    assert (record.patient_id, record.value_number, record.at) == ("123", 42.0, utc(2026, 1, 5))


def test_an_unresolved_urn_uuid_subject_is_rejected() -> None:
    observation = fixture("transaction-bundle-observations")["entry"][1]["resource"]
    assert rejection(observation, resource_id="odi-1").expression == "Observation.subject"


def test_a_full_url_resolving_to_another_type_is_not_a_patient() -> None:
    observation = fixture("transaction-bundle-observations")["entry"][1]["resource"]
    full_urls = {observation["subject"]["reference"]: "Group/7"}
    assert rejection(observation, resource_id="odi-1", fullurl_map=full_urls).expression == "Observation.subject"


@pytest.mark.parametrize(
    "subject",
    [
        None,
        {"reference": "Group/7"},
        {"reference": "https://ehr.example.org/fhir/Group/7"},
        {"reference": "Patient/"},
        {"reference": "Patient/a b"},
        {"identifier": {"system": "urn:mrn", "value": "123"}},
        {"display": "Jane Doe"},
    ],
)
def test_a_subject_that_is_not_a_literal_patient_reference_is_rejected(subject: dict[str, Any] | None) -> None:
    resource = fixture("encounter-pt-visit")
    if subject is None:
        del resource["subject"]
    else:
        resource["subject"] = subject
    assert rejection(resource).expression == "Encounter.subject"


def test_the_stored_resource_id_names_the_source_even_when_the_body_has_none() -> None:
    resource = fixture("procedure-injection")
    del resource["id"]
    assert only_record(resource, resource_id="srv-9").source == SourceRef("Procedure", "srv-9")


def test_the_stored_resource_id_wins_over_a_posted_body_id() -> None:
    assert only_record(fixture("procedure-injection"), resource_id="srv-9").source.resource_id == "srv-9"


def test_a_resource_with_no_id_anywhere_is_rejected_at_id() -> None:
    resource = fixture("procedure-injection")
    del resource["id"]
    assert rejection(resource).expression == "Procedure.id"


@pytest.mark.parametrize("resource_type", ["Practitioner", "MedicationRequest", None])
def test_a_resource_type_that_carries_no_clinical_fact_is_rejected(resource_type: str | None) -> None:
    resource = fixture("observation-pain") | {"resourceType": resource_type}
    error = rejection(resource)
    assert error.expression == f"{resource_type or 'Resource'}.resourceType"
    assert error.code == "not-supported"


def test_a_rejection_is_a_value_error_that_names_the_element() -> None:
    resource = fixture("observation-pain") | {"subject": {"reference": "Group/7"}}
    error = rejection(resource)
    assert isinstance(error, ValueError)
    assert str(error).startswith("Observation.subject: ")


# --- deletes ------------------------------------------------------------------------------------


def test_a_deleted_resource_becomes_a_retracted_record_at_the_given_moment_in_utc() -> None:
    at = datetime.fromisoformat("2026-02-01T12:00:00+02:00")
    record = deleted_record("Observation", "pain-1", "123", at)
    assert record.source == SourceRef("Observation", "pain-1")
    assert (record.patient_id, record.status, record.at) == ("123", RecordStatus.RETRACTED, utc(2026, 2, 1, 10))


def test_a_delete_needs_a_timezone_aware_moment() -> None:
    with pytest.raises(ValueError):
        deleted_record("Observation", "pain-1", "123", datetime(2026, 2, 1, 12))


def test_a_resource_that_references_a_second_patient_is_refused_at_the_element() -> None:
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": {"reference": "Patient/a"},
        "effectiveDateTime": "2026-01-05",
        "valueQuantity": {"value": 5},
        "performer": [{"reference": "Practitioner/p"}, {"reference": "Patient/b"}],
    }
    with pytest.raises(RecordRejected) as refused:
        records_from_resource(observation)
    assert refused.value.expression == "Observation.performer[1]"
    observation["performer"][1] = {"reference": "https://ehr.example/fhir/Patient/a"}
    assert records_from_resource(observation)[0].patient_id == "a"
