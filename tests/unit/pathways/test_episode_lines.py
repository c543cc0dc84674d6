"""`regions.lines` (version 2.0): regions with episodes of their own, read as definition data.

The knee data below is a slice of spec 2.0 section 2.2 (a region code, a family and a group), enough
to show how a line's region code set is assembled and how mistakes are reported.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pathways.definition import DefinitionError, load_definition_text
from pathways.definition.codes import ICD10CM
from pathways.model import Coding
from tests.unit.pathways.test_definition_loading import problems_of, shipped_data


def with_lines(data: Any) -> Any:
    """The shipped definition with a spine line and a knee line (spec 2.0 sections 1.3 and 2.2)."""
    data["regions"]["lines"] = {
        "spine": {
            "label": "spine",
            "covers": ["lumbar", "cervical"],
            "codes": ["icd10cm|M54.50", "snomed|279039007"],
            "body_sites": ["snomed|122496007", "snomed|122494005"],
            "first_checkpoint_weeks": 6,
        },
        "knee": {
            "label": "knee",
            "codes": ["icd10cm|M25.56*", "snomed|72696002"],
            "body_sites": ["snomed|72696002"],
            "first_checkpoint_weeks": 6,
            "min_age_years": 18,
            "radiographs": ["cpt|73562"],
        },
    }
    data["regions"]["out_of_scope"] = ["icd10cm|M25.57*"]
    data["regions"]["generic_procedures"] = [{"codes": ["cpt|20610"], "candidates": ["knee"]}]
    data["diagnoses"]["knee-oa"] = {
        "label": "knee osteoarthritis",
        "structural": True,
        "line": "knee",
        "codes": ["icd10cm|M17*", "snomed|239873007"],
    }
    data["measures"]["koos-jr"] = {
        "label": "KOOS JR",
        "codes": ["loinc|82332-8"],
        "better": "higher",
        "mcid_points": 15,
        "line": "knee",
    }
    return data


def load(data: Any) -> Any:
    return load_definition_text(yaml.safe_dump(data, sort_keys=False))  # the lines' order is their tie order


def test_lines_load_in_their_written_order_with_the_groups_codes_in_the_region_code_set() -> None:
    lines = load(with_lines(shipped_data())).regions.episode_lines
    assert lines is not None
    assert lines.ids == ("spine", "knee")
    knee = lines.line("knee")
    assert knee.names([Coding(ICD10CM, "M17.11")])  # a knee-oa group code names the knee
    assert knee.names([Coding(ICD10CM, "M25.561")])  # its own family
    assert not knee.names([Coding(ICD10CM, "M25.551")])
    assert knee.min_age_years == 18
    assert lines.unregioned.id == "spine"  # an unregioned episode behaves as the line covering 1.x's regions
    assert lines.out_of_scope.matches([Coding(ICD10CM, "M25.571")])
    assert lines.generic_procedures[0].candidates == ("knee",)
    koos = next(m for m in load(with_lines(shipped_data())).measures if m.id == "koos-jr")
    assert koos.names_line == "knee"


def test_a_definition_without_lines_keeps_one_episode_per_patient() -> None:
    assert load(shipped_data()).regions.episode_lines is None


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("diagnoses", "knee-oa", "line"), "elbow", "diagnoses.knee-oa.line: unknown episode line 'elbow'"),
        (("measures", "koos-jr", "line"), "hip", "measures.koos-jr: unknown episode line 'hip'"),
        (
            ("regions", "lines", "spine", "covers"),
            ["lumbar"],
            "regions.lines.spine.covers: must list the regions lumbar, cervical",
        ),
        (
            ("regions", "lines", "knee", "first_checkpoint_weeks"),
            0,
            "regions.lines.knee.first_checkpoint_weeks: must be between 1 and 104",
        ),
        (("regions", "lines", "knee", "colour"), "red", "regions.lines.knee.colour: unknown key"),
        (
            ("regions", "generic_procedures"),
            [{"codes": ["cpt|20610"], "candidates": ["wrist"]}],
            "regions.generic_procedures[0].candidates[0]: unknown episode line 'wrist'",
        ),
        (
            ("regions", "lines", "knee", "radiographs"),
            ["cpt|7356*"],
            "regions.lines.knee.radiographs[0]: cpt|7356* is a family: only ICD-10-CM codes form families "
            "(other systems match exactly)",
        ),
    ],
)
def test_a_broken_line_is_reported_with_its_path(path: tuple[str, ...], value: Any, problem: str) -> None:
    data = with_lines(shipped_data())
    container = data
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = value
    assert problem in problems_of(data)


def test_no_line_may_be_named_without_lines() -> None:
    data = with_lines(shipped_data())
    del data["regions"]["lines"], data["regions"]["out_of_scope"], data["regions"]["generic_procedures"]
    problems = problems_of(data)
    assert "diagnoses.knee-oa.line: names an episode line, but regions has no lines" in problems
    assert "measures.koos-jr: names an episode line, but regions has no lines" in problems


def test_exactly_one_line_covers_the_regions_of_1x() -> None:
    data = with_lines(shipped_data())
    del data["regions"]["lines"]["spine"]["covers"]
    assert "regions.lines: exactly one line must list `covers` (the regions of default and by_code)" in problems_of(
        data
    )
    with pytest.raises(DefinitionError):
        load(data)
