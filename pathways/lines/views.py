"""The definition as one lane reads it: its line's first checkpoint and, for a line of its own, its region.

A lane of a line that covers the 1.x regions (the spine) reads the definition as it is. A lane of
any other line has that line as its only region, so every region variant, explanation and
region predicate names it (`Regions.default`), and its first checkpoint is the line's. A line
with rules of its own (`regions.lines.<id>.steps`, `checkpoint_rows`, `fact_steps`, or a shared
`regions.line_rules` block) runs the definition the loader built for it, with its table and steps.
"""

from __future__ import annotations

from dataclasses import replace

from pathways.definition.model import Definition, EpisodeLine, Regions

_VIEWS: dict[tuple[int, str | None], tuple[Definition, Definition]] = {}
"""(id of the definition, line) → (the definition, its view); the definition is kept so its id stays its own."""


def line_view(definition: Definition, line: EpisodeLine | None) -> Definition:
    """`definition` as a lane of `line` reads it (None: the unregioned episode, as the covering line)."""
    lines = definition.regions.episode_lines
    if lines is None:
        return definition
    chosen = line or lines.unregioned
    key = (id(definition), chosen.id)
    cached = _VIEWS.get(key)
    if cached is not None and cached[0] is definition:
        return cached[1]
    own = definition.line_definition(chosen.id)
    base = definition if own is None else own
    episode = replace(base.episode, first_checkpoint_weeks=chosen.first_checkpoint_weeks)
    regions = definition.regions if chosen.covers else Regions(chosen.id, (), lines)
    view = replace(base, episode=episode, regions=regions, lane_of=chosen.id)
    _VIEWS[key] = (definition, view)
    return view
