"""Injection, medication and surgical consult: fired at a checkpoint or when a diagnosis arrives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pathways.definition.model import Proposing
from pathways.explain import day, imaging_evidence, listing, measure_evidence
from pathways.model import Evidence, Priority
from pathways.rules.run import Run, decide, reasons_of
from pathways.rules.snapshot import Snapshot
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
    _decide_on_diagnoses(
        run, snap, found, "injection", step.propose, step.diagnosis_groups, variant="injection", also=imaging
    )


def fire_medication(run: Run, snap: Snapshot, found: Sequence[DiagnosisEntry]) -> None:
    """Propose a medication review for neuropathic pain (the caller sets any checkpoint)."""
    step = run.definition.medication
    _decide_on_diagnoses(run, snap, found, "medication", step.propose, step.diagnosis_groups)


def surgical_priority(run: Run, found: Sequence[DiagnosisEntry]) -> Priority:
    """Urgent for a fracture (spec, surgical-consult (b)), routine otherwise."""
    step = run.definition.surgical_consult
    urgent = any(set(d.groups) & set(step.urgent_groups) for d in found)
    return step.urgent_priority if urgent else step.propose.priority


def fire_surgical_consult(
    run: Run, snap: Snapshot, found: Sequence[DiagnosisEntry], priority: Priority, context_words: str
) -> None:
    """Referral to the orthopaedic surgeon (neurosurgeon when cervical) and a coordinator Task."""
    step = run.definition.surgical_consult
    template = step.propose.template("referral")
    variant = template.variant(snap.region)
    groups = (*run.definition.structural_groups, *step.fact_groups)
    words = {"specialty": variant.label if variant else "", "context": context_words}
    _decide_on_diagnoses(
        run, snap, found, "surgical-consult", step.propose, groups, words, variant="referral", priority=priority
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
    decide(run, step, propose, all_words, evidence=evidence, reasons=reasons, variants=variants, priority=priority)
