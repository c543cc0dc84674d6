"""Property-based fuzzing of the API on PostgreSQL: schemathesis against the OpenAPI contract of the
non-FHIR endpoints, hypothesis-made FHIR resources and Bundles against the FHIR intake, and deep,
huge and ill-typed bodies and ids against every route that takes a body or an id.
Nothing may answer 5xx, and a refused request stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store.access_tables import api_tokens
from service.store.tables import inbound_events, pathway_definitions, proposals
from tests.access import bearer, token_for

FUZZ = hypothesis.settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PATCH = "application/json-patch+json"
STORED = (api_tokens, pathway_definitions, inbound_events, proposals)


@pytest.fixture(scope="module")
def services(stack_settings: Settings) -> Iterator[Services]:
    built = build(replace(stack_settings, ehr_base_url=None, max_body_bytes=64 * 1024))
    yield built
    built.db.dispose()


@pytest.fixture(scope="module")
def app(services: Services) -> Flask:
    return create_app(services.settings, services=services)


@pytest.fixture(scope="module")
def tokens(services: Services) -> dict[str, str]:
    return {role: token_for(services, role, f"fuzz-{role}") for role in ("ehr", "coordinator", "admin")}


@pytest.fixture(scope="module")
def api_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def counts(services: Services) -> dict[str, int]:
    with services.db.connect() as connection:
        return {t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in STORED}


def test_no_contract_endpoint_fails_or_half_stores_whatever_it_is_sent(
    api_schema: Any, services: Services, tokens: dict[str, str]
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15  # every worklist and admin endpoint of the contract

    for operation in operations:
        fuzz(operation, services, tokens["coordinator" if operation.path.startswith("/worklist") else "admin"])


FHIR_ID = {"type": "string", "pattern": "^[A-Za-z0-9\\-.]{1,64}$"}
QUERY_TYPES = {"number": {"type": "integer", "minimum": 0, "maximum": 1000}, "date": {"type": "string"}}


def capability_as_openapi(statement: dict[str, Any]) -> dict[str, Any]:
    """The reads and searches a CapabilityStatement declares, as OpenAPI for schemathesis to call."""
    paths: dict[str, Any] = {}
    answer = {"default": {"description": "Any FHIR answer"}}
    for resource in statement["rest"][0]["resource"]:
        codes = {i["code"] for i in resource["interaction"]}
        base = f"/fhir/{resource['type']}"
        if "search-type" in codes:
            parameters = [
                {"name": p["name"], "in": "query", "required": False,
                 "schema": QUERY_TYPES.get(p["type"], {"type": "string"})}
                for p in resource.get("searchParam", [])
            ]  # fmt: skip
            paths[base] = {"get": {"parameters": parameters, "responses": answer}}
        if "read" in codes:
            identity = [{"name": "id", "in": "path", "required": True, "schema": FHIR_ID}]
            paths[f"{base}/{{id}}"] = {"get": {"parameters": identity, "responses": answer}}
        if "vread" in codes:
            versioned = [*identity, {"name": "vid", "in": "path", "required": True, "schema": FHIR_ID}]
            paths[f"{base}/{{id}}/_history/{{vid}}"] = {"get": {"parameters": versioned, "responses": answer}}
    return {"openapi": "3.0.3", "info": {"title": "Carepath FHIR", "version": "1"}, "paths": paths}


def test_no_search_or_read_the_capability_statement_declares_fails_whatever_it_is_sent(
    app: Flask, services: Services, tokens: dict[str, str]
) -> None:
    statement = app.test_client().get("/fhir/metadata").get_json()
    fhir_schema = schemathesis.openapi.from_dict(capability_as_openapi(statement))
    fhir_schema.app = app
    operations = [result.ok() for result in fhir_schema.get_all_operations()]
    assert len(operations) >= 9  # search, read and vread of Task, ServiceRequest and Provenance; PlanDefinition read
    for operation in operations:
        fuzz(operation, services, tokens["coordinator"], checks=[not_a_server_error])


def fuzz(operation: Any, services: Services, token: str, checks: list[Any] | None = None) -> None:
    """Hypothesis-generated calls to one operation: valid and invalid parameters and bodies."""

    @FUZZ
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        before = counts(services)
        response = case.call_and_validate(
            headers=bearer(token), checks=checks or [not_a_server_error, response_schema_conformance]
        )
        if response.status_code >= 400:
            assert counts(services) == before, f"{case.method} {case.formatted_path} stored data and failed"

    call()


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
        max_leaves=10,
    )


RESOURCE_TYPES = ("Observation", "Encounter", "Condition", "Procedure", "DiagnosticReport")
FIELDS = ("id", "status", "code", "subject", "effectiveDateTime", "valueQuantity", "period", "class", "meta", "type")


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """Resource-shaped JSON: a known type and a patient, then any mix of fields and junk values."""
    resource: dict[str, Any] = {"resourceType": draw(st.sampled_from(RESOURCE_TYPES))}
    if draw(st.booleans()):
        resource["subject"] = {"reference": draw(st.sampled_from(["Patient/fuzz-1", "Group/2", "", "Patient/"]))}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=5, unique=True)):
        resource[name] = draw(_json_values())
    if draw(st.booleans()):
        resource["status"] = draw(st.sampled_from(["final", "finished", "active", "completed", "bogus"]))
    return resource


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    entries = draw(st.lists(resources().map(lambda r: {"resource": r}) | _json_values(), max_size=4))
    return {
        "resourceType": "Bundle",
        "type": draw(st.sampled_from(["batch", "transaction", "collection"])),
        "entry": entries,
    }


@pytest.fixture()
def ehr_client(app: Flask, tokens: dict[str, str]) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {tokens['ehr']}"
        yield client


@FUZZ
@given(resource=resources())
def test_a_fuzzed_resource_is_stored_or_refused_whole_never_a_server_error(
    ehr_client: FlaskClient, services: Services, resource: dict[str, Any]
) -> None:
    before = counts(services)
    response = ehr_client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code < 500, response.get_json()
    if response.status_code >= 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"
        assert counts(services) == before


@FUZZ
@given(bundle=bundles())
def test_a_fuzzed_bundle_stores_only_its_accepted_entries(
    ehr_client: FlaskClient, services: Services, bundle: dict[str, Any]
) -> None:
    before = counts(services)["inbound_events"]
    response = ehr_client.post("/fhir", json=bundle)
    assert response.status_code < 500, response.get_json()
    created = 0
    if response.status_code == 200:
        created = sum(e["response"]["status"].startswith("201") for e in response.get_json()["entry"])
    assert counts(services)["inbound_events"] == before + created


@FUZZ
@given(operations=_json_values())
def test_a_fuzzed_json_patch_never_breaks_a_task_or_fails_the_server(
    app: Flask, services: Services, tokens: dict[str, str], operations: Any
) -> None:
    with app.test_client() as client:
        response = client.patch(
            "/fhir/Task/not-a-task",
            json=operations,
            headers=bearer(tokens["coordinator"])
            | {"If-Match": 'W/"1"', "Content-Type": "application/json-patch+json"},
        )
    assert response.status_code < 500


# --- deep, huge and ill-typed input -------------------------------------------------------------

BODY_ROUTES = (  # (method, path, role, content type) for every route that reads a JSON body
    ("POST", "/fhir/Observation", "ehr", "application/fhir+json"),
    ("POST", "/fhir", "ehr", "application/fhir+json"),
    ("POST", "/notifications", "ehr", "application/fhir+json"),
    ("PUT", "/notifications/Observation/fuzz-1", "ehr", "application/fhir+json"),
    ("POST", "/fhir/PlanDefinition/pt-nonresponse/$apply", "coordinator", "application/fhir+json"),
    ("PATCH", "/fhir/Task/fuzz-task", "coordinator", PATCH),
    ("PUT", "/fhir/Task/fuzz-task", "coordinator", "application/fhir+json"),
    ("POST", "/worklist/Task/fuzz-task/claim", "coordinator", "application/json"),
    ("POST", "/admin/tokens", "admin", "application/json"),
    ("POST", "/admin/definitions", "admin", "application/json"),
    ("POST", "/admin/definitions/pt-nonresponse/1.0.0/migrate", "admin", "application/json"),
)
ID_ROUTES = (  # (method, path with {id}, role) for every route that takes an id in its path
    ("POST", "/admin/tokens/{id}/revoke", "admin"),
    ("POST", "/admin/deadletters/{id}/replay", "admin"),
    ("GET", "/admin/deliveries/{id}/attempts", "admin"),
    ("GET", "/fhir/Task/{id}", "coordinator"),
    ("PATCH", "/fhir/Task/{id}", "coordinator"),
    ("POST", "/worklist/Task/{id}/claim", "coordinator"),
    ("DELETE", "/fhir/Observation/{id}", "ehr"),
    ("GET", "/fhir/PlanDefinition/{id}", "coordinator"),
    ("PUT", "/notifications/Observation/{id}", "ehr"),
)


def _deep(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=50, max_value=3000))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"extension":[', "]}")]))
    return opening * depth + "0" + closing * depth


def _number(draw: st.DrawFn) -> str:
    digits = "9" * draw(st.integers(min_value=18, max_value=6000))
    return draw(st.sampled_from([digits, "-" + digits, digits + ".5", "1e" + digits[:4], "NaN", "Infinity"]))


@st.composite
def hostile_bodies(draw: st.DrawFn) -> str:
    """JSON text that is deep, holds a huge number, or puts the wrong types where FHIR names them."""
    resource: dict[str, Any] = draw(resources())
    wrong = draw(_json_values().filter(lambda v: not isinstance(v, str)))
    long_id = draw(st.text(alphabet="abc-.", min_size=65, max_size=300))
    shaped = draw(
        st.sampled_from(
            [
                {"resourceType": "Bundle", "type": "batch", "entry": [{"fullUrl": wrong, "resource": resource}]},
                {"resourceType": "Bundle", "type": "history", "entry": [wrong]},
                dict(resource, id=long_id),
                dict(resource, meta={"versionId": long_id}),
                {"resourceType": "Parameters", "parameter": wrong},
            ]
        )
    )
    kind = draw(st.sampled_from(["deep", "number", "shape"]))
    if kind == "deep":
        return _deep(draw)
    if kind == "number":
        return json.dumps(resource)[:-1] + f', "valueInteger": {_number(draw)}}}'
    return json.dumps(shaped)


@FUZZ
@given(route=st.sampled_from(BODY_ROUTES), body=hostile_bodies())
def test_a_deep_huge_or_ill_typed_body_is_refused_on_every_route_never_a_server_error(
    app: Flask, services: Services, tokens: dict[str, str], route: tuple[str, str, str, str], body: str
) -> None:
    method, path, role, content_type = route
    before = counts(services)
    with app.test_client() as client:
        headers = bearer(tokens[role]) | {"Content-Type": content_type, "If-Match": 'W/"1"'}
        response = client.open(path, method=method, data=body, headers=headers)
    assert response.status_code < 500, (method, path, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"
        assert counts(services) == before


@FUZZ
@given(
    route=st.sampled_from(ID_ROUTES),
    path_id=st.integers(min_value=-(2**80), max_value=2**80).map(str)
    | st.text(st.characters(blacklist_characters="/?#", blacklist_categories=("Cs",)), min_size=1, max_size=300),
)
def test_any_path_id_is_answered_never_a_server_error(
    app: Flask, services: Services, tokens: dict[str, str], route: tuple[str, str, str], path_id: str
) -> None:
    method, path, role = route
    before = counts(services)
    with app.test_client() as client:
        headers = bearer(tokens[role]) | {"Content-Type": "application/json", "If-Match": 'W/"1"'}
        response = client.open(path.format(id=path_id), method=method, data="{}", headers=headers)
    assert response.status_code < 500, (method, path, path_id[:40], response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert counts(services) == before
