"""`PlanDefinition/$apply` on the production stack: unless `trace` is false, the collection Bundle
also carries why each rule fired or did not at each evaluation, as a Parameters entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services
from service.settings import Settings
from tests.access import bearer, token_for

JOURNEY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "adherent-non-responder.json"
APPLY = "/fhir/PlanDefinition/pt-nonresponse/$apply"


@pytest.fixture()
def client(stack_settings: Settings, stack_services: Services) -> Iterator[FlaskClient]:
    app = create_app(replace(stack_settings, ehr_base_url=None), services=stack_services)
    with app.test_client() as test_client:
        test_client.environ_base["HTTP_AUTHORIZATION"] = bearer(token_for(stack_services, "coordinator"))[
            "Authorization"
        ]
        yield test_client


def apply(client: FlaskClient, *extra: dict[str, Any]) -> dict[str, Any]:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueString": "Patient/journey-1"},
            {"name": "data", "resource": json.loads(JOURNEY.read_text())},
            {"name": "now", "valueDateTime": "2026-03-01T00:00:00Z"},
            *extra,
        ],
    }
    response = client.post(APPLY, json=parameters, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def parts(node: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [p for p in node.get("part", []) if p["name"] == name]


def test_apply_adds_the_evaluation_trace_as_a_parameters_entry_after_the_proposals(
    client: FlaskClient,
) -> None:
    plain = apply(client, {"name": "trace", "valueBoolean": False})
    traced = apply(client)
    assert apply(client, {"name": "trace", "valueBoolean": True}) == traced
    Bundle.model_validate(traced)
    assert traced["entry"][:-1] == plain["entry"]  # the proposals are unchanged
    assert all(e["resource"]["resourceType"] != "Parameters" for e in plain["entry"])
    trace = traced["entry"][-1]["resource"]
    assert trace["resourceType"] == "Parameters"
    evaluations = trace["parameter"]
    assert {p["name"] for p in evaluations} == {"evaluation"}
    first = evaluations[0]
    assert parts(first, "moment")[0]["valueDateTime"] == "2026-01-05T09:00:00+00:00"
    assert parts(first, "trigger")[0]["valueString"] == "fact Encounter/visit-1"
    assert parts(first, "definition")[0]["valueCanonical"].endswith("pt-nonresponse|2.0.0")

    checkpoint = next(e for e in evaluations if parts(e, "trigger")[0]["valueString"] == "checkpoint")
    checks = {parts(c, "rule")[0]["valueString"]: c for c in parts(checkpoint, "check")}
    responded = checks["checkpoint.responded"]
    assert parts(responded, "fired")[0]["valueBoolean"] is False
    assert parts(responded, "reason")[0]["valueString"] == "no evaluable measure reached the MCID"
    seen = {parts(v, "name")[0]["valueString"]: parts(v, "value")[0]["valueString"] for v in parts(responded, "value")}
    assert seen["measures"].startswith("Pain 7 → 6 (−1; needs −2 or −30 %)")
    assert parts(checks["reassessment"], "fired")[0]["valueBoolean"] is True
    assert parts(checks["adherence"], "reason")[0]["valueString"] == "adherent: adherence 92 % (≥ 80 %)"
    assert [d["valueString"] for d in parts(checkpoint, "decision")] == ["1/reassessment/1"]
    assert parts(checkpoint, "next-checkpoint")[0]["valueDateTime"] == "2026-03-16T09:00:00+00:00"


def test_apply_with_trace_false_answers_the_proposals_only(client: FlaskClient) -> None:
    plain = apply(client, {"name": "trace", "valueBoolean": False})
    kinds = sorted(e["resource"]["resourceType"] for e in plain["entry"])
    assert kinds == ["Provenance", "ServiceRequest", "Task", "Task"]
