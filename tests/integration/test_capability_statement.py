"""The CapabilityStatement against the running app: every search parameter it advertises matches real
data (decided by the pipeline), and every route under /fhir is declared in it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pathways.fhir.outbound.keys import PROPOSAL_IDENTIFIER_SYSTEM
from pathways.fhir.references import reference_key
from service.app import create_app
from service.bootstrap import Services, build
from service.fhir import interactions
from service.settings import Settings
from service.store import decisions
from service.store.database import transaction
from tests.access import bearer, token_for
from tests.copies import copies_of, decide_red_flag

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def services(stack_settings: Settings) -> Iterator[Services]:
    built = build(replace(stack_settings, ehr_base_url=None))
    yield built
    built.db.dispose()


@pytest.fixture(scope="module")
def app(services: Services) -> Flask:
    return create_app(services.settings, services=services)


@pytest.fixture(scope="module")
def client(app: Flask, services: Services) -> FlaskClient:
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = bearer(token_for(services, "coordinator", "gale"))["Authorization"]
    return test_client


@pytest.fixture(scope="module")
def patient(services: Services, client: FlaskClient) -> str:
    """A red-flag patient: two Tasks (one claimed, one focusing the ServiceRequest), the ServiceRequest and
    the Provenance; the EHR's ids recorded as a delivery records them."""
    patient = decide_red_flag(services)
    task = copies_of(services, patient, "Task")[0]
    read = client.get(f"/fhir/Task/{task['id']}")
    claimed = client.post(f"/worklist/Task/{task['id']}/claim", headers={"If-Match": read.headers["ETag"]})
    assert claimed.status_code == 200, claimed.get_json()
    with transaction(services.db) as connection:
        for copy in copies_of(services, patient, "Task"):
            decisions.record_ehr_id(connection, copy["identifier"][0]["value"], f"ehr-{copy['id']}", datetime.now(UTC))
    return patient


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,")


def _identifier(r: Resource) -> str:
    if r["resourceType"] == "Provenance":
        (key,) = [t["code"] for t in r["meta"]["tag"] if t["system"] == PROPOSAL_IDENTIFIER_SYSTEM]
        return f"{PROPOSAL_IDENTIFIER_SYSTEM}|{_escaped(key)}"
    return f"{r['identifier'][0]['system']}|{_escaped(r['identifier'][0]['value'])}"


# How to ask for a resource by each parameter, read from the resource itself (the patient for Provenance).
VALUES: dict[str, Callable[[Resource, str], str]] = {
    "_id": lambda r, p: str(r["id"]),
    "identifier": lambda r, p: _identifier(r),
    "patient": lambda r, p: f"Patient/{p}",
    "subject": lambda r, p: str(r.get("subject", r.get("for"))["reference"]),
    "for": lambda r, p: str(r["for"]["reference"]),
    "status": lambda r, p: str(r["status"]),
    "priority": lambda r, p: str(r["priority"]),
    "code": lambda r, p: f"{r['code']['coding'][0]['system']}|{r['code']['coding'][0]['code']}",
    "_tag": lambda r, p: f"{r['meta']['tag'][0]['system']}|{r['meta']['tag'][0]['code']}",
    "owner": lambda r, p: str(reference_key(r["owner"])),
    "authored-on": lambda r, p: f"ge{r['authoredOn'][:10]}",
    "authored": lambda r, p: f"ge{r['authoredOn'][:10]}",
    "recorded": lambda r, p: f"ge{r['recorded'][:10]}",
    "target": lambda r, p: str(r["target"][0]["reference"]),
    "_lastUpdated": lambda r, p: f"ge{r['meta']['lastUpdated'][:10]}",
    "_count": lambda r, p: "1",
}


def advertised(client: FlaskClient) -> list[tuple[str, str]]:
    statement = client.get("/fhir/metadata").get_json()
    return [(r["type"], p["name"]) for r in statement["rest"][0]["resource"] for p in r.get("searchParam", [])]


def test_every_advertised_search_parameter_of_every_resource_matches_real_data(
    client: FlaskClient, services: Services, patient: str
) -> None:
    params = advertised(client)
    assert {t for t, _ in params} == {"Task", "ServiceRequest", "Provenance"}
    never_matched = []
    for resource_type, name in params:
        assert name in VALUES, f"{resource_type}?{name} is advertised but this test cannot ask for it"
        candidates = [client.get(f"/fhir/{resource_type}/{c['id']}").get_json()
                      for c in copies_of(services, patient, resource_type)]  # fmt: skip
        matched = False
        for resource in candidates:
            try:
                value = VALUES[name](resource, patient)
            except (KeyError, TypeError, IndexError, ValueError):
                continue  # this copy lacks the element (an unclaimed Task has no owner)
            query = {name: value} if name == "_id" else {name: value, "_id": resource["id"]}
            answer = client.get(f"/fhir/{resource_type}", query_string=query)
            assert answer.status_code == 200, (resource_type, name, answer.get_json())
            matched = matched or [e["resource"]["id"] for e in answer.get_json()["entry"]] == [resource["id"]]
        if not matched:
            never_matched.append(f"{resource_type}?{name}")
    assert never_matched == []


# The interaction a route answers, by the shape of its rule (after the type) and the method.
SHAPES: dict[tuple[str, str], str] = {
    ("", "GET"): "search-type",
    ("", "POST"): "create",
    ("/_search", "POST"): "search-type",
    ("/<id>", "GET"): "read",
    ("/<id>", "PUT"): "update",
    ("/<id>", "PATCH"): "patch",
    ("/<id>", "DELETE"): "delete",
    ("/<id>/_history/<id>", "GET"): "vread",
}
CANDIDATE_TYPES = (*interactions.SERVED, "Patient", "Basic", "Subscription")


def test_every_route_under_fhir_is_declared_in_the_capability_statement(app: Flask, client: FlaskClient) -> None:
    statement = client.get("/fhir/metadata").get_json()
    (rest,) = statement["rest"]
    declared = {(r["type"], i["code"]) for r in rest["resource"] for i in r["interaction"]} | {
        (r["type"], f"${o['name']}") for r in rest["resource"] for o in r.get("operation", [])
    }
    system = {i["code"] for i in rest["interaction"]}
    undeclared = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule == "/fhir" or rule.rule.startswith("/fhir/")) or rule.rule in ("/fhir/metadata", "/fhir/"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if rule.rule == "/fhir":
                if not {"batch", "transaction"} <= system:
                    undeclared.append(f"{method} /fhir")
                continue
            match = re.fullmatch(r"/fhir/(<[^>]+>|[A-Za-z]+)(.*)", rule.rule)
            assert match is not None, rule.rule
            literal, rest_of_rule = match.groups()
            shape = re.sub(r"<[^>]+>", "<id>", rest_of_rule)
            types = [literal] if not literal.startswith("<") else list(CANDIDATE_TYPES)
            for resource_type in types:
                path = f"/fhir/{resource_type}" + shape.replace("<id>", "x1")
                if interactions.refusal(method, path) is not None:
                    continue  # never reached: the access check refuses it
                operation = re.fullmatch(r"/<id>/(\$[A-Za-z-]+)", shape)
                code = operation.group(1) if operation else SHAPES.get((shape, method))
                if code is None or (resource_type, code) not in declared:
                    undeclared.append(f"{method} {rule.rule} for {resource_type} ({code or 'unknown shape'})")
    assert undeclared == []
