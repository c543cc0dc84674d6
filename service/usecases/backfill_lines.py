"""The lines of a Bulk Data export, read one at a time and validated as the API validates a resource.

A file is never read whole: each line is read, checked and handed on, so memory holds one line
(at most the API's body limit) whatever the size of the export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from service.fhir.json_input import parse_json
from service.problems import Problem
from service.store.bulk_events import NewEvent, dumps_body
from service.usecases import intake

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
READ_BLOCK_BYTES = 1 << 20  # what is read at a time while skipping past the end of an over-long line


@dataclass(frozen=True)
class RefusedLine:
    """A line that was not stored, and why."""

    file: str
    line: int
    reason: str


@dataclass(frozen=True)
class SkippedType:
    """A valid line of a resource type Carepath does not read (Practitioner, Group, ...)."""

    resource_type: str


Parsed = NewEvent | RefusedLine | SkippedType


def export_files(directory: Path) -> list[Path]:
    """The export's NDJSON files, in name order."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(NDJSON_SUFFIXES))


def parsed_lines(path: Path, max_line_bytes: int, read: Callable[[int], None]) -> Iterator[Parsed]:
    """What each non-blank line of `path` is; `read` is told the bytes consumed."""
    with path.open("rb") as handle:
        number = 0
        while raw := handle.readline(max_line_bytes + 1):
            number += 1
            read(len(raw))
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                read(_skip_rest_of_line(handle))
                yield RefusedLine(path.name, number, f"line longer than {max_line_bytes} bytes")
                continue
            # As before: bytes that are not UTF-8 become U+FFFD, and validation judges the result.
            text = raw.decode("utf-8", errors="replace")
            if text.strip():
                yield parse_line(path.name, number, text)


def _skip_rest_of_line(handle: BinaryIO) -> int:
    skipped = 0
    while block := handle.readline(READ_BLOCK_BYTES):
        skipped += len(block)
        if block.endswith(b"\n"):
            break
    return skipped


def parse_line(file: str, number: int, text: str) -> Parsed:
    """Validate one line through the API's own checks (`intake.prepare`) and shape it for storing."""
    try:
        payload = parse_json(text)
    except Problem as error:
        return RefusedLine(file, number, error.message)
    resource_type = payload.get("resourceType") if isinstance(payload, dict) else None
    if isinstance(resource_type, str) and resource_type not in intake.ACCEPTED_TYPES:
        return SkippedType(resource_type)
    try:
        prepared = intake.prepare(payload, None)
    except Problem as problem:
        return RefusedLine(file, number, _reason(problem))
    return NewEvent(
        dedup_key=prepared.dedup_key,
        resource_type=prepared.resource_type,
        resource_id=prepared.resource_id,
        version_id=prepared.version_id,
        patient_id=prepared.patient_id,
        body=dumps_body(prepared.resource),
        lane=prepared.lane,
    )


def _reason(problem: Problem) -> str:
    issues = problem.outcome()["issue"]
    return "; ".join(f"{', '.join(i.get('expression') or ['resource'])}: {i.get('diagnostics', '')}" for i in issues)
