"""The dry run: one function behind `carepath simulate` and `PlanDefinition/$apply`.

It replays one patient's resources, in their given versions, in clinical-time order with the
checkpoints that fall due, up to `now`, and returns a `collection` Bundle of every Task,
ServiceRequest and Provenance the pathway would have written by then (a proposal it withdrew on the
way with its withdrawn status), and the evaluation trace: why each rule fired or did not at each
moment. Nothing is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pathways.definition import Definition, DefinitionError, default_definition, load_definition_file
from pathways.fhir import inbound, outbound
from pathways.model import ClinicalRecord, Evaluation
from pathways.simulate import simulate
from service.fhir.json_input import parse_json
from service.problems import Problem
from service.store.codec import checks_to_json
from service.usecases.intake import ACCEPTED_TYPES, check_readable, prepare


class DryRunError(ValueError):
    """Input a dry run cannot use: invalid FHIR, several patients, a bad date or definition."""


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; a date alone means 00:00 UTC; no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise DryRunError(f"--now must be an ISO 8601 date-time, not {text!r}") from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def records_of_bundle(bundle: Any, definition: Definition) -> list[ClinicalRecord]:
    """Validate a Bundle of one patient's resources and map them to records; a refused fact stops the run."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise DryRunError("input must be a FHIR Bundle (resourceType Bundle)")
    records: list[ClinicalRecord] = []
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") not in ACCEPTED_TYPES:
            continue  # other context resources carry no pathway facts
        if resource.get("resourceType") == "Patient" and "id" not in resource:
            continue  # a dry run resolves no fullUrls, so a Patient without an id names nobody in it
        try:
            path = f"Bundle.entry[{index}].resource."
            prepared = prepare(resource, None, path=path)
            check_readable(definition, prepared, path)
        except Problem as problem:
            raise DryRunError(_describe(problem)) from problem
        records += inbound.records_from_resource(prepared.resource, resource_id=prepared.resource_id)
    patients = {r.patient_id for r in records}
    if len(patients) > 1:
        raise DryRunError(f"the Bundle holds resources of {len(patients)} patients; a dry run takes one")
    return records


def _describe(problem: Problem) -> str:
    issues = problem.outcome()["issue"]
    return "; ".join(f"{', '.join(i.get('expression', []) or ['Bundle'])}: {i.get('diagnostics', '')}" for i in issues)


@dataclass(frozen=True, slots=True)
class DryRun:
    """What the pathway would have written, and the trace of every evaluation that led there."""

    bundle: dict[str, Any]
    trace: list[dict[str, Any]]
    """One item per evaluation, in time order, shaped as the stored trace (`carepath trace`)."""


def dry_run(
    definition: Definition, records: list[ClinicalRecord], now: datetime, author: Mapping[str, Any]
) -> dict[str, Any]:
    """The collection Bundle of everything the pathway would have written by `now`."""
    return traced_dry_run(definition, records, now, author).bundle


def traced_dry_run(
    definition: Definition, records: list[ClinicalRecord], now: datetime, author: Mapping[str, Any]
) -> DryRun:
    """The dry run's Bundle and its evaluation trace; `author` is the Reference its proposals name Carepath by."""
    if not records:
        return DryRun(outbound.collection_bundle([]), [])
    patient_id = records[0].patient_id
    evaluations = simulate(definition, records, now)
    rendered = {
        decision.key: outbound.render_decision(decision, patient_id, author)
        for evaluation in evaluations
        for decision in evaluation.decisions
    }
    # A proposal withdrawn during the run (an MRI replaced by a CT) is listed with its withdrawn status.
    for withdrawal in (w for evaluation in evaluations for w in evaluation.withdrawals):
        if withdrawal.decision_key in rendered:
            rendered[withdrawal.decision_key] = outbound.apply_withdrawal(rendered[withdrawal.decision_key], withdrawal)
    trace = [_traced(evaluation, definition.reference) for evaluation in evaluations]
    return DryRun(outbound.collection_bundle(rendered.values()), trace)


def _traced(evaluation: Evaluation, definition: str) -> dict[str, Any]:
    """One evaluation as `service.store.traces.evaluations_of` reads a stored one."""
    return {
        "evaluated_at": evaluation.at.isoformat(),
        "trigger": evaluation.trigger,
        "definition": definition,
        "checks": checks_to_json(evaluation.checks),
        "decisions": [d.key for d in evaluation.decisions],
        "next_checkpoint_at": evaluation.next_checkpoint_at.isoformat() if evaluation.next_checkpoint_at else None,
    }


def dry_run_from_text(text: str, now_text: str, definition_path: Path | None, author: Mapping[str, Any]) -> DryRun:
    """`carepath simulate`: parse everything, then run."""
    try:
        bundle = parse_json(text)
    except Problem as error:
        raise DryRunError(error.message) from error
    try:
        definition = load_definition_file(definition_path) if definition_path else default_definition()
    except DefinitionError as error:
        raise DryRunError(f"invalid definition: {error}") from error
    return traced_dry_run(definition, records_of_bundle(bundle, definition), parse_instant(now_text), author)
