"""The pathway page: versions, upload with inline errors, publish and retire, diff, and the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
from service.ui import diagram, pathway_regions
from service.ui.session import Refused
from service.usecases.definitions import versions
from service.usecases.definitions.migration import PatientDiff, diff
from service.usecases.definitions.registry import issue_line
from service.usecases.dry_run import DryRunError, dry_run, parse_instant, records_of_bundle


@dataclass(frozen=True)
class Overview:
    versions: list[DefinitionVersion]
    shown: DefinitionVersion
    definition: Definition
    diagram: Markup | None
    """The steps drawn as one flow (1.x); None for a definition with episode lines, shown per region instead."""
    regions: list[pathway_regions.RegionSection] = field(default_factory=list)
    red_flags: pathway_regions.RedFlagsSection | None = None


EXCERPT_CONTEXT = 2  # lines shown around each line with a problem


@dataclass(frozen=True)
class Located:
    """One problem of an upload: the line of the text it stands on (when known), its exact path and why."""

    line: int | None
    path: str
    reason: str


@dataclass(frozen=True)
class UploadResult:
    """An upload: the stored version, or every problem with its line and exact path."""

    version: DefinitionVersion | None = None
    message: str | None = None
    errors: list[Located] = field(default_factory=list)

    @property
    def lines_with_problems(self) -> frozenset[int]:
        return frozenset(e.line for e in self.errors if e.line is not None)

    def excerpt(self, source: str) -> list[SourceLine]:
        """The lines with problems and two lines around each, numbered as in the text sent."""
        return numbered(source, self.lines_with_problems, context=EXCERPT_CONTEXT)


@dataclass(frozen=True)
class Simulation:
    """The simulate form as sent (kept when it is refused), and its proposals or the reason it was refused."""

    reference: str
    date: str
    bundle: str
    proposals: list[Proposal] = field(default_factory=list)
    error: str | None = None


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
    if definition.regions.episode_lines is not None:
        regions, red_flags = pathway_regions.regions(definition), pathway_regions.red_flags(definition)
        return Overview(versions, shown, definition, None, regions, red_flags)
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


def _paths(problem: Problem) -> list[Located]:
    found = []
    for item in problem.issues:
        path = (item.get("expression") or [""])[0]
        line = issue_line(item)
        reason = str(item.get("diagnostics", "")).removeprefix(f"line {line}: ")
        found.append(Located(line, path, reason.removeprefix(f"{path}: ") if path else reason))
    return found


@dataclass(frozen=True)
class SourceLine:
    number: int
    text: str
    marked: bool = False
    after_gap: bool = False  # lines before it are left out


def numbered(text: str, marked: frozenset[int] = frozenset(), context: int | None = None) -> list[SourceLine]:
    """The text's lines with their numbers; with `context`, only the marked lines and that many around each."""
    lines = text.splitlines()
    kept: list[int]
    if context is None:
        kept = list(range(1, len(lines) + 1))
    else:
        kept = sorted({n for m in marked for n in range(m - context, m + context + 1) if 1 <= n <= len(lines)})
    found, previous = [], 0
    for number in kept:
        found.append(SourceLine(number, lines[number - 1], number in marked, after_gap=number != previous + 1))
        previous = number
    return found


def source(services: Services, reference: str) -> tuple[DefinitionVersion, str]:
    """A version and its YAML as uploaded (or as shipped); 404 when there is no such version."""
    with transaction(services.db) as connection:
        shown = next((v for v in services.definitions.versions(connection) if v.reference == reference), None)
        if shown is None:
            raise Refused(404, f"There is no pathway version {reference}.")
        return shown, services.definitions.source(connection, reference)


def file_name(version: DefinitionVersion) -> str:
    """`pt-nonresponse-1.1.0.yaml`: a version's download, named as the shipped files are."""
    safe = "".join(c if c.isalnum() or c in "-._" else "-" for c in f"{version.pathway_id}-{version.version}")
    return f"{safe}.yaml"


def migration_diff(services: Services, reference: str, actor: audit.Actor, route: str) -> list[PatientDiff]:
    """Proposals that would change for patients enrolled on other versions; names patients, so audited."""
    with transaction(services.db) as connection:
        target = services.definitions.get(connection, reference)
        changes = diff(services, connection, target)
        entities = [f"Patient/{c.patient_id}" for c in changes] + [f"PlanDefinition/{target.id}"]
        audit.record(connection, actor, audit.READ, "search", entities, services.clock(), description=f"GET {route}")
    return changes


def simulate(services: Services, reference: str, bundle_text: str, moment: str, actor: audit.Actor) -> Simulation:
    """What the pathway version would have proposed for the Bundle by `moment` (nothing is stored).

    A Bundle or date that cannot be used comes back as the form's error, with what was sent kept.
    """
    sent = Simulation(reference, moment, bundle_text)
    if not bundle_text.strip():
        return replace(sent, error="Choose a Bundle file or paste the Bundle's JSON.")
    with transaction(services.db) as connection:
        definition = services.definitions.get(connection, reference)
    try:
        bundle = parse_json(bundle_text)
        records = records_of_bundle(bundle, definition)
        now = parse_instant(moment)
    except Problem as error:
        return replace(sent, error=f"The Bundle cannot be read: {error.message}")
    except DryRunError as error:
        return replace(sent, error=str(error).replace("--now", "The date"))
    with transaction(services.db) as connection:
        patients = sorted({f"Patient/{r.patient_id}" for r in records})
        audit.record(connection, actor, audit.EXECUTE, "simulate", patients, services.clock())
    result = dry_run(definition, records, now, services.device.author)
    return replace(sent, proposals=[_proposal(e["resource"]) for e in result.get("entry", []) if _shown(e["resource"])])


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
