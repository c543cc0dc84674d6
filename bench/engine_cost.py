"""Per-event cost of the engine as a patient's history grows: it should stay flat.

    python bench/engine_cost.py

Builds one patient's state with 10, 100, 1,000 and 10,000 prior observations (pain, ODI, PSFS,
adherence and barriers over an episode of PT visits), then times `apply_record` for fresh
observations on that state, and the state's JSON round trip. Each figure is the best of a few
repeats of a mean (as `timeit` reports), so other work on the machine does not hide the trend.
Not a test: numbers vary by machine.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathways.definition import SHIPPED_1_1, load_definition_file  # noqa: E402
from pathways.engine import apply_record, new_state  # noqa: E402
from pathways.model import ClinicalRecord, Coding, RecordStatus, SourceRef  # noqa: E402
from pathways.state import PatientState  # noqa: E402
from service.store.state_codec import state_from_json, state_to_json  # noqa: E402

DEFINITION = load_definition_file(SHIPPED_1_1)  # the 1.x engine; bench/lines_cost.py measures 2.0's lines
T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIZES = (10, 100, 1_000, 10_000)
EVENTS = 500
ROUND_TRIPS = 200
REPEATS = 7

# Codes come from the shipped definition, so the benchmark reads what the engine reads.
PT = DEFINITION.pt_visit.codings[0]
MEASURES = [m.codes.codings[0] for m in DEFINITION.measures]
ADHERENCE = DEFINITION.adherence_codes.codings[0]
BARRIER = DEFINITION.barrier_codes.codings[0]
BARRIER_VALUE = DEFINITION.barriers[0].code


def record(number: int, kind: str, code: Coding, at: datetime, **values: object) -> ClinicalRecord:
    return ClinicalRecord(
        SourceRef(kind, f"{kind.lower()}-{number}", "1"),
        "bench",
        at,
        RecordStatus.ACTIVE,
        (code,),
        **values,  # type: ignore[arg-type]
    )


def observation(number: int, at: datetime) -> ClinicalRecord:
    """The n-th observation of the mix: measures, adherence, now and then a barrier."""
    slot = number % 5
    if slot < len(MEASURES):
        return record(number, "Observation", MEASURES[slot], at, value_number=float(3 + number % 5))
    if slot == 3:
        return record(number, "Observation", ADHERENCE, at, value_number=float(70 + number % 30))
    return record(number, "Observation", BARRIER, at, value_codes=(BARRIER_VALUE,))


def build(observations: int) -> PatientState:
    """A state after nine PT visits and `observations` observations spread over 40 days."""
    state = new_state()
    for i in range(9):
        visit = record(i, "Encounter", PT, T0 + timedelta(days=4 * i))
        state, _ = apply_record(DEFINITION, state, visit, visit.at)
    step = timedelta(days=40) / observations
    for i in range(observations):
        item = observation(i, T0 + step * i)
        state, _ = apply_record(DEFINITION, state, item, item.at)
    return state


def mean_apply(state: PatientState) -> float:
    """Mean seconds of `apply_record` for fresh observations, each on the same state."""
    start = T0 + timedelta(days=40)
    events = [observation(10_000_000 + i, start + timedelta(minutes=i)) for i in range(EVENTS)]
    began = time.perf_counter()
    for event in events:
        apply_record(DEFINITION, state, event, event.at)
    return (time.perf_counter() - began) / EVENTS


def mean_round_trip(state: PatientState) -> float:
    began = time.perf_counter()
    for _ in range(ROUND_TRIPS):
        state_from_json(json.loads(json.dumps(state_to_json(state))))
    return (time.perf_counter() - began) / ROUND_TRIPS


def costs() -> list[dict[str, float]]:
    """Per history size: seconds per `apply_record`, per state JSON round trip, and state bytes.

    Repeats go round the sizes in turn and each size keeps its best, so a burst of other work on
    the machine hits every size alike instead of one.
    """
    states = {size: build(size) for size in SIZES}
    applies: dict[int, list[float]] = {size: [] for size in SIZES}
    trips: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(REPEATS):
        for size, state in states.items():
            gc.collect()
            applies[size].append(mean_apply(state))
            trips[size].append(mean_round_trip(state))
    return [
        {
            "prior_facts": size,
            "apply_record_s": min(applies[size]),
            "json_round_trip_s": min(trips[size]),
            "state_bytes": len(json.dumps(state_to_json(state))),
        }
        for size, state in states.items()
    ]


def main() -> None:
    print(f"{'prior observations':>18}  {'apply_record':>13}  {'JSON round trip':>15}  {'state JSON':>10}")
    for row in costs():
        print(
            f"{row['prior_facts']:>18,}  {row['apply_record_s'] * 1e6:>10.0f} µs  "
            f"{row['json_round_trip_s'] * 1e6:>12.0f} µs  {row['state_bytes']:>8,} B"
        )


if __name__ == "__main__":
    main()
