"""The relapse watch (spec 1.1, "Relapse watch and the end of an episode").

R is the checkpoint at which the patient responded. Watch checkpoints follow at R + each of the
relapse step's `watch_weeks`; at them only relapse is tried. Relapsed: an evaluable measure's
latest value is worse than its best since R by at least its MCID in points. Then `relapse` fires
(once per episode), the watch ends and the episode goes on as a non-responding one; with no
relapse by the last watch checkpoint the episode is closed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from pathways.definition.model import Better, RelapseStep
from pathways.explain import ARROW, MINUS, day, listing, number, signed
from pathways.model import Evidence
from pathways.rules.measures import MeasureView, at_least
from pathways.rules.run import ONCE, Run, decide, reasons_of
from pathways.rules.snapshot import Snapshot, snapshot
from pathways.state import Checkpoint, Value, Watch

STEP = "relapse"
"""The relapse step, and `Checkpoint.set_by` of the watch's checkpoints and of the one a relapse sets."""


@dataclass(frozen=True, slots=True)
class Change:
    """One measure since the response: its best value since R and its latest."""

    view: MeasureView
    best: Value
    latest: Value

    @property
    def worse_by(self) -> float:
        """Points from the best towards worse (negative when the latest is the better)."""
        change = self.latest.number - self.best.number
        return change if self.view.measure.better is Better.LOWER else -change

    @property
    def relapsed(self) -> bool:
        return self.view.evaluable and at_least(self.worse_by, self.view.measure.mcid_points)

    def text(self) -> str:
        """e.g. `Pain 3 → 6 since responding (best 3 on 2024-02-12; +3, a relapse from +2)`."""
        measure = self.view.measure
        sign = "+" if measure.better is Better.LOWER else MINUS
        arrow = f"{measure.label} {number(self.best.number)} {ARROW} {number(self.latest.number)}"
        change = signed(self.latest.number - self.best.number)
        threshold = f"{sign}{number(measure.mcid_points)}"
        note = "" if self.view.evaluable else ", not evaluable"
        best = f"best {number(self.best.number)} on {day(self.best.at)}"
        return f"{arrow} since responding ({best}; {change}, a relapse from {threshold}{note})"


def start_watch(run: Run, step: RelapseStep, snap: Snapshot) -> None:
    """The patient responded at this checkpoint, R: watch from each measure's latest value."""
    best = tuple(sorted((v.measure.id, v.latest) for v in snap.views if v.latest is not None))
    run.state = replace(run.state, watch=Watch(run.now, best))
    due = run.now + timedelta(weeks=step.watch_weeks[0])
    run.set_checkpoint(due, STEP)
    again = " (relapse has fired in this episode: the episode closes at its end)" if run.state.has_fired(STEP) else ""
    weeks = listing([str(w) for w in step.watch_weeks])
    run.check(
        "relapse.watch", True, f"the relapse watch starts: checkpoints {weeks} weeks after this one{again}", due=due
    )


def evaluate_watch(run: Run, step: RelapseStep, watch: Watch, due: Checkpoint) -> None:
    """A watch checkpoint: fire `relapse` on a relapse, else go on watching or close the episode."""
    snap = snapshot(run)
    changes = _changes(snap, watch)
    relapsed = [c for c in changes if c.relapsed]
    seen = listing([c.text() for c in changes]) or "no measure value since responding"
    if relapsed and run.state.has_fired(STEP):
        run.check(STEP, False, f"{ONCE}: {seen}")
    elif relapsed:
        run.check(STEP, True, f"relapsed: {seen}", due=due.due_at)
        _fire(run, step, snap, relapsed)
        return
    else:
        run.check(STEP, False, f"no relapse: {seen}", due=due.due_at)
    later = [w for w in step.watch_weeks if watch.started + timedelta(weeks=w) > due.due_at]
    if later:
        run.set_checkpoint(watch.started + timedelta(weeks=later[0]), STEP)
        return
    run.set_checkpoint(None, "")
    run.state = replace(run.state, watch=None, closed_at=run.now)
    run.check(
        "episode",
        False,
        f"closed: the relapse watch ended {step.watch_weeks[-1]} weeks after the response; "
        "a finished PT visit after now starts a new episode",
        closed_at=run.now,
    )


def _changes(snap: Snapshot, watch: Watch) -> list[Change]:
    found = []
    for view in snap.views:
        best = watch.best_of(view.measure.id)
        if best is not None and view.latest is not None:
            found.append(Change(view, best, view.latest))
    return found


def _fire(run: Run, step: RelapseStep, snap: Snapshot, relapsed: list[Change]) -> None:
    words = {**snap.words, "relapse": listing([c.text() for c in relapsed])}
    evidence = [
        item
        for c in relapsed
        for item in (
            Evidence(f"{c.view.measure.id}.best_since_response", c.best.number, (c.best.source,)),
            Evidence(f"{c.view.measure.id}.latest", c.latest.number, (c.latest.source,)),
            Evidence(f"{c.view.measure.id}.worse_by", round(c.worse_by, 6)),
        )
    ]
    decide(
        run,
        STEP,
        step.propose,
        words,
        evidence=evidence,
        reasons=reasons_of([c.best for c in relapsed], [c.latest for c in relapsed]),
    )
    # The episode goes on as a non-responding one: the table's rows are tried at the next checkpoint.
    run.state = replace(run.state, watch=None, responded=False)
    run.set_checkpoint(run.now + timedelta(weeks=step.next_checkpoint_weeks), STEP)
