"""A definition's problems name the line of the text as well as the path; a new version's changes read as sentences."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_1_1, SHIPPED_VERSIONS, DefinitionError, load_definition_text
from pathways.definition.compare import summary
from pathways.definition.reader import line_of
from pathways.definition.safe_yaml import parse_located


def refused(text: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(text)
    return caught.value


def line_holding(text: str, fragment: str) -> int:
    return 1 + next(i for i, line in enumerate(text.splitlines()) if fragment in line)


def test_a_bad_value_is_refused_at_its_path_and_the_line_it_stands_on() -> None:
    text = SHIPPED_1_1.read_text(encoding="utf-8").replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    (problem,) = refused(text).problems
    line = line_holding(text, "min_adherence_pct: 180")
    assert (problem.path, problem.line) == ("steps.adherence.min_adherence_pct", line)
    assert problem.located == f"line {line}: steps.adherence.min_adherence_pct: must be between 0 and 100"
    assert str(problem) == "steps.adherence.min_adherence_pct: must be between 0 and 100"


def test_an_unknown_key_names_its_own_line_and_a_missing_one_its_mappings_line() -> None:
    text = SHIPPED_1_1.read_text(encoding="utf-8").replace("    min_pt_visits: 4", "    min_pt_visit: 4", 1)
    problems = {p.path: p.line for p in refused(text).problems}
    assert problems["steps.adherence.min_pt_visit"] == line_holding(text, "min_pt_visit: 4")
    lines = text.splitlines()
    steps = lines.index("steps:")
    adherence = next(i for i in range(steps, len(lines)) if lines[i].startswith("  adherence:"))
    assert problems["steps.adherence.min_pt_visits"] == adherence + 1  # missing: the line of its mapping


def test_a_problem_in_a_list_item_names_the_items_line() -> None:
    text = "\n".join(["a:", "  - x", "  - y: 1", "    z: 2"])
    _, lines = parse_located(text)
    assert lines == {"a": 1, "a[0]": 2, "a[1]": 3, "a[1].y": 3, "a[1].z": 4}
    assert line_of("a[1].z.deeper[3]", lines) == 4
    assert line_of("b.c", lines) is None


def test_yaml_that_cannot_be_parsed_names_its_line() -> None:
    (problem,) = refused("version: 1\nsteps: [a,\n").problems
    assert problem.line == 3 and problem.path == "(line 3)"
    assert problem.located == str(problem)  # the line is in the path already: not said twice


def test_the_error_message_lists_each_problem_with_its_line() -> None:
    text = SHIPPED_1_1.read_text(encoding="utf-8").replace("min_adherence_pct: 80 ", "min_adherence_pct: 180 ", 1)
    assert f"line {line_holding(text, 'min_adherence_pct: 180')}: steps.adherence" in str(refused(text))


def data(path: Any) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_the_changes_from_1_0_0_to_1_1_0_name_the_steps_and_sections_that_differ() -> None:
    old, new = data(SHIPPED_VERSIONS[0]), data(SHIPPED_VERSIONS[1])
    changes = summary(old, new)
    assert "Steps added: relapse." in changes
    assert any(c.startswith("Steps changed: ") and "imaging" in c for c in changes)
    assert any(c.startswith("Checkpoint order: ") and "(was " in c for c in changes)
    assert any(c.startswith("Also changed: ") and "episode" in c for c in changes)
    assert "Steps removed: relapse." in summary(new, old)


def test_a_version_that_only_renumbers_changes_nothing_else() -> None:
    old = data(SHIPPED_1_1)
    assert summary(old, old | {"version": "9.9.9"}) == [
        "Nothing but the version number changes: both versions propose the same."
    ]
