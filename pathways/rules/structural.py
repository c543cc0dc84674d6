"""Diagnoses that count only under conditions (spec 2.0 section 5), as the definition's data says.

A structural group may carry a qualifier (`SurgicalConsultStep.qualifiers`): an OA counts only
with a degenerative region radiograph on record, a meniscal tear only with mechanical symptoms,
an adhesive capsulitis only after an injection (ruling 6). A full-thickness cuff tear becomes an
urgent immediate-consult diagnosis when traumatic and young (5.7). Nothing here names a body part:
the groups, findings and numbers are the definition's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pathways.classify import INJECTION
from pathways.definition.model import Definition
from pathways.rules import context
from pathways.rules.age import younger_than
from pathways.rules.radiographs import imaging_line, radiographs
from pathways.rules.run import Run
from pathways.state import DiagnosisEntry, Entry, PatientState

DEGENERATIVE_RADIOGRAPH = "radiograph-degenerative"
"""An intervention standing for a degenerative radiograph where the region is not imaged radiographs first."""
DEGENERATIVE = "degenerative"
"""The conclusion class (`steps.imaging.regional.conclusions`) a `degenerative_radiograph` qualifier reads."""


def degenerative_radiograph_on_record(
    state: PatientState, definition: Definition, moment: datetime
) -> tuple[Entry, ...]:
    """Region radiographs with a *degenerative* conclusion on record at `moment` (spec 5.4).

    For a region imaged radiographs first, its recent radiographs read by their report's
    conclusion (the imaging rules); elsewhere, entries named `DEGENERATIVE_RADIOGRAPH`.
    """
    stand_ins = tuple(i for i in state.interventions if i.name == DEGENERATIVE_RADIOGRAPH and i.at <= moment)
    line = imaging_line(definition, definition.regions.default)
    if line is None:
        return stand_ins
    read = radiographs(definition, state, line, moment)
    return (*stand_ins, *(r.record for r in read if r.conclusion == DEGENERATIVE))


def findings_since(
    state: PatientState, names: Sequence[str], days_before_t0: int, moment: datetime
) -> tuple[Entry, ...]:
    """Findings of `names` dated on or after t0 − `days_before_t0` and by `moment`."""
    t0 = state.t0
    start = None if t0 is None else t0 - timedelta(days=days_before_t0)
    return tuple(f for f in state.findings if f.name in names and f.at <= moment and (start is None or f.at >= start))


def qualifier_facts(run: Run, group: str) -> tuple[bool, tuple[Entry, ...]]:
    """Whether the group's qualifier holds (a group without one always does), and the facts it rests on."""
    qualifier = run.definition.surgical_consult.qualifier(group)
    if qualifier is None:
        return True, ()
    state, now = run.state, run.now
    facts: list[Entry] = []
    if qualifier.findings:
        found = findings_since(state, qualifier.findings, qualifier.findings_since_days_before_t0, now)
        if not found:
            return False, ()
        facts += found
    if qualifier.degenerative_radiograph:
        radiographs = degenerative_radiograph_on_record(state, run.definition, now)
        if not radiographs:
            return False, ()
        facts += radiographs
    if qualifier.after_injection:
        done = tuple(i for i in state.interventions if i.name == INJECTION and i.at <= now)
        if not (done or state.has_fired("injection")):
            return False, ()
        facts += done
    return True, tuple(facts)


def qualified(
    run: Run, groups: Sequence[str], *, confirmed: bool
) -> tuple[tuple[DiagnosisEntry, ...], tuple[Entry, ...]]:
    """Diagnoses of `groups` with at least one of those groups' qualifiers holding, and the facts they rest on."""
    found: list[DiagnosisEntry] = []
    facts: list[Entry] = []
    for diagnosis in context.diagnoses(run.state, groups, run.now, triggering=confirmed):
        for group in (g for g in diagnosis.groups if g in groups):
            holds, resting_on = qualifier_facts(run, group)
            if holds:
                found.append(diagnosis)
                facts += resting_on
                break
    return tuple(found), tuple(dict.fromkeys(facts))


def structural_for_referral(run: Run) -> tuple[tuple[DiagnosisEntry, ...], tuple[Entry, ...]]:
    """Spec 5 "Structural for referral": an S or I group diagnosis, confirmed or not, its qualifier holding."""
    step = run.definition.surgical_consult
    groups = tuple(dict.fromkeys((*run.definition.structural_groups, *step.fact_groups)))
    return qualified(run, groups, confirmed=False)


def surgical_candidates(run: Run) -> tuple[tuple[DiagnosisEntry, ...], tuple[Entry, ...]]:
    """Spec 5.1 `surgical-consult` (a): confirmed S group diagnoses whose qualifier holds."""
    return qualified(run, run.definition.structural_groups, confirmed=True)


def young_traumatic(run: Run, diagnosis: DiagnosisEntry) -> bool:
    """Spec 5.7: a diagnosis of the rule's groups, traumatic (by its code or a trauma finding within the window
    before it) and of a patient younger than the rule's age at the diagnosis (unknown: younger)."""
    rule = run.definition.surgical_consult.young_traumatic
    if rule is None or not set(diagnosis.groups) & set(rule.groups):
        return False
    window = timedelta(days=rule.trauma_window_days)
    traumatic = bool(set(diagnosis.groups) & set(rule.traumatic_groups)) or any(
        f.name in rule.trauma_findings and diagnosis.at - window <= f.at <= diagnosis.at for f in run.state.findings
    )
    return traumatic and younger_than(run.state.birth_date, rule.younger_than_years, diagnosis.at, unknown=True)
