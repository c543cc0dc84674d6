"""`make bench`: Carepath's speed and scale on this machine, every figure beside its target.

    python bench/run.py [--patients 2000] [--seed N] [--ingest-seconds 30] [--latency-seconds 25]

Starts the real stack (gunicorn API, Celery workers, beat, a new PostgreSQL database, a private
Redis, SEKMET as the EHR, or no EHR where a phase measures evaluation alone), drives it with a
seeded synthetic cohort, and writes
bench/results/results.json and bench/results/bench.png. Everything it starts listens on
127.0.0.1 and is stopped before it exits.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import engine_cost, lines_cost, phases, profile, report, sustained  # noqa: E402
from bench.backfill_memory import DEFAULT_MEGABYTES, peak_memory  # noqa: E402
from bench.backfill_phase import timed_backfill  # noqa: E402
from bench.cohort import DEFAULT_PATIENTS, DEFAULT_SEED, Journey, cohort, mix  # noqa: E402
from bench.coverage import missing_steps, step_counts  # noqa: E402
from bench.events import EventFeed  # noqa: E402
from bench.stack import carepath_stack  # noqa: E402
from bench.urgent import EVENT_BACKLOG, ROUTINE_BACKLOG, urgent_behind_events, urgent_lane  # noqa: E402
from tests.processes import ARTIFACTS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_WORKERS = 2  # WORKER_CONCURRENCY's default
CURVE_SECONDS = 10.0  # per worker count: the backlog outlasts it, and the whole run stays under 10 minutes
LATENCY_SHARES = (50, 90)
BACKFILL_PATIENTS = 300  # about 9,000 resources: enough for a steady rate inside the time budget


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def sustainable_rate(intake_per_s: float, evaluation: dict[str, Any]) -> float:
    """The highest rate both halves keep up with while sharing the machine's cores.

    Intake was measured flat out (the closed loop leaves the workers little CPU) and evaluation
    flat out (the default workers on a backlog, no intake); a sustained stream pays both on the
    same cores, so the rates combine harmonically. Conservative: part of each is waiting, not CPU.
    """
    return 1 / (1 / intake_per_s + 1 / evaluation["evaluated_per_s"])


def phase(results: dict[str, Any], key: str, name: str, run: Callable[[], Any]) -> None:
    """Run one phase and keep its figures; a failed phase is recorded and the others still run."""
    step(name)
    try:
        results[key] = run()
    except Exception as error:  # noqa: BLE001 - one broken phase must not cost the others' figures
        traceback.print_exc()
        results[key] = {"error": f"{type(error).__name__}: {error}"}


def measure_everything(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Every phase, in an order where each stack starts clean."""
    phase(results, "engine_cost", "engine cost per event by history size", engine_cost.costs)
    phase(results, "lines_cost", "engine cost per event with three open episodes", lines_cost.cost)
    phase(results, "batches", "worker CPU and statements per event by batch size", profile.batch_costs)
    step(f"cohort of {args.patients} patients, and the steps it makes fire")
    journeys = cohort(args.patients, args.seed)
    results["cohort"] = mix(journeys) | {"steps": step_counts(journeys)}
    results["cohort"]["steps_never_fired"] = missing_steps(results["cohort"]["steps"])
    feed, cursor = EventFeed.of(journeys), phases.Cursor()
    sustained_feed = sustained.feed_of(journeys)
    bare_seconds = args.ingest_seconds / 2
    phase(
        results,
        "bare_pipeline",
        f"bare pipeline: gunicorn + Celery, no-op task: {sustained.EVENTS:,} events end to end, "
        f"then a closed loop for {bare_seconds:.0f} s",
        lambda: phases.bare(feed, phases.Cursor(), bare_seconds, sustained_feed),
    )
    phase(
        results,
        "sustained",
        f"stack 0 (no EHR): {sustained.EVENTS:,} events end to end",
        lambda: sustained.compared(sustained.carepath(sustained_feed), results["bare_pipeline"]["sustained"]),
    )
    phase(
        results,
        "throughput_stack",
        "stack 1: ingest and worker scaling",
        lambda: throughput(args, results, feed, cursor),
    )
    phase(
        results,
        "latency_stack",
        "stack 2: end-to-end latency and the urgent lane",
        lambda: latency(args, results, feed, cursor, journeys),
    )
    phase(
        results,
        "urgent_events",
        f"stack 3: red flags while {args.event_backlog:,} routine events drain",
        lambda: urgent_events(args, journeys),
    )
    phase(
        results,
        "backfill",
        f"backfill of {args.backfill_patients} patients from NDJSON",
        lambda: timed_backfill(journeys[: args.backfill_patients]),
    )
    phase(
        results,
        "backfill_memory",
        f"backfill peak memory on a {args.backfill_megabytes:.0f} MB export",
        lambda: peak_memory(args.backfill_megabytes),
    )


def throughput(args: argparse.Namespace, results: dict[str, Any], feed: EventFeed, cursor: phases.Cursor) -> str:
    with carepath_stack(workers=DEFAULT_WORKERS) as stack:
        phase(
            results,
            "ingest",
            f"ingest: closed loop for {args.ingest_seconds:.0f} s",
            lambda: phases.ingest_max(stack, feed, cursor, args.ingest_seconds),
        )
        phase(
            results,
            "ingest_alone",
            f"ingest with the workers stopped: closed loop for {args.ingest_seconds / 2:.0f} s",
            lambda: phases.ingest_alone(stack, feed, cursor, args.ingest_seconds / 2),
        )
        phase(
            results,
            "workers",
            "evaluation throughput by worker count, on a backlog",
            lambda: phases.worker_curve(stack, feed, cursor, CURVE_SECONDS),
        )
    bare_rate = results["bare_pipeline"]["accepted_per_s"]
    results["ratio_to_bare"] = results["ingest"]["accepted_per_s"] / bare_rate
    if "accepted_per_s" in results.get("ingest_alone", {}):
        results["ratio_to_bare_workers_stopped"] = results["ingest_alone"]["accepted_per_s"] / bare_rate
    return "done"


def latency(
    args: argparse.Namespace, results: dict[str, Any], feed: EventFeed, cursor: phases.Cursor, journeys: list[Journey]
) -> str:
    maximum = sustainable_rate(results["ingest"]["accepted_per_s"], results["workers"][str(DEFAULT_WORKERS)])
    results["maximum_rate_per_s"] = round(maximum, 1)
    results["latency"] = {}
    cursor.next = len(feed)  # the cohort again as new patients: their journeys start in this new database
    with carepath_stack(workers=DEFAULT_WORKERS) as stack:
        for share in LATENCY_SHARES:
            phase(
                results["latency"],
                str(share),
                f"end to end at {share} % of {maximum:.0f}/s, open loop",
                lambda share=share: phases.latency_at(stack, feed, cursor, maximum * share / 100, args.latency_seconds),
            )
        phase(
            results,
            "urgent",
            "urgent lane behind a routine delivery backlog",
            lambda: urgent_lane(stack, journeys, DEFAULT_WORKERS, args.routine_backlog),
        )
    return "done"


def urgent_events(args: argparse.Namespace, journeys: list[Journey]) -> dict[str, Any]:
    """On a stack of its own: what an earlier phase left queued must not stand between the red flags and the EHR."""
    with carepath_stack(workers=DEFAULT_WORKERS) as stack:
        return urgent_behind_events(stack, journeys, DEFAULT_WORKERS, args.event_backlog)


def step(name: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=DEFAULT_PATIENTS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--ingest-seconds", type=float, default=30.0)
    parser.add_argument("--latency-seconds", type=float, default=25.0)
    parser.add_argument("--routine-backlog", type=int, default=ROUTINE_BACKLOG)
    parser.add_argument("--event-backlog", type=int, default=EVENT_BACKLOG)
    parser.add_argument("--backfill-patients", type=int, default=BACKFILL_PATIENTS)
    parser.add_argument("--backfill-megabytes", type=float, default=DEFAULT_MEGABYTES)
    args = parser.parse_args()
    began = time.monotonic()
    for old_log in ARTIFACTS.glob("bench-*.log"):
        old_log.unlink()  # each run's process logs start empty
    results: dict[str, Any] = {"machine": machine(), "patients": args.patients, "seed": args.seed}
    measure_everything(args, results)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["seconds"] = round(time.monotonic() - began, 1)
    table = report.rows(results)
    results["table"] = [dict(zip(("figure", "measured", "target", "verdict"), row, strict=True)) for row in table]
    phase(results, "chart", "chart", lambda: report.write_chart(results, RESULTS / "bench.png"))
    report.write_json(results, RESULTS / "results.json")
    print()
    print(report.table_text(table))
    print(
        f"\n{results['machine']['nproc']} CPUs ({results['machine']['cpu_model']}), "
        f"{results['machine']['memory_gib']} GiB; ran in {results['seconds']:.0f} s; "
        f"wrote {RESULTS / 'results.json'} and {RESULTS / 'bench.png'}"
    )


if __name__ == "__main__":
    main()
