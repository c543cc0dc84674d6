"""Region evidence (spec 2.0 1.2): which episode lines a fact names.

Read from the definition's lines: a counting Condition names a line when one of its codes is in the
line's region code set; a PT visit by its reason codes or the Conditions it references; a value of
a line's instrument names that line, as does a body site of a line that is its own region (ruling
5: a spine body site only attributes); a completed Procedure or final report by the line's
radiograph, advanced-imaging and surgery codes. Lines are named in the definition's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pathways.classify import Facts
from pathways.definition.model import Definition, EpisodeLines
from pathways.model import ClinicalRecord

ConditionLines = Callable[[str], Sequence[str]]
"""The lines a Condition held names, by its reference (`Condition/123`); empty when unknown."""


def lines_named(
    definition: Definition, lines: EpisodeLines, record: ClinicalRecord, facts: Facts, condition_lines: ConditionLines
) -> tuple[str, ...]:
    """The lines `record` names; empty for a fact that does not count or names none."""
    if not facts.counts:
        return ()
    kind = record.source.resource_type
    if kind == "Condition":
        return tuple(line.id for line in lines.lines if line.names(record.codes))
    if kind == "Encounter":
        if not facts.pt_visit:
            return ()
        referenced = {line for ref in record.reason_references for line in condition_lines(ref)}
        return tuple(line.id for line in lines.lines if line.id in referenced or line.names(record.reason_codes))
    if kind == "Observation":
        instruments = {m.names_line for m in definition.measures if m.names_line and m.id in dict(facts.measure_values)}
        sited = {line.id for line in lines.lines if not line.covers and line.body_sites.matches(record.body_sites)}
        return tuple(line.id for line in lines.lines if line.id in instruments | sited)
    if kind in ("Procedure", "DiagnosticReport"):
        return tuple(
            line.id for line in lines.lines if line.imaging.matches(record.codes) or line.surgery.matches(record.codes)
        )
    return ()


def out_of_scope_only(lines: EpisodeLines, record: ClinicalRecord, facts: Facts) -> bool:
    """A counting Condition whose only region codes are out of scope (spec 2.0 1.2, 1.8)."""
    if record.source.resource_type != "Condition" or not facts.counts:
        return False
    in_scope = any(line.names(record.codes) for line in lines.lines)
    return not in_scope and lines.out_of_scope.matches(record.codes)
