"""Red flags (spec, "Red flags"): major → stat, cluster → urgent, single minor → routine review.

On one evaluation only the highest severity that newly holds fires. A severity fires once; it
fires again only after its Task was closed and a finding dated after the close qualifies. An
urgent review (cluster or major) supersedes an open single-flag review of the episode. An
expected sign of a diagnosis on record (`pathways.rules.expected_signs`) is no single minor red
flag and clusters only with a context finding or a minor finding of another kind.

Spec 2.0 section 6 adds, as definition data: an *urgent-alone* finding, which alone makes the
urgent severity. It is that severity, not a fourth one: the cluster's Task and ServiceRequest,
and once per period with clusters (an urgent-alone finding while a cluster's Task is open fires
nothing; one after a single-flag review supersedes it like a cluster). A finding's class may
depend on the patient's age (`pathways.rules.finding_class`), and each finding is named with its
route text. With `lower_waits_for_higher` (ruling 11) a lower severity does not fire while a Task
of a higher one is open; the findings it would have fired on are covered by that Task, so only
findings dated after them fire it once that Task is closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from pathways.definition.model import Definition, Severity, SeverityRule
from pathways.explain import day, listing
from pathways.model import Evidence
from pathways.rules.context import window_start
from pathways.rules.expected_signs import (
    expected_groups,
    expected_sign_of,
    is_expected,
    pair_clusters,
    unexpected_while_lines_open,
)
from pathways.rules.finding_class import finding_class, severity_of
from pathways.rules.run import Run, decide, reasons_of, supersede
from pathways.state import Entry, Fired, PatientState

STEP = "red-flags"
SINGLE_FLAG = "minor"
"""The single-flag review (routine). An urgent review of the same episode covers the patient's red flags, so it
replaces an open, untouched one: product behaviour in every version, not a clinical rule of a definition."""
URGENT_REVIEW = "urgent red-flag review"
"""How a superseded single-flag review names what replaced it: the cluster's and the major's Task alike."""


def readable(definition: Definition, state: PatientState, moment: datetime) -> tuple[Entry, ...]:
    """Findings the rules read: on or after t0 − window (context: whatever its date), by `moment`."""
    start = window_start(definition, state)
    return tuple(
        f
        for f in state.findings
        if f.at <= moment
        and (severity_of(definition, state, f) is Severity.CONTEXT or (start is not None and f.at >= start))
    )


def support(
    definition: Definition, state: PatientState, finding: Entry, severity: str, known: Sequence[Entry]
) -> tuple[Entry, ...]:
    """The findings that make `severity` hold with `finding` among them; empty when it does not."""
    own = severity_of(definition, state, finding)
    if severity == "major":
        return (finding,) if own is Severity.MAJOR else ()
    if severity == "minor":
        return (finding,) if own is Severity.MINOR and not is_expected(definition, state, finding) else ()
    if own is Severity.URGENT_ALONE:
        return (finding,)
    minors = [g for g in known if severity_of(definition, state, g) is Severity.MINOR]
    contexts = [g for g in known if severity_of(definition, state, g) is Severity.CONTEXT]
    if own is Severity.MINOR:
        days = timedelta(days=definition.red_flags.cluster_days)
        partners = [
            g
            for g in minors
            if g.name != finding.name
            and abs(g.at - finding.at) <= days
            and pair_clusters(definition, state, finding, g)
        ]
        return (finding, *partners, *contexts) if partners or contexts else ()
    if own is Severity.CONTEXT and minors:
        return (finding, *minors)
    return ()


def _not_checked(run: Run, candidates: Sequence[Entry], why: str) -> None:
    """Trace that `candidates` were not weighed against the severities, and why."""
    run.check(STEP, False, why, findings=tuple(c.name for c in candidates))


def evaluate_red_flags(run: Run, candidates: Sequence[Entry]) -> None:
    """Fire the highest severity that newly holds on `candidates` (one fact's findings, or all)."""
    definition, state = run.definition, run.state
    if state.episode is None:
        _not_checked(run, candidates, "no episode yet: findings are kept and checked when the first PT visit sets t0")
        return
    known = readable(definition, state, run.now)
    fresh = [c for c in candidates if c in known]
    if not fresh:
        _not_checked(run, candidates, "no finding dated on or after t0 − the red-flag window")
        return
    _trace_expected(run, fresh)
    for rule in definition.red_flags.severities:
        if _try(run, rule, fresh, known):
            _cover_lower(run, rule.id, fresh)
            return


def _trace_expected(run: Run, fresh: Sequence[Entry]) -> None:
    """Say which findings are expected signs, and of what: they weigh differently below."""
    definition, state = run.definition, run.state
    for entry in fresh:
        if expected_sign_of(definition, state, entry):
            kind = "neurological" if entry.name in definition.neurological.findings else "clinical"
            run.check(
                f"{STEP}.expected-sign",
                False,
                f"{_label(run, entry)}: a {kind} finding, a red flag only with a context finding or with "
                "a minor finding of another kind",
                finding=entry.name,
            )
        elif unexpected_while_lines_open(definition, state, entry):
            run.check(
                f"{STEP}.expected-sign",
                False,
                f"{_label(run, entry)}: no expected sign while episodes of {listing(state.open_lines)} are open, "
                "as not each of them has a confirmed diagnosis it is expected of",
                finding=entry.name,
            )


def _label(run: Run, entry: Entry) -> str:
    """`fever (2024-01-11)`, `malignancy (history)`, `muscle weakness (…; an expected sign of radiculopathy)`,
    `locked knee (2026-03-02; urgent orthopaedic review: locked knee)`."""
    definition = run.definition
    found = finding_class(definition, run.state, entry)
    parts = ["history" if found is not None and found.severity is Severity.CONTEXT else day(entry.at)]
    groups = expected_groups(definition, run.state, entry)
    if groups:
        parts.append(f"an expected sign of {listing(sorted(definition.diagnosis_group(g).label for g in groups))}")
    if found is not None and found.route:
        parts.append(found.route)
    return f"{definition.finding(entry.name).label} ({'; '.join(parts)})"


def _try(run: Run, rule: SeverityRule, fresh: Sequence[Entry], known: Sequence[Entry]) -> bool:
    definition, state = run.definition, run.state
    rule_name = f"{STEP}.{rule.id}"
    # An open Task of this severity, of any episode, still stands for it (spec: fires again only once closed).
    open_task = _open_task(state, (rule.id,))
    since = state.since(rule.id)
    qualifying = [f for f in fresh if since is None or f.at > since]
    found = next((s for f in qualifying if (s := support(definition, state, f, rule.id, known))), ())
    if open_task is not None:
        run.check(rule_name, False, f"its Task {open_task.key} is still open", holds=bool(found))
        return False
    higher = _open_task(state, _higher(definition, rule.id)) if definition.red_flags.lower_waits_for_higher else None
    if higher is not None:
        run.check(rule_name, False, f"the Task {higher.key} of a higher severity is still open", holds=bool(found))
        if found:
            _cover(run, (rule.id,), fresh)
        return False
    if not found:
        why = "does not hold"
        if since is not None:
            why = f"no qualifying finding dated after {day(since)}, when its Task closed or a higher severity fired"
        run.check(rule_name, False, why, findings=tuple(f.name for f in fresh))
        return False
    run.check(rule_name, True, "holds", findings=tuple(f.name for f in found))
    _fire(run, rule, found)
    return True


def _open_task(state: PatientState, severities: Sequence[str]) -> Fired | None:
    """An open red-flag Task of one of `severities`, of any episode."""
    return next(
        (f for f in state.fired if f.step == STEP and f.severity in severities and f.open and not f.withdrawn), None
    )


def _higher(definition: Definition, severity: str) -> tuple[str, ...]:
    names = [r.id for r in definition.red_flags.severities]
    return tuple(names[: names.index(severity)])


def _fire(run: Run, rule: SeverityRule, found: Sequence[Entry]) -> None:
    words = {"findings": listing([_label(run, entry) for entry in found])}
    if rule.id != SINGLE_FLAG:
        supersede(run, STEP, URGENT_REVIEW, severity=SINGLE_FLAG)
    propose = rule.propose
    alone = len(found) == 1 and severity_of(run.definition, run.state, found[0]) is Severity.URGENT_ALONE
    if alone and rule.alone_explanation:
        propose = replace(propose, explanation=rule.alone_explanation)
    decide(
        run,
        STEP,
        propose,
        words,
        evidence=(Evidence("red_flag_findings", tuple(f.name for f in found), reasons_of(found)),),
        reasons=reasons_of(found),
        severity=rule.id,
    )


def _cover_lower(run: Run, fired: str, fresh: Sequence[Entry]) -> None:
    """Lower severities of the same findings are covered: only findings after these fire them."""
    names = [r.id for r in run.definition.red_flags.severities]
    _cover(run, names[names.index(fired) + 1 :], fresh)


def _cover(run: Run, severities: Sequence[str], fresh: Sequence[Entry]) -> None:
    """`severities` fire again only on findings dated after the latest of `fresh`."""
    latest = max(f.at for f in fresh)
    since = dict(run.state.red_flag_since)
    for severity in severities:
        since[severity] = max(since.get(severity, latest), latest)
    run.state = replace(run.state, red_flag_since=tuple(sorted(since.items())))


def close(state: PatientState, severity: str, moment: datetime) -> PatientState:
    """After its Task closes, a severity fires again only on findings dated after `moment`."""
    since = dict(state.red_flag_since)
    since[severity] = moment
    return replace(state, red_flag_since=tuple(sorted(since.items())))
