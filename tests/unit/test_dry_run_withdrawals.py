"""A dry run lists a proposal it withdrew on the way with its withdrawn status (an MRI replaced by a CT)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle

from pathways.definition import SHIPPED_VERSIONS
from service.cli import main as carepath
from tests.builders import LOCAL, PAIN, SNOMED, finding, measure, pt_visit

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PATIENT = "dry-run-1"
NUMBNESS = (SNOMED, "44077006")
MRI_CONTRAINDICATED = (LOCAL, "mri-contraindicated")
V1_0, V1_1 = SHIPPED_VERSIONS[:2]


def adherence(at: datetime, pct: float) -> dict[str, Any]:
    resource = measure(PATIENT, (LOCAL, "hep-adherence-pct"), pct, at)
    resource["valueQuantity"] |= {"unit": "%", "code": "%"}
    return resource


def journey() -> dict[str, Any]:
    """An adherent non-responder with numbness: MRI and NCS at week 10, an MRI contraindication at week 11."""
    resources = [pt_visit(PATIENT, T0 + timedelta(days=4 * i)) for i in range(9)]
    resources += [measure(PATIENT, PAIN, 7, T0), measure(PATIENT, PAIN, 6, T0 + timedelta(days=40))]
    resources += [adherence(T0 + timedelta(days=39), 92), finding(PATIENT, NUMBNESS, T0 + timedelta(days=10))]
    resources.append(finding(PATIENT, MRI_CONTRAINDICATED, T0 + timedelta(weeks=11)))
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def dry_run(tmp_path: Path, *definition: str) -> dict[str, Any]:
    path = tmp_path / "journey.json"
    path.write_text(json.dumps(journey()))
    now = (T0 + timedelta(weeks=13)).isoformat()
    result = CliRunner().invoke(carepath, ["simulate", str(path), "--now", now, *definition])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.output)
    Bundle.model_validate(bundle)
    return bundle


def by_item(bundle: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
    """Imaging's resources by the end of their identifier (`1|mri`, `2|ct-approve`): type, status, reason."""
    found = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        key = next((i["value"] for i in resource.get("identifier", [])), "")
        if "|imaging|" in key:
            # A Task's reason is its statusReason; a revoked ServiceRequest's, its last note.
            revoked = resource["status"] == "revoked"
            reason = (resource.get("statusReason") or {}).get("text") or (
                resource["note"][-1]["text"] if revoked else None
            )
            found[key.split("|imaging|")[1]] = (resource["resourceType"], resource["status"], reason)
    return found


REASON = "MRI contraindicated (recorded 2026-03-23): replaced by a CT of the lumbar spine."


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (
            ["--definition", str(V1_1)],
            {
                "1|mri": ("ServiceRequest", "revoked", REASON),
                "1|mri-approve": ("Task", "cancelled", REASON),
                "1|ncs": ("ServiceRequest", "draft", None),
                "1|ncs-approve": ("Task", "requested", None),
                "2|ct": ("ServiceRequest", "draft", None),
                "2|ct-approve": ("Task", "requested", None),
            },
        ),
        (
            ["--definition", str(V1_0)],  # 1.0.0: the MRI stands and no CT is proposed
            {
                "1|mri": ("ServiceRequest", "draft", None),
                "1|mri-approve": ("Task", "requested", None),
                "1|ncs": ("ServiceRequest", "draft", None),
                "1|ncs-approve": ("Task", "requested", None),
            },
        ),
    ],
)
def test_a_dry_run_lists_the_mri_a_ct_replaced_as_revoked_and_its_approve_task_as_cancelled(
    tmp_path: Path, definition: list[str], expected: dict[str, tuple[str, str, str | None]]
) -> None:
    assert by_item(dry_run(tmp_path, *definition)) == expected
