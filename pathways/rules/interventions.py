"""Injection, medication and surgical consult: fired at a checkpoint or when a diagnosis arrives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pathways.definition.model import DiagnosisStep, Proposing
from pathways.explain import day, imaging_evidence, listing, measure_evidence
from pathways.model import Evidence, Priority
from pathways.rules import context
from pathways.rules.run import Run, decide, reasons_of
from pathways.rules.snapshot import Snapshot
from pathways.rules.structural import young_traumatic
from pathways.state import DiagnosisEntry, Entry


def diagnosis_words(run: Run, found: Sequence[DiagnosisEntry], groups: Sequence[str]) -> str:
    """e.g. "confirmed radicular diagnosis (2024-03-01)"."""
    labels = [run.definition.diagnosis_group(g).label for d in found for g in d.groups if g in groups]
    dates = listing([day(d.at) for d in found])
    return f"Confirmed {listing(labels)} ({dates})"


def _evidence(found: Sequence[DiagnosisEntry]) -> tuple[Evidence, ...]:
    groups = tuple(sorted({g for d in found for g in d.groups}))
    return (Evidence("diagnosis_groups", groups, tuple(d.source for d in found)),)


def fire_injection(
    run: Run, snap: Snapshot, found: Sequence[DiagnosisEntry], imaging: Sequence[Entry | DiagnosisEntry] = ()
) -> None:
    """Propose the epidural injection and a modified PT programme (the row that fired it sets the next checkpoint).

    `imaging`: the imaging done since t0 that an injection needs (spec 1.1), also among its reasons.
    """
    step = run.definition.injection
    only = step.items_for(_groups_on_record(run, step, found))
    _decide_on_diagnoses(
        run, snap, found, "injection", step.propose, step.diagnosis_groups, variant="injection", also=imaging, only=only
    )


def fire_medication(run: Run, snap: Snapshot, found: Sequence[DiagnosisEntry]) -> None:
    """Propose a medication review (1.x: for neuropathic pain; 2.0: worded for the first group on record)."""
    step = run.definition.medication
    only = step.items_for(_groups_on_record(run, step, found))
    _decide_on_diagnoses(run, snap, found, "medication", step.propose, step.diagnosis_groups, only=only)


def _groups_on_record(run: Run, step: DiagnosisStep, found: Sequence[DiagnosisEntry]) -> tuple[str, ...]:
    """The step's groups with a confirmed diagnosis on record (spec 5.5: one proposal per such group)."""
    on_record = (*found, *context.diagnoses(run.state, step.diagnosis_groups, run.now))
    return tuple(g for d in on_record for g in d.groups if g in step.diagnosis_groups)


def surgical_priority(run: Run, found: Sequence[DiagnosisEntry]) -> Priority:
    """Urgent for a fracture (spec, surgical-consult (b)) or a young traumatic cuff tear (2.0, 5.7); else routine."""
    step = run.definition.surgical_consult
    urgent = any(set(d.groups) & set(step.urgent_groups) or young_traumatic(run, d) for d in found)
    return step.urgent_priority if urgent else step.propose.priority


def fire_surgical_consult(
    run: Run,
    snap: Snapshot,
    found: Sequence[DiagnosisEntry],
    priority: Priority,
    context_words: str,
    also: Sequence[Entry | DiagnosisEntry] = (),
) -> None:
    """Referral to the orthopaedic surgeon (neurosurgeon when cervical) and a coordinator Task.

    `also`: further facts it rests on (2.0: the degenerative radiograph that makes an OA structural).
    """
    step = run.definition.surgical_consult
    template = step.propose.template("referral")
    variant = template.variant(snap.region)
    groups = (*run.definition.structural_groups, *step.fact_groups)
    words = {"specialty": variant.label if variant else "", "context": context_words}
    _decide_on_diagnoses(
        run,
        snap,
        found,
        "surgical-consult",
        step.propose,
        groups,
        words,
        variant="referral",
        priority=priority,
        also=also,
    )


def _decide_on_diagnoses(
    run: Run,
    snap: Snapshot,
    found: Sequence[DiagnosisEntry],
    step: str,
    propose: Proposing,
    groups: Sequence[str],
    words: Mapping[str, str] | None = None,
    *,
    variant: str | None = None,
    priority: Priority | None = None,
    also: Sequence[Entry | DiagnosisEntry] = (),
    only: Sequence[str] | None = None,
) -> None:
    """Decide a step that confirmed diagnoses (`found`, named by their `groups`) led to.

    A step whose proposal varies by region names the varying template as `variant`; the region
    then joins the evidence and the reasons. `also`: further facts it rests on, among its reasons.
    """
    # The numbers and the imaging the wording names go to the Provenance too, as at the checkpoints.
    evidence = (*_evidence(found), *measure_evidence(snap.views), *imaging_evidence(run.definition, snap.imaging))
    reasons = reasons_of(found)
    variants = None
    if variant is not None:
        evidence += (Evidence("region", snap.region, tuple(d.source for d in snap.region_sources)),)
        reasons = reasons_of(found, snap.region_sources)
        variants = {variant: snap.region}
    reasons += reasons_of(also)
    all_words = {**snap.words, "diagnoses": diagnosis_words(run, found, groups), **(words or {})}
    decide(
        run,
        step,
        propose,
        all_words,
        evidence=evidence,
        reasons=reasons,
        variants=variants,
        priority=priority,
        only=only,
    )
