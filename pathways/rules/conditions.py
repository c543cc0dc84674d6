"""Evaluating a checkpoint row's condition: each predicate answers with what it saw.

A result's `reason` always describes the patient as found ("adherent: adherence 92 % (≥ 80 %)",
"no confirmed qualifying diagnosis on record"), so `not` keeps its operand's reason and a row
that does not hold is explained by the first part that failed. Predicates are documented, with
an example each, in docs/definition-format.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pathways.definition.model import All, Condition, Not, Predicate
from pathways.explain import listing
from pathways.rules import context
from pathways.rules.radiographs import (
    imaging_eligible,
    latest_radiograph,
    radiograph_words,
    recent_advanced_imaging,
    recent_radiographs,
)
from pathways.rules.run import Run
from pathways.rules.snapshot import Snapshot
from pathways.rules.structural import surgical_candidates
from pathways.state import Checkpoint, DiagnosisEntry, Entry


@dataclass(frozen=True, slots=True)
class Moment:
    """What a condition is evaluated against: the run, its snapshot and the checkpoint being evaluated."""

    run: Run
    snap: Snapshot
    due: Checkpoint
    fired_before: int
    """How many decisions the run had made when the checkpoint began (for `fired_at_this_checkpoint`)."""


@dataclass(frozen=True, slots=True)
class Result:
    """Whether a condition holds, why, and the diagnoses and facts it rests on."""

    holds: bool
    reason: str
    diagnoses: tuple[DiagnosisEntry, ...] = ()
    facts: tuple[Entry | DiagnosisEntry, ...] = ()


def evaluate(condition: Condition, moment: Moment) -> Result:
    """The condition's result at the moment; `all` and `any` stop at the first part that decides."""
    if isinstance(condition, Predicate):
        return _PREDICATES[condition.name](moment, condition.argument)
    if isinstance(condition, Not):
        inner = evaluate(condition.condition, moment)
        return Result(not inner.holds, inner.reason)
    wanted = isinstance(condition, All)  # all: stops at the first false part; any: at the first true one
    results: list[Result] = []
    for part in condition.conditions:
        result = evaluate(part, moment)
        results.append(result)
        if result.holds is not wanted:
            return result
    return Result(
        wanted,
        " and ".join(r.reason for r in results),
        tuple(d for r in results for d in r.diagnoses),
        tuple(f for r in results for f in r.facts),
    )


def _evaluable(moment: Moment, _: tuple[str, ...]) -> Result:
    evaluable = [v.measure.label for v in moment.snap.views if v.evaluable]
    if evaluable:
        return Result(True, f"{listing(evaluable)} evaluable")
    days = moment.run.definition.episode.evaluable_after_days
    return Result(False, f"no measure has a latest value {days} days after its baseline")


def _adherent(moment: Moment, _: tuple[str, ...]) -> Result:
    words = moment.snap.words["adherence"]
    if moment.snap.adherence.adherent:
        return Result(True, f"adherent: {words}")
    return Result(False, f"not adherent: {words}")


def _responded(moment: Moment, _: tuple[str, ...]) -> Result:
    if moment.run.state.responded:
        return Result(True, "responded at the latest checkpoint")
    return Result(False, "not responded at the latest checkpoint")


def _neurological(moment: Moment, _: tuple[str, ...]) -> Result:
    found = context.neurological(moment.run.definition, moment.run.state, moment.run.now)
    return (
        Result(True, "neurological findings on record", facts=found)
        if found
        else Result(False, "no neurological findings on record")
    )


def _imaging_since_t0(moment: Moment, _: tuple[str, ...]) -> Result:
    done = context.imaging_since_t0(moment.run.state, moment.run.now)
    return Result(True, "imaging is recorded since t0", facts=done) if done else Result(False, "no imaging since t0")


def _mri_contraindicated(moment: Moment, _: tuple[str, ...]) -> Result:
    found = context.contraindications(moment.run.state, moment.run.now)
    if found:
        return Result(True, "an MRI contraindication is on record", facts=found)
    return Result(False, "no MRI contraindication on record")


def _fired(moment: Moment, step: tuple[str, ...]) -> Result:
    (step_id,) = step
    if moment.run.state.has_fired(step_id):
        return Result(True, f"{step_id} has fired")
    return Result(False, f"{step_id} has not fired")


def _fired_at_this_checkpoint(moment: Moment, step: tuple[str, ...]) -> Result:
    (step_id,) = step
    if any(d.step == step_id for d in moment.run.decisions[moment.fired_before :]):
        return Result(True, f"{step_id} fired at this checkpoint")
    return Result(False, f"{step_id} did not fire at this checkpoint")


def _checkpoint_set_by(moment: Moment, step: tuple[str, ...]) -> Result:
    (step_id,) = step
    set_by = moment.due.set_by
    if set_by == step_id:
        return Result(True, f"this checkpoint was set by {step_id}")
    return Result(False, f"this checkpoint was set by {set_by}, not by {step_id}")


def _diagnosis(moment: Moment, groups: tuple[str, ...]) -> Result:
    found = context.diagnoses(moment.run.state, groups, moment.run.now)
    if not found:
        return Result(False, "no confirmed qualifying diagnosis on record")
    definition = moment.run.definition
    labels = dict.fromkeys(definition.diagnosis_group(g).label for d in found for g in d.groups if g in groups)
    return Result(True, f"a confirmed {listing(list(labels))} diagnosis is on record", found, found)


def _finding(moment: Moment, names: tuple[str, ...]) -> Result:
    run = moment.run
    labels = listing([run.definition.finding(n).label for n in names], "or")
    found = context.findings(run.definition, run.state, names, run.now)
    if found:
        return Result(True, f"{listing([run.definition.finding(f.name).label for f in found])} on record", facts=found)
    return Result(False, f"no {labels} on record")


def _region(moment: Moment, region: tuple[str, ...]) -> Result:
    (wanted,) = region
    found = moment.snap.region
    if found == wanted:
        return Result(True, f"the region is {wanted}", facts=moment.snap.region_sources)
    return Result(False, f"the region is {found}, not {wanted}")


def _surgical_candidate(moment: Moment, _: tuple[str, ...]) -> Result:
    """2.0: a confirmed structural diagnosis whose qualifier (radiograph, finding, injection) holds."""
    found, facts = surgical_candidates(moment.run)
    if not found:
        return Result(False, "no confirmed structural diagnosis whose conditions hold")
    definition = moment.run.definition
    structural = definition.structural_groups
    labels = dict.fromkeys(definition.diagnosis_group(g).label for d in found for g in d.groups if g in structural)
    return Result(True, f"a confirmed {listing(list(labels))} diagnosis counts as structural", found, (*found, *facts))


def _imaging_eligible(moment: Moment, _: tuple[str, ...]) -> Result:
    found = imaging_eligible(moment.run, moment.snap.region)
    return Result(found.holds, found.reason, facts=found.facts)


def _recent_radiograph(moment: Moment, _: tuple[str, ...]) -> Result:
    run, region = moment.run, moment.snap.region
    found = recent_radiographs(run, region)
    if not found:
        return Result(False, f"no recent {region} radiograph")
    words = listing([radiograph_words(run.definition, region, r) for r in found])
    return Result(True, f"recent {region} radiograph: {words}", facts=tuple(e for r in found for e in r.entries))


def _recent_advanced_imaging(moment: Moment, _: tuple[str, ...]) -> Result:
    region = moment.snap.region
    found = recent_advanced_imaging(moment.run, region)
    if found:
        return Result(True, f"recent {region} advanced imaging is on record", facts=found)
    return Result(False, f"no recent {region} advanced imaging")


def _latest_radiograph(moment: Moment, conclusions: tuple[str, ...]) -> Result:
    run, region = moment.run, moment.snap.region
    latest = latest_radiograph(run, region)
    if latest is None:
        return Result(False, f"no recent {region} radiograph")
    words = f"the latest recent {region} radiograph: {radiograph_words(run.definition, region, latest)}"
    return Result(latest.conclusion in conclusions, words, facts=latest.entries)


def _radiograph_conclusion(moment: Moment, conclusions: tuple[str, ...]) -> Result:
    run, region = moment.run, moment.snap.region
    found = [r for r in recent_radiographs(run, region) if r.conclusion in conclusions]
    if not found:
        regional = run.definition.imaging.regional
        labels = [regional.label(c) if regional else c for c in conclusions]
        return Result(False, f"no recent {region} radiograph read as {listing(labels, 'or')}")
    words = listing([radiograph_words(run.definition, region, r) for r in found])
    return Result(True, f"recent {region} radiograph: {words}", facts=tuple(e for r in found for e in r.entries))


_PREDICATES: dict[str, Callable[[Moment, tuple[str, ...]], Result]] = {
    "evaluable": _evaluable,
    "adherent": _adherent,
    "responded": _responded,
    "neurological": _neurological,
    "imaging_since_t0": _imaging_since_t0,
    "mri_contraindicated": _mri_contraindicated,
    "fired": _fired,
    "fired_at_this_checkpoint": _fired_at_this_checkpoint,
    "checkpoint_set_by": _checkpoint_set_by,
    "diagnosis": _diagnosis,
    "finding": _finding,
    "region": _region,
    "surgical_candidate": _surgical_candidate,
    "imaging_eligible": _imaging_eligible,
    "recent_radiograph": _recent_radiograph,
    "recent_advanced_imaging": _recent_advanced_imaging,
    "latest_radiograph": _latest_radiograph,
    "radiograph_conclusion": _radiograph_conclusion,
}
