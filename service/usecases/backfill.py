"""Back-fill from a FHIR Bulk Data export: NDJSON files, one resource per line.

Each line is read, validated and stored through the same intake as the API (`service.usecases.intake`),
so a line already stored is recognised by its dedup key and never counted twice. Lines that
are not JSON or not a valid resource are reported with their file and line number and skipped;
resource types Carepath does not read (Patient, Group, ...) are counted and skipped.

Once everything is stored, each patient is evaluated in process, fact by fact in clinical-time
order, through the workers' own use case (`service.usecases.evaluation`), under the patient's
lock and in one transaction per patient (should that fail, fact by fact, with attempts counted
as a worker counts them). Why not queue one evaluation per line: an export comes one file per type,
so file order puts every Observation before the Encounter that starts its episode; evaluated in
that order, nearly every fact would arrive "late" and make the engine rebuild the patient's
history. Sorting each patient's facts first applies each one once, in order. Deliveries to the
EHR are still queued for the workers, after each evaluation's commit, as live events' are.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from pathways.fhir import inbound
from service.bootstrap import Services
from service.fhir.json_input import parse_json
from service.problems import Problem
from service.queue import DeliveryOrder
from service.store import decisions, events
from service.store.database import transaction
from service.usecases import evaluation, intake

log = structlog.get_logger(__name__)

CHANNEL = "backfill"
LINES_PER_COMMIT = 500  # one transaction per batch: a commit per line would dominate the run
NDJSON_SUFFIXES = (".ndjson", ".jsonl")

Deliver = Callable[[list[DeliveryOrder]], None]


@dataclass(frozen=True)
class RefusedLine:
    """A line that was not stored, and why."""

    file: str
    line: int
    reason: str


@dataclass
class BackfillReport:
    lines: int = 0
    stored: int = 0
    already_stored: int = 0
    skipped_types: Counter[str] = field(default_factory=Counter)
    refused: list[RefusedLine] = field(default_factory=list)
    patients: int = 0
    evaluated: int = 0
    decisions: int = 0
    seconds: float = 0.0

    @property
    def resources_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class _Line:
    file: str
    number: int
    prepared: intake.PreparedEvent
    clinical_time: datetime


def export_files(directory: Path) -> list[Path]:
    """The export's NDJSON files, in name order."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(NDJSON_SUFFIXES))


def backfill(services: Services, directory: Path, deliver: Deliver | None = None) -> BackfillReport:
    """Store every valid line of the export once, then evaluate each patient whose facts wait."""
    began = time.perf_counter()
    report = BackfillReport()
    waiting: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for path in export_files(directory):
        for batch in _batches(_lines(path, report)):
            _store(services, batch, report, waiting)
    _count_decisions(services, report, before=True)
    for patient_id, facts in waiting.items():
        report.patients += 1
        report.evaluated += len(facts)
        orders = _evaluate_patient(services, patient_id, [event_id for _, event_id in sorted(facts)])
        if orders and deliver is not None:
            deliver(orders)
    _count_decisions(services, report, before=False)
    report.seconds = time.perf_counter() - began
    log.info("backfill done", lines=report.lines, stored=report.stored, refused=len(report.refused))
    return report


def _evaluate_patient(services: Services, patient_id: str, event_ids: list[int]) -> list[DeliveryOrder]:
    """All of a patient's facts in one transaction; if that fails, one by one, as the workers would."""
    try:
        return evaluation.evaluate_patient_events(services, patient_id, event_ids)
    except (evaluation.Contention, inbound.RecordRejected) as error:
        # Nothing of the batch was kept; the per-event path retries contention and sets a bad fact aside.
        log.warning("patient evaluated fact by fact", patient_id=patient_id, error=type(error).__name__)
    orders: list[DeliveryOrder] = []
    for event_id in event_ids:
        orders += evaluation.evaluate_event(services, event_id)
    return orders


def _lines(path: Path, report: BackfillReport) -> Iterator[_Line]:
    """Each valid line of one file, streamed; refused and skipped lines are noted in the report."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            report.lines += 1
            line = _parse(path.name, number, text, report)
            if line is not None:
                yield line


def _parse(file: str, number: int, text: str, report: BackfillReport) -> _Line | None:
    try:
        payload = parse_json(text)
    except Problem as error:
        report.refused.append(RefusedLine(file, number, error.message))
        return None
    resource_type = payload.get("resourceType") if isinstance(payload, dict) else None
    if isinstance(resource_type, str) and resource_type not in intake.ACCEPTED_TYPES:
        report.skipped_types[resource_type] += 1
        return None
    try:
        prepared = intake.prepare(payload, None)
    except Problem as problem:
        report.refused.append(RefusedLine(file, number, _reason(problem)))
        return None
    records = inbound.records_from_resource(prepared.resource, resource_id=prepared.resource_id)
    return _Line(file, number, prepared, min(r.at for r in records))


def _reason(problem: Problem) -> str:
    issues = problem.outcome()["issue"]
    return "; ".join(f"{', '.join(i.get('expression') or ['resource'])}: {i.get('diagnostics', '')}" for i in issues)


def _batches(lines: Iterator[_Line]) -> Iterator[list[_Line]]:
    batch: list[_Line] = []
    for line in lines:
        batch.append(line)
        if len(batch) == LINES_PER_COMMIT:
            yield batch
            batch = []
    if batch:
        yield batch


def _store(
    services: Services, batch: list[_Line], report: BackfillReport, waiting: dict[str, list[tuple[datetime, int]]]
) -> None:
    """Store one batch in one transaction; note each event still waiting for its evaluation."""
    with transaction(services.db) as connection:
        now = services.clock()
        stored = [(line, *intake.store(connection, line.prepared, CHANNEL, now)) for line in batch]
        pending = set(events.pending_among(connection, [event_id for _, event_id, _ in stored]))
    for line, event_id, created in stored:
        report.stored += created
        report.already_stored += not created
        if event_id in pending:  # also a line stored by an earlier run that stopped before evaluating it
            waiting[line.prepared.patient_id].append((line.clinical_time, event_id))


def _count_decisions(services: Services, report: BackfillReport, *, before: bool) -> None:
    with transaction(services.db) as connection:
        count = decisions.count(connection)
    report.decisions += -count if before else count


def summary(report: BackfillReport) -> list[str]:
    """The report as lines for a person."""
    skipped = ", ".join(f"{kind} {count}" for kind, count in sorted(report.skipped_types.items())) or "none"
    return [
        f"read {report.lines} resources: {report.stored} stored, {report.already_stored} already stored, "
        f"{len(report.refused)} refused; skipped types: {skipped}",
        *(f"  {r.file}:{r.line}: {r.reason}" for r in report.refused),
        f"evaluated {report.evaluated} events of {report.patients} patients: {report.decisions} new decisions",
        f"{report.resources_per_second:.0f} resources/s ({report.seconds:.1f} s)",
    ]


def as_json(report: BackfillReport) -> dict[str, Any]:
    """The report as JSON: every field under its own name, the seconds rounded, and the rate."""
    counts = {f.name: getattr(report, f.name) for f in fields(report)}
    return counts | {
        "skipped_types": dict(report.skipped_types),
        "refused": [asdict(r) for r in report.refused],
        "seconds": round(report.seconds, 2),
        "resources_per_s": round(report.resources_per_second, 1),
    }
