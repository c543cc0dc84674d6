"""The patient timeline chart as inline SVG: one panel per measure on a shared time axis.

Each panel draws the measure's values, its baseline and the MCID target as a dashed line, its
value axis named with the unit the records state; below them PT visits are ticks, red-flag
findings, imaging and diagnoses are marks with their names, and the pathway's decisions are
numbered markers across all panels at the clinical time each was made as of (the page lists
them by number). Server-rendered: no script, and testable as XML.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from markupsafe import Markup

from service.ui.svg import document as svg_document
from service.ui.svg import el, text, title
from service.ui.timeline import Event, Series, Timeline

WIDTH = 880
LEFT, RIGHT = 64, 132  # room for the value axis, and for the target's label on the right
TOP = 34  # the decision markers' strip
PANEL, GAP = 112, 34  # panel height, and the space for the next panel's title
VISITS = 34  # the PT-visit strip under the panels
EVENTS = 30  # the strip of findings, imaging and diagnoses under the visits
AXIS = 30  # date labels
MAX_TICKS = 8
TICK_DAYS = (1, 2, 7, 14, 28, 56, 91, 182, 365)
URGENT = frozenset({"urgent", "asap", "stat"})

XScale = Callable[[datetime], float]


def render(timeline: Timeline, label: str = "Patient timeline") -> Markup:
    """The whole chart, named `label`; an empty patient gets a short empty chart rather than none."""
    drawn = [s for s in timeline.series if s.points]
    start, end = _domain(timeline.moments)
    height = TOP + len(drawn) * (PANEL + GAP) + VISITS + EVENTS + AXIS
    x = _x_scale(start, end)
    parts: list[str] = []
    for index, series in enumerate(drawn):
        parts.append(_panel(series, TOP + GAP + index * (PANEL + GAP), x))
    visits_top = TOP + len(drawn) * (PANEL + GAP) + 8
    parts.append(_visits(timeline.visits, visits_top, x))
    parts.append(_events(timeline.events, visits_top + VISITS, x))
    parts.append(_axis(start, end, visits_top + VISITS + EVENTS - 8, x))
    parts.append(_decisions(timeline, visits_top + VISITS + EVENTS - 12, x))
    return svg_document(WIDTH, height, label, _describe(timeline), *parts, css_class="chart timeline-chart")


def _describe(timeline: Timeline) -> str:
    lines = []
    for series in timeline.series:
        if not series.points:
            lines.append(f"No {series.label} recorded.")
            continue
        first, last = series.points[0].value, series.points[-1].value
        target = f"; MCID target {series.target:g}" if series.target is not None else ""
        unit = f" {series.unit}" if series.unit else ""
        lines.append(f"{series.label} from {first:g} to {last:g}{unit} over {len(series.points)} values{target}.")
    lines += [f"{e.label}." for e in timeline.events]
    lines.append(f"{len(timeline.visits)} PT visits; {len(timeline.decisions)} pathway decisions.")
    return " ".join(lines)


def _domain(moments: list[datetime]) -> tuple[datetime, datetime]:
    if not moments:
        now = datetime.now().astimezone()
        return now - timedelta(days=7), now
    start, end = moments[0], moments[-1]
    pad = max((end - start) * 0.03, timedelta(days=1))
    return start - pad, end + pad


def _x_scale(start: datetime, end: datetime) -> XScale:
    span = (end - start).total_seconds() or 1.0
    width = WIDTH - LEFT - RIGHT

    def x(moment: datetime) -> float:
        return LEFT + (moment - start).total_seconds() / span * width

    return x


def _top_of(series: Series) -> float:
    """A round upper bound of the value axis: 10 for 0–10 scores, 100 for ODI."""
    highest = max([p.value for p in series.points] + [series.baseline or 0, series.target or 0, 1])
    if highest <= 10:
        return 10.0
    magnitude = 10 ** math.floor(math.log10(highest))
    return float(math.ceil(highest / magnitude) * magnitude)


def _panel(series: Series, top: float, x: XScale) -> str:
    ceiling = _top_of(series)

    def y(value: float) -> float:
        return top + PANEL - value / ceiling * PANEL

    better = "lower is better" if series.better.value == "lower" else "higher is better"
    unit = series.unit or "no unit stated"
    middle = top + PANEL / 2
    parts = [
        text(LEFT, top - 10, f"{series.label} ({unit}; {better})", class_="panel-title"),
        text(14, middle, unit, text_anchor="middle", transform=f"rotate(-90 14 {middle:.1f})", class_="axis-unit"),
        el("rect", {"x": LEFT, "y": top, "width": WIDTH - LEFT - RIGHT, "height": PANEL, "class": "panel"}),
    ]
    for tick in (0, ceiling / 2, ceiling):
        parts.append(el("line", {"x1": LEFT - 4, "x2": LEFT, "y1": y(tick), "y2": y(tick), "class": "axis"}))
        parts.append(text(LEFT - 8, y(tick) + 4, f"{tick:g}", text_anchor="end", class_="tick-label"))
    if series.baseline is not None:
        parts.append(_level(y(series.baseline), "baseline", f"baseline {series.baseline:g}"))
    if series.target is not None:
        parts.append(_level(y(series.target), "target", f"MCID target {series.target:g}", f"{series.target_rule}"))
    points = " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in series.points)
    parts.append(el("polyline", {"points": points, "class": f"series series-{series.measure_id}"}))
    for p in series.points:
        label = f"{series.label} {p.value:g}{' ' + series.unit if series.unit else ''} on {p.at:%Y-%m-%d}"
        parts.append(el("circle", {"cx": x(p.at), "cy": y(p.value), "r": 4, "class": "point"}, title(label)))
    return el("g", {"class": "measure", "data_measure": series.measure_id}, *parts)


def _level(y: float, kind: str, label: str, rule: str | None = None) -> str:
    line = el("line", {"x1": LEFT, "x2": WIDTH - RIGHT, "y1": y, "y2": y, "class": kind}, title(rule or label))
    return line + text(WIDTH - RIGHT + 6, y + 4, label, class_=f"{kind}-label")


def _visits(visits: tuple[datetime, ...], top: float, x: XScale) -> str:
    parts = [text(LEFT - 8, top + 14, "PT visits", text_anchor="end", class_="tick-label")]
    for visit in visits:
        parts.append(
            el(
                "line",
                {"x1": x(visit), "x2": x(visit), "y1": top + 2, "y2": top + 18, "class": "visit"},
                title(f"PT visit {visit:%Y-%m-%d}"),
            )
        )
    return el("g", {"class": "visits", "data_count": len(visits)}, *parts)


def _events(events: tuple[Event, ...], top: float, x: XScale) -> str:
    """A diamond per red-flag finding, imaging study or diagnosis, named in its tooltip."""
    parts = [text(LEFT - 8, top + 14, "Findings", text_anchor="end", class_="tick-label")]
    for event in events:
        at, middle = x(event.at), top + 10
        corners = (
            f"{at:.1f},{middle - 7:.1f} {at + 7:.1f},{middle:.1f} {at:.1f},{middle + 7:.1f} {at - 7:.1f},{middle:.1f}"
        )
        parts.append(
            el(
                "polygon",
                {"points": corners, "class": f"event event-{event.kind}", "data_kind": event.kind},
                title(event.label),
            )
        )
    return el("g", {"class": "events", "data_count": len(events)}, *parts)


def _axis(start: datetime, end: datetime, top: float, x: XScale) -> str:
    days = max((end - start).days, 1)
    step = next((d for d in TICK_DAYS if days / d <= MAX_TICKS), TICK_DAYS[-1])
    tick = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    parts = [el("line", {"x1": LEFT, "x2": WIDTH - RIGHT, "y1": top, "y2": top, "class": "axis"})]
    while tick <= end:
        parts.append(el("line", {"x1": x(tick), "x2": x(tick), "y1": top, "y2": top + 4, "class": "axis"}))
        parts.append(
            text(
                x(tick),
                top + 17,
                f"{tick.day} {tick:%b %Y}" if step >= 28 else f"{tick.day} {tick:%b}",
                text_anchor="middle",
                class_="tick-label",
            )
        )
        tick += timedelta(days=step)
    return el("g", {"class": "time-axis"}, *parts)


def _decisions(timeline: Timeline, bottom: float, x: XScale) -> str:
    parts = []
    for marker in timeline.decisions:
        at, number = x(marker.at), marker.number
        kind = "decision urgent" if marker.priority in URGENT else "decision"
        label = f"{number}. {marker.title} ({marker.priority}) as of {marker.at:%Y-%m-%d %H:%M} UTC"
        parts.append(
            el(
                "g",
                {"class": kind, "data_step": marker.step},
                title(label),
                el("line", {"x1": at, "x2": at, "y1": TOP - 8, "y2": bottom, "class": "decision-line"}),
                el("circle", {"cx": at, "cy": TOP - 16, "r": 9, "class": "decision-dot"}),
                text(at, TOP - 12, str(number), text_anchor="middle", class_="decision-number"),
            )
        )
    return el("g", {"class": "decisions"}, *parts)
