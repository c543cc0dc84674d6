"""Version 1.1's imaging rules beside 1.0's: CT instead of a proposed MRI, image before an injection,
and surgical consult (a) before medication. The same timelines run under both shipped versions."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pathways.definition import SHIPPED_1_1, SHIPPED_VERSIONS, Definition, load_definition_file
from pathways.model import Evaluation, Withdrawal
from pathways.simulate import simulate
from tests.unit.pathways.timeline import (
    CERVICAL_STENOSIS,
    LUMBAR_DISC,
    MRI_CONTRAINDICATED,
    MRI_LUMBAR,
    NUMBNESS,
    SNOMED,
    Timeline,
    checks,
    fired,
    problems_of,
    week,
)

V1_0 = load_definition_file(SHIPPED_VERSIONS[0])
V1_1 = load_definition_file(SHIPPED_1_1)
DISC_WITH_RADICULOPATHY = (SNOMED, "202735001")  # radicular and disc herniation: structural
MRI_LUMBAR_SNOMED = "394451000119106"
CT_LUMBAR = {"572091000119106", "72131"}
CT_CERVICAL = {"572061000119104", "72125"}

Change = Callable[[Timeline], object]


def nonresponder(*changes: Change) -> Timeline:
    """The adherent non-responder (reassessment at week 6, imaging at week 10) with a numbness finding (NCS)."""
    t = Timeline()
    t.nonresponder()
    t.finding(10, NUMBNESS)
    for change in changes:
        change(t)
    return t


def run_under(definition: Definition, t: Timeline, until: datetime) -> list[Evaluation]:
    return simulate(definition, t.records, until)


def decided(evaluations: list[Evaluation]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, moment in weeks, items) of every decision but the routine red-flag review of the numbness."""
    return [
        (d.key, f"w{(d.at - week(0)).days / 7:g}", tuple(p.item for p in d.proposals))
        for d in fired(evaluations)
        if d.step != "red-flags"
    ]


def moments(evaluations: list[Evaluation], *steps: str) -> list[tuple[str, str]]:
    """(step, moment in weeks) of the decisions of `steps`."""
    return [(key.split("/")[1], at) for key, at, _ in decided(evaluations) if key.split("/")[1] in steps]


def withdrawals(evaluations: list[Evaluation]) -> list[Withdrawal]:
    return [w for e in evaluations for w in e.withdrawals]


# -- CT instead of a proposed MRI ----------------------------------------------------------------------

CONTRAINDICATED_AT_11 = lambda t: t.finding(week(11), MRI_CONTRAINDICATED)  # noqa: E731
REASSESSED = ("1/reassessment/1", "w6", ("notify-prescriber", "second-opinion"))
MRI_AND_NCS = ("1/imaging/1", "w10", ("mri", "ncs"))
CT_AT_11 = ("1/imaging/2", "w11", ("ct",))
MRI_WITHDRAWN = [("1/imaging/1", ("mri",))]


@pytest.mark.parametrize(
    ("definition", "changes", "expected", "withdrawn"),
    [
        pytest.param(
            V1_1,
            [CONTRAINDICATED_AT_11],
            [MRI_AND_NCS, CT_AT_11],
            MRI_WITHDRAWN,
            id="1.1 contraindication after the MRI: CT, MRI withdrawn",
        ),
        pytest.param(
            V1_0, [CONTRAINDICATED_AT_11], [MRI_AND_NCS], [], id="1.0 contraindication after the MRI: the MRI stands"
        ),
        pytest.param(
            V1_1,
            [lambda t: t.finding(week(9), MRI_CONTRAINDICATED)],
            [("1/imaging/1", "w10", ("ct", "ncs"))],
            [],
            id="1.1 contraindication before imaging: CT at once",
        ),
        pytest.param(
            V1_1,
            [lambda t: t.procedure(week(10.5), MRI_LUMBAR), CONTRAINDICATED_AT_11],
            [MRI_AND_NCS],
            [],
            id="1.1 imaging done before the contraindication: no CT",
        ),
        pytest.param(
            V1_1,
            [CONTRAINDICATED_AT_11, lambda t: t.finding(week(12), MRI_CONTRAINDICATED)],
            [MRI_AND_NCS, CT_AT_11],
            MRI_WITHDRAWN,
            id="1.1 a second contraindication: CT once per episode",
        ),
        pytest.param(
            V1_1,
            [lambda t: t.finding(week(5), MRI_CONTRAINDICATED, status="retracted"), CONTRAINDICATED_AT_11],
            [MRI_AND_NCS, CT_AT_11],
            MRI_WITHDRAWN,
            id="1.1 a retracted earlier contraindication does not count",
        ),
    ],
)
def test_an_mri_contraindication_after_the_mri_proposal_turns_it_into_a_ct_in_1_1_only(
    definition: Definition,
    changes: list[Change],
    expected: list[tuple[str, str, tuple[str, ...]]],
    withdrawn: list[tuple[str, tuple[str, ...]]],
) -> None:
    evaluations = run_under(definition, nonresponder(*changes), week(13))
    assert decided(evaluations) == [REASSESSED, *expected]
    assert [(w.decision_key, w.items) for w in withdrawals(evaluations)] == withdrawn


@pytest.mark.parametrize(("cervical", "codes"), [(False, CT_LUMBAR), (True, CT_CERVICAL)])
def test_the_ct_instead_is_of_the_region_and_says_why_and_the_mri_withdrawal_gives_the_reason(
    cervical: bool, codes: set[str]
) -> None:
    changes: list[Change] = [CONTRAINDICATED_AT_11]
    if cervical:
        changes.append(lambda t: t.condition(3, CERVICAL_STENOSIS, verification="provisional"))
    evaluations = run_under(V1_1, nonresponder(*changes), week(13))
    ct = [d for d in fired(evaluations) if d.key == "1/imaging/2"][0]
    assert {c.code for c in ct.proposals[0].codes} == codes
    assert ct.explanation.endswith(
        "replaces the proposed MRI: the contraindication was recorded 2024-03-18, after the proposal, "
        "with no imaging since 2024-01-01."
    )
    assert {r.resource_type for r in ct.reasons} >= {"Observation"}
    (withdrawal,) = withdrawals(evaluations)
    region = "cervical" if cervical else "lumbar"
    assert withdrawal.reason == f"MRI contraindicated (recorded 2024-03-18): replaced by a CT of the {region} spine."
    assert checks(evaluations, "imaging (CT instead)")[-1] == (
        True,
        "an MRI contraindication is on record after the MRI proposal, and no imaging since t0",
    )


# -- image before an injection -------------------------------------------------------------------------


def disc_at(weeks: float) -> Change:
    return lambda t: t.condition(week(weeks), LUMBAR_DISC)


def imaging_at(weeks: float) -> Change:
    return lambda t: t.procedure(week(weeks), MRI_LUMBAR)


@pytest.mark.parametrize(
    ("definition", "changes", "expected"),
    [
        pytest.param(
            V1_0,
            [disc_at(7)],
            [("injection", "w7"), ("imaging", "w13")],
            id="1.0 a diagnosis after reassessment: injection before imaging",
        ),
        pytest.param(
            V1_1, [disc_at(7)], [("imaging", "w7")], id="1.1 the same diagnosis without imaging: imaging first"
        ),
        pytest.param(
            V1_0, [disc_at(7), imaging_at(8)], [("injection", "w7")], id="1.0 imaging arriving later changes nothing"
        ),
        pytest.param(
            V1_1,
            [disc_at(7), imaging_at(8)],
            [("imaging", "w7"), ("injection", "w8")],
            id="1.1 imaging arriving later fires the injection",
        ),
        pytest.param(
            V1_1,
            [imaging_at(5), disc_at(7)],
            [("injection", "w7")],
            id="1.1 imaging already on record: injection with the diagnosis",
        ),
        pytest.param(
            V1_1, [imaging_at(-1), disc_at(7)], [("imaging", "w7")], id="1.1 imaging before t0 does not count"
        ),
        pytest.param(
            V1_0,
            [disc_at(11)],
            [("imaging", "w10"), ("injection", "w11")],
            id="1.0 a diagnosis after the MRI proposal: injection",
        ),
        pytest.param(
            V1_1, [disc_at(11)], [("imaging", "w10")], id="1.1 a diagnosis after the MRI proposal waits for the imaging"
        ),
        pytest.param(
            V1_1,
            [disc_at(11), imaging_at(12)],
            [("imaging", "w10"), ("injection", "w12")],
            id="1.1 then the imaging arrives: injection",
        ),
        pytest.param(
            V1_0,
            [disc_at(1)],
            [("imaging", "w10"), ("injection", "w16")],
            id="1.0 checkpoint row: injection without imaging done",
        ),
        pytest.param(
            V1_1, [disc_at(1)], [("imaging", "w10")], id="1.1 checkpoint row: no injection without imaging done"
        ),
        pytest.param(
            V1_1,
            [disc_at(1), imaging_at(12)],
            [("imaging", "w10"), ("injection", "w16")],
            id="1.1 checkpoint row: injection once imaged",
        ),
    ],
)
def test_an_injection_needs_imaging_on_record_in_1_1_and_a_diagnosis_without_it_fires_imaging_first(
    definition: Definition, changes: list[Change], expected: list[tuple[str, str]]
) -> None:
    evaluations = run_under(definition, nonresponder(*changes), week(17))
    assert moments(evaluations, "imaging", "injection") == expected


def test_imaging_fired_by_a_diagnosis_proposes_its_usual_studies_and_sets_the_checkpoint_six_weeks_on() -> None:
    evaluations = run_under(V1_1, nonresponder(disc_at(7)), week(8))
    fact = [e for e in evaluations if any(d.step == "imaging" for d in e.decisions)][0]
    (imaging,) = fact.decisions
    assert [p.item for p in imaging.proposals] == ["mri", "ncs"]
    assert {c.code for c in imaging.proposals[0].codes} == {MRI_LUMBAR_SNOMED, "72148"}
    assert any(r.resource_type == "Condition" for r in imaging.reasons)
    assert fact.next_checkpoint_at == week(13)
    assert checks([fact], "injection (fact)") == [(False, "no imaging recorded since t0: imaging first")]


def test_the_injection_an_imaging_record_fires_rests_on_it_and_sets_its_own_checkpoint() -> None:
    t = nonresponder(disc_at(7))
    done = t.procedure(week(8), MRI_LUMBAR)
    evaluations = run_under(V1_1, t, week(9))
    (injection,) = [d for d in fired(evaluations) if d.step == "injection"]
    assert done.source in injection.reasons
    assert evaluations[-1].next_checkpoint_at == week(14)


# -- surgical consult (a) before medication --------------------------------------------------------------


@pytest.mark.parametrize(("definition", "step"), [(V1_0, "medication"), (V1_1, "surgical-consult")])
def test_a_structural_problem_whose_injection_failed_reaches_the_surgeon_under_1_1_and_medication_under_1_0(
    definition: Definition, step: str
) -> None:
    # A disc prolapse with radiculopathy (radicular and structural) known before reassessment,
    # imaged at week 12: injection at the week-16 checkpoint, and at the one it set (week 22) ...
    t = nonresponder(lambda t: t.condition(10, DISC_WITH_RADICULOPATHY), imaging_at(12))
    evaluations = run_under(definition, t, week(23))
    later = ("reassessment", "imaging", "injection", "medication", "surgical-consult")
    assert moments(evaluations, *later) == [
        ("reassessment", "w6"),
        ("imaging", "w10"),
        ("injection", "w16"),
        (step, "w22"),
    ]


# -- the switch is definition data -----------------------------------------------------------------------


def shipped_1_1() -> Any:
    return json.loads(json.dumps(yaml.safe_load(Path(SHIPPED_1_1).read_text())))


def test_version_1_0_has_neither_rule_and_1_1_has_both() -> None:
    assert (V1_0.imaging.ct_instead, V1_0.injection.needs_imaging) == (None, False)
    assert V1_1.imaging.ct_instead is not None and V1_1.injection.needs_imaging


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["steps"]["injection"].update(needs_imaging="yes"),
            "steps.injection.needs_imaging: must be true or false",
        ),
        (
            lambda d: d["steps"]["imaging"]["ct_instead"].pop("withdrawal_reason"),
            "steps.imaging.ct_instead.withdrawal_reason: missing",
        ),
        (
            lambda d: d["steps"]["imaging"]["ct_instead"].update(colour="red"),
            "steps.imaging.ct_instead.colour: unknown key",
        ),
        (
            lambda d: d["steps"]["imaging"]["ct_instead"].update(explanation="{diagnoses}"),
            "steps.imaging.ct_instead.explanation: unknown placeholder {diagnoses}; allowed: measures, weeks, visits, "
            "adherence, t0, region, imaging, studies, contraindicated_on",
        ),
        (lambda d: d["steps"]["imaging"].update(ct_instead="yes"), "steps.imaging.ct_instead: must be a mapping"),
    ],
)
def test_a_bad_1_1_imaging_rule_is_refused_with_its_exact_path(change: Callable[[Any], object], problem: str) -> None:
    data = shipped_1_1()
    change(data)
    assert problem in problems_of(data)
