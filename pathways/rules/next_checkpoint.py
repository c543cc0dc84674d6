"""The checkpoint a row sets when its step fires, and the facts that move it later (spec, "Next checkpoint")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pathways.classify import INJECTION
from pathways.definition.model import NextCheckpoint
from pathways.rules import context
from pathways.rules.run import Run
from pathways.state import DiagnosisEntry, Entry


def set_next_checkpoint(run: Run, step: str, rule: NextCheckpoint) -> None:
    """None, or `rule.weeks` after the step's decision (or after the injection done since it)."""
    if rule.weeks is None:
        run.set_checkpoint(None, "")
        return
    start = _injection_start(run, step) if rule.from_injection_done else run.now
    run.set_checkpoint(start + timedelta(weeks=rule.weeks), step)


def set_row_checkpoint(run: Run, step: str) -> None:
    """After a step fired outside a checkpoint (on a fact): the checkpoint its row sets."""
    row = run.definition.row_of(step)
    if row is not None:
        set_next_checkpoint(run, step, row.next)


def _injection_start(run: Run, step: str) -> datetime:
    """The first completed injection after the step's latest decision, else that decision."""
    fired = run.state.fired_of(step)
    if not fired:  # the checkpoint was not set by this step's decision: nothing to count from
        return run.now
    decision = fired[-1]
    done = context.injections_after(run.state, decision.at)
    return done[0].at if done else decision.at


def move_checkpoint(run: Run, diagnoses: Sequence[DiagnosisEntry], interventions: Sequence[Entry]) -> None:
    """Facts that move the pending checkpoint, as the row that set it says."""
    pending = run.state.checkpoint
    row = None if pending is None else run.definition.row_of(pending.set_by)
    if pending is None or row is None:
        return
    if row.next.sooner_on_diagnosis:
        _diagnosis_after(run, row.step, row.next.sooner_on_diagnosis, diagnoses)
    elif row.next.from_injection_done and any(i.name == INJECTION for i in interventions):
        before = pending.due_at
        set_next_checkpoint(run, row.step, row.next)
        after = run.state.checkpoint
        run.check(
            f"{row.step}.next-checkpoint",
            after is not None and after.due_at != before,
            f"{row.next.weeks} weeks after the first completed injection since the proposal",
            due=after.due_at if after else None,
        )


def _diagnosis_after(run: Run, step: str, groups: Sequence[str], diagnoses: Sequence[DiagnosisEntry]) -> None:
    if any(d.step == step for d in run.decisions):
        # The diagnosis that fired the step itself (image before an injection, 1.1) did not arrive after it.
        run.check(f"{step}.next-checkpoint", False, f"{step} fired in this evaluation: the checkpoint stays")
        return
    decision = run.state.first_fired(step)
    wanted = set(groups)
    qualifying = [
        d
        for d in diagnoses
        if decision and d.triggers and set(d.groups) & wanted and d.at <= run.now and d.known_at >= decision.at
    ]
    run.check(
        f"{step}.next-checkpoint",
        bool(qualifying),
        f"a qualifying diagnosis arrived after {step}: the checkpoint is now"
        if qualifying
        else f"no qualifying diagnosis after {step}: the checkpoint stays",
        diagnoses=tuple(d.source.reference for d in qualifying),
    )
    if qualifying:
        run.set_checkpoint(run.now, step)
