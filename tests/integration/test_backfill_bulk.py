"""Back-fill at bulk speed: dedup holds across chunks and runs, refused lines store nothing, workers decide alike."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.backfill_phase import write_export as write_cohort_export
from bench.cohort import cohort
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import migrate
from service.store.database import make_engine
from service.usecases import backfill as loading
from service.usecases.backfill import RefusedLine, backfill
from tests.builders import PAIN, measure
from tests.integration.test_backfill import T0, counts, non_adherent_journey, red_flag_journey, write_export
from tests.stack import new_database, new_patient_id

PATIENTS_COMPARED = 16  # enough courses that several steps are decided, few enough for a minute's test


def test_loading_the_same_export_twice_through_copy_stores_and_counts_each_line_once(
    stack_services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack_services.db.dialect.name == "postgresql"  # the COPY path
    monkeypatch.setattr(loading, "LINES_PER_CHUNK", 4)  # several chunks, and a repeat in a later chunk
    slow, flagged = new_patient_id(), new_patient_id()
    resources = non_adherent_journey(slow) + red_flag_journey(flagged)
    repeated = json.dumps(resources[0])
    write_export(tmp_path, resources, extra_lines={"Encounter": [repeated]})

    first = backfill(stack_services, tmp_path)
    second = backfill(stack_services, tmp_path)

    assert (first.lines, first.stored, first.already_stored, first.refused) == (13, 11, 1, [])
    assert (first.patients, first.evaluated, first.decisions) == (2, 11, 2)
    assert (second.lines, second.stored, second.already_stored) == (13, 0, 12)
    assert (second.patients, second.evaluated, second.decisions) == (0, 0, 0)
    assert counts(stack_services, slow) == (9, ["adherence"])
    assert counts(stack_services, flagged) == (2, ["red-flags"])
    assert lanes(stack_services, flagged) == ["routine", "urgent"]  # the visit, and the red flag as intake lanes it


def test_a_refused_line_is_reported_with_its_file_and_line_and_nothing_of_it_is_stored(
    stack_services: Services, tmp_path: Path
) -> None:
    patient = new_patient_id()
    good = measure(patient, PAIN, 6, T0)
    bad_status = dict(measure(patient, PAIN, 5, T0), id=f"{patient}-bad", status="guessed")
    too_long = dict(measure(patient, PAIN, 4, T0), id=f"{patient}-long", note=[{"text": "x" * 3_000}])
    lines = [json.dumps(good), json.dumps(bad_status), json.dumps(too_long)]
    (tmp_path / "Observation.ndjson").write_text("\n".join(lines) + "\n")
    services = replace(stack_services, settings=replace(stack_services.settings, max_body_bytes=2_000))

    report = backfill(services, tmp_path)

    assert (report.lines, report.stored) == (3, 1)
    assert [(r.file, r.line) for r in report.refused] == [("Observation.ndjson", 2), ("Observation.ndjson", 3)]
    assert report.refused[0].reason.startswith("Observation.status: 'guessed' is not one of")
    assert report.refused[1] == RefusedLine("Observation.ndjson", 3, "line longer than 2000 bytes")
    assert stored_ids(stack_services, patient) == [good["id"]]


def test_patients_evaluated_across_worker_processes_get_exactly_the_decisions_one_process_gives(
    stack_settings: Settings, tmp_path: Path
) -> None:
    lines = write_cohort_export(cohort(PATIENTS_COMPARED), tmp_path)
    decided: dict[int, list[tuple[Any, ...]]] = {}
    for workers in (1, 2):
        with new_database() as url:
            services = build(replace(stack_settings, database_url=url))
            try:
                report = backfill(services, tmp_path, workers=workers)
                decided[workers] = decisions_of(services)
            finally:
                services.db.dispose()
        assert (report.workers, report.stored, report.evaluated) == (workers, lines, lines)

    assert len({step for _, _, step, *_ in decided[1]}) >= 3  # a comparison worth making
    assert decided[2] == decided[1]


def test_on_sqlite_a_load_stores_each_line_once_and_decides_in_one_process(
    stack_settings: Settings, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'carepath.db'}")
    migrate.upgrade(engine)
    engine.dispose()
    services = build(replace(stack_settings, database_url=f"sqlite:///{tmp_path / 'carepath.db'}"))
    export = tmp_path / "export"
    export.mkdir()
    slow, flagged = new_patient_id(), new_patient_id()
    write_export(export, non_adherent_journey(slow) + red_flag_journey(flagged))
    try:
        first = backfill(services, export, workers=2)
        second = backfill(services, export, workers=2)
        assert (first.workers, first.stored, first.evaluated, first.decisions) == (1, 11, 11, 2)
        assert (second.stored, second.already_stored, second.evaluated) == (0, 11, 0)
        assert counts(services, slow) == (9, ["adherence"])
    finally:
        services.db.dispose()


def lanes(services: Services, patient: str) -> list[str]:
    with services.db.connect() as connection:
        query = sa.text("SELECT lane FROM inbound_events WHERE patient_id = :p ORDER BY lane")
        return list(connection.execute(query, {"p": patient}).scalars())


def stored_ids(services: Services, patient: str) -> list[str]:
    with services.db.connect() as connection:
        query = sa.text("SELECT resource_id FROM inbound_events WHERE patient_id = :p ORDER BY id")
        return list(connection.execute(query, {"p": patient}).scalars())


def decisions_of(services: Services) -> list[tuple[Any, ...]]:
    """Every decision but its timestamps (when it was made differs between two runs, what was decided must not)."""
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT patient_id, decision_key, step, priority, status, region, definition, explanation"
                " FROM decisions ORDER BY patient_id, decision_key"
            )
        )
        return [tuple(row) for row in rows]
