"""Reading `regions.lines` (version 2.0): body regions with episodes of their own.

A line's region code set is its own `codes` and every code of the diagnosis groups that name it
(spec 2.0, "Region code sets"), so a code listed once in its group names the region too. The
spine line `covers` the 1.x regions (`regions.default` and `regions.by_code`); every other line
is one region. Lines are read in the order they are written: that order breaks every tie.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pathways.definition.line_rules import LINE_RULES, RULE_KEYS, RULES
from pathways.definition.model import CodeSet, DiagnosisGroup, EpisodeLine, EpisodeLines, GenericProcedure, Measure
from pathways.definition.reader import Node, Reader, join

LINE_KEYS = ("lines", "out_of_scope", "generic_procedures", LINE_RULES)
"""Optional keys of `regions` from version 2.0."""
LINE_REQUIRED = ("label", "body_sites", "first_checkpoint_weeks")
LINE_OPTIONAL = ("codes", "covers", "min_age_years", "radiographs", "advanced_imaging", "surgery", RULES, *RULE_KEYS)
"""`rules` and the `RULE_KEYS`: the line's own table and steps, read by `line_rules` (not here)."""
MEASURE_LINE = "line"
MEASURE_LINES = "lines"

ReadCodes = Callable[[Node, str, str], CodeSet]


def read_episode_lines(
    r: Reader,
    code_set: ReadCodes,
    node: Node,
    spine_regions: Sequence[str],
    diagnoses: Sequence[DiagnosisGroup],
    measures: Sequence[Measure],
) -> EpisodeLines:
    """`regions.lines`, `regions.out_of_scope` and `regions.generic_procedures`; problems reported on `r`."""
    lines = [
        _line(r, code_set, line_id, value, path, diagnoses)
        for line_id, value, path in r.entries(node, "lines", "regions")
    ]
    ids = [line.id for line in lines]
    _check_covers(r, lines, spine_regions)
    for group in diagnoses:
        if group.line is not None and group.line not in ids:
            r.report(join(join("diagnoses", group.id), "line"), f"unknown episode line {group.line!r}")
    for measure in measures:
        path = join("measures", measure.id)
        for named in (measure.names_line, *measure.lines):
            if named is not None and named not in ids:
                r.report(path, f"unknown episode line {named!r}")
    generic = []
    for item, path in r.sequence(node, "generic_procedures", "regions"):
        entry = r.fields(item, path, ("codes", "candidates"))
        candidates = r.names(entry, "candidates", path, ids, "episode line")
        generic.append(GenericProcedure(code_set(entry, "codes", path), candidates))
    return EpisodeLines(tuple(lines), code_set(node, "out_of_scope", "regions"), tuple(generic))


def _line(
    r: Reader, code_set: ReadCodes, line_id: str, value: object, path: str, diagnoses: Sequence[DiagnosisGroup]
) -> EpisodeLine:
    node = r.fields(value, path, LINE_REQUIRED, LINE_OPTIONAL)
    groups = [g.codes for g in diagnoses if g.line == line_id]
    covers = node.get("covers", [])
    return EpisodeLine(
        id=line_id,
        label=r.text(node, "label", path),
        codes=code_set(node, "codes", path).union(*groups),
        body_sites=code_set(node, "body_sites", path),
        first_checkpoint_weeks=r.integer(node, "first_checkpoint_weeks", path, 1, 104),
        covers=tuple(str(c) for c in covers) if isinstance(covers, list) else (),
        min_age_years=r.integer(node, "min_age_years", path, 0, 120) if "min_age_years" in node else None,
        radiographs=code_set(node, "radiographs", path),
        advanced_imaging=code_set(node, "advanced_imaging", path),
        surgery=code_set(node, "surgery", path),
    )


def _check_covers(r: Reader, lines: Sequence[EpisodeLine], spine_regions: Sequence[str]) -> None:
    """Exactly one line covers the 1.x regions, all of them: an unregioned episode behaves as that line."""
    covering = [line for line in lines if line.covers]
    if len(covering) != 1:
        r.report(join("regions", "lines"), "exactly one line must list `covers` (the regions of default and by_code)")
        return
    if sorted(covering[0].covers) != sorted(spine_regions):
        listed = ", ".join(spine_regions)
        r.report(join(join(join("regions", "lines"), covering[0].id), "covers"), f"must list the regions {listed}")
