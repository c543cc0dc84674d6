"""One evaluation in progress: the state as it changes, the decisions made, every rule tried."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pathways.definition.model import Definition, Proposing
from pathways.explain import day
from pathways.model import Decision, Evaluation, Evidence, Priority, Proposal, RuleCheck, SourceRef, Withdrawal
from pathways.state import FIRST_EPISODE, Checkpoint, Fired, PatientState


class _Blank(dict[str, str]):
    """Formatting values where a placeholder with no value reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def fill(template: str, words: Mapping[str, str]) -> str:
    """A wording template with its placeholders filled (validated when the definition loaded)."""
    return " ".join(template.format_map(_Blank(words)).split())


@dataclass
class Run:
    """Accumulates one evaluation; the engine returns its state and `evaluation()`."""

    definition: Definition
    state: PatientState
    now: datetime
    decisions: list[Decision] = field(default_factory=list)
    checks: list[RuleCheck] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)

    def check(self, rule: str, fired: bool, reason: str, **values: Any) -> None:
        """Record one rule tried, what it saw and why it fired or not."""
        self.checks.append(RuleCheck(rule, fired, reason, tuple(values.items())))

    def set_checkpoint(self, due: datetime | None, set_by: str) -> None:
        """Replace the pending checkpoint (a later setting replaces an earlier); None clears it."""
        self.state = replace(self.state, checkpoint=None if due is None else Checkpoint(due, set_by))

    def evaluation(self, trigger: str) -> Evaluation:
        return Evaluation(
            at=self.now,
            trigger=trigger,
            decisions=tuple(self.decisions),
            checks=tuple(self.checks),
            next_checkpoint_at=self.state.checkpoint_due_at,
            withdrawals=tuple(self.withdrawals),
        )


def decide(
    run: Run,
    step: str,
    propose: Proposing,
    words: Mapping[str, str],
    *,
    evidence: Sequence[Evidence],
    reasons: Sequence[SourceRef],
    variants: Mapping[str, str] | None = None,
    only: Sequence[str] | None = None,
    priority: Priority | None = None,
    severity: str | None = None,
) -> Decision:
    """Make a step's decision from its templates and `words`, remember it in the state, return it."""
    chosen = priority or propose.priority
    # Repeats are counted per episode, per step and, for red flags, per severity (`Decision.key` holds all three).
    occurrence = 1 + sum(1 for f in run.state.fired_of(step) if f.severity == severity)
    decision = Decision(
        step=step,
        episode=run.state.episode or FIRST_EPISODE,
        occurrence=occurrence,
        at=run.now,
        priority=chosen,
        proposals=build_proposals(
            propose, words, variants=variants, only=only, priority=chosen, due_within=run.definition.due_within(chosen)
        ),
        explanation=fill(propose.explanation, words),
        evidence=tuple(evidence),
        reasons=tuple(dict.fromkeys(reasons)),  # de-duplicated, order kept
        definition=run.definition.reference,
        severity=severity,
    )
    items = tuple(p.item for p in decision.proposals)
    remembered = Fired(
        decision.key, decision.episode, step, occurrence, run.now, chosen, severity, decision.reasons, items=items
    )
    run.state = replace(run.state, fired=(*run.state.fired, remembered))
    run.decisions.append(decision)
    return decision


def build_proposals(
    propose: Proposing,
    words: Mapping[str, str],
    *,
    variants: Mapping[str, str] | None = None,
    only: Sequence[str] | None = None,
    priority: Priority | None = None,
    due_within: timedelta | None = None,
) -> tuple[Proposal, ...]:
    """Proposals from a step's templates: chosen variants, filled text, the step's priority and its due time."""
    chosen = variants or {}
    proposals = []
    for template in propose.proposals:
        if only is not None and template.item not in only:
            continue
        variant = template.variant(chosen[template.item]) if template.item in chosen else None
        proposals.append(
            Proposal(
                item=template.item,
                kind=template.kind,
                codes=variant.codes if variant else template.codes,
                text=fill(template.text, words),
                priority=priority or propose.priority,
                performer=(variant.performer if variant else None) or template.performer,
                note=template.note,
                due_within=due_within,
                reason_codes=template.reason_codes,
            )
        )
    return tuple(proposals)


SUPERSEDED = "superseded by the {what} of {day}"
"""Why an open, untouched Task is cancelled when a newer decision replaces it: what replaced it, and when."""


def superseded_by(what: str, at: datetime) -> str:
    """`superseded by the progress check of 2024-02-26`: the reason names the decision that replaced it."""
    return SUPERSEDED.format(what=what, day=day(at))


def supersede(run: Run, step: str, what: str, *, severity: str | None = None) -> None:
    """A newer decision, named `what`, replaces the step's open ones (of `severity`, for red flags): they
    are withdrawn if untouched, so only the newer Task stays open.

    Catching up on checkpoints that fell due while facts were missing would otherwise leave one open
    progress-check Task per checkpoint, and a single-flag review would stay open beside the urgent
    review that covers its finding. Whether a Task is untouched is known where the Tasks are kept: the
    withdrawal asks for that (`Withdrawal.only_untouched`).
    """
    open_ones = {
        f.key
        for f in run.state.fired_of(step)
        if f.open and not f.withdrawn and (severity is None or f.severity == severity)
    }
    if not open_ones:
        return
    fired = tuple(replace(f, open=False, withdrawn=True) if f.key in open_ones else f for f in run.state.fired)
    run.state = replace(run.state, fired=fired)
    reason = superseded_by(what, run.now)
    run.withdrawals += [Withdrawal(key, reason, only_untouched=True) for key in sorted(open_ones)]
    rule = step if severity is None else f"{step}.{severity}.superseded"
    run.check(rule, True, f"its open Task is {reason}", superseded=tuple(sorted(open_ones)))


def verdict(*blockers: tuple[bool, str], holds: str) -> tuple[bool, str]:
    """Whether a rule holds, and why: the first blocker that applies, else `holds`."""
    reason = next((why for blocked, why in blockers if blocked), None)
    return (reason is None, reason or holds)


ONCE = "fired before (once per episode)"


def holding(run: Run, rule: str, priority: Priority) -> bool:
    """True (and traced) when an open urgent or stat red-flag Task holds a routine step."""
    hold = run.state.hold
    if hold is None or priority is not Priority.ROUTINE:
        return False
    run.check(rule, False, f"held: urgent red-flag Task {hold.key} is open", hold=hold.key)
    return True


def reasons_of(*groups: Sequence[Any]) -> tuple[SourceRef, ...]:
    """Sources of values and entries (anything with a `source`), flattened."""
    return tuple(item.source for group in groups for item in group if item is not None)


def fired_entry(state: PatientState, key: str) -> Fired | None:
    return next((f for f in state.fired if f.key == key), None)
