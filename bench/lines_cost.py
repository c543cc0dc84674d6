"""Per-event cost of the engine of episode lines with three open episodes: it must stay at or under 1 ms.

    python bench/lines_cost.py

Builds one patient of the draft pt-nonresponse 2.0.0 with a lumbar, a knee and a shoulder episode
open (a radiculopathy, a knee osteoarthritis and a rotator-cuff diagnosis on record before nine PT
visits), folds in 10,000 prior pain values with the body site of each region in turn, then times
`apply_record` for fresh ones. Best of a few repeats of a mean, as `engine_cost` reports.
Not a test: numbers vary by machine.
"""

from __future__ import annotations

import gc
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine_cost import record  # noqa: E402
from pathways.definition import SHIPPED_2_0, load_definition_file  # noqa: E402
from pathways.lines import engine  # noqa: E402
from pathways.lines.patient import RegionalState  # noqa: E402
from pathways.model import ClinicalRecord, Coding  # noqa: E402

DEFINITION = load_definition_file(SHIPPED_2_0)
T0 = datetime(2024, 1, 1, tzinfo=UTC)
PRIOR = 10_000
EVENTS = 500
REPEATS = 5

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
DIAGNOSES = (Coding(ICD, "M54.16"), Coding(ICD, "M17.11"), Coding(ICD, "M75.41"))  # lumbar, knee, shoulder
LINES = DEFINITION.regions.episode_lines
assert LINES is not None
SITES = tuple(LINES.line(line).body_sites.codings[0] for line in ("spine", "knee", "shoulder"))
PT = DEFINITION.pt_visit.codings[0]
PAIN = next(m for m in DEFINITION.measures if m.id == "pain").codes.codings[0]


def pain(number: int, at: datetime) -> ClinicalRecord:
    return record(number, "Observation", PAIN, at, value_number=float(3 + number % 5), body_sites=(SITES[number % 3],))


def receive(state: RegionalState, records: list[ClinicalRecord], item: ClinicalRecord) -> RegionalState:
    records.append(item)
    try:
        state, _ = engine.apply_record(DEFINITION, state, item, item.at)
    except engine.RebuildRequired:
        state, _ = engine.rebuild(DEFINITION, records, state, item.at)
    return state


def build() -> RegionalState:
    """Three open episodes and `PRIOR` pain values over 40 days."""
    state, records = RegionalState(), []
    for i, code in enumerate(DIAGNOSES):
        state = receive(state, records, record(i, "Condition", code, T0 - timedelta(days=5), verification="confirmed"))
    for i in range(9):
        state = receive(state, records, record(i, "Encounter", PT, T0 + timedelta(days=4 * i)))
    step = timedelta(days=40) / PRIOR
    for i in range(PRIOR):
        item = pain(i, T0 + step * i)
        state, _ = engine.apply_record(DEFINITION, state, item, item.at)
    assert sum(lane.open for lane in state.lanes) == 3, "three open episodes"
    return state


def cost() -> dict[str, float]:
    state = build()
    start = T0 + timedelta(days=40)
    events = [pain(10_000_000 + i, start + timedelta(minutes=i)) for i in range(EVENTS)]
    best = float("inf")
    for _ in range(REPEATS):
        gc.collect()
        began = time.perf_counter()
        for event in events:
            engine.apply_record(DEFINITION, state, event, event.at)
        best = min(best, (time.perf_counter() - began) / EVENTS)
    return {"prior_facts": PRIOR, "open_episodes": 3, "apply_record_s": best}


def main() -> None:
    row = cost()
    print(f"{row['prior_facts']:,} prior facts, 3 open episodes: {row['apply_record_s'] * 1e6:.0f} µs per event")


if __name__ == "__main__":
    main()
