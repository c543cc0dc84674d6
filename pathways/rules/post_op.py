"""Post-operative PT (spec 2.0, 5.8): a completed surgery Procedure proposes PT; the episode becomes `surgical`.

`evaluate_post_op` is the rule on one state: each surgery Procedure at or after the first finished
PT visit, for a patient of the step's minimum age or older (or of unknown age, ruling 9), gets one
proposal (once per Procedure resource; its occurrence is its order of arrival). An open episode
then goes to state `surgical` and fires no step. What happens outside an episode (ruling 9: the
proposal whether or not one is open; 1.4: no episode of the region for 26 weeks) is the
patient-level container's: it calls this rule with the state it keeps.
"""

from __future__ import annotations

from dataclasses import replace

from pathways.classify import SURGERY
from pathways.explain import day
from pathways.model import Evidence
from pathways.rules.age import younger_than
from pathways.rules.run import Run, decide, holding
from pathways.state import Entry

STEP = "post-op-pt"


def surgeries_awaiting(run: Run) -> tuple[Entry, ...]:
    """Surgery Procedures on record that have had no post-op proposal yet, earliest first."""
    proposed = {r.reference for f in run.state.fired if f.step == STEP for r in f.reasons}
    waiting = (i for i in run.state.interventions if i.name == SURGERY and i.source.reference not in proposed)
    return tuple(sorted(waiting, key=lambda i: (i.at, i.source.reference)))


def evaluate_post_op(run: Run) -> None:
    """Propose post-operative PT for each surgery awaiting it, when the rule holds (spec 5.8)."""
    step = run.definition.post_op_pt
    if step is None:
        return
    for surgery in surgeries_awaiting(run):
        rule = f"{STEP} ({surgery.source.reference})"
        first_visit = run.state.t0
        if first_visit is None or surgery.at < first_visit:
            run.check(rule, False, "performed before the first finished PT visit")
            continue
        if younger_than(run.state.birth_date, step.min_age_years, surgery.at, unknown=False):
            run.check(rule, False, f"the patient was younger than {step.min_age_years} at the surgery")
            continue
        if holding(run, rule, step.propose.priority):
            continue  # evaluated again when the hold ends
        run.check(rule, True, f"a completed surgery Procedure performed {day(surgery.at)}")
        _propose(run, surgery)


def _propose(run: Run, surgery: Entry) -> None:
    step = run.definition.post_op_pt
    assert step is not None
    words = {"procedure": f"surgery of {day(surgery.at)}", "region": run.definition.regions.default}
    decide(
        run,
        STEP,
        step.propose,
        words,
        evidence=(Evidence("surgery", surgery.code[1] if surgery.code else "", (surgery.source,)),),
        reasons=(surgery.source,),
    )
    if run.state.episode is not None and run.state.surgical_at is None:
        run.state = replace(run.state, surgical_at=surgery.at)
        run.set_checkpoint(None, "")
        run.check("episode", True, f"state surgical from {day(surgery.at)}: no further step fires")
