"""The pathway page: versions, upload with inline errors, publish and retire, diff, and the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from pathways.definition import Definition
from pathways.model import PATHWAY_STEP_SYSTEM
from service import audit
from service.bootstrap import Services
from service.fhir.json_input import parse_json
from service.problems import Problem
from service.store.database import transaction
from service.store.definitions import DefinitionVersion
from service.ui import diagram
from service.ui.session import Refused
from service.usecases.definitions import versions
from service.usecases.definitions.migration import PatientDiff, diff
from service.usecases.dry_run import DryRunError, dry_run, parse_instant, records_of_bundle


@dataclass(frozen=True)
class Overview:
    versions: list[DefinitionVersion]
    shown: DefinitionVersion
    definition: Definition
    diagram: Markup


@dataclass(frozen=True)
class UploadResult:
    """An upload: the stored version, or every problem with its exact path."""

    version: DefinitionVersion | None = None
    message: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


@dataclass(frozen=True)
class Proposal:
    """One resource a simulated run would have written, as a coordinator would read it."""

    resource_type: str
    step: str
    priority: str
    what: str
    explanation: str
    authored: str


def overview(services: Services, reference: str | None) -> Overview:
    """Every version, and the one to draw (the one asked for, else the active one)."""
    with transaction(services.db) as connection:
        versions = services.definitions.versions(connection)
        active = services.definitions.active(connection)
        wanted = reference or active.reference
        shown = next((v for v in versions if v.reference == wanted), None)
        if shown is None:
            raise Refused(404, f"There is no pathway version {wanted}.")
        definition = services.definitions.get(connection, shown.reference)
    return Overview(versions, shown, definition, diagram.render(definition))


def upload(services: Services, source: str, actor: audit.Actor) -> UploadResult:
    """Validate and store a draft; a refusal comes back as data for the form, not as an error page."""
    if not source.strip():
        return UploadResult(message="Paste the definition's YAML or choose a file.")
    uploaded_by = actor.identity.name if actor.identity else "unknown"
    try:
        version = versions.upload(services, source, uploaded_by, actor)
    except Problem as problem:
        return UploadResult(message=problem.message, errors=_paths(problem))
    return UploadResult(version=version)


def _paths(problem: Problem) -> list[tuple[str, str]]:
    found = []
    for item in problem.issues:
        path = (item.get("expression") or [""])[0]
        reason = str(item.get("diagnostics", ""))
        found.append((path, reason.removeprefix(f"{path}: ") if path else reason))
    return found


def migration_diff(services: Services, reference: str, actor: audit.Actor, route: str) -> list[PatientDiff]:
    """Proposals that would change for patients enrolled on other versions; names patients, so audited."""
    with transaction(services.db) as connection:
        target = services.definitions.get(connection, reference)
        changes = diff(services, connection, target)
        entities = [f"Patient/{c.patient_id}" for c in changes] + [f"PlanDefinition/{target.id}"]
        audit.record(connection, actor, audit.READ, "search", entities, services.clock(), description=f"GET {route}")
    return changes


def simulate(services: Services, reference: str, bundle_text: str, moment: str, actor: audit.Actor) -> list[Proposal]:
    """What the pathway version would have proposed for the uploaded Bundle by `moment` (nothing is stored)."""
    with transaction(services.db) as connection:
        definition = services.definitions.get(connection, reference)
    try:
        bundle = parse_json(bundle_text)
        records = records_of_bundle(bundle, definition)
        now = parse_instant(moment)
    except Problem as error:
        raise Refused(400, f"The Bundle cannot be read: {error.message}") from None
    except DryRunError as error:
        raise Refused(400, str(error).replace("--now", "The date")) from None
    with transaction(services.db) as connection:
        patients = sorted({f"Patient/{r.patient_id}" for r in records})
        audit.record(connection, actor, audit.EXECUTE, "simulate", patients, services.clock())
    result = dry_run(definition, records, now, services.device.author)
    return [_proposal(e["resource"]) for e in result.get("entry", []) if _shown(e["resource"])]


def _shown(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") in ("Task", "ServiceRequest")


def _proposal(resource: dict[str, Any]) -> Proposal:
    tags = resource.get("meta", {}).get("tag", [])
    step = next((t.get("code", "") for t in tags if t.get("system") == PATHWAY_STEP_SYSTEM), "")
    code = resource.get("code", {})
    what = code.get("text") or next((c.get("display") or c.get("code") for c in code.get("coding", [])), "")
    explanation = resource.get("description") or " ".join(n.get("text", "") for n in resource.get("note", []))
    return Proposal(
        resource_type=resource["resourceType"],
        step=step,
        priority=str(resource.get("priority", "")),
        what=str(what),
        explanation=str(explanation),
        authored=str(resource.get("authoredOn", "")),
    )
