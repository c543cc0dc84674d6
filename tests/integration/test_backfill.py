"""Back-fill from a Bulk Data NDJSON export: stored once, evaluated in clinical order, bad lines reported."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from service.bootstrap import Services
from service.settings import Settings
from service.usecases.backfill import backfill
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.processes import ROOT
from tests.stack import new_patient_id, settings_env

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def write_export(
    directory: Path, resources: list[dict[str, Any]], extra_lines: dict[str, list[str]] | None = None
) -> None:
    """One NDJSON file per resource type, as a Bulk Data export writes them."""
    by_type: dict[str, list[str]] = dict(extra_lines or {})
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for resource_type, lines in by_type.items():
        (directory / f"{resource_type}.ndjson").write_text("\n".join(lines) + "\n")


def non_adherent_journey(patient: str) -> list[dict[str, Any]]:
    """Weekly PT with no adherence recorded and no improvement: the 6-week checkpoint proposes adherence."""
    visits = [pt_visit(patient, T0 + timedelta(weeks=w)) for w in (0, 1, 2, 3, 4, 7)]
    pains = [measure(patient, PAIN, 7, T0 + timedelta(weeks=w)) for w in (0, 4)]
    person = {"resourceType": "Patient", "id": patient, "birthDate": "1970-04"}  # kept for its birthDate
    return [*visits, *pains, person, {"resourceType": "Practitioner", "id": f"{patient}-pt"}]


def red_flag_journey(patient: str) -> list[dict[str, Any]]:
    return [pt_visit(patient, T0), finding(patient, CAUDA_EQUINA, T0 + timedelta(days=3))]


def counts(services: Services, patient: str) -> tuple[int, list[str]]:
    with services.db.connect() as connection:
        events = connection.execute(
            sa.text("SELECT count(*) FROM inbound_events WHERE patient_id = :p"), {"p": patient}
        ).scalar_one()
        steps = connection.execute(
            sa.text("SELECT step FROM decisions WHERE patient_id = :p ORDER BY step"), {"p": patient}
        ).scalars()
        return events, list(steps)


def test_a_backfill_stores_each_resource_once_even_when_run_twice_and_decides_for_each_patient(
    stack_services: Services, tmp_path: Path
) -> None:
    slow, flagged = new_patient_id(), new_patient_id()
    write_export(tmp_path, non_adherent_journey(slow) + red_flag_journey(flagged))

    first = backfill(stack_services, tmp_path)
    second = backfill(stack_services, tmp_path)

    assert (first.lines, first.stored, first.already_stored, first.skipped_types) == (12, 11, 0, {"Practitioner": 1})
    assert (first.patients, first.evaluated, first.refused) == (2, 11, [])
    assert (second.stored, second.already_stored, second.evaluated, second.decisions) == (0, 11, 0, 0)
    assert counts(stack_services, slow) == (9, ["adherence"])
    assert counts(stack_services, flagged) == (2, ["red-flags"])
    assert first.decisions == 2


def test_the_command_reports_bad_lines_with_their_numbers_skips_them_and_stores_the_rest(
    stack_settings: Settings, stack_services: Services, tmp_path: Path
) -> None:
    patient = new_patient_id()
    good = [measure(patient, PAIN, 6, T0), measure(patient, PAIN, 5, T0 + timedelta(days=7))]
    no_code = dict(measure(patient, PAIN, 4, T0 + timedelta(days=14)))
    del no_code["code"]
    lines = [json.dumps(good[0]), "{not json", json.dumps(no_code), json.dumps(good[1])]
    (tmp_path / "Observation.ndjson").write_text("\n".join(lines) + "\n")

    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "backfill", str(tmp_path)],
        cwd=ROOT,
        env=settings_env(stack_settings),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1, result.stderr
    assert "read 4 resources: 2 stored, 0 already stored, 2 refused" in result.stdout
    assert "Observation.ndjson:2: not valid JSON" in result.stdout
    assert "Observation.ndjson:3: Observation.code:" in result.stdout
    assert counts(stack_services, patient)[0] == 2
