"""Peak memory of `carepath backfill` on a large export written to disk: a 1 GB export must load in under 500 MB.

    python bench/backfill_memory.py [--megabytes 8] [--workers N]

Writes a Bulk Data export of about the size asked for (the bench cohort, copied under new patient
and resource ids until the size is reached), runs the product command on it as a subprocess into a
new database, and samples the resident memory of its whole process tree (the command and its
worker processes) from /proc. Rerunnable; the export is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cohort import cohort, ndjson_lines  # noqa: E402
from tests.processes import ROOT  # noqa: E402
from tests.stack import new_database  # noqa: E402

DEFAULT_MEGABYTES = 8  # about 25,000 resources: a minute of `make bench`; pass 1000 for the 1 GB figure
TARGET_PEAK_MB_AT_1GB = 500
BASE_PATIENTS = 100  # the cohort copied: each copy gets new ids, so every line is a new resource
BASE_ID_PREFIX = "c0-p"  # how the cohort's patient (and so resource) ids begin; each copy changes the digit
SAMPLE_SECONDS = 0.1
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def write_large_export(directory: Path, megabytes: float) -> tuple[int, int]:
    """One `<Type>.ndjson` per type, about `megabytes` in all, streamed to disk; return (lines, bytes)."""
    base = [
        (resource_type, json.dumps(resource, separators=(",", ":")))
        for resource_type, resource in ndjson_lines(cohort(BASE_PATIENTS))
    ]
    lines = written = copy = 0
    with ExitStack() as files:
        handles: dict[str, TextIO] = {}
        while written < megabytes * 1e6:
            for resource_type, text in base:
                if resource_type not in handles:
                    handles[resource_type] = files.enter_context((directory / f"{resource_type}.ndjson").open("w"))
                line = text.replace(BASE_ID_PREFIX, f"c{copy}-p") + "\n"
                handles[resource_type].write(line)
                lines, written = lines + 1, written + len(line)
            copy += 1
    return lines, written


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """The resident memory of `root` alone and of `root` with all its descendants now, from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        parents[int(stat.parent.name)] = int(fields[1])
    own = _rss_bytes(root)
    return own, own + sum(_rss_bytes(pid) for pid in _descendants(root, parents))


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
    except OSError:
        return 0  # the process ended while we looked


def _descendants(root: int, parents: dict[int, int]) -> Iterator[int]:
    children = [pid for pid, parent in parents.items() if parent == root]
    for child in children:
        yield child
        yield from _descendants(child, parents)


def peak_memory(megabytes: float = DEFAULT_MEGABYTES, workers: int | None = None) -> dict[str, Any]:
    """Back-fill an export of about `megabytes` into a new database; its peak memory, and the run's figures."""
    with tempfile.TemporaryDirectory(prefix="carepath-large-export-") as folder, new_database() as url:
        lines, size = write_large_export(Path(folder), megabytes)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EHR_", "DATABASE_", "REDIS_"))}
        env |= {"DATABASE_URL": url, "CAREPATH_DATA_DIR": folder, "LOG_LEVEL": "WARNING"}
        command = [sys.executable, "-m", "service.cli", "backfill", folder, "--json"]
        if workers is not None:
            command += ["--workers", str(workers)]
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        peak, done = [0, 0], threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_SECONDS):
                own, tree = tree_rss_bytes(process.pid)
                peak[:] = max(peak[0], own), max(peak[1], tree)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, stderr = process.communicate()
        done.set()
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"carepath backfill failed ({process.returncode}):\n{stderr[-2000:]}")
    report = json.loads(stdout)
    return {
        "export_mb": round(size / 1e6, 1),
        "lines_written": lines,
        "peak_rss_mb": round(peak[1] / 1e6, 1),  # the command and its workers together
        "command_peak_rss_mb": round(peak[0] / 1e6, 1),  # the process that reads and stores the export
        "largest_process_rss_mb": round(_largest_child_rss_bytes() / 1e6, 1),
        "target_peak_mb_at_1gb": TARGET_PEAK_MB_AT_1GB,
        "resources_per_s": report["resources_per_s"],
        "workers": report["workers"],
        "stored": report["stored"],
        "seconds": report["seconds"],
    }


def _largest_child_rss_bytes() -> int:
    """The largest resident set of any one process this one waited for (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=DEFAULT_MEGABYTES)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    print(json.dumps(peak_memory(args.megabytes, args.workers), indent=2))


if __name__ == "__main__":
    main()
