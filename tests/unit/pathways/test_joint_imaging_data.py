"""The joint imaging data (pt-nonresponse 2.0): how it loads, how mistakes in it are reported, and the
radiograph conclusions kept in the patient's state (spec 5.4, settled reading 7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from pathways.definition import SHIPPED_VERSIONS, DefinitionError, load_definition_file
from pathways.model import SourceRef
from pathways.state import Entry, PatientState
from service.store.state_codec import state_from_json, state_to_json
from tests.unit.pathways.imaging_joint_definitions import (
    KNEE,
    NEGATIVE,
    XR_KNEE,
    joint_data,
    load,
)
from tests.unit.pathways.test_previous_format import removing, setting
from tests.unit.pathways.timeline import Patient, Timeline, week


def problems_of(data: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load(data)
    return [str(p) for p in caught.value.problems]


def test_the_joint_data_loads_with_its_imaging_rules() -> None:
    regional = KNEE.imaging.regional
    assert regional is not None and KNEE.advanced_imaging is not None and KNEE.imaging_conclusion is not None
    assert regional.conclusion_ids == ("other", "degenerative", "non-diagnostic", "negative")  # 5.4 precedence
    assert (regional.recent_days, regional.report_days) == (182, 14)  # spec 5 "recent", ruling 7
    assert regional.eligible_findings("hip") == ("long-term-steroids", "sickle-cell-disease", "alcohol-misuse")
    assert regional.eligible_findings("knee") == ()
    lines = KNEE.regions.episode_lines
    assert lines is not None
    assert len(lines.line("knee").radiographs.codings) == 5 + 186  # 5.4 codes and the LOINC radiograph roles
    assert KNEE.advanced_imaging.fires_on_report == ("negative", "non-diagnostic")


def test_shipped_versions_have_no_joint_imaging() -> None:
    for path in SHIPPED_VERSIONS:
        definition = load_definition_file(path)
        assert definition.imaging.regional is None and definition.advanced_imaging is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            setting(("checkpoint_rows", 2, "when", "all", 1), {"latest_radiograph": ["blurry"]}),
            "checkpoint_rows[2].when.all[1].latest_radiograph[0]: unknown radiograph conclusion 'blurry'",
        ),
        (
            setting(("steps", "advanced-imaging", "fires_on_report"), ["degenrative"]),
            "steps.advanced-imaging.fires_on_report[0]: unknown conclusion 'degenrative'",
        ),
        (
            removing("steps", "advanced-imaging"),
            "steps.advanced-imaging: missing (a checkpoint row or fact_steps names it)",
        ),
        (
            setting(("steps", "imaging", "regional", "conclusions", "unread"), {"label": "unread"}),
            "steps.imaging.regional.conclusions.unread: is reserved: a radiograph without a conclusion code is unread",
        ),
        (
            setting(("steps", "imaging", "regional", "eligible_on_record", "hip"), ["osteonecrosis"]),
            "steps.imaging.regional.eligible_on_record.hip[0]: unknown finding 'osteonecrosis'",
        ),
        (
            setting(("steps", "imaging", "regional", "eligible_on_record", "elbow"), ["long-term-steroids"]),
            "steps.imaging.regional.eligible_on_record.elbow: unknown region 'elbow'",
        ),
        (
            setting(("steps", "advanced-imaging", "instead_of_mri", "item"), "sonography"),
            "steps.advanced-imaging.instead_of_mri.item: unknown proposal item 'sonography'",
        ),
        (
            removing("steps", "advanced-imaging", "proposals", 0, "variants", "hip"),
            "steps.advanced-imaging.proposals: item 'mri' needs a variant 'hip'",
        ),
        (
            removing("steps", "imaging", "proposals", 3, "variants", "shoulder"),
            "steps.imaging.proposals: item 'radiographs' needs a variant 'shoulder'",
        ),
        (
            setting(("steps", "imaging", "regional", "conclusions", "negative", "otherwise"), True),
            "steps.imaging.regional.conclusions: at most one class reads every other code (otherwise: true)",
        ),
        (
            setting(("steps", "imaging", "regional", "recent_days"), 0),
            "steps.imaging.regional.recent_days: must be between 1 and 3650",
        ),
    ],
)
def test_a_mistake_in_the_joint_imaging_data_is_reported_at_its_path(
    change: Callable[[Any], None], problem: str
) -> None:
    data = joint_data()
    change(data)
    assert problem in problems_of(data)


def test_a_radiograph_conclusion_survives_the_stored_state() -> None:
    """The conclusion is kept with the report's entry (bounded: one short word per imaging record)."""
    t = Timeline()
    t.nonresponder()
    t.report(week(3), XR_KNEE, conclusion_codes=(NEGATIVE,))
    t.procedure(week(4), XR_KNEE)
    patient = Patient(KNEE)
    for record in t.records:
        patient.receive(record)
    state = patient.state
    assert [(i.source.resource_type, i.detail) for i in state.interventions] == [
        ("DiagnosticReport", "negative"),
        ("Procedure", None),
    ]
    data = json.loads(json.dumps(state_to_json(state)))
    assert state_from_json(data) == state
    assert state_to_json(state_from_json(data)) == data


def test_an_entry_with_a_conclusion_and_no_code_and_one_stored_before_conclusions_still_read() -> None:
    entry = Entry(week(1), "imaging", SourceRef("DiagnosticReport", "r1", "1"), None, "negative")
    data = json.loads(json.dumps(state_to_json(PatientState(interventions=(entry,)))))
    assert state_from_json(data).interventions == (entry,)
    data["interventions"] = [data["interventions"][0][:3]]  # as stored before codes and conclusions were kept
    assert state_from_json(data).interventions[0].detail is None
