"""The CapabilityStatement claims only what the search serves, and names the shipped pathway."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from pathways.definition import SHIPPED_VERSIONS, load_definition_file
from service.api.metadata import capability_statement
from service.app import create_app
from service.settings import Settings
from service.store import task_search

SAMPLE = {"reference": "Patient/p1", "token": "stat", "date": "ge2026-01-01", "number": "10"}
DECIDED = ("Task", "ServiceRequest", "Provenance")
SHIPPED_DEFINITIONS = tuple(load_definition_file(path) for path in SHIPPED_VERSIONS)


def resource(kind: str) -> dict:
    found = capability_statement("http://carepath.test/fhir", SHIPPED_DEFINITIONS)["rest"][0]["resource"]
    return next(r for r in found if r["type"] == kind)


@pytest.mark.parametrize("kind", DECIDED)
def test_every_search_parameter_claimed_is_accepted_by_the_search(kind: str) -> None:
    for param in resource(kind)["searchParam"]:
        task_search.query(kind, [(param["name"], SAMPLE[param["type"]])])  # raises a 400 Problem when unsupported


@pytest.mark.parametrize("kind", DECIDED)
def test_the_sort_keys_documented_are_exactly_those_the_search_sorts_by(kind: str) -> None:
    documented = resource(kind)["documentation"]
    claimed = re.match(r"`_sort` by (.*?), comma-separated", documented)
    assert claimed is not None, documented
    keys = re.findall(r"`([^`]+)`", claimed.group(1))
    assert keys == list(task_search.SORTS)
    for key in keys:
        task_search.query(kind, [("_sort", f"{key},-{key}")])


def test_owner_is_claimed_for_tasks_only() -> None:
    assert [kind for kind in DECIDED if "owner" in {p["name"] for p in resource(kind)["searchParam"]}] == ["Task"]


def test_an_unsupported_sort_key_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(Exception, match="_sort by colour is not supported; use authored-on, priority"):
        task_search.query("Task", [("_sort", "colour")])


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("priority", ["urgency ASC", "authored_on ASC", "id ASC"]),
        ("priority,-authored-on", ["urgency ASC", "authored_on DESC", "id ASC"]),
        ("-priority", ["urgency DESC", "authored_on ASC", "id ASC"]),
        ("status", ["status ASC", "authored_on ASC", "id ASC"]),
        ("-authored-on", ["authored_on DESC", "id ASC"]),
    ],
)
def test_ties_go_to_the_longest_waiting_unless_authored_on_is_a_key_then_to_the_id(
    sort: str, expected: list[str]
) -> None:
    order = task_search.query("Task", [("_sort", sort)]).order
    compiled = [str(o.compile(compile_kwargs={"literal_binds": True})) for o in order]
    described = [re.sub(r"CASE .* END", "urgency", c, flags=re.S).replace("proposals.", "") for c in compiled]
    assert described == expected


def test_the_capability_statement_offers_the_shipped_pathway_and_its_dry_run(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path)}))
    statement = app.test_client().get("/fhir/metadata").get_json()
    CapabilityStatement.model_validate(statement)

    (plan,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "PlanDefinition"]
    assert plan["interaction"] == [{"code": "read"}]
    assert [(o["name"], o["definition"]) for o in plan["operation"]] == [
        ("apply", "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply")
    ]
    documentation = plan["documentation"]
    assert documentation.startswith("PlanDefinition/pt-nonresponse: Physical therapy that is not working")
    assert "shipped: 2.0.0; 1.0.0, 1.1.0 kept for the patients enrolled on them" in documentation
    assert "Knee, shoulder and hip (2.0) have episodes of their own" in documentation
