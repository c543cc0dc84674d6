"""The dry run has two doors, `carepath simulate` and `PlanDefinition/$apply`, to one function."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from flask.testing import FlaskClient

from service.app import create_app
from service.cli import main as carepath
from service.settings import Settings
from service.store import migrate
from service.store.database import make_engine
from tests.access import token_for

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = ROOT / "docs" / "examples" / "adherent-non-responder.json"
NOW = "2026-03-01T00:00:00Z"


@pytest.fixture()
def client(tmp_path: Path) -> FlaskClient:
    """The API on the embedded defaults, migrated as `carepath migrate` would."""
    settings = Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path)})
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    test_client = create_app(settings).test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token_for(engine, 'coordinator')}"
    return test_client


def simulate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(carepath, ["simulate", *args])
    return result.exit_code, result.output


def codes(bundle: dict) -> list[str]:
    return sorted(
        e["resource"]["code"]["coding"][0]["code"] for e in bundle.get("entry", []) if "code" in e["resource"]
    )


def test_simulate_prints_a_valid_collection_of_what_the_pathway_would_have_written() -> None:
    exit_code, output = simulate(str(JOURNEY), "--now", NOW)
    assert exit_code == 0, output
    bundle = json.loads(output)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    assert codes(bundle) == ["308481009", "approve", "notify-prescriber"]
    task = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "notify-prescriber"
    )
    assert "Pain 7 → 6" in task["description"] and "adherence 92 %" in task["description"]


def test_simulate_before_the_first_checkpoint_proposes_nothing() -> None:
    exit_code, output = simulate(str(JOURNEY), "--now", "2026-02-01T00:00:00Z")
    assert exit_code == 0
    assert "entry" not in json.loads(output)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"resourceType": "Patient"}', "must be a FHIR Bundle"),
        (
            json.dumps(
                {
                    "resourceType": "Bundle",
                    "type": "collection",
                    "entry": [
                        {
                            "resource": {
                                "resourceType": "Observation",
                                "status": "final",
                                "subject": {"reference": "Patient/a"},
                            }
                        }
                    ],
                }
            ),
            "Bundle.entry[0].resource.code",
        ),
    ],
    ids=["invalid-json", "not-a-bundle", "invalid-fhir"],
)
def test_simulate_refuses_bad_input_with_a_clear_message_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(content)
    exit_code, output = simulate(str(path), "--now", NOW)
    assert exit_code == 2
    assert message in output


def test_simulate_refuses_a_bundle_of_two_patients(tmp_path: Path) -> None:
    bundle = json.loads(JOURNEY.read_text())
    other = json.loads(json.dumps(bundle["entry"][0]))
    other["resource"]["id"] = "someone-else"
    other["resource"]["subject"]["reference"] = "Patient/someone-else"
    bundle["entry"].append(other)
    path = tmp_path / "two.json"
    path.write_text(json.dumps(bundle))
    exit_code, output = simulate(str(path), "--now", NOW)
    assert (exit_code, "2 patients" in output) == (2, True)


def test_simulate_refuses_an_unreadable_file_and_a_bad_date() -> None:
    assert simulate("/nonexistent/bundle.json", "--now", NOW)[0] == 2
    assert simulate(str(JOURNEY), "--now", "next tuesday")[0] == 2


def test_apply_returns_the_same_bundle_as_simulate(client: FlaskClient) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueString": "Patient/journey-1"},
            {"name": "data", "resource": json.loads(JOURNEY.read_text())},
            {"name": "now", "valueDateTime": NOW},
            {"name": "trace", "valueBoolean": False},
        ],
    }
    response = client.post("/fhir/PlanDefinition/pt-nonresponse/$apply", json=parameters)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == json.loads(simulate(str(JOURNEY), "--now", NOW)[1])


def test_apply_names_the_missing_parameter(client: FlaskClient) -> None:
    response = client.post("/fhir/PlanDefinition/pt-nonresponse/$apply", json={"resourceType": "Parameters"})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["Parameters.parameter('data')"]


def test_the_running_pathway_reads_as_a_plan_definition(client: FlaskClient) -> None:
    plan = client.get("/fhir/PlanDefinition/pt-nonresponse").get_json()
    assert plan["resourceType"] == "PlanDefinition"
    assert plan["url"] == "https://carepath.dev/fhir/PlanDefinition/pt-nonresponse"
    assert client.get("/fhir/PlanDefinition/unknown").status_code == 404


def test_simulate_with_trace_prints_why_each_rule_fired_or_not_and_keeps_the_bundle_on_stdout() -> None:
    plain = subprocess.run(
        [sys.executable, "-m", "service.cli", "simulate", str(JOURNEY), "--now", NOW],
        capture_output=True,
        text=True,
        check=True,
    )
    traced = subprocess.run(
        [sys.executable, "-m", "service.cli", "simulate", str(JOURNEY), "--now", NOW, "--trace"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert traced.stdout == plain.stdout and plain.stderr == ""
    blocks = traced.stderr.strip().split("\n\n")
    assert blocks[0].splitlines()[0].startswith("2026-01-05T09:00:00+00:00  fact Encounter/visit-1  (")
    checkpoint = next(b for b in blocks if "  checkpoint  " in b.splitlines()[0])
    assert checkpoint.splitlines()[0].startswith("2026-02-16T09:00:00+00:00  checkpoint")
    assert "  -   checkpoint.responded: no evaluable measure reached the MCID" in checkpoint
    assert "Pain 7 → 6 (−1; needs −2 or −30 %)" in checkpoint
    assert "  -   adherence: adherent: adherence 92 % (≥ 80 %)" in checkpoint
    assert "  FIRED reassessment: adherent: adherence 92 % (≥ 80 %)" in checkpoint
    assert checkpoint.splitlines()[-1] == "  decided: 1/reassessment/1; next checkpoint: 2026-03-16T09:00:00+00:00"
    assert len(blocks) == traced.stderr.count("decided: ")  # one block per evaluation
