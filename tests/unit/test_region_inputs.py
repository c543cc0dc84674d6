"""Inbound mapping of what names a body region, and of the Patient: body sites, the encounter, reasons,
a report's conclusion and the birthDate (pathway-spec-joints.md, section 8; ruling 14)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from pathways.classify import classify
from pathways.definition import default_definition
from pathways.fhir.inbound import RecordRejected, records_from_resource, with_resolved_references
from pathways.model import TIMELESS, ClinicalRecord, Coding, RecordStatus
from service.store.codec import record_from_json, record_to_json

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOCAL = "https://carepath.dev/fhir/CodeSystem/pt-pathway"
KNEE = {"coding": [{"system": SNOMED, "code": "72696002", "display": "Knee region"}]}
SHOULDER = {"coding": [{"system": SNOMED, "code": "16982005"}]}
KNEE_OA = {"coding": [{"system": ICD10, "code": "M17.11"}]}
NEGATIVE = {"coding": [{"system": LOCAL, "code": "xr-negative"}]}
SUBJECT = {"reference": "Patient/p1"}


def observation(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72514-3"}]},
        "subject": SUBJECT,
        "effectiveDateTime": "2026-03-02T09:00:00Z",
        "valueInteger": 6,
    } | elements


def encounter(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": SUBJECT,
        "period": {"start": "2026-03-02T08:00:00Z"},
    } | elements


def procedure(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "id": "proc-1",
        "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "20610"}]},
        "subject": SUBJECT,
        "performedDateTime": "2026-03-02T10:00:00Z",
    } | elements


def report(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "id": "dr-1",
        "status": "final",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "73562"}]},
        "subject": SUBJECT,
        "effectiveDateTime": "2026-03-03T10:00:00Z",
    } | elements


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1"} | elements


def mapped(resource: dict[str, Any], fullurls: dict[str, str] | None = None) -> ClinicalRecord:
    [record] = records_from_resource(resource, fullurl_map=fullurls)
    return record


def rejection(resource: dict[str, Any]) -> RecordRejected:
    with pytest.raises(RecordRejected) as caught:
        records_from_resource(resource)
    return caught.value


def coding(concept: dict[str, Any]) -> tuple[Coding, ...]:
    return tuple(Coding(c["system"], c["code"]) for c in concept["coding"])


# --- each new input, read --------------------------------------------------------------------------

READ = [
    ("an Observation's body site", observation(bodySite=KNEE), "body_sites", coding(KNEE)),
    (
        "an Observation's encounter",
        observation(encounter={"reference": "Encounter/enc-9"}),
        "encounter",
        "Encounter/enc-9",
    ),
    (
        "an Observation's encounter as an absolute, versioned URL",
        observation(encounter={"reference": "https://ehr.example.org/fhir/Encounter/e2/_history/3"}),
        "encounter",
        "Encounter/e2",
    ),
    (
        "an Encounter's reason codes",
        encounter(reasonCode=[KNEE_OA, SHOULDER]),
        "reason_codes",
        coding(KNEE_OA) + coding(SHOULDER),
    ),
    (
        "an Encounter's reason references and diagnoses, once each and in order",
        encounter(
            reasonReference=[{"reference": "Condition/c1"}, {"reference": "Observation/o1"}],
            diagnosis=[{"condition": {"reference": "Condition/c2"}}, {"condition": {"reference": "Condition/c1"}}],
        ),
        "reason_references",
        ("Condition/c1", "Condition/c2"),
    ),
    ("a Procedure's body sites", procedure(bodySite=[KNEE, SHOULDER]), "body_sites", coding(KNEE) + coding(SHOULDER)),
    ("a Procedure's reason codes", procedure(reasonCode=[KNEE_OA]), "reason_codes", coding(KNEE_OA)),
    (
        "a Procedure's reason references",
        procedure(reasonReference=[{"reference": "Condition/c3"}, {"display": "knee pain"}]),
        "reason_references",
        ("Condition/c3",),
    ),
    (
        "a report's conclusion codes",
        report(conclusionCode=[NEGATIVE, KNEE_OA]),
        "conclusion_codes",
        coding(NEGATIVE) + coding(KNEE_OA),
    ),
    ("a Patient's full birthDate", patient(birthDate="1990-07-15"), "birth_date", date(1990, 7, 15)),
    ("a Patient's birth year, read as 1 January", patient(birthDate="2008"), "birth_date", date(2008, 1, 1)),
    ("a Patient's birth month, read as its first day", patient(birthDate="2008-02"), "birth_date", date(2008, 2, 1)),
    ("a Patient without a birthDate: unknown", patient(), "birth_date", None),
]


@pytest.mark.parametrize(("resource", "field", "expected"), [r[1:] for r in READ], ids=[r[0] for r in READ])
def test_each_new_input_is_read_into_its_field(resource: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(mapped(resource), field) == expected


ABSENT = [
    observation(),
    encounter(),
    procedure(),
    report(),
]


@pytest.mark.parametrize("resource", ABSENT, ids=lambda r: r["resourceType"])
def test_without_them_a_fact_has_no_body_site_encounter_reason_or_conclusion(resource: dict[str, Any]) -> None:
    record = mapped(resource)
    assert (record.body_sites, record.encounter, record.reason_codes, record.reason_references) == ((), None, (), ())
    assert (record.conclusion_codes, record.birth_date) == ((), None)


# --- never refused for what they say ------------------------------------------------------------------

UNREAD = [
    (
        "a reference to another type",
        encounter(reasonReference=[{"reference": "Procedure/p9"}]),
        "reason_references",
        (),
    ),
    (
        "a reference that is no reference",
        encounter(reasonReference=[{"reference": "not a reference"}]),
        "reason_references",
        (),
    ),
    ("an unresolved urn:uuid", procedure(reasonReference=[{"reference": "urn:uuid:0a1b"}]), "reason_references", ()),
    (
        "an identifier-only reference",
        encounter(diagnosis=[{"condition": {"identifier": {"value": "x"}}}]),
        "reason_references",
        (),
    ),
    ("a diagnosis without a condition", encounter(diagnosis=[{"rank": 1}]), "reason_references", ()),
    ("an encounter naming a Condition", observation(encounter={"reference": "Condition/c1"}), "encounter", None),
    ("a body site with text only", observation(bodySite={"text": "left knee"}), "body_sites", ()),
    (
        "a conclusion code no system names",
        report(conclusionCode=[{"coding": [{"code": "neg"}]}]),
        "conclusion_codes",
        (),
    ),
]


@pytest.mark.parametrize(("resource", "field", "expected"), [r[1:] for r in UNREAD], ids=[r[0] for r in UNREAD])
def test_what_cannot_be_read_is_left_out_never_refused(resource: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(mapped(resource), field) == expected


def test_references_to_entries_of_the_same_bundle_resolve_through_their_full_urls() -> None:
    fullurls = {"urn:uuid:c-1": "Condition/c-1", "urn:uuid:e-1": "Encounter/e-1", "urn:uuid:p-1": "Patient/p1"}
    visit = encounter(subject={"reference": "urn:uuid:p-1"}, diagnosis=[{"condition": {"reference": "urn:uuid:c-1"}}])
    assert mapped(visit, fullurls).reason_references == ("Condition/c-1",)
    pain = observation(encounter={"reference": "urn:uuid:e-1"})
    assert mapped(pain, fullurls).encounter == "Encounter/e-1"
    # Stored alone, the resource reads the same without its Bundle.
    stored = with_resolved_references(visit, fullurls)
    assert stored["diagnosis"] == [{"condition": {"reference": "Condition/c-1"}}]
    assert stored["subject"] == {"reference": "Patient/p1"} and visit["subject"] == {"reference": "urn:uuid:p-1"}
    assert mapped(stored).reason_references == ("Condition/c-1",)


# --- refused for their shape, naming the element --------------------------------------------------------

REFUSED = [
    ("a body site that is a string", observation(bodySite="knee"), "Observation.bodySite"),
    ("a body site that is a list", observation(bodySite=[KNEE]), "Observation.bodySite"),
    ("an encounter that is a string", observation(encounter="Encounter/1"), "Observation.encounter"),
    (
        "an encounter reference that is a number",
        observation(encounter={"reference": 7}),
        "Observation.encounter.reference",
    ),
    ("reason codes that are one object", encounter(reasonCode=KNEE_OA), "Encounter.reasonCode"),
    ("a reason code that is a string", encounter(reasonCode=["M17.11"]), "Encounter.reasonCode[0]"),
    (
        "reason references that are one object",
        encounter(reasonReference={"reference": "Condition/1"}),
        "Encounter.reasonReference",
    ),
    ("a reason reference that is a string", encounter(reasonReference=["Condition/1"]), "Encounter.reasonReference[0]"),
    ("a diagnosis that is a string", encounter(diagnosis=["Condition/1"]), "Encounter.diagnosis[0]"),
    (
        "a diagnosis' condition that is a string",
        encounter(diagnosis=[{"condition": "Condition/1"}]),
        "Encounter.diagnosis[0].condition",
    ),
    ("a Procedure's body site that is one object", procedure(bodySite=KNEE), "Procedure.bodySite"),
    ("a Procedure's second body site that is a string", procedure(bodySite=[KNEE, "hip"]), "Procedure.bodySite[1]"),
    ("a Procedure's reason code that is a number", procedure(reasonCode=[3]), "Procedure.reasonCode[0]"),
    (
        "a Procedure's reason reference that is a string",
        procedure(reasonReference=["Condition/1"]),
        "Procedure.reasonReference[0]",
    ),
    ("conclusion codes that are one object", report(conclusionCode=NEGATIVE), "DiagnosticReport.conclusionCode"),
    ("a birth month 13", patient(birthDate="1990-13"), "Patient.birthDate"),
    ("a 30 February", patient(birthDate="1990-02-30"), "Patient.birthDate"),
    ("a birthDate with a time", patient(birthDate="1990-02-03T10:00:00Z"), "Patient.birthDate"),
    ("a birthDate in another format", patient(birthDate="03/02/1990"), "Patient.birthDate"),
    ("a birthDate that is a number", patient(birthDate=19900203), "Patient.birthDate"),
    ("a year 0", patient(birthDate="0000"), "Patient.birthDate"),
    (
        "a completed Procedure whose performed time is null",
        procedure(performedDateTime=None),
        "Procedure.performedDateTime",
    ),
]


@pytest.mark.parametrize(("resource", "expression"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_an_element_of_the_wrong_shape_is_refused_naming_it(resource: dict[str, Any], expression: str) -> None:
    assert rejection(resource).expression == expression


def test_a_procedure_without_any_performed_time_is_refused_naming_performed() -> None:
    resource = procedure()
    del resource["performedDateTime"]
    assert rejection(resource).expression == "Procedure.performed[x]"


def test_a_retraction_is_never_blocked_by_the_elements_it_withdraws() -> None:
    assert mapped(observation(status="entered-in-error", bodySite="knee")).status is RecordStatus.RETRACTED
    assert mapped(encounter(status="cancelled", reasonCode=KNEE_OA)).status is RecordStatus.RETRACTED
    assert mapped(procedure(status="entered-in-error", bodySite=KNEE)).status is RecordStatus.RETRACTED
    assert mapped(report(status="cancelled", conclusionCode=NEGATIVE)).status is RecordStatus.RETRACTED


# --- the Patient record ------------------------------------------------------------------------------------


def test_a_patient_is_its_own_patient_at_no_moment_and_binds_no_fact() -> None:
    record = mapped(patient(birthDate="1960-05-04", link=[{"other": {"reference": "Patient/p2"}, "type": "seealso"}]))
    assert (record.patient_id, record.source.reference, record.at) == ("p1", "Patient/p1", TIMELESS)
    assert record.status is RecordStatus.ACTIVE and not record.is_event
    facts = classify(default_definition(), record)
    assert not facts.bound
    assert all(mapped(r).is_event for r in (observation(), encounter(), procedure(), report()))


def test_a_patient_without_an_id_is_refused_at_its_id() -> None:
    assert rejection({"resourceType": "Patient", "birthDate": "1990"}).expression == "Patient.id"


# --- stored and read back ----------------------------------------------------------------------------------

STORED = [
    observation(bodySite=KNEE, encounter={"reference": "Encounter/e1"}),
    encounter(reasonCode=[KNEE_OA], reasonReference=[{"reference": "Condition/c1"}]),
    procedure(bodySite=[SHOULDER], reasonCode=[KNEE_OA], reasonReference=[{"reference": "Condition/c2"}]),
    report(conclusionCode=[NEGATIVE]),
    patient(birthDate="2008-02"),
    patient(),
]


@pytest.mark.parametrize("resource", STORED, ids=lambda r: r["resourceType"])
def test_every_new_field_survives_the_store(resource: dict[str, Any]) -> None:
    record = mapped(resource)
    assert record_from_json(record_to_json(record)) == record


def test_a_record_stored_before_these_fields_reads_back_without_them() -> None:
    stored = record_to_json(mapped(observation()))
    for key in ("body_sites", "encounter", "reason_codes", "reason_references", "conclusion_codes", "birth_date"):
        del stored[key]
    assert record_from_json(stored) == mapped(observation())
