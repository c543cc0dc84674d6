"""A pathway definition drawn as inline SVG: its checkpoint steps in order, red flags beside them.

Boxes follow the order in which the checkpoint rows are tried, joined by "next" arrows; steps
that also fire when a fact arrives say so; red flags run in a side lane because they are
checked on every fact, whatever the step. Words come from the PlanDefinition rendering, so
the thresholds shown are the definition's own.
"""

from __future__ import annotations

import textwrap
from typing import Any

from markupsafe import Markup

from pathways.definition.model import Definition
from pathways.fhir.plandefinition import to_plan_definition
from service.ui.svg import document, el, text, title

WIDTH = 900
MAIN_X, MAIN_W = 24, 500
LANE_X, LANE_W = 580, 296
LINE = 16  # line height of the wrapped condition
BOX_PAD = 12
ARROW = 34  # vertical room for an arrow between boxes
WRAP = 74  # characters per condition line in a step box
LANE_WRAP = 40


def render(definition: Definition) -> Markup:
    """The definition's diagram."""
    plan = to_plan_definition(definition)
    actions = {a["id"]: a for a in plan["action"]}
    rows = [actions[step_id] for step_id in definition.checkpoint_rows]
    parts = [_arrow_marker()]
    y = 40.0
    heading = "At each checkpoint, the first step whose condition holds fires"
    parts.append(text(MAIN_X, 24, heading, class_="lane-title"))
    for index, action in enumerate(rows):
        box, height = _step_box(action, y, fact_step=action["id"] in definition.fact_steps)
        parts.append(box)
        y += height
        if index < len(rows) - 1:
            parts.append(_arrow(y, y + ARROW))
            parts.append(text(MAIN_X + MAIN_W / 2 + 10, y + ARROW / 2 + 5, "next", class_="arrow-label"))
            y += ARROW
    lane, lane_height = _red_flags_lane(actions.get("red-flags"))
    parts.append(lane)
    height = max(y, 40 + lane_height) + 16
    described = ", then ".join(a["title"] for a in rows)
    return document(
        WIDTH,
        height,
        f"{definition.title} {definition.version}",
        f"Checkpoint steps in order: {described}. Red flags are checked on every fact.",
        *parts,
        css_class="chart pathway-diagram",
    )


def _lines(words: str, width: int) -> list[str]:
    return textwrap.wrap(words, width) or [""]


def _condition(action: dict[str, Any]) -> str:
    return str(action["condition"][0]["expression"]["expression"]) if action.get("condition") else ""


def _step_box(action: dict[str, Any], top: float, *, fact_step: bool) -> tuple[str, float]:
    lines = _lines(_condition(action), WRAP)
    height = BOX_PAD * 2 + 22 + len(lines) * LINE + (LINE if fact_step else 0)
    priority = action.get("priority", "routine")
    parts = [
        title(f"{action['title']} ({action['id']}): {action.get('description', '')}"),
        el("rect", {"x": MAIN_X, "y": top, "width": MAIN_W, "height": height, "rx": 8, "class": "step-box"}),
        text(MAIN_X + BOX_PAD, top + BOX_PAD + 14, action["title"], class_="step-title"),
        text(
            MAIN_X + MAIN_W - BOX_PAD,
            top + BOX_PAD + 14,
            f"{action['id']} · {priority}",
            text_anchor="end",
            class_="step-id",
        ),
    ]
    for number, line in enumerate(lines):
        parts.append(text(MAIN_X + BOX_PAD, top + BOX_PAD + 22 + (number + 1) * LINE - 2, line, class_="step-text"))
    if fact_step:
        parts.append(
            text(MAIN_X + BOX_PAD, top + height - BOX_PAD, "also fires when a diagnosis arrives", class_="step-fact")
        )
    return el("g", {"class": "step", "data_step": action["id"]}, *parts), height


def _arrow(y1: float, y2: float) -> str:
    x = MAIN_X + MAIN_W / 2
    return el("line", {"x1": x, "x2": x, "y1": y1, "y2": y2 - 2, "class": "arrow", "marker_end": "url(#arrowhead)"})


def _arrow_marker() -> str:
    head = el("path", {"d": "M0,0 L10,5 L0,10 z", "class": "arrowhead"})
    marker = el(
        "marker",
        {
            "id": "arrowhead",
            "viewBox": "0 0 10 10",
            "refX": 9,
            "refY": 5,
            "markerWidth": 8,
            "markerHeight": 8,
            "orient": "auto",
        },
        head,
    )
    return el("defs", None, marker)


def _red_flags_lane(action: dict[str, Any] | None) -> tuple[str, float]:
    if action is None:
        return "", 0.0
    parts = [text(LANE_X + BOX_PAD, 64, action["title"], class_="step-title")]
    y = 64.0 + 8
    for line in _lines(_condition(action), LANE_WRAP):
        y += LINE
        parts.append(text(LANE_X + BOX_PAD, y, line, class_="step-text"))
    y += 12
    for severity in action.get("action", []):
        y += 26
        label = severity["title"].split(": ", 1)[-1]
        parts.append(
            el(
                "g",
                {"class": f"severity severity-{severity.get('priority', 'routine')}"},
                title(severity.get("textEquivalent", "")),
                el(
                    "rect",
                    {
                        "x": LANE_X + BOX_PAD,
                        "y": y - 17,
                        "width": LANE_W - 2 * BOX_PAD,
                        "height": 24,
                        "rx": 5,
                        "class": "severity-box",
                    },
                ),
                text(LANE_X + BOX_PAD + 10, y, label, class_="severity-label"),
                text(
                    LANE_X + LANE_W - BOX_PAD - 10,
                    y,
                    f"Task priority {severity.get('priority', '')}",
                    text_anchor="end",
                    class_="severity-priority",
                ),
            )
        )
    height = y + 22 - 40
    lane = el("rect", {"x": LANE_X, "y": 40, "width": LANE_W, "height": height, "rx": 10, "class": "lane"})
    heading = text(LANE_X, 24, "At any time, on every fact", class_="lane-title")
    return el("g", {"class": "step red-flags", "data_step": "red-flags"}, heading, lane, *parts), height
