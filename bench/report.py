"""The benchmark's outputs: the table of figures beside their targets, results.json and the chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.measure import RAW

TARGET_RATIO_TO_BARE = 0.7
TARGET_ENGINE_AT_10K_S = 0.001
TARGET_ENGINE_GROWTH = 1.5
TARGET_P99_HALF_RATE_S = 1.0
TARGET_URGENT_P99_S = 2.0
TARGET_SUSTAINED_RATIO = 1.5
TARGET_BATCH_CPU_MS = 1.0
TARGET_BATCH_SIZE = "100"
TARGET_BUNDLE_ENTRIES_PER_S = 3_000
TARGET_URGENT_EVENTS_P99_S = 1.0
TARGET_BACKFILL_PER_S = 5_000  # a million-resource export in under 4 minutes
TARGET_BACKFILL_MILLION_MINUTES = 4
TARGET_BACKFILL_PEAK_MB = 500
BACKFILL_MEMORY_EXPORT_MB = 1_000  # the export size the memory target is set for

Row = tuple[str, str, str, str]  # figure, measured, target, verdict


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 0.01:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"


def _triple(figures: dict[str, Any]) -> str:
    return " / ".join(_seconds(figures.get(p)) for p in ("p50", "p95", "p99")) + f" (n={figures.get('count', 0)})"


def _throughput(results: dict[str, Any]) -> list[Row]:
    ingest, bare, ratio = results["ingest"], results["bare_pipeline"], results["ratio_to_bare"]
    return [
        (
            f"Ingest: events/s accepted (closed loop, {ingest['seconds']:.0f} s)",
            f"{ingest['accepted_per_s']:.0f}",
            "-",
            "",
        ),
        ("Ingest: events/s evaluated meanwhile", f"{ingest['evaluated_per_s']:.0f}", "-", ""),
        ("Load generator CPU (cores of 2)", f"{ingest['load_generator_cpu_cores']:.2f}", "-", ""),
        ("Bare pipeline: events/s accepted", f"{bare['accepted_per_s']:.0f}", "-", ""),
        (
            "Carepath / bare pipeline",
            f"{ratio:.2f}",
            f">= {TARGET_RATIO_TO_BARE}",
            _verdict(ratio >= TARGET_RATIO_TO_BARE),
        ),
        *_workers_stopped(results),
    ]


def _workers_stopped(results: dict[str, Any]) -> list[Row]:
    """The API alone (workers stopped, events queued): what evaluation's share of the cores costs intake."""
    alone = results.get("ingest_alone", {})
    if "accepted_per_s" not in alone:
        return []
    return [
        ("Ingest with the workers stopped: events/s accepted", f"{alone['accepted_per_s']:.0f}", "-", ""),
        (
            "Carepath with the workers stopped / bare pipeline",
            f"{results['ratio_to_bare_workers_stopped']:.2f}",
            "-",
            "",
        ),
    ]


def _sustained(results: dict[str, Any]) -> list[Row]:
    """The same events end to end through Carepath and through the bare pipeline, and their ratio."""
    runs = results["sustained"]
    carepath, bare, ratio = runs["carepath"], runs["bare"], runs["ratio_to_bare"]
    shape = f"{carepath['events']:,} events, {carepath['client_threads']} client threads"
    return [
        (
            f"Sustained end to end, events/s: Carepath, no EHR ({shape})",
            f"{carepath['events_per_s']:.0f} ({carepath['seconds_to_all_done']:.1f} s)",
            "-",
            "",
        ),
        (
            "Sustained end to end, events/s: bare pipeline (every no-op task run)",
            f"{bare['events_per_s']:.0f} ({bare['seconds_to_all_done']:.1f} s)",
            "-",
            "",
        ),
        (
            "Sustained end to end: Carepath / bare pipeline",
            f"{ratio:.2f}",
            f">= {TARGET_SUSTAINED_RATIO}",
            _verdict(ratio >= TARGET_SUSTAINED_RATIO),
        ),
    ]


def _batches(results: dict[str, Any]) -> list[Row]:
    """Worker CPU and statements per event, in process, by events drained per claim."""
    table: list[Row] = []
    for size, figures in results["batches"].items():
        cpu = figures["cpu_ms_per_event"]
        target, verdict = "", ""
        if size == TARGET_BATCH_SIZE:
            target, verdict = f"<= {TARGET_BATCH_CPU_MS:.0f} ms CPU", _verdict(cpu <= TARGET_BATCH_CPU_MS)
        measured = f"{cpu:.2f} ms CPU, {figures['statements_per_event']:.1f} statements"
        table.append((f"Worker per event, batch of {size} (in process)", measured, target, verdict))
    return table


def _bundles(results: dict[str, Any]) -> list[Row]:
    intake = results["urgent_events"]["bundle_intake_workers_stopped"]
    rate = intake["entries_per_s"]
    label = (
        f"Bundle intake, entries/s ({intake['entries_per_bundle']}-entry batch Bundles, "
        f"{intake['client_threads']} client threads, workers stopped)"
    )
    target = f">= {TARGET_BUNDLE_ENTRIES_PER_S:,}"
    return [(label, f"{rate:.0f}", target, _verdict(rate >= TARGET_BUNDLE_ENTRIES_PER_S))]


def _urgent_events(results: dict[str, Any]) -> list[Row]:
    """Red flag acknowledged -> stat Task created in the EHR, while a backlog of routine events drains."""
    table: list[Row] = []
    for key, label in (("shared_workers_only", "shared workers"), ("with_urgent_lane_worker", "+ urgent-lane worker")):
        run = results["urgent_events"][key]
        figures, missing = run["ack_to_stat_task_in_ehr_s"], run["stat_tasks_missing"]
        ok = not missing and figures["p99"] is not None and figures["p99"] <= TARGET_URGENT_EVENTS_P99_S
        measured = _triple(figures)
        if missing:
            measured += f", {missing} missing {run['wait_bound_after_last_flag_s']} s after the last flag"
        waiting = f"{run['routine_events_waiting']:,} routine events draining"
        target = f"p99 <= {TARGET_URGENT_EVENTS_P99_S:.0f} s"
        table.append((f"Red flag -> stat Task in EHR p50/p95/p99, {waiting}, {label}", measured, target, _verdict(ok)))
    return table


def _engine(results: dict[str, Any]) -> list[Row]:
    engine = results["engine_cost"]
    at10, at10k = engine[0]["apply_record_s"], engine[-1]["apply_record_s"]
    table = [
        (f"Engine per event, {r['prior_facts']:,} prior facts", _seconds(r["apply_record_s"]), "", "") for r in engine
    ]
    growth = at10k / at10
    rows = [
        *table,
        ("Engine at 10,000 facts", _seconds(at10k), "<= 1 ms", _verdict(at10k <= TARGET_ENGINE_AT_10K_S)),
        ("Engine 10,000 / 10 facts", f"{growth:.2f}x", f"<= {TARGET_ENGINE_GROWTH}x", _verdict(growth <= 1.5)),
    ]
    lines = results.get("lines_cost")
    if isinstance(lines, dict) and "apply_record_s" in lines:
        cost = lines["apply_record_s"]
        label = "Engine at 10,000 facts, three open episodes (2.0)"
        rows.append((label, _seconds(cost), "<= 1 ms", _verdict(cost <= TARGET_ENGINE_AT_10K_S)))
    return rows


def _latency(results: dict[str, Any]) -> list[Row]:
    table: list[Row] = []
    for share, run in results["latency"].items():
        label = f"at {share} % ({run['target_per_s']:.0f}/s)"
        p99 = run["accepted_to_task_in_ehr_s"]["p99"]
        half = share == "50"
        target = f"p99 <= {TARGET_P99_HALF_RATE_S:.0f} s" if half else "-"
        verdict = _verdict(p99 is not None and p99 <= TARGET_P99_HALF_RATE_S) if half else ""
        table += [
            (f"HTTP answer p50/p95/p99 {label}", _triple(run["http_latency_s"]), "-", ""),
            (f"Accepted -> evaluated p50/p95/p99 {label}", _triple(run["accepted_to_evaluated_s"]), "-", ""),
            (
                f"Accepted -> Task in EHR p50/p95/p99 {label}",
                _triple(run["accepted_to_task_in_ehr_s"]),
                target,
                verdict,
            ),
        ]
    return table


def _workers(results: dict[str, Any]) -> list[Row]:
    return [
        (f"Evaluation with {count} worker process(es), events/s", f"{figures['evaluated_per_s']:.0f}", "", "")
        for count, figures in results["workers"].items()
    ]


def _backfill(results: dict[str, Any]) -> list[Row]:
    backfill = results["backfill"]
    rate, workers = backfill["resources_per_s"], backfill.get("workers", 1)
    rows: list[Row] = [
        (
            f"Backfill, resources/s ({backfill['lines']:,} lines, {workers} process(es))",
            f"{rate:.0f}",
            f">= {TARGET_BACKFILL_PER_S:,}",
            _verdict(rate >= TARGET_BACKFILL_PER_S),
        )
    ]
    if "million_minutes" in backfill:
        minutes = backfill["million_minutes"]
        rows += [
            ("Backfill load alone, resources/s", f"{backfill['load_resources_per_s']:.0f}", "-", ""),
            ("Backfill evaluation alone, events/s", f"{backfill['evaluation_events_per_s']:.0f}", "-", ""),
            (
                "Backfill of 1 M resources at that rate",
                f"{minutes:.1f} min",
                f"< {TARGET_BACKFILL_MILLION_MINUTES} min",
                _verdict(minutes < TARGET_BACKFILL_MILLION_MINUTES),
            ),
        ]
    return rows + _backfill_memory(results)


def _backfill_memory(results: dict[str, Any]) -> list[Row]:
    """Peak memory of the command and its workers; judged only on an export as large as the target's."""
    memory = results.get("backfill_memory")
    if not isinstance(memory, dict) or "peak_rss_mb" not in memory:
        return []
    peak, size = memory["peak_rss_mb"], memory["export_mb"]
    judged = size >= BACKFILL_MEMORY_EXPORT_MB
    return [
        (
            f"Backfill peak RSS, {size:,.0f} MB export ({memory['workers']} worker process(es) included)",
            f"{peak:.0f} MB",
            f"< {TARGET_BACKFILL_PEAK_MB} MB at {BACKFILL_MEMORY_EXPORT_MB:,} MB",
            _verdict(peak < TARGET_BACKFILL_PEAK_MB) if judged else "n/a",
        )
    ]


def _urgent(results: dict[str, Any]) -> list[Row]:
    urgent = results["urgent"]
    queued = f"{urgent.get('routine_deliveries_pending', urgent['routine_deliveries_queued']):,} routine pending"
    table: list[Row] = []
    for key, label in (("shared_workers_only", "shared workers"), ("with_urgent_lane_worker", "+ urgent-lane worker")):
        figures = urgent[key]["accepted_to_task_in_ehr_s"]
        ok = figures["p99"] is not None and figures["p99"] <= TARGET_URGENT_P99_S
        target = f"p99 <= {TARGET_URGENT_P99_S:.0f} s"
        table.append((f"Urgent -> Task in EHR p50/p95/p99, {queued}, {label}", _triple(figures), target, _verdict(ok)))
    return table


# Each section and the phase whose figures it reads: a failed phase shows its own error.
SECTIONS = (
    (_throughput, "ingest"),
    (_sustained, "sustained"),
    (_batches, "batches"),
    (_engine, "engine_cost"),
    (_latency, "latency"),
    (_workers, "workers"),
    (_backfill, "backfill"),
    (_bundles, "urgent_events"),
    (_urgent_events, "urgent_events"),
    (_urgent, "urgent"),
)


def rows(results: dict[str, Any]) -> list[Row]:
    """Every figure beside its target; a phase that failed shows as one row saying so."""
    table: list[Row] = []
    for section, key in SECTIONS:
        name = section.__name__.strip("_")
        failed = results.get(key)
        if isinstance(failed, dict) and "error" in failed:
            table.append((name, "not measured", "", f"({failed['error']})"))
            continue
        try:
            table += section(results)
        except (KeyError, TypeError, ZeroDivisionError, IndexError) as error:
            table.append((name, "not measured", "", f"({type(error).__name__}: {error})"))
    return table


def table_text(table: list[Row]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    header = ("Figure", "Measured", "Target", "Verdict")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in (header, *table)]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def strip_raw(value: Any) -> Any:
    """A copy of the results without the raw samples."""
    if isinstance(value, dict):
        return {k: strip_raw(v) for k, v in value.items() if k != RAW}
    return value


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(strip_raw(results), indent=2, default=str) + "\n")


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Latency distributions (CDF) at 50 % and 90 % of the maximum rate; throughput by worker count."""
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    from matplotlib import pyplot

    figure, (latency, scale) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    for share, style in (("50", "-"), ("90", "--")):
        raw = results["latency"][share].get(RAW, {})
        for name, label in (("accepted_to_evaluated_s", "evaluated"), ("accepted_to_task_in_ehr_s", "Task in EHR")):
            values = sorted(raw.get(name, []))
            if values:
                fractions = [(i + 1) / len(values) for i in range(len(values))]
                latency.plot(values, fractions, style, label=f"{label}, {share} % of max")
    latency.set_xscale("log")
    latency.set_xlabel("seconds after the event was accepted")
    latency.set_ylabel("fraction of events")
    latency.set_title("End-to-end latency (CDF)")
    latency.legend(fontsize="small")
    counts = list(results["workers"])
    scale.plot([int(c) for c in counts], [results["workers"][c]["evaluated_per_s"] for c in counts], "o-")
    scale.set_xticks([int(c) for c in counts])
    scale.set_xlabel("worker processes")
    scale.set_ylabel("events evaluated per second")
    scale.set_title("Evaluation throughput by worker count")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
