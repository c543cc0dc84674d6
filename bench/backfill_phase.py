"""Time `carepath backfill` on the cohort written as a Bulk Data NDJSON export, into a new database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cohort import Journey, ndjson_lines
from tests.processes import ROOT
from tests.stack import new_database

BACKFILL_TIMEOUT_SECONDS = 300
TARGET_RESOURCES_PER_S = 5_000  # a hospital's million-resource export in under 4 minutes
MILLION = 1_000_000


def write_export(journeys: list[Journey], directory: Path) -> int:
    """One `<Type>.ndjson` file per resource type; return the number of lines written."""
    handles: dict[str, Any] = {}
    written = 0
    try:
        for resource_type, resource in ndjson_lines(journeys):
            if resource_type not in handles:
                handles[resource_type] = (directory / f"{resource_type}.ndjson").open("w", encoding="utf-8")
            handles[resource_type].write(json.dumps(resource, separators=(",", ":")) + "\n")
            written += 1
    finally:
        for handle in handles.values():
            handle.close()
    return written


def timed_backfill(journeys: list[Journey]) -> dict[str, Any]:
    """Run the product command on the export (no EHR configured: decisions stay local) and time it."""
    with tempfile.TemporaryDirectory(prefix="carepath-export-") as folder, new_database() as url:
        lines = write_export(journeys, Path(folder))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EHR_", "DATABASE_", "REDIS_"))}
        env |= {"DATABASE_URL": url, "CAREPATH_DATA_DIR": folder, "LOG_LEVEL": "WARNING"}
        began = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "service.cli", "backfill", folder, "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BACKFILL_TIMEOUT_SECONDS,
        )
        wall = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"carepath backfill failed ({result.returncode}):\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return {
        "patients": len(journeys),
        "lines_written": lines,
        "command_seconds": round(wall, 1),
        "resources_per_s_end_to_end": round(lines / wall, 1),
        **report,
        **rates(report),
    }


def rates(report: dict[str, Any]) -> dict[str, float]:
    """The command's rate, its two phases' rates, and what it makes of a million resources."""
    rate = report["resources_per_s"]
    return {
        "resources_per_s": rate,
        "load_resources_per_s": round(report["lines"] / report["load_seconds"], 1) if report["load_seconds"] else 0.0,
        "evaluation_events_per_s": (
            round(report["evaluated"] / report["evaluation_seconds"], 1) if report["evaluation_seconds"] else 0.0
        ),
        "million_minutes": round(MILLION / rate / 60, 1) if rate else float("inf"),
        "target_resources_per_s": TARGET_RESOURCES_PER_S,
    }
