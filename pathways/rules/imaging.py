"""The imaging step: MRI (CT when MRI is contraindicated) of the region, NCS with neurological findings."""

from __future__ import annotations

from pathways.explain import listing, measure_evidence
from pathways.model import Evidence
from pathways.rules import context
from pathways.rules.run import Run, build_proposals, decide, reasons_of
from pathways.rules.snapshot import Snapshot


def _lower_first(text: str) -> str:
    """`Nerve conduction study` → `nerve …` inside a sentence; acronyms such as `CT` stay."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def fire_imaging(run: Run, snap: Snapshot) -> None:
    """Propose the studies (the checkpoint row sets the next checkpoint)."""
    definition, state, now = run.definition, run.state, run.now
    step = definition.imaging
    contraindicated = context.contraindications(state, now)
    neuro = context.neurological(definition, state, now)
    study = "ct" if contraindicated else "mri"
    items = [study, "ncs"] if neuro else [study]
    proposals = build_proposals(step.propose, snap.words, variants={study: snap.region}, only=items)
    texts = [p.text.rstrip(".") for p in proposals]
    words = {**snap.words, "studies": listing([texts[0], *map(_lower_first, texts[1:])])}
    decide(
        run,
        "imaging",
        step.propose,
        words,
        evidence=(
            *measure_evidence(snap.views),
            Evidence("region", snap.region, reasons_of(snap.region_sources)),
            Evidence("mri_contraindicated", bool(contraindicated), reasons_of(contraindicated)),
            Evidence("neurological_findings", bool(neuro), reasons_of(neuro)),
        ),
        reasons=reasons_of(snap.measure_sources(), contraindicated, neuro),
        variants={study: snap.region},
        only=items,
    )
