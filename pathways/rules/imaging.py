"""The imaging step: MRI (CT when MRI is contraindicated) of the region, NCS with neurological findings.

Version 1.1 adds `imaging` (CT instead): an MRI contraindication recorded after the MRI was proposed
proposes the CT of the region as imaging's second decision and withdraws the MRI proposal alone.
Version 2.0 images a region with radiographs of its own radiographs first (no nerve conduction
study), and its `advanced-imaging` MRI is replaced by a CT by the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from pathways.definition.model import CtInstead, EpisodeLine, Proposing
from pathways.definition.steps import RADIOGRAPHS
from pathways.explain import day, listing, measure_evidence
from pathways.model import Evidence, Withdrawal
from pathways.rules import context
from pathways.rules.interventions import diagnosis_words
from pathways.rules.radiographs import imaging_eligible, imaging_line, recent_advanced_imaging, regional
from pathways.rules.run import Run, build_proposals, decide, fill, holding, reasons_of, verdict
from pathways.rules.snapshot import Snapshot
from pathways.state import DiagnosisEntry, Entry, Fired

STEP = "imaging"
ADVANCED = "advanced-imaging"
MRI, CT, NCS = "mri", "ct", "ncs"


def _lower_first(text: str) -> str:
    """`Nerve conduction study` → `nerve …` inside a sentence; acronyms such as `CT` stay."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def studies(run: Run, snap: Snapshot, study: str, items: Sequence[str], propose: Proposing | None = None) -> str:
    """The studies as one phrase, e.g. "MRI of the lumbar spine without contrast and nerve conduction study"."""
    step = propose or run.definition.imaging.propose
    proposals = build_proposals(step, snap.words, variants={study: snap.region}, only=items)
    texts = [p.text.rstrip(".") for p in proposals]
    return listing([texts[0], *map(_lower_first, texts[1:])])


def fire_imaging(run: Run, snap: Snapshot, diagnoses: Sequence[DiagnosisEntry] = ()) -> None:
    """Propose the studies (the row, or the diagnosis that fired imaging first, sets the next checkpoint).

    `diagnoses` are the diagnoses that fired it on a fact (spec 1.1, image before an injection).
    A region imaged radiographs first gets its radiographs (spec 2.0 5.4).
    """
    line = imaging_line(run.definition, snap.region)
    if line is not None:
        _fire_radiographs(run, snap, line, diagnoses)
        return
    definition, state, now = run.definition, run.state, run.now
    contraindicated = context.contraindications(state, now)
    neuro = context.neurological(definition, state, now)
    study = CT if contraindicated else MRI
    items = [study, NCS] if neuro else [study]
    words = {**snap.words, "studies": studies(run, snap, study, items)}
    decide(
        run,
        STEP,
        definition.imaging.propose,
        words,
        evidence=(
            *measure_evidence(snap.views),
            Evidence("region", snap.region, reasons_of(snap.region_sources)),
            Evidence("mri_contraindicated", bool(contraindicated), reasons_of(contraindicated)),
            Evidence("neurological_findings", bool(neuro), reasons_of(neuro)),
        ),
        reasons=reasons_of(snap.measure_sources(), contraindicated, neuro, diagnoses),
        variants={study: snap.region},
        only=items,
    )


def _fire_radiographs(run: Run, snap: Snapshot, line: EpisodeLine, diagnoses: Sequence[DiagnosisEntry]) -> None:
    """Spec 2.0 5.4 (ACR: radiographs first): the region's radiographs, never a nerve conduction study."""
    eligible = imaging_eligible(run, snap.region)
    why = eligible.reason
    if diagnoses:  # image before an injection: the diagnosis, not eligibility, fired it
        groups = run.definition.injection.diagnosis_groups
        why = f"{diagnosis_words(run, diagnoses, groups)} on record, to be imaged before an injection"
    propose = replace(run.definition.imaging.propose, explanation=regional(run.definition).explanation)
    words = {**snap.words, "studies": studies(run, snap, RADIOGRAPHS, [RADIOGRAPHS]), "eligibility": why}
    decide(
        run,
        STEP,
        propose,
        words,
        evidence=(
            *measure_evidence(snap.views),
            Evidence("region", snap.region, reasons_of(snap.region_sources)),
            Evidence("imaging_eligible", why, reasons_of(eligible.facts, diagnoses)),
            Evidence("recent_region_imaging", False),
        ),
        reasons=reasons_of(snap.measure_sources(), eligible.facts, diagnoses),
        variants={RADIOGRAPHS: snap.region},
        only=[RADIOGRAPHS],
    )


@dataclass(frozen=True, slots=True)
class _MriStep:
    """A step whose MRI a contraindication recorded after the proposal turns into a CT."""

    step: str
    propose: Proposing
    rule: CtInstead
    imaged: Callable[[Run, Fired], Sequence[Entry]]
    """Imaging that makes the CT needless."""
    imaged_reason: str
    holds_reason: str


def _mri_steps(run: Run, snap: Snapshot) -> list[_MriStep]:
    """1.1's `imaging` (imaging since t0 makes the CT needless) and 2.0's `advanced-imaging` (advanced
    imaging of the region since the MRI proposal)."""
    found = []
    imaging = run.definition.imaging
    if imaging.ct_instead is not None:
        found.append(
            _MriStep(
                STEP,
                imaging.propose,
                imaging.ct_instead,
                lambda r, _: context.imaging_since_t0(r.state, r.now),
                "imaging is recorded since t0",
                "an MRI contraindication is on record after the MRI proposal, and no imaging since t0",
            )
        )
    advanced = run.definition.advanced_imaging
    if advanced is not None and advanced.ct_instead is not None:
        found.append(
            _MriStep(
                ADVANCED,
                advanced.propose,
                advanced.ct_instead,
                lambda r, mri: recent_advanced_imaging(r, snap.region, since=mri.at),
                f"{snap.region} advanced imaging is recorded since the MRI proposal",
                f"an MRI contraindication is on record after the MRI proposal, and no {snap.region} advanced "
                "imaging since",
            )
        )
    return found


def evaluate_ct_instead(run: Run, snap: Snapshot) -> None:
    """CT instead of a proposed MRI once a contraindication is on record, once per episode (spec 1.1; 2.0 5.2)."""
    for target in _mri_steps(run, snap):
        _ct_instead(run, snap, target)


def _ct_instead(run: Run, snap: Snapshot, target: _MriStep) -> None:
    state, now = run.state, run.now
    rule_name = f"{target.step} (CT instead)"
    decisions = state.fired_of(target.step)
    mri = next((f for f in decisions if MRI in f.items and not f.withdrawn), None)
    contraindicated = context.contraindications(state, now)
    holds, reason = verdict(
        (len(decisions) > 1, "a CT already replaced the MRI (once per episode)"),
        (mri is None, f"{target.step} has not proposed an MRI"),
        (not contraindicated, "no MRI contraindication on record"),
        (mri is not None and bool(target.imaged(run, mri)), target.imaged_reason),
        (state.responded, "the patient responded at the latest checkpoint"),
        holds=target.holds_reason,
    )
    found = tuple(c.source.reference for c in contraindicated)
    if not holds or holding(run, rule_name, target.propose.priority):
        if not holds:
            run.check(rule_name, False, reason, contraindications=found)
        return
    assert mri is not None
    run.check(rule_name, True, reason, contraindications=found, replaces=mri.key)
    _replace_mri(run, snap, target, mri, contraindicated)


def _replace_mri(run: Run, snap: Snapshot, target: _MriStep, mri: Fired, contraindicated: Sequence[Entry]) -> None:
    """Propose the CT as the step's next decision and withdraw the MRI item (with its approve Task) alone."""
    rule = target.rule
    recorded_on = listing(list(dict.fromkeys(day(c.at) for c in contraindicated)))
    ct = studies(run, snap, CT, [CT], target.propose)
    words = {**snap.words, "contraindicated_on": recorded_on, "studies": ct}
    decide(
        run,
        target.step,
        replace(target.propose, explanation=rule.explanation),
        words,
        evidence=(
            Evidence("region", snap.region, reasons_of(snap.region_sources)),
            Evidence("mri_contraindicated", True, reasons_of(contraindicated)),
            Evidence("replaces", mri.key),
        ),
        reasons=reasons_of(contraindicated, snap.region_sources),
        variants={CT: snap.region},
        only=[CT],
    )
    run.withdrawals.append(Withdrawal(mri.key, fill(rule.withdrawal_reason, words), items=(MRI,)))
    run.check("withdraw", True, "the MRI proposal is replaced by a CT", decision=mri.key, items=(MRI,))
