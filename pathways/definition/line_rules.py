"""Rules of one episode line (version 2.0): its own checkpoint table, fact steps and step configuration.

One definition holds the spine, which reads the top-level `checkpoint_rows`, `fact_steps` and
`steps` (1.1's, unchanged), and joint lines that read a table and steps of their own. A line
gives them inline (`regions.lines.<id>.checkpoint_rows`, `.fact_steps`, `.steps`, and
`.facts.injection` / `.facts.imaging`: what counts as done for its steps) or names a
block several lines share (`regions.lines.<id>.rules: <name>` → `regions.line_rules.<name>`,
so knee, hip and shoulder read one joint table). `steps` there replace the top-level step of the
same id; steps it does not name, and a table or fact-step list it does not give, are the
top-level ones. A line that names a block may add `steps` of its own over the block's.

Each line with rules of its own is read by the same Loader as a whole definition whose only
region is that line (so a proposal needs a variant for that line only), and that definition is
what the line's lanes run. Its problems are reported at the path they stand on in the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pathways.definition.reader import Node, Problem, Reader, join

RULE_KEYS = ("checkpoint_rows", "fact_steps", "steps", "facts")
"""What a line may give of its own (inline or in a named block)."""
LINE_FACTS = ("injection", "imaging")
"""The `facts` a line may set for its own steps: what counts as an injection or imaging done there.
Visits, adherence, barriers and contraindications are the patient's, read the same by every line."""
RULES = "rules"
LINE_RULES = "line_rules"


@dataclass(frozen=True, slots=True)
class LineRules:
    """Where one line's own rules are written: `path` is `regions.lines.<id>` or `regions.line_rules.<name>`.

    A line that names a block may still give `steps` of its own (`own_steps`, at `own_path`): they
    replace the block's step of the same id for that line alone (e.g. wording naming its measures).
    """

    line: str
    node: Mapping[str, Any]
    path: str
    own_steps: Mapping[str, Any] | None = None
    own_path: str = ""


def line_rule_sources(r: Reader, regions: Node) -> list[LineRules]:
    """The lines that have rules of their own, in line order; a bad reference or block is reported on `r`."""
    blocks = {name: (value, path) for name, value, path in r.entries(regions, LINE_RULES, "regions")}
    for value, path in blocks.values():
        _facts_keys(r, r.fields(value, path, (), RULE_KEYS), path)
    named: set[str] = set()
    sources = []
    lines = regions.get("lines")
    for line_id, value in lines.items() if isinstance(lines, Mapping) else ():
        if not isinstance(value, Mapping):
            continue  # reported where the line is read
        path = join(join("regions", "lines"), str(line_id))
        inline = [key for key in RULE_KEYS if key in value]
        tables = [key for key in inline if key != "steps"]
        if RULES in value and tables:
            r.report(join(path, RULES), f"give either rules or {', '.join(tables)}, not both")
            continue
        if value.get("covers") and (inline or RULES in value):
            r.report(path, "the line that covers the 1.x regions reads the top-level rules: it has none of its own")
            continue
        if RULES in value:
            name = value[RULES]
            if not isinstance(name, str) or name not in blocks:
                r.report(join(path, RULES), f"unknown line_rules block {name!r}")
                continue
            named.add(name)
            block, block_path = blocks[name]
            own = value.get("steps")
            if own is not None and not isinstance(own, Mapping):
                r.report(join(path, "steps"), "must be a mapping")
            elif isinstance(block, Mapping):
                sources.append(LineRules(str(line_id), block, block_path, own, path))
        elif inline:
            _facts_keys(r, value, path)
            sources.append(LineRules(str(line_id), value, path))
    for name, (_, path) in blocks.items():
        if name not in named:
            r.report(path, "no line names this block (rules)")
    return sources


def _facts_keys(r: Reader, node: Node, path: str) -> None:
    if "facts" in node:
        r.fields(node["facts"], join(path, "facts"), (), LINE_FACTS)


def line_data(top: Mapping[str, Any], source: LineRules) -> dict[str, Any]:
    """The whole definition as `source.line` reads it: its table, fact steps and steps over the top-level ones."""
    data = dict(top)
    for key in ("checkpoint_rows", "fact_steps"):
        if key in source.node:
            data[key] = source.node[key]
    facts, inherited_facts = source.node.get("facts"), top.get("facts")
    if isinstance(facts, Mapping) and isinstance(inherited_facts, Mapping):
        data["facts"] = {**inherited_facts, **facts}
    own = source.node.get("steps")
    if isinstance(own, Mapping):
        inherited = top.get("steps")
        data["steps"] = {**(inherited if isinstance(inherited, Mapping) else {}), **own}
    elif "steps" in source.node:
        data["steps"] = own  # not a mapping: the line's reader reports it at the line's path
    if source.own_steps and isinstance(data.get("steps"), Mapping):
        data["steps"] = {**data["steps"], **source.own_steps}
    return data


def relocated(problems: list[Problem], source: LineRules, top: Mapping[str, Any]) -> list[Problem]:
    """A line definition's problems where they stand in the text; problems of shared parts are the top level's.

    A problem in the line's own table, fact steps or steps is moved under the line's path; one in a
    top-level step the line inherits keeps its path and says which line read it that way; every
    other problem is also a problem of the whole definition, reported there once.
    """
    block_steps = source.node.get("steps")
    block_step_ids = set(block_steps) if isinstance(block_steps, Mapping) else set()
    line_step_ids = set(source.own_steps or ())
    found = []
    for problem in problems:
        root, _, rest = problem.path.partition(".")
        head = root.partition("[")[0]
        step_id = rest.partition(".")[0]
        own_table = head in ("checkpoint_rows", "fact_steps", "facts") and head in source.node
        own_step = head == "steps" and "steps" in source.node and (step_id in block_step_ids or not rest)
        if head == "steps" and step_id in line_step_ids:
            found.append(Problem(join(source.own_path, problem.path), problem.reason))
        elif own_table or own_step:
            found.append(Problem(join(source.path, problem.path), problem.reason))
        elif head in ("checkpoint_rows", "fact_steps", "steps") or (head == "facts" and step_id in LINE_FACTS):
            found.append(Problem(problem.path, f"{problem.reason} (as episode line {source.line!r} reads it)"))
    return found
