"""Outbound mapping: decisions become valid, idempotent R4 ServiceRequests, Tasks and Provenance."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest
from fhir.resources.R4B import get_fhir_model_class
from hypothesis import given
from hypothesis import strategies as st

from pathways.fhir import outbound
from pathways.fhir.outbound import (
    PROPOSAL_IDENTIFIER_SYSTEM,
    RenderedDecision,
    client_id,
    collection_bundle,
    if_none_exist,
    key_of,
    render_decision,
    search_token,
    token_criteria,
    transaction_bundle,
    withdrawal_updates,
)
from pathways.model import (
    CAREPATH_CODE_SYSTEM,
    PATHWAY_STEP_SYSTEM,
    TASK_CODE_SYSTEM,
    Coding,
    Decision,
    Evidence,
    Priority,
    Proposal,
    ProposalKind,
    SourceRef,
    Withdrawal,
    pathway_key_of,
)
from service.fhir.validation import validate_resource
from tests.builders import AUTHOR

SNOMED = "http://snomed.info/sct"
CPT = "http://www.ama-assn.org/go/cpt"
DEFINITION = "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse|1.0.0"
AT = datetime(2026, 2, 16, 9, 30, tzinfo=UTC)
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

PAIN = SourceRef("Observation", "12", "3")
ADHERENCE = SourceRef("Observation", "adh-1", None)
VISIT = SourceRef("Encounter", "visit-9", "1")
DIAGNOSIS = SourceRef("Condition", "dx-1", "2")


def reassessment(**changes: Any) -> Decision:
    """A reassessment: a LOCAL Task plus a second-opinion referral ServiceRequest."""
    decision = Decision(
        step="reassessment",
        episode="ep-2026-01-05",
        occurrence=1,
        at=AT,
        priority=Priority.ROUTINE,
        proposals=(
            Proposal(
                item="task",
                kind=ProposalKind.TASK,
                codes=(Coding(CAREPATH_CODE_SYSTEM, "notify-prescriber", "Notify prescriber"),),
                text="Tell the prescribing physician of non-response",
                priority=Priority.ROUTINE,
            ),
            Proposal(
                item="second-opinion",
                kind=ProposalKind.SERVICE_REQUEST,
                codes=(Coding(SNOMED, "308474002", "Referral to neurologist"),),
                text="Second opinion: neurologist",
                priority=Priority.ROUTINE,
                performer=Coding(SNOMED, "56397003", "Neurologist"),
                note="Radicular findings on record",
            ),
        ),
        explanation="Pain 7 → 6 (−1; needs −2 or −30 %) after 6 weeks and 9 PT visits: adherent non-responder.",
        evidence=(
            Evidence("pain.baseline", 7, (PAIN,)),
            Evidence("pain.latest", 6.0, (PAIN,)),
            Evidence("adherent", True, (ADHERENCE,)),
            Evidence("pt_visits", 9, (VISIT,)),
            Evidence("baseline_at", AT, ()),
            Evidence("t0", date(2026, 1, 5), ()),
            Evidence("barriers", ("barrier-time",), ()),
            Evidence("region", Coding(SNOMED, "128196005", "Lumbar radiculopathy"), (DIAGNOSIS,)),
            Evidence("note", "", ()),
            Evidence("unknown", None, ()),
        ),
        reasons=(PAIN, ADHERENCE, VISIT),
        definition=DEFINITION,
    )
    return replace(decision, **changes)


def imaging() -> Decision:
    """Imaging: an MRI (SNOMED and CPT side by side) and a nerve conduction study."""
    mri = Proposal(
        item="mri",
        kind=ProposalKind.SERVICE_REQUEST,
        codes=(Coding(SNOMED, "394451000119106"), Coding(CPT, "72148")),
        text="MRI lumbar spine without contrast",
        priority=Priority.ROUTINE,
    )
    ncs = Proposal(
        item="ncs",
        kind=ProposalKind.SERVICE_REQUEST,
        codes=(Coding(CAREPATH_CODE_SYSTEM, "ncs-emg"), Coding(CPT, "95907")),
        text="Nerve conduction study",
        priority=Priority.ROUTINE,
    )
    return reassessment(step="imaging", proposals=(mri, ncs), reasons=(DIAGNOSIS,))


def red_flag() -> Decision:
    """A major red flag: a stat Task and an urgent physician review, with no reasons recorded."""
    task = Proposal(
        "task",
        ProposalKind.TASK,
        (Coding(CAREPATH_CODE_SYSTEM, "urgent-red-flag-review"),),
        "Urgent physician re-evaluation",
        Priority.STAT,
    )
    review = Proposal(
        "review",
        ProposalKind.SERVICE_REQUEST,
        (Coding(CAREPATH_CODE_SYSTEM, "urgent-physician-review"),),
        "Urgent physician review",
        Priority.STAT,
    )
    return reassessment(
        step="red-flags", severity="major", priority=Priority.STAT, proposals=(review, task), reasons=(), evidence=()
    )


DECISIONS = {"reassessment": reassessment, "imaging": imaging, "red-flag": red_flag}


def by_type(rendered: RenderedDecision, resource_type: str) -> list[dict[str, Any]]:
    return [r for r in rendered.resources if r["resourceType"] == resource_type]


def identifier(resource: dict[str, Any]) -> str:
    return str(resource["identifier"][0]["value"])


def approve_tasks(rendered: RenderedDecision) -> list[dict[str, Any]]:
    return [t for t in by_type(rendered, "Task") if t["code"]["coding"][0]["code"] == "approve"]


# --- validity -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DECISIONS)
def test_every_rendered_resource_validates_against_the_r4_models_and_required_codes(name: str) -> None:
    for resource in render_decision(DECISIONS[name](), "123", AUTHOR).resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        validate_resource(resource, resource["resourceType"])


@pytest.mark.parametrize("name", DECISIONS)
def test_rendered_resources_are_plain_json(name: str) -> None:
    rendered = render_decision(DECISIONS[name](), "123", AUTHOR)
    assert json.loads(json.dumps(rendered.resources)) == list(rendered.resources)


# --- identity -----------------------------------------------------------------------------------


def test_the_identifier_names_patient_pathway_version_episode_step_occurrence_and_item() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    assert identifier(by_type(rendered, "ServiceRequest")[0]) == (
        "Patient/123|pt-nonresponse|1.0.0|ep-2026-01-05|reassessment|1|second-opinion"
    )
    assert rendered.group_identifier == "Patient/123|pt-nonresponse|1.0.0|ep-2026-01-05|reassessment|1"
    assert rendered.decision_key == "ep-2026-01-05/reassessment/1"


def test_every_resource_has_the_proposal_identifier_system_and_a_distinct_value() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    for resource in by_type(rendered, "Task") + by_type(rendered, "ServiceRequest"):
        assert resource["identifier"][0]["system"] == PROPOSAL_IDENTIFIER_SYSTEM
    assert len(set(rendered.identifiers)) == len(rendered.resources) == 4


def test_rendering_the_same_decision_twice_gives_identical_resources() -> None:
    assert render_decision(reassessment(), "123", AUTHOR) == render_decision(reassessment(), "123", AUTHOR)


@pytest.mark.parametrize(
    "changes",
    [
        {"occurrence": 2},
        {"episode": "ep-2026-06-01"},
        {"definition": DEFINITION.replace("1.0.0", "1.1.0")},
        {"reissue": 2},
    ],
)
def test_a_repeat_episode_new_version_or_reissue_gives_new_identifiers(changes: dict[str, Any]) -> None:
    first = set(render_decision(reassessment(), "123", AUTHOR).identifiers)
    assert first.isdisjoint(render_decision(reassessment(**changes), "123", AUTHOR).identifiers)


def test_a_reissue_rides_on_the_occurrence_and_keeps_the_engines_key() -> None:
    rendered = render_decision(reassessment(reissue=3), "123", AUTHOR)
    assert rendered.group_identifier == "Patient/123|pt-nonresponse|1.0.0|ep-2026-01-05|reassessment|1~3"
    assert rendered.decision_key == "ep-2026-01-05/reassessment/1~3"
    assert pathway_key_of(rendered.decision_key) == reassessment().key == "ep-2026-01-05/reassessment/1"


def test_another_patient_gets_other_identifiers() -> None:
    first = set(render_decision(reassessment(), "123", AUTHOR).identifiers)
    assert first.isdisjoint(render_decision(reassessment(), "456", AUTHOR).identifiers)


def test_red_flag_severities_of_the_same_occurrence_get_different_identifiers() -> None:
    major = render_decision(red_flag(), "123", AUTHOR)
    minor = render_decision(replace(red_flag(), severity="minor"), "123", AUTHOR)
    assert set(major.identifiers).isdisjoint(minor.identifiers)
    assert major.group_identifier.endswith("|red-flags:major|1")


def test_the_approve_task_is_keyed_by_its_service_request_item() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    assert identifier(approve_tasks(rendered)[0]).endswith("|second-opinion-approve")


def test_the_resource_id_is_the_client_id_of_its_identifier() -> None:
    for resource in render_decision(reassessment(), "123", AUTHOR).resources:
        assert resource["id"] == client_id(key_of(resource))
        assert FHIR_ID.fullmatch(resource["id"])


@given(st.text(min_size=1, max_size=300))
def test_client_ids_are_fhir_legal_and_deterministic(value: str) -> None:
    assert FHIR_ID.fullmatch(client_id(value))
    assert client_id(value) == client_id(value)


@given(st.lists(st.text(min_size=1, max_size=40), min_size=2, max_size=6, unique=True))
def test_different_identifiers_get_different_client_ids(values: list[str]) -> None:
    assert len({client_id(v) for v in values}) == len(values)


@pytest.mark.parametrize(
    ("changes", "patient"),
    [
        ({"definition": "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse"}, "123"),
        ({"step": "a|b"}, "123"),
        ({"episode": ""}, "123"),
        ({}, "Patient/123"),
        ({"at": datetime(2026, 2, 16, 9, 30)}, "123"),
    ],
)
def test_a_decision_that_cannot_be_keyed_or_timed_unambiguously_is_refused(
    changes: dict[str, Any], patient: str
) -> None:
    with pytest.raises(ValueError):
        render_decision(reassessment(**changes), patient, AUTHOR)


def test_two_proposals_with_the_same_item_are_refused() -> None:
    task = reassessment().proposals[0]
    with pytest.raises(ValueError, match="unique"):
        render_decision(reassessment(proposals=(task, task)), "123", AUTHOR)


# --- what every proposal carries ----------------------------------------------------------------


def test_tasks_and_service_requests_carry_the_step_tag_canonical_patient_and_authored_time() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    for task in by_type(rendered, "Task"):
        assert task["meta"]["tag"] == [{"system": PATHWAY_STEP_SYSTEM, "code": "reassessment"}]
        assert task["instantiatesCanonical"] == DEFINITION  # 0..1 on R4 Task
        assert task["for"] == {"reference": "Patient/123"}
        assert task["authoredOn"] == "2026-02-16T09:30:00Z"
    for request in by_type(rendered, "ServiceRequest"):
        assert request["meta"]["tag"] == [{"system": PATHWAY_STEP_SYSTEM, "code": "reassessment"}]
        assert request["instantiatesCanonical"] == [DEFINITION]
        assert request["subject"] == {"reference": "Patient/123"}
        assert request["authoredOn"] == "2026-02-16T09:30:00Z"


def test_a_decision_time_in_another_zone_is_written_in_utc() -> None:
    at = datetime.fromisoformat("2026-02-16T10:30:00.250000+01:00")
    rendered = render_decision(reassessment(at=at), "123", AUTHOR)
    assert by_type(rendered, "Task")[0]["authoredOn"] == "2026-02-16T09:30:00.250000Z"


def test_tasks_are_requested_orders_from_the_engine_device_with_the_explanation() -> None:
    for task in by_type(render_decision(reassessment(), "123", AUTHOR), "Task"):
        assert (task["status"], task["intent"], task["priority"]) == ("requested", "order", "routine")
        assert task["requester"] == AUTHOR
        assert task["description"] == reassessment().explanation


def test_a_task_proposal_is_coded_with_its_local_code() -> None:
    task = by_type(render_decision(reassessment(), "123", AUTHOR), "Task")[0]
    assert task["code"]["coding"] == [
        {"system": CAREPATH_CODE_SYSTEM, "code": "notify-prescriber", "display": "Notify prescriber"}
    ]
    assert task["code"]["text"] == "Tell the prescribing physician of non-response"
    assert "focus" not in task


def test_a_task_takes_the_first_reason_and_keeps_the_others_as_evidence_inputs() -> None:
    task = by_type(render_decision(reassessment(), "123", AUTHOR), "Task")[0]
    assert task["reasonReference"] == {"reference": "Observation/12"}
    assert task["input"] == [
        {"type": {"text": "evidence"}, "valueReference": {"reference": "Observation/adh-1"}},
        {"type": {"text": "evidence"}, "valueReference": {"reference": "Encounter/visit-9"}},
    ]


def test_a_decision_without_reasons_renders_no_reason_elements() -> None:
    rendered = render_decision(red_flag(), "123", AUTHOR)
    for resource in rendered.resources:
        assert not {"reasonReference", "input", "supportingInfo", "entity", "extension"} & set(resource)


def test_service_requests_are_draft_proposals_with_code_text_note_and_performer() -> None:
    request = by_type(render_decision(reassessment(), "123", AUTHOR), "ServiceRequest")[0]
    assert (request["status"], request["intent"], request["priority"]) == ("draft", "proposal", "routine")
    assert request["code"] == {
        "coding": [{"system": SNOMED, "code": "308474002", "display": "Referral to neurologist"}],
        "text": "Second opinion: neurologist",
    }
    assert request["performerType"] == {"coding": [{"system": SNOMED, "code": "56397003", "display": "Neurologist"}]}
    assert [n["text"] for n in request["note"]] == [reassessment().explanation, "Radicular findings on record"]


def test_service_request_reasons_keep_allowed_types_and_move_encounters_to_supporting_info() -> None:
    request = by_type(render_decision(reassessment(), "123", AUTHOR), "ServiceRequest")[0]
    assert request["reasonReference"] == [{"reference": "Observation/12"}, {"reference": "Observation/adh-1"}]
    assert request["supportingInfo"] == [{"reference": "Encounter/visit-9"}]


def test_local_and_standard_codes_sit_side_by_side_on_a_service_request() -> None:
    mri = by_type(render_decision(imaging(), "123", AUTHOR), "ServiceRequest")[0]
    assert [(c["system"], c["code"]) for c in mri["code"]["coding"]] == [(SNOMED, "394451000119106"), (CPT, "72148")]


@pytest.mark.parametrize(
    ("name", "index", "category"),
    [("imaging", 0, "363679005"), ("imaging", 1, None), ("reassessment", 0, "3457005"), ("red-flag", 0, "3457005")],
)
def test_the_service_request_category_follows_its_codes(name: str, index: int, category: str | None) -> None:
    request = by_type(render_decision(DECISIONS[name](), "123", AUTHOR), "ServiceRequest")[index]
    found = [c["code"] for concept in request.get("category", []) for c in concept["coding"]]
    assert found == ([category] if category else [])


def test_every_service_request_gets_one_approve_task_focusing_it() -> None:
    rendered = render_decision(imaging(), "123", AUTHOR)
    requests = by_type(rendered, "ServiceRequest")
    approvals = approve_tasks(rendered)
    assert [t["focus"]["reference"] for t in approvals] == [f"ServiceRequest/{r['id']}" for r in requests]
    for task in approvals:
        assert task["code"]["coding"][0]["system"] == TASK_CODE_SYSTEM
    assert len(by_type(rendered, "Task")) == 2


def test_the_approve_task_has_its_service_request_priority() -> None:
    rendered = render_decision(red_flag(), "123", AUTHOR)
    assert approve_tasks(rendered)[0]["priority"] == "stat"


def test_carepath_is_named_requester_and_author_by_the_reference_the_caller_gives() -> None:
    author = {"identifier": {"system": "urn:example:devices", "value": "cp-7"}, "display": "Carepath at site 7"}
    rendered = render_decision(reassessment(), "123", author)
    assert [r["requester"] for r in rendered.resources if "requester" in r] == [author, author, author]
    assert by_type(rendered, "Provenance")[0]["agent"][0]["who"] == author
    assert "Device/carepath" not in json.dumps(rendered.resources)  # no EHR holds it


def test_resources_come_in_a_safe_write_order() -> None:
    rendered = render_decision(red_flag(), "123", AUTHOR)  # the Task proposal is listed after the ServiceRequest
    assert [r["resourceType"] for r in rendered.resources] == ["ServiceRequest", "Task", "Task", "Provenance"]
    written: set[str] = set()
    for resource in rendered.resources:
        focus = resource.get("focus", {}).get("reference")
        assert focus is None or focus in written
        written.add(f"{resource['resourceType']}/{resource['id']}")


def test_the_decision_resources_share_a_group_identifier() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    groups = [t["groupIdentifier"]["value"] for t in by_type(rendered, "Task")]
    groups += [r["requisition"]["value"] for r in by_type(rendered, "ServiceRequest")]
    assert set(groups) == {rendered.group_identifier}


# --- Provenance ---------------------------------------------------------------------------------


def provenance_of(rendered: RenderedDecision) -> dict[str, Any]:
    (provenance,) = by_type(rendered, "Provenance")
    return provenance


def test_the_provenance_targets_every_written_resource_and_each_names_it() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    provenance = provenance_of(rendered)
    others = [r for r in rendered.resources if r is not provenance]
    assert [t["reference"] for t in provenance["target"]] == [f"{r['resourceType']}/{r['id']}" for r in others]
    for resource in others:
        assert resource["relevantHistory"] == [{"reference": f"Provenance/{provenance['id']}"}]


def test_the_provenance_records_the_moment_policy_activity_and_author() -> None:
    provenance = provenance_of(render_decision(reassessment(), "123", AUTHOR))
    assert provenance["recorded"] == "2026-02-16T09:30:00Z"
    assert provenance["policy"] == [DEFINITION]
    assert provenance["activity"]["coding"][0]["code"] == "CREATE"
    assert provenance["agent"][0]["type"]["coding"][0]["code"] == "author"
    assert provenance["meta"]["tag"][0] == {"system": PATHWAY_STEP_SYSTEM, "code": "reassessment"}


def test_the_provenance_key_is_a_searchable_tag_because_r4_provenance_has_no_identifier() -> None:
    provenance = provenance_of(render_decision(reassessment(), "123", AUTHOR))
    assert "identifier" not in provenance
    assert key_of(provenance).endswith("|reassessment|1|provenance")
    assert if_none_exist(provenance).startswith("_tag=")


def test_the_provenance_entities_are_version_specific_sources_each_named_once() -> None:
    provenance = provenance_of(render_decision(reassessment(), "123", AUTHOR))
    assert [(e["role"], e["what"]["reference"]) for e in provenance["entity"]] == [
        ("source", "Observation/12/_history/3"),
        ("source", "Observation/adh-1"),
        ("source", "Encounter/visit-9/_history/1"),
        ("source", "Condition/dx-1/_history/2"),
    ]


def _evidence(provenance: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for extension in provenance["extension"]:
        assert extension["url"] == outbound.EVIDENCE_EXTENSION_URL
        assert set(extension) == {"url", "extension"}  # ext-1: a complex extension has no value of its own
        parts = extension["extension"]
        name = parts[0]["valueString"]
        value = next((p for p in parts if p["url"] == "value"), {})
        sources = [p["valueReference"]["reference"] for p in parts if p["url"] == "source"]
        out[name] = {k: v for k, v in value.items() if k != "url"} | {"sources": sources}
    return out


def test_the_structured_evidence_rides_on_the_provenance_with_typed_values_and_sources() -> None:
    evidence = _evidence(provenance_of(render_decision(reassessment(), "123", AUTHOR)))
    assert evidence["pain.baseline"] == {"valueInteger": 7, "sources": ["Observation/12/_history/3"]}
    assert evidence["pain.latest"] == {"valueDecimal": 6.0, "sources": ["Observation/12/_history/3"]}
    assert evidence["adherent"] == {"valueBoolean": True, "sources": ["Observation/adh-1"]}
    assert evidence["baseline_at"] == {"valueDateTime": "2026-02-16T09:30:00Z", "sources": []}
    assert evidence["t0"] == {"valueDate": "2026-01-05", "sources": []}
    assert evidence["barriers"] == {"valueString": '["barrier-time"]', "sources": []}
    assert evidence["region"]["valueCoding"]["code"] == "128196005"
    assert evidence["note"] == {"valueString": '""', "sources": []}
    assert evidence["unknown"] == {"sources": []}


# --- bundles ------------------------------------------------------------------------------------


def _unescape_token(token: str) -> tuple[str, str]:
    """Split a FHIR token search value at its first unescaped `|` and unescape the value."""
    system, _, value = re.split(r"(?<!\\)(\|)", token, maxsplit=1)
    return system, re.sub(r"\\(.)", r"\1", value)


def test_a_transaction_bundle_validates_and_creates_each_resource_conditionally() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    bundle = transaction_bundle(rendered)
    validate_resource(bundle, "Bundle")
    assert bundle["type"] == "transaction"
    for entry, resource in zip(bundle["entry"], rendered.resources, strict=True):
        parameter, _, query = entry["request"]["ifNoneExist"].partition("=")
        assert entry["request"]["method"] == "POST"
        assert entry["request"]["url"] == resource["resourceType"]
        assert parameter == ("_tag" if resource["resourceType"] == "Provenance" else "identifier")
        assert _unescape_token(unquote(query)) == (PROPOSAL_IDENTIFIER_SYSTEM, key_of(resource))
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"
        assert "id" not in entry["resource"]


def test_a_search_token_escapes_fhir_separators_and_leaves_percent_encoding_to_the_query_string() -> None:
    token = search_token("https://x.org/id", "Patient/1|a,b$c\\d e&f=g%7C")
    assert token == "https://x.org/id|Patient/1\\|a\\,b\\$c\\\\d e&f=g%7C"
    assert _unescape_token(token) == ("https://x.org/id", "Patient/1|a,b$c\\d e&f=g%7C")


def test_token_criteria_are_a_query_string_encoded_once() -> None:
    criteria = token_criteria("identifier", "https://x.org/id", "Patient/1|a e&f=g%7C")
    parameter, _, query = criteria.partition("=")
    assert parameter == "identifier" and not set(" &=|") & set(query)
    assert parse_qsl(criteria) == [("identifier", search_token("https://x.org/id", "Patient/1|a e&f=g%7C"))]


@given(st.text(min_size=1))
def test_any_identifier_value_round_trips_through_a_search_token(value: str) -> None:
    assert _unescape_token(search_token(PROPOSAL_IDENTIFIER_SYSTEM, value)) == (PROPOSAL_IDENTIFIER_SYSTEM, value)
    ((_, decoded),) = parse_qsl(token_criteria("identifier", PROPOSAL_IDENTIFIER_SYSTEM, value), keep_blank_values=True)
    assert _unescape_token(decoded) == (PROPOSAL_IDENTIFIER_SYSTEM, value)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def test_transaction_entries_reference_each_other_by_full_url() -> None:
    bundle = transaction_bundle(render_decision(imaging(), "123", AUTHOR))
    full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
    internal = [r for r in _references(bundle) if r.startswith(("Task/", "ServiceRequest/", "Provenance/", "urn:"))]
    assert internal and set(internal) <= full_urls


def test_a_transaction_from_stored_copies_equals_one_from_the_rendering() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    stored = [resource | {"meta": resource["meta"] | {"versionId": "1"}} for resource in rendered.resources]
    assert transaction_bundle(stored) == transaction_bundle(rendered)


def test_a_collection_bundle_of_several_decisions_validates_and_resolves_every_reference() -> None:
    decisions = [render_decision(reassessment(), "123", AUTHOR), render_decision(imaging(), "123", AUTHOR)]
    bundle = collection_bundle([*decisions, decisions[0]])
    validate_resource(bundle, "Bundle")
    assert bundle["type"] == "collection"
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls)) == 4 + 5  # the repeated decision is bundled once
    urns = [r for r in _references(bundle) if r.startswith("urn:uuid:")]
    assert urns and set(urns) <= set(full_urls)
    assert not [r for r in _references(bundle) if r.startswith(("Task/", "ServiceRequest/", "Provenance/"))]


def test_a_dry_run_that_proposes_nothing_is_a_valid_empty_collection() -> None:
    bundle = collection_bundle([])
    assert bundle == {"resourceType": "Bundle", "type": "collection"}
    validate_resource(bundle, "Bundle")


def test_bundling_leaves_the_rendered_resources_untouched() -> None:
    rendered = render_decision(reassessment(), "123", AUTHOR)
    before = json.dumps(rendered.resources)
    transaction_bundle(rendered)
    collection_bundle([rendered])
    assert json.dumps(rendered.resources) == before


# --- withdrawal ---------------------------------------------------------------------------------


def apply_patch(resource: dict[str, Any], patch: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    """The RFC 6902 subset withdrawal uses: test, replace and add on top-level paths and arrays."""
    out = json.loads(json.dumps(resource))
    for op in patch:
        name, *rest = op["path"].strip("/").split("/")
        if op["op"] == "test":
            assert out.get(name) == op["value"], "test op failed"
        elif rest == ["-"]:
            out[name].append(op["value"])
        else:
            out[name] = op["value"]
    return out


def test_withdrawing_an_open_task_cancels_it_with_a_reason() -> None:
    task = by_type(render_decision(reassessment(), "123", AUTHOR), "Task")[0]
    update = withdrawal_updates(task, "Pain score entered in error")
    assert update is not None
    assert update.resource["status"] == "cancelled"
    assert update.resource["statusReason"] == {"text": "Pain score entered in error"}
    assert apply_patch(task, update.patch) == update.resource
    assert task["status"] == "requested"
    validate_resource(update.resource, "Task")


def test_withdrawing_a_service_request_revokes_it_and_notes_why() -> None:
    request = by_type(render_decision(reassessment(), "123", AUTHOR), "ServiceRequest")[0]
    update = withdrawal_updates(request, "Pain score entered in error")
    assert update is not None
    assert update.resource["status"] == "revoked"
    assert update.resource["note"][-1] == {"text": "Pain score entered in error"}
    assert apply_patch(request, update.patch) == update.resource
    validate_resource(update.resource, "ServiceRequest")


def test_withdrawing_a_service_request_without_notes_adds_the_note_list() -> None:
    mri = by_type(render_decision(imaging(), "123", AUTHOR), "ServiceRequest")[0]
    request = {k: v for k, v in mri.items() if k != "note"}
    update = withdrawal_updates(request, "retracted")
    assert update is not None
    assert apply_patch(request, update.patch)["note"] == [{"text": "retracted"}]


@pytest.mark.parametrize(
    ("items", "withdrawn"),
    [
        (("mri",), {"mri": "revoked", "mri-approve": "cancelled"}),
        ((), {"mri": "revoked", "mri-approve": "cancelled", "ncs": "revoked", "ncs-approve": "cancelled"}),
    ],
)
def test_withdrawing_items_reaches_each_item_and_its_approve_task_and_leaves_the_rest_standing(
    items: tuple[str, ...], withdrawn: dict[str, str]
) -> None:
    rendered = render_decision(imaging(), "123", AUTHOR)
    after = outbound.apply_withdrawal(rendered, Withdrawal("1/imaging/1", "MRI contraindicated", items))
    statuses = {key_of(r).rsplit("|", 1)[1]: r.get("status") for r in after.resources}
    standing = {"mri": "draft", "mri-approve": "requested", "ncs": "draft", "ncs-approve": "requested"}
    assert statuses == standing | withdrawn | {"provenance": None}
    reasons = {outbound.withdrawal_reason(r) for r in after.resources if key_of(r).rsplit("|", 1)[1] in withdrawn}
    assert reasons == {"MRI contraindicated"}
    assert [outbound.withdrawal_reason(r) for r in rendered.resources] == [None] * len(rendered.resources)


def test_the_withdrawal_patch_fails_if_the_status_moved_on_meanwhile() -> None:
    task = by_type(render_decision(reassessment(), "123", AUTHOR), "Task")[0]
    update = withdrawal_updates(task, "retracted")
    assert update is not None
    with pytest.raises(AssertionError, match="test op failed"):
        apply_patch(task | {"status": "completed"}, update.patch)


@pytest.mark.parametrize(
    ("resource_type", "status"),
    [
        ("Task", "completed"),
        ("Task", "cancelled"),
        ("Task", "rejected"),
        ("Task", "failed"),
        ("ServiceRequest", "completed"),
        ("ServiceRequest", "revoked"),
        ("ServiceRequest", "entered-in-error"),
        ("Observation", "final"),
    ],
)
def test_a_closed_resource_is_left_alone(resource_type: str, status: str) -> None:
    assert withdrawal_updates({"resourceType": resource_type, "status": status}, "retracted") is None


def test_a_service_request_carries_the_reason_codes_of_its_proposal() -> None:
    """2.0 (spec 5.3, 5.8): the physiotherapist referral gives its reason as a code (LOCAL pt-approach-change)."""
    referral = Proposal(
        item="pt-approach-change",
        kind=ProposalKind.SERVICE_REQUEST,
        codes=(Coding(SNOMED, "308447003", "Referral to physiotherapist"),),
        text="Referral to physiotherapist: change of PT approach.",
        priority=Priority.ROUTINE,
        reason_codes=(Coding(CAREPATH_CODE_SYSTEM, "pt-approach-change", "Change of PT approach"),),
    )
    rendered = render_decision(reassessment(proposals=(referral,)), "123", AUTHOR)
    (request,) = by_type(rendered, "ServiceRequest")
    assert request["reasonCode"] == [
        {"coding": [{"system": CAREPATH_CODE_SYSTEM, "code": "pt-approach-change", "display": "Change of PT approach"}]}
    ]
    get_fhir_model_class("ServiceRequest").model_validate(request)
    validate_resource(request, "ServiceRequest")
    (plain,) = by_type(render_decision(imaging(), "123", AUTHOR), "ServiceRequest")[:1]
    assert "reasonCode" not in plain
