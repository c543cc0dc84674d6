"""Definition text is parsed within bounds: alias bombs, deep nesting, huge numbers, long text refused briefly."""

from __future__ import annotations

import json
import tracemalloc

import pytest
import yaml

from pathways.definition import SHIPPED_1_1, DefinitionBeyondLimits, DefinitionError, load_definition_text
from pathways.definition.reader import MAX_PATH_CHARS, MAX_PROBLEMS, MAX_REASON_CHARS
from pathways.definition.safe_yaml import MAX_DEPTH, MAX_SOURCE_CHARS

MAX_MESSAGE_CHARS = 400  # one problem's message: path, reason and the separator


def billion_laughs(levels: int = 10) -> str:
    """Each level a list of nine aliases of the one before: 9**levels strings from about 400 bytes."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines) + "\n"


def refusal(text: str) -> DefinitionBeyondLimits:
    with pytest.raises(DefinitionBeyondLimits) as caught:
        load_definition_text(text)
    return caught.value


def test_an_alias_bomb_is_refused_with_a_short_message_and_little_memory() -> None:
    tracemalloc.start()
    try:
        error = refusal(billion_laughs())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "aliases expand the document beyond" in str(error)
    assert len(str(error)) < MAX_MESSAGE_CHARS
    assert peak < 20_000_000  # composing stops at the bound; expanding would take gigabytes


def test_aliases_that_expand_modestly_still_load() -> None:
    shipped = SHIPPED_1_1.read_text()
    assert "&" in shipped and "*" in shipped  # the shipped definition shares code lists by alias
    assert load_definition_text(shipped).id == "pt-nonresponse"


def test_nesting_past_the_bound_is_refused_before_the_parser_recurses() -> None:
    error = refusal("[" * 100_000 + "]" * 100_000)
    assert str(error) == f"(line 1): nested deeper than {MAX_DEPTH} levels"


def test_nesting_within_the_bound_is_parsed_and_judged_as_a_definition() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    assert not isinstance(caught.value, DefinitionBeyondLimits)


@pytest.mark.parametrize("number", ["1" * 100_000, "-" + "9" * 5_000, "1" * 10_000 + ".5", "0x" + "f" * 64])
def test_a_number_with_too_many_digits_is_refused(number: str) -> None:
    error = refusal(f"episode:\n  baseline_window_days: {number}\n")
    assert str(error) == "(line 2): a number longer than 32 characters"


def test_a_recursive_alias_is_refused() -> None:
    assert "refers to the collection that contains it" in str(refusal("a: &a [1, *a]\n"))


def test_text_past_the_size_bound_is_refused_before_parsing() -> None:
    text = "description: " + "x" * MAX_SOURCE_CHARS
    assert "longer than" in str(refusal(text))


def test_every_problem_message_is_bounded_whatever_the_uploaded_value() -> None:
    data = yaml.safe_load(SHIPPED_1_1.read_text())
    data["k" * 1_000] = "v" * 100_000  # YAML allows a key of at most 1,024 characters on one line
    data["checkpoint_rows"] = ["v" * 50_000, ["v" * 1_000] * 20]
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(json.dumps(data))
    assert not isinstance(caught.value, DefinitionBeyondLimits)
    assert {p.reason for p in caught.value.problems} >= {"unknown key"}
    for problem in caught.value.problems:
        assert len(problem.path) <= MAX_PATH_CHARS and len(problem.reason) <= MAX_REASON_CHARS
    assert len(str(caught.value)) < 2 * MAX_MESSAGE_CHARS


def test_the_problems_listed_are_bounded_in_number() -> None:
    data = yaml.safe_load(SHIPPED_1_1.read_text())
    data.update({f"unknown_{n}": n for n in range(500)})
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(json.dumps(data))
    assert len(caught.value.problems) == MAX_PROBLEMS + 1
    assert caught.value.problems[-1].reason == f"{500 - MAX_PROBLEMS} more problems not listed"
