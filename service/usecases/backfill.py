"""Back-fill from a FHIR Bulk Data export: NDJSON files, one resource per line.

Each line is read and validated as the API validates a resource (`service.usecases.intake`) and
stored in chunks (COPY on PostgreSQL), so that a line already stored is recognised by its dedup
key and never stored or counted twice. Lines that are not JSON or not a valid resource are
reported with their file and line number and nothing of them is stored; resource types Carepath
does not read (Practitioner, Group, ...) are counted and skipped. The files are streamed: memory
holds one chunk of lines and, per patient, the ids of the events waiting for evaluation.

Once everything is stored, each patient is evaluated, all its facts in clinical-time order,
through the workers' own use case (`service.usecases.evaluation`), under the patient's lock and
in one transaction per patient (should that fail, fact by fact, with attempts counted as a
worker counts them); patients are spread over worker processes (`backfill_evaluation`). Why not
queue one evaluation per line: an export comes one file per type, so file order puts every
Observation before the Encounter that starts its episode; evaluated in that order, nearly every
fact would arrive "late" and make the engine rebuild the patient's history. Evaluating each
patient's facts together applies each one once, in order. Deliveries to the EHR are still queued
for the workers, after each evaluation's commit, as live events' are.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

import structlog

from service.bootstrap import Services
from service.store import bulk_events, decisions
from service.store.database import transaction
from service.usecases.backfill_evaluation import Deliver, Waiting, evaluate_waiting
from service.usecases.backfill_lines import (
    NDJSON_SUFFIXES,
    Parsed,
    RefusedLine,
    SkippedType,
    export_files,
    parsed_lines,
)

__all__ = ["NDJSON_SUFFIXES", "BackfillReport", "RefusedLine", "as_json", "backfill", "export_files", "summary"]

log = structlog.get_logger(__name__)

CHANNEL = "backfill"
LINES_PER_CHUNK = 2_000  # one COPY and one transaction per chunk: per-line round trips would dominate the load
MAX_REFUSED_LISTED = 10_000  # refused lines kept for the report; past that they are counted, not listed


class Progress(Protocol):
    """Told how far the load and the evaluation are, as they go; counts only, never a resource."""

    def loading(self, bytes_read: int, bytes_total: int, lines: int, stored: int) -> None: ...

    def evaluating(self, patients_done: int, patients_total: int, events_done: int) -> None: ...


class _Silent:
    def loading(self, bytes_read: int, bytes_total: int, lines: int, stored: int) -> None:
        pass

    def evaluating(self, patients_done: int, patients_total: int, events_done: int) -> None:
        pass


@dataclass
class BackfillReport:
    lines: int = 0
    stored: int = 0
    already_stored: int = 0
    skipped_types: Counter[str] = field(default_factory=Counter)
    refused: list[RefusedLine] = field(default_factory=list)
    refused_not_listed: int = 0
    patients: int = 0
    evaluated: int = 0
    decisions: int = 0
    workers: int = 1
    load_seconds: float = 0.0
    evaluation_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def resources_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    @property
    def refused_lines(self) -> int:
        return len(self.refused) + self.refused_not_listed

    def note(self, parsed: Parsed) -> None:
        if isinstance(parsed, RefusedLine):
            if len(self.refused) < MAX_REFUSED_LISTED:
                self.refused.append(parsed)
            else:
                self.refused_not_listed += 1
        elif isinstance(parsed, SkippedType):
            self.skipped_types[parsed.resource_type] += 1


def backfill(
    services: Services,
    directory: Path,
    deliver: Deliver | None = None,
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> BackfillReport:
    """Store every valid line of the export once, then evaluate each patient whose facts wait."""
    began = time.perf_counter()
    progress = progress or _Silent()
    report = BackfillReport()
    waiting = _load(services, export_files(directory), report, progress)
    report.load_seconds = time.perf_counter() - began
    _count_decisions(services, report, before=True)
    report.patients = len(waiting)
    progress.evaluating(0, report.patients, 0)
    report.workers = evaluate_waiting(services, waiting, workers, deliver, _Evaluated(report, progress))
    _count_decisions(services, report, before=False)
    report.seconds = time.perf_counter() - began
    report.evaluation_seconds = report.seconds - report.load_seconds
    log.info("backfill done", lines=report.lines, stored=report.stored, refused=report.refused_lines)
    return report


def _load(services: Services, files: list[Path], report: BackfillReport, progress: Progress) -> Waiting:
    """Store every file's valid lines, chunk by chunk; return the ids of the events waiting, by patient."""
    waiting: Waiting = {}
    read = _BytesRead(sum(path.stat().st_size for path in files), report, progress)
    read.show()  # the clock of the rate and the ETA starts now, not at the first chunk
    for path in files:
        for chunk in _chunks(parsed_lines(path, services.settings.max_body_bytes, read)):
            report.lines += len(chunk)
            new = [parsed for parsed in chunk if isinstance(parsed, bulk_events.NewEvent)]
            for parsed in chunk:
                report.note(parsed)
            _store(services, new, report, waiting)
            read.show()
    return waiting


def _chunks(lines: Iterator[Parsed]) -> Iterator[list[Parsed]]:
    while chunk := list(islice(lines, LINES_PER_CHUNK)):
        yield chunk


def _store(services: Services, new: list[bulk_events.NewEvent], report: BackfillReport, waiting: Waiting) -> None:
    """Store one chunk in one transaction; note each event still waiting for its evaluation."""
    with transaction(services.db) as connection:
        outcome = bulk_events.store_new_events(connection, new, CHANNEL, services.clock())
    report.stored += len(outcome.stored)
    report.already_stored += len(new) - len(outcome.stored)
    # Also the lines stored by an earlier run that stopped before evaluating them.
    for event_id, patient_id in outcome.stored + outcome.still_pending:
        waiting.setdefault(patient_id, array("q")).append(event_id)


class _BytesRead:
    """Counts the bytes read against the export's size, for the progress of the load."""

    def __init__(self, total: int, report: BackfillReport, progress: Progress) -> None:
        self.total, self.done, self._report, self._progress = total, 0, report, progress

    def __call__(self, count: int) -> None:
        self.done += count

    def show(self) -> None:
        self._progress.loading(self.done, self.total, self._report.lines, self._report.stored)


class _Evaluated:
    """Counts the patients and events evaluated, for the report and the progress of the evaluation."""

    def __init__(self, report: BackfillReport, progress: Progress) -> None:
        self.patients, self._report, self._progress = 0, report, progress

    def __call__(self, patients: int, events: int) -> None:
        self.patients += patients
        self._report.evaluated += events
        self._progress.evaluating(self.patients, self._report.patients, self._report.evaluated)


def _count_decisions(services: Services, report: BackfillReport, *, before: bool) -> None:
    with transaction(services.db) as connection:
        count = decisions.count(connection)
    report.decisions += -count if before else count


def summary(report: BackfillReport) -> list[str]:
    """The report as lines for a person; counts and line numbers only, never a resource's content."""
    skipped = ", ".join(f"{kind} {count}" for kind, count in sorted(report.skipped_types.items())) or "none"
    unlisted = [f"  ... and {report.refused_not_listed} more refused lines"] if report.refused_not_listed else []
    return [
        f"read {report.lines} resources: {report.stored} stored, {report.already_stored} already stored, "
        f"{report.refused_lines} refused; skipped types: {skipped}",
        *(f"  {r.file}:{r.line}: {r.reason}" for r in report.refused),
        *unlisted,
        f"evaluated {report.evaluated} events of {report.patients} patients "
        f"with {report.workers} process(es): {report.decisions} new decisions",
        f"{report.resources_per_second:.0f} resources/s ({report.seconds:.1f} s: "
        f"load {report.load_seconds:.1f} s, evaluation {report.evaluation_seconds:.1f} s)",
    ]


def as_json(report: BackfillReport) -> dict[str, Any]:
    """The report as JSON: every field under its own name, the seconds rounded, and the rate."""
    counts = {f.name: getattr(report, f.name) for f in fields(report)}
    return counts | {
        "skipped_types": dict(report.skipped_types),
        "refused": [asdict(r) for r in report.refused],
        "seconds": round(report.seconds, 2),
        "load_seconds": round(report.load_seconds, 2),
        "evaluation_seconds": round(report.evaluation_seconds, 2),
        "resources_per_s": round(report.resources_per_second, 1),
    }
