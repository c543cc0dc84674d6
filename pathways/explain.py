"""Plain-language fragments naming the numbers behind a decision, and the same as `Evidence`.

e.g. "Pain 7 → 6 (−1; needs −2 or −30 %) and ODI 42 → 40 (−2; needs −10 or −30 %)";
"adherence 92 % (≥ 80 %)"; "MRI lumbar spine without contrast 2026-02-10". Step wording templates
in the definition place these fragments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pathways.definition.model import Better, Definition
from pathways.model import Coding, Evidence
from pathways.rules.adherence import AdherenceView
from pathways.rules.measures import MeasureView
from pathways.state import Entry

MINUS = "\u2212"
ARROW = "\u2192"


def number(value: float) -> str:
    """7 → "7", 6.5 → "6.5", 1.90000001 → "1.9"."""
    return f"{round(value, 2):g}"


def signed(value: float) -> str:
    if round(value, 2) == 0:
        return "0"
    return f"{MINUS if value < 0 else '+'}{number(abs(value))}"


def day(moment: datetime) -> str:
    return moment.date().isoformat()


def weeks_between(start: datetime | None, moment: datetime) -> str:
    if start is None:
        return "0"
    return number(round((moment - start) / timedelta(weeks=1), 1))


def listing(items: Sequence[str], last: str = "and") -> str:
    """Items joined for reading: `a`, `a and b`, `a, b and c` (or `a, b or c`), without repeats."""
    unique = list(dict.fromkeys(items))
    if len(unique) <= 1:
        return "".join(unique)
    return f"{', '.join(unique[:-1])} {last} {unique[-1]}"


def needs(view: MeasureView) -> str:
    measure = view.measure
    sign = MINUS if measure.better is Better.LOWER else "+"
    text = f"{sign}{number(measure.mcid_points)}"
    if measure.mcid_percent is not None:
        text += f" or {sign}{number(measure.mcid_percent)} %"
    return text


def measure_text(definition: Definition, view: MeasureView) -> str:
    """One measure's baseline → latest, with the change and what response needs."""
    label = view.measure.label
    if view.baseline is None:
        return f"no {label} value"
    if view.latest is None or view.latest.source == view.baseline.source:
        return f"{label} {number(view.baseline.number)} (one value)"
    change = view.latest.number - view.baseline.number
    arrow = f"{label} {number(view.baseline.number)} {ARROW} {number(view.latest.number)}"
    if not view.evaluable:
        days = definition.episode.evaluable_after_days
        return f"{arrow} over {number(view.days or 0)} days (needs {days} days apart)"
    # "needs" reads as a shortfall: a measure that met its MCID says so instead.
    verdict = "reached" if view.responded else "needs"
    return f"{arrow} ({signed(change)}; {verdict} {needs(view)})"


def measures_text(definition: Definition, views: Sequence[MeasureView]) -> str:
    recorded = [v for v in views if v.baseline is not None]
    if not recorded:
        return "no outcome measure recorded"
    return listing([measure_text(definition, v) for v in recorded])


def adherence_text(definition: Definition, view: AdherenceView) -> str:
    """Every adherence fact the verdict rests on, e.g. "adherence 92 % (≥ 80 %)"."""
    rules = definition.adherence
    parts = []
    if view.latest is not None:
        sign = "<" if view.low else "≥"
        parts.append(f"adherence {number(view.latest.number)} % ({sign} {number(rules.min_adherence_pct)} %)")
    else:
        parts.append(f"no adherence value in the last {rules.adherence_window_days} days")
    if view.few_visits:
        parts.append(f"{view.visits} PT visits (< {rules.min_pt_visits})")
    if view.barriers:
        names = [definition.barrier(b.name).label for b in view.barriers]
        parts.append(f"barrier in the last {rules.barrier_window_days} days: {listing(names)}")
    return ", ".join(parts)


def remedies_text(definition: Definition, view: AdherenceView) -> str:
    """Each recent barrier with its remedy, or the default when none was recorded."""
    if not view.barriers:
        return definition.adherence.no_barrier_remedy
    barriers = [definition.barrier(b.name) for b in view.barriers]
    return "; ".join(dict.fromkeys(f"{b.label}: {b.remedy}" for b in barriers))


NO_IMAGING = "none"
"""`{imaging}` with no study on record, read after e.g. "imaging since 2026-01-05: "."""


def imaging_coding(definition: Definition, entry: Entry) -> Coding | None:
    """The definition's coding (with its display) of the code an imaging record matched."""
    return next((c for c in definition.imaging_codes.codings if c.key == entry.code), None)


def imaging_text(definition: Definition, imaging: Sequence[Entry]) -> str:
    """Each study on record with its date, named by the display of its code in the definition."""
    if not imaging:
        return NO_IMAGING
    named = []
    for entry in sorted(imaging, key=lambda e: e.at):
        found = imaging_coding(definition, entry)
        named.append(f"{found.display if found and found.display else 'imaging'} {day(entry.at)}")
    return listing(named)


def common_words(
    definition: Definition,
    t0: datetime | None,
    moment: datetime,
    views: Sequence[MeasureView],
    adherence: AdherenceView,
    region: str,
    imaging: Sequence[Entry] = (),
) -> dict[str, str]:
    """The placeholders every step's wording may use."""
    return {
        "measures": measures_text(definition, views),
        "weeks": weeks_between(t0, moment),
        "visits": str(adherence.visits),
        "adherence": adherence_text(definition, adherence),
        "t0": day(t0) if t0 else "",
        "region": region,
        "imaging": imaging_text(definition, imaging),
    }


def measure_evidence(views: Sequence[MeasureView]) -> tuple[Evidence, ...]:
    """Baseline, latest, change and verdict of each recorded measure, with sources."""
    found: list[Evidence] = []
    for v in views:
        name = v.measure.id
        if v.baseline is not None:
            found.append(Evidence(f"{name}.baseline", v.baseline.number, (v.baseline.source,)))
        if v.latest is not None:
            found.append(Evidence(f"{name}.latest", v.latest.number, (v.latest.source,)))
            found.append(Evidence(f"{name}.evaluable", v.evaluable))
            found.append(Evidence(f"{name}.improvement", round(v.improvement or 0.0, 6)))
            found.append(Evidence(f"{name}.responded", v.responded))
    return tuple(found)


def adherence_evidence(view: AdherenceView) -> tuple[Evidence, ...]:
    found = [Evidence("pt_visits", view.visits), Evidence("adherent", view.adherent)]
    if view.latest is not None:
        found.append(Evidence("adherence.latest_pct", view.latest.number, (view.latest.source,)))
    if view.barriers:
        found.append(Evidence("barriers", tuple(b.name for b in view.barriers), tuple(b.source for b in view.barriers)))
    return tuple(found)


def imaging_evidence(definition: Definition, imaging: Sequence[Entry]) -> tuple[Evidence, ...]:
    """One item per study on record: its coding (else the word `imaging`) and the record it came from."""
    return tuple(
        Evidence("imaging", imaging_coding(definition, entry) or "imaging", (entry.source,))
        for entry in sorted(imaging, key=lambda e: e.at)
    )
