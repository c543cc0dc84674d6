"""A measure's range as definition data, and the Observation a value outside it refuses
(pathway-spec-joints.md, sections 3 and 8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_VERSIONS, DefinitionError, default_definition, load_definition_text
from pathways.fhir import readable
from pathways.fhir.inbound import RecordRejected, records_from_resource
from service.usecases.dry_run import DryRunError, records_of_bundle
from tests.builders import MEASURE_RANGES, ranged_definition

RANGED = load_definition_text(ranged_definition("9.0.0"))
LOINC = "http://loinc.org"
PAIN = {"coding": [{"system": LOINC, "code": "72514-3"}]}
ODI = {"coding": [{"system": LOINC, "code": "97909-6"}]}
PANEL = {"coding": [{"system": LOINC, "code": "x-intake-panel"}]}


def observation(code: dict[str, Any], **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": code,
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-02-01T09:00:00Z",
    } | elements


def component(code: dict[str, Any], value: float) -> dict[str, Any]:
    return {"code": code, "valueQuantity": {"value": value}}


def refusal(resource: dict[str, Any], definition: Any = RANGED) -> RecordRejected | None:
    try:
        readable.check(definition, records_from_resource(resource))
    except RecordRejected as error:
        return error
    return None


def test_the_ranges_are_read_from_the_definition() -> None:
    assert {m.id: m.value_range for m in RANGED.measures} == {
        k: (float(a), float(b)) for k, (a, b) in MEASURE_RANGES.items()
    }


@pytest.mark.parametrize("shipped", SHIPPED_VERSIONS[:2], ids=lambda p: Path(p).name)
def test_no_1_x_version_gives_a_measure_a_range(shipped: Path) -> None:
    definition = load_definition_text(Path(shipped).read_text())
    assert [m.value_range for m in definition.measures] == [None] * len(definition.measures)


OUTSIDE = [
    (
        "pain 11 as an integer",
        observation(PAIN, valueInteger=11),
        "Observation.value[x]",
        "11 is outside the pain measure's range 0-10",
    ),
    ("pain -1 as a quantity", observation(PAIN, valueQuantity={"value": -1}), "Observation.value[x]", "-1 is outside"),
    ("pain 10.5 as a decimal", observation(PAIN, valueDecimal=10.5), "Observation.value[x]", "10.5 is outside"),
    ("ODI 101", observation(ODI, valueInteger=101), "Observation.value[x]", "the odi measure's range 0-100"),
    (
        "a panel's third component",
        observation(PANEL, component=[component(ODI, 40), component(PANEL, 500), component(PAIN, 12)]),
        "Observation.component[2].value[x]",
        "12 is outside the pain measure's range 0-10",
    ),
]


@pytest.mark.parametrize(("resource", "expression", "says"), [o[1:] for o in OUTSIDE], ids=[o[0] for o in OUTSIDE])
def test_a_value_outside_its_measure_range_refuses_the_observation_naming_the_value(
    resource: dict[str, Any], expression: str, says: str
) -> None:
    error = refusal(resource)
    assert error is not None
    assert (error.expression, error.code) == (expression, "value")
    assert says in error.message
    assert readable.may_be_refused(records_from_resource(resource))


INSIDE = [
    ("pain 0", observation(PAIN, valueInteger=0)),
    ("pain 10", observation(PAIN, valueQuantity={"value": 10})),
    ("ODI 100", observation(ODI, valueInteger=100)),
    (
        "a panel's components in range, and a number of no measure",
        observation(PANEL, component=[component(PAIN, 3), component(PANEL, 500)]),
    ),
    ("a retraction of an impossible score", observation(PAIN, status="entered-in-error", valueInteger=70)),
]


@pytest.mark.parametrize("resource", [i[1] for i in INSIDE], ids=[i[0] for i in INSIDE])
def test_a_value_at_or_inside_the_bounds_is_read(resource: dict[str, Any]) -> None:
    assert refusal(resource) is None


def test_without_a_range_any_number_is_read_as_before() -> None:
    assert refusal(observation(PAIN, valueInteger=70), default_definition()) is None
    assert refusal(observation(PANEL, component=[component(PAIN, 70)]), default_definition()) is None


def test_a_missing_value_is_still_refused_as_missing_first() -> None:
    error = refusal(observation(PANEL, component=[{"code": PAIN}, component(PAIN, 12)]))
    assert error is not None and error.expression == "Observation.component[0].value[x]" and error.code == "required"


def test_a_dry_run_given_a_value_outside_its_range_is_refused_with_the_same_message() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation(PAIN, valueInteger=11)}],
    }
    with pytest.raises(DryRunError, match=r"Bundle\.entry\[0\]\.resource\.value\[x\]: 11 is outside the pain"):
        records_of_bundle(bundle, RANGED)
    assert records_of_bundle(bundle, default_definition())


def ranged_data() -> Any:
    return json.loads(json.dumps(yaml.safe_load(ranged_definition("9.0.0"))))


def problems_with_range(value: Any) -> list[str]:
    data = ranged_data()
    data["measures"]["pain"]["range"] = value
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(yaml.safe_dump(data))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([0], "must be a list of two numbers: [min, max]"),
        ([0, 10, 20], "must be a list of two numbers: [min, max]"),
        (["0", 10], "must be a list of two numbers: [min, max]"),
        ([True, 10], "must be a list of two numbers: [min, max]"),
        ([10, 0], "must be finite numbers, the lower first"),
        ([0, float("inf")], "must be finite numbers, the lower first"),
        ("0-10", "must be a list"),
        ([], "must not be empty"),
    ],
)
def test_a_malformed_range_is_refused_at_its_path(value: Any, reason: str) -> None:
    assert f"measures.pain.range: {reason}" in problems_with_range(value)
