"""The CapabilityStatement names the pathway Carepath ships: read as a PlanDefinition, applied as a dry run."""

from __future__ import annotations

from pathlib import Path

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from service.app import create_app
from service.settings import Settings


def test_the_capability_statement_offers_the_shipped_pathway_and_its_dry_run(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"CAREPATH_DATA_DIR": str(tmp_path)}))
    statement = app.test_client().get("/fhir/metadata").get_json()
    CapabilityStatement.model_validate(statement)

    (plan,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "PlanDefinition"]
    assert plan["interaction"] == [{"code": "read"}]
    assert [(o["name"], o["definition"]) for o in plan["operation"]] == [
        ("apply", "http://hl7.org/fhir/OperationDefinition/PlanDefinition-apply")
    ]
    documentation = plan["documentation"]
    assert documentation.startswith("PlanDefinition/pt-nonresponse: Physical therapy that is not working")
    assert "shipped: 1.1.0; 1.0.0 kept for the patients enrolled on it" in documentation
    assert "watched 12 weeks for a relapse" in documentation  # 1.1.0's own description
