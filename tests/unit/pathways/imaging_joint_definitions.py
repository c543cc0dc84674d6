"""Single-line definitions for the joint imaging rules (pt-nonresponse 2.0, spec sections 5.1, 5.2, 5.4).

The data is `tests/fixtures/definitions/joint-imaging-2.0.0.yaml` (the YAML the 2.0.0 definition
takes it from, with its sources), merged into the shipped 1.1.0 data. `lane` reads one line of it
as a joint episode's engine sees it: the episode's region is the line, its first checkpoint the
line's, its rows the joint table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pathways.definition import SHIPPED_1_1, Definition, load_definition_text
from pathways.model import CAREPATH_CODE_SYSTEM, Coding
from tests.unit.pathways.timeline import CPT, SNOMED

FRAGMENT = Path(__file__).parents[2] / "fixtures" / "definitions" / "joint-imaging-2.0.0.yaml"
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"

# Codes the journeys record (spec 5.4, 2.2-2.4, 2.5)
XR_KNEE = (CPT, "73562")
XR_KNEE_LOINC = (LOINC, "24801-3")  # XR Knee Merchants (imaging-loinc-joints.csv)
XR_HIP = (CPT, "73502")
XR_SHOULDER = (CPT, "73030")
MRI_KNEE = (SNOMED, "241641004")
MRI_LOWER_JOINT = (CPT, "73721")  # knee or hip: attribution decides (spec 1.5)
CT_KNEE = (SNOMED, "383941000119102")
MRI_SPINE = (CPT, "72148")
KNEE_OA = (ICD, "M17.11")
HIP_OA = (ICD, "M16.11")
MENISCAL_TEAR = (ICD, "S83.241A")
SUBACROMIAL = (ICD, "M75.41")
CUFF_TEAR = (ICD, "M75.121")
LABRAL = (ICD, "S43.431A")
STEROIDS = (ICD, "Z79.52")
NEGATIVE = Coding(CAREPATH_CODE_SYSTEM, "xr-negative")
NONDIAGNOSTIC = Coding(CAREPATH_CODE_SYSTEM, "xr-nondiagnostic")
DEGENERATIVE = Coding(CAREPATH_CODE_SYSTEM, "xr-degenerative")
OTHER = Coding(CAREPATH_CODE_SYSTEM, "xr-other-abnormal")


def fragment() -> Any:
    return yaml.safe_load(FRAGMENT.read_text(encoding="utf-8"))


def joint_data() -> Any:
    """The shipped 1.1.0 data with the joint imaging data merged in, as plain JSON-able data."""
    data = json.loads(json.dumps(yaml.safe_load(SHIPPED_1_1.read_text(encoding="utf-8"))))
    joint = fragment()
    data["version"] = "2.0.0-imaging.1"
    data["regions"]["lines"] = joint["regions"]["lines"]
    data["diagnoses"].update(joint["diagnoses"])
    data["findings"].update(joint["findings"])
    data["checkpoint_rows"] = joint["checkpoint_rows"]
    data["fact_steps"] = joint["fact_steps"]
    steps, added = data["steps"], joint["steps"]
    steps["imaging"]["proposals"] += added["imaging"]["add_proposals"]
    steps["imaging"]["regional"] = added["imaging"]["regional"]
    steps["advanced-imaging"] = added["advanced-imaging"]
    steps["imaging-conclusion"] = added["imaging-conclusion"]
    steps["injection"]["diagnosis_groups"] = added["injection"]["diagnosis_groups"]
    injection = next(p for p in steps["injection"]["proposals"] if p["item"] == "injection")
    injection["variants"].update(added["injection"]["add_variants"]["injection"])
    return data


def load(data: Any) -> Definition:
    return load_definition_text(json.dumps(data))


@cache
def joint_definition() -> Definition:
    return load(joint_data())


def lane(definition: Definition, line_id: str) -> Definition:
    """One line as its episode's engine reads the definition: the line is the region, its weeks the first checkpoint."""
    lines = definition.regions.episode_lines
    assert lines is not None
    line = lines.line(line_id)
    return replace(
        definition,
        regions=replace(definition.regions, default=line_id, by_code=()),
        episode=replace(definition.episode, first_checkpoint_weeks=line.first_checkpoint_weeks),
        lane_of=line_id,
    )


KNEE = lane(joint_definition(), "knee")
HIP = lane(joint_definition(), "hip")
SHOULDER = lane(joint_definition(), "shoulder")
