"""Which pathway steps the cohort makes fire: the pure engine (`pathways.simulate`) over every journey."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta

from bench.cohort import Journey
from pathways.definition import default_definition
from pathways.fhir import inbound
from pathways.simulate import simulate

SETTLE = timedelta(weeks=7)  # past the longest checkpoint interval (6 weeks): every pending one falls due
PROCESSES = 2  # one per core: the engine is pure Python


def step_counts(journeys: list[Journey], processes: int = PROCESSES) -> dict[str, int]:
    """Decisions per step (red flags per priority) that the shipped pathway makes for the cohort."""
    _JOURNEYS[:] = journeys
    chunks = [range(start, len(journeys), processes) for start in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_count, chunks)
    return dict(sorted(sum(parts, Counter()).items()))


_JOURNEYS: list[Journey] = []  # set before forking: the counting processes read it copy-on-write


def _count(numbers: range) -> Counter[str]:
    definition = default_definition()
    counts: Counter[str] = Counter()
    for journey in (_JOURNEYS[number] for number in numbers):
        records = [
            record
            for resource in journey.ordered()
            for record in inbound.records_from_resource(resource, resource_id=resource["id"])
        ]
        until = max(record.at for record in records) + SETTLE
        for evaluation in simulate(definition, records, until):
            for decision in evaluation.decisions:
                name = f"{decision.step}:{decision.priority}" if decision.step == "red-flags" else decision.step
                counts[name] += 1
    return counts


def missing_steps(counts: dict[str, int]) -> list[str]:
    """Steps of the definition that never fired (should be none)."""
    fired = {name.split(":", 1)[0] for name in counts}
    return [step.id for step in default_definition().steps if step.id not in fired]
