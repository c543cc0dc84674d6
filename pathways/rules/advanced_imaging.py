"""Advanced imaging after a radiograph, and the Task that asks for a radiograph's conclusion (spec 2.0 5.1, 5.2, 5.4).

`advanced-imaging` proposes the region's MRI; a CT when an MRI contraindication is on record; the
definition's alternative (the shoulder ultrasound) when its diagnoses are on record. It fires at a
checkpoint when its row holds, or when a radiograph report read as one of `fires_on_report`
arrives after `imaging` fired. `imaging-conclusion` asks the coordinator to record the conclusion
of an unread radiograph.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pathways.definition.model import AdvancedImagingStep
from pathways.explain import listing, measure_evidence
from pathways.model import Evidence
from pathways.rules import context
from pathways.rules.imaging import ADVANCED, CT, MRI, studies
from pathways.rules.next_checkpoint import set_row_checkpoint
from pathways.rules.radiographs import (
    Radiograph,
    imaging_line,
    radiograph_words,
    recent_advanced_imaging,
    recent_radiographs,
)
from pathways.rules.run import ONCE, Run, decide, holding, reasons_of, verdict
from pathways.rules.snapshot import Snapshot
from pathways.state import DiagnosisEntry, Entry

CONCLUSION_STEP = "imaging-conclusion"
FACT_RULE = "advanced-imaging (fact)"


def _step(run: Run) -> AdvancedImagingStep:
    step = run.definition.advanced_imaging
    assert step is not None  # a row or fact_steps naming it needs it (checked when the definition loads)
    return step


def choose_study(run: Run, region: str) -> tuple[str, tuple[DiagnosisEntry | Entry, ...]]:
    """The study proposed and the facts that chose it: the alternative, else a CT when contraindicated, else the MRI."""
    step, state, now = _step(run), run.state, run.now
    alternative = step.instead_of_mri
    if alternative is not None and step.propose.template(alternative.item).variant(region) is not None:
        # Any verification status (settled reading 12); refuted and entered-in-error never count.
        wanted = context.diagnoses(state, alternative.when_diagnosis, now, triggering=False)
        excluded = context.diagnoses(state, alternative.unless_diagnosis, now, triggering=False)
        if wanted and not excluded:
            return alternative.item, wanted
    contraindicated = context.contraindications(state, now)
    return (CT, contraindicated) if contraindicated else (MRI, ())


def fire_advanced_imaging(run: Run, snap: Snapshot, radiograph: Radiograph | None) -> None:
    """Propose the chosen study of the region (the caller sets the next checkpoint); never a nerve study."""
    step = _step(run)
    study, basis = choose_study(run, snap.region)
    read = radiograph_words(run.definition, snap.region, radiograph) if radiograph else "none"
    words = {**snap.words, "studies": studies(run, snap, study, [study], step.propose), "radiograph": read}
    decide(
        run,
        ADVANCED,
        step.propose,
        words,
        evidence=(
            *measure_evidence(snap.views),
            Evidence("region", snap.region, reasons_of(snap.region_sources)),
            Evidence("radiograph", read, reasons_of(radiograph.entries if radiograph else ())),
            Evidence("study", study, reasons_of(basis)),
        ),
        reasons=reasons_of(snap.measure_sources(), radiograph.entries if radiograph else (), basis),
        variants={study: snap.region},
        only=[study],
    )


def evaluate_advanced_imaging_fact(run: Run, snap: Snapshot) -> None:
    """Spec 2.0 5.2: a report read as one of `fires_on_report`, recorded at or after `imaging` fired."""
    step, state = _step(run), run.state
    if imaging_line(run.definition, snap.region) is None:
        run.check(FACT_RULE, False, f"the {snap.region} is not imaged radiographs first")
        return
    imaged = state.first_fired("imaging")
    reports = _reports_since(run, snap.region, imaged.at if imaged else None, step.fires_on_report)
    advanced = recent_advanced_imaging(run, snap.region)
    holds, reason = verdict(
        (state.has_fired(ADVANCED), ONCE),
        (imaged is None, "imaging has not fired"),
        (not reports, _no_report(run, step.fires_on_report)),
        (bool(advanced), f"recent {snap.region} advanced imaging is on record"),
        (state.responded, "the patient responded at the latest checkpoint"),
        holds=f"a {snap.region} radiograph report was recorded after imaging: "
        + listing([radiograph_words(run.definition, snap.region, r) for r in reports]),
    )
    found = tuple(e.source.reference for r in reports for e in r.entries)
    if not holds or holding(run, FACT_RULE, step.propose.priority):
        if not holds:
            run.check(FACT_RULE, False, reason, reports=found)
        return
    run.check(FACT_RULE, True, reason, reports=found)
    fire_advanced_imaging(run, snap, reports[-1])
    set_row_checkpoint(run, ADVANCED)


def _reports_since(run: Run, region: str, since: datetime | None, conclusions: Sequence[str]) -> list[Radiograph]:
    """Recent radiograph reports of the region dated at or after `since`, read as one of `conclusions`."""
    if since is None:
        return []
    found = recent_radiographs(run, region)
    return [r for r in found if r.is_report and r.at >= since and r.conclusion in conclusions]


def _no_report(run: Run, conclusions: Sequence[str]) -> str:
    regional = run.definition.imaging.regional
    labels = [regional.label(c) if regional else c for c in conclusions]
    return f"no radiograph report read as {listing(labels, 'or')} recorded since imaging"


def fire_imaging_conclusion(run: Run, snap: Snapshot, radiograph: Radiograph | None) -> None:
    """The coordinator's Task: record the conclusion of the unread radiograph (the row sets the next checkpoint)."""
    step = run.definition.imaging_conclusion
    assert step is not None
    read = radiograph_words(run.definition, snap.region, radiograph) if radiograph else "none"
    entries = radiograph.entries if radiograph else ()
    decide(
        run,
        CONCLUSION_STEP,
        step.propose,
        {**snap.words, "radiograph": read},
        evidence=(*measure_evidence(snap.views), Evidence("radiograph", read, reasons_of(entries))),
        reasons=reasons_of(snap.measure_sources(), entries),
    )
