"""Pathway definitions: load YAML (or JSON) once into a frozen, validated `Definition`.

The package: `model` (the frozen types), `reader` (paths and problems), `safe_yaml` (bounded
parsing), `codes` and `steps` (their sections), `build` (the whole definition), and `shipped/`
(the definitions Carepath ships).

    definition = load_definition_text(source)              # text, e.g. as uploaded and stored
    definition = load_definition_file(Path("my.yaml"))     # a file an operator names
    definition = default_definition()                      # the shipped pt-nonresponse, newest version

Text is only ever parsed, whatever its shape (one line of JSON included); a path is only ever
read. A bad definition raises `DefinitionError`, whose `problems` give each exact path and
reason and the line of the text it stands on, e.g.
`line 57: steps.adherence.min_adherence_pct: must be between 0 and 100`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pathways.definition.build import build_definition
from pathways.definition.model import Definition
from pathways.definition.reader import DefinitionError, Problem
from pathways.definition.safe_yaml import DefinitionBeyondLimits, parse_located

__all__ = [
    "Definition",
    "DefinitionBeyondLimits",
    "DefinitionError",
    "Problem",
    "SHIPPED",
    "SHIPPED_1_1",
    "SHIPPED_2_0",
    "SHIPPED_VERSIONS",
    "default_definition",
    "load_definition_file",
    "load_definition_text",
]

_SHIPPED_DIRECTORY = Path(__file__).with_name("shipped")

SHIPPED_VERSIONS = (
    _SHIPPED_DIRECTORY / "pt-nonresponse-1.0.0.yaml",
    _SHIPPED_DIRECTORY / "pt-nonresponse-1.1.0.yaml",
    _SHIPPED_DIRECTORY / "pt-nonresponse-2.0.0.yaml",
)
"""Every definition Carepath ships, oldest first. The last is the default; the earlier ones stay
shipped so the patients pinned to them keep their behaviour until an administrator migrates them."""

SHIPPED_1_1 = _SHIPPED_DIRECTORY / "pt-nonresponse-1.1.0.yaml"
"""pt-nonresponse 1.1.0: lumbar and cervical spine, one episode at a time."""
SHIPPED_2_0 = _SHIPPED_DIRECTORY / "pt-nonresponse-2.0.0.yaml"
"""pt-nonresponse 2.0.0: lumbar, cervical, knee, shoulder and hip, with episodes per body region."""

SHIPPED = SHIPPED_VERSIONS[-1]
"""The default pathway definition shipped with Carepath (the newest shipped version)."""


def load_definition_text(text: str) -> Definition:
    """A definition from its YAML or JSON text; the text is never taken for a file name.

    Each problem names the line of its path in the text as well as the path.
    """
    data, lines = parse_located(text)
    try:
        return build_definition(data)
    except DefinitionError as error:
        raise error.located(lines) from None


def load_definition_file(path: Path) -> Definition:
    """A definition from a YAML or JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DefinitionError([Problem(str(path), f"cannot be read ({error.strerror})")]) from error
    return load_definition_text(text)


@cache
def default_definition() -> Definition:
    """The default shipped `pt-nonresponse` definition (its newest version), loaded once."""
    return load_definition_file(SHIPPED)
