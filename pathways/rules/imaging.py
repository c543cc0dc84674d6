"""The imaging step: MRI (CT when MRI is contraindicated) of the region, NCS with neurological findings.

Version 1.1 adds `imaging` (CT instead): an MRI contraindication recorded after the MRI was proposed
proposes the CT of the region as imaging's second decision and withdraws the MRI proposal alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pathways.definition.model import CtInstead
from pathways.explain import day, listing, measure_evidence
from pathways.model import Evidence, Withdrawal
from pathways.rules import context
from pathways.rules.run import Run, build_proposals, decide, fill, holding, reasons_of, verdict
from pathways.rules.snapshot import Snapshot
from pathways.state import DiagnosisEntry, Entry, Fired

STEP = "imaging"
MRI, CT, NCS = "mri", "ct", "ncs"
CT_INSTEAD_RULE = "imaging (CT instead)"


def _lower_first(text: str) -> str:
    """`Nerve conduction study` → `nerve …` inside a sentence; acronyms such as `CT` stay."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def _studies(run: Run, snap: Snapshot, study: str, items: Sequence[str]) -> str:
    """The studies as one phrase, e.g. "MRI of the lumbar spine without contrast and nerve conduction study"."""
    proposals = build_proposals(run.definition.imaging.propose, snap.words, variants={study: snap.region}, only=items)
    texts = [p.text.rstrip(".") for p in proposals]
    return listing([texts[0], *map(_lower_first, texts[1:])])


def fire_imaging(run: Run, snap: Snapshot, diagnoses: Sequence[DiagnosisEntry] = ()) -> None:
    """Propose the studies (the row, or the diagnosis that fired imaging first, sets the next checkpoint).

    `diagnoses` are the diagnoses that fired it on a fact (spec 1.1, image before an injection).
    """
    definition, state, now = run.definition, run.state, run.now
    contraindicated = context.contraindications(state, now)
    neuro = context.neurological(definition, state, now)
    study = CT if contraindicated else MRI
    items = [study, NCS] if neuro else [study]
    words = {**snap.words, "studies": _studies(run, snap, study, items)}
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


def evaluate_ct_instead(run: Run, snap: Snapshot) -> None:
    """CT instead of a proposed MRI once a contraindication is on record, once per episode (spec 1.1)."""
    rule = run.definition.imaging.ct_instead
    if rule is None:
        return
    state, now = run.state, run.now
    decisions = state.fired_of(STEP)
    mri = next((f for f in decisions if MRI in f.items and not f.withdrawn), None)
    contraindicated = context.contraindications(state, now)
    holds, reason = verdict(
        (len(decisions) > 1, "a CT already replaced the MRI (once per episode)"),
        (mri is None, "imaging has not proposed an MRI"),
        (not contraindicated, "no MRI contraindication on record"),
        (bool(context.imaging_since_t0(state, now)), "imaging is recorded since t0"),
        (state.responded, "the patient responded at the latest checkpoint"),
        holds="an MRI contraindication is on record after the MRI proposal, and no imaging since t0",
    )
    found = tuple(c.source.reference for c in contraindicated)
    if not holds or holding(run, CT_INSTEAD_RULE, run.definition.imaging.propose.priority):
        if not holds:
            run.check(CT_INSTEAD_RULE, False, reason, contraindications=found)
        return
    assert mri is not None
    run.check(CT_INSTEAD_RULE, True, reason, contraindications=found, replaces=mri.key)
    _replace_mri(run, snap, rule, mri, contraindicated)


def _replace_mri(run: Run, snap: Snapshot, rule: CtInstead, mri: Fired, contraindicated: Sequence[Entry]) -> None:
    """Propose the CT as imaging's next decision and withdraw the MRI item (with its approve Task) alone."""
    recorded_on = listing(list(dict.fromkeys(day(c.at) for c in contraindicated)))
    words = {**snap.words, "contraindicated_on": recorded_on, "studies": _studies(run, snap, CT, [CT])}
    decide(
        run,
        STEP,
        replace(run.definition.imaging.propose, explanation=rule.explanation),
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
