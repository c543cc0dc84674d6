"""The red-flag data of spec 2.0 section 6 as a definition reads it, and the mistakes it refuses.

Every key is optional: 1.0.0 and 1.1.0 carry none of them and read as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pathways.definition.model import Severity
from pathways.model import Coding
from tests.unit.pathways.red_flags_joint_definition import JOINT_RED_FLAGS, joint_red_flags_data
from tests.unit.pathways.test_definition_loading import removing, setting
from tests.unit.pathways.timeline import DEFINITION, SNOMED, V1_1, problems_of

RED_FLAGS = "steps.red-flags"
CUFF_TEAR = "findings.acute-traumatic-cuff-tear"


def test_the_joint_data_reads_as_classes_routes_an_age_rule_and_signs_per_line() -> None:
    definition = JOINT_RED_FLAGS
    locked = definition.finding("locked-knee")
    assert (locked.severity, locked.route) == (Severity.URGENT_ALONE, "urgent orthopaedic review: locked knee")
    cuff = definition.finding("acute-traumatic-cuff-tear")
    assert cuff.severity is Severity.MINOR and cuff.route is None
    assert cuff.below_age is not None
    assert (cuff.below_age.years, cuff.below_age.severity, cuff.below_age.unknown_counts) == (
        65,
        Severity.URGENT_ALONE,
        True,
    )
    red_flags = definition.red_flags
    assert red_flags.lower_waits_for_higher
    assert red_flags.cluster.alone_explanation is not None
    weakness, weakness_lower_limb = (
        ("muscle-weakness", (SNOMED, "26544005")),
        ("muscle-weakness", (SNOMED, "102568007")),
    )
    assert [e.group for e in red_flags.expecting(*weakness)] == [
        "radicular",
        "rotator-cuff-pain",
        "full-thickness-cuff-tear",
    ]
    assert [e.group for e in red_flags.expecting(*weakness_lower_limb)] == ["radicular"]
    assert [e.every_open_line for e in red_flags.expecting("night-pain", None)] == [True] * 4
    assert definition.finding("hot-swollen-joint").codes.contains(Coding("http://hl7.org/fhir/sid/icd-10-cm", "M00.9"))


def test_1_0_and_1_1_carry_none_of_the_2_0_red_flag_data() -> None:
    for definition in (DEFINITION, V1_1):
        red_flags = definition.red_flags
        assert not red_flags.lower_waits_for_higher
        assert all(rule.alone_explanation is None for rule in red_flags.severities)
        assert not any(e.every_open_line for e in red_flags.expected_signs)
        assert all(s.codes is None for e in red_flags.expected_signs for s in e.signs)
        assert all(f.route is None and f.below_age is None for f in definition.findings)
        assert Severity.URGENT_ALONE not in {f.severity for f in definition.findings}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            setting("findings.prosthetic-joint.below_age", {"years": 65, "severity": "minor", "unknown_counts": True}),
            "findings.prosthetic-joint.below_age: a context finding counts whatever its date: it has no age rule",
        ),
        (removing(f"{CUFF_TEAR}.below_age.unknown_counts"), f"{CUFF_TEAR}.below_age.unknown_counts: missing"),
        (setting(f"{CUFF_TEAR}.below_age.unknown_counts", "yes"), f"{CUFF_TEAR}.below_age.unknown_counts: must be"),
        (
            setting(f"{CUFF_TEAR}.below_age.severity", "context"),
            f"{CUFF_TEAR}.below_age.severity: must be one of: major, minor, urgent-alone",
        ),
        (
            setting(f"{CUFF_TEAR}.below_age.severity", "minor"),
            f"{CUFF_TEAR}.below_age.severity: is the finding's own severity (minor)",
        ),
        (setting(f"{CUFF_TEAR}.below_age.years", 0), f"{CUFF_TEAR}.below_age.years: must be between 1 and 130"),
        (setting(f"{CUFF_TEAR}.below_age.age", 65), f"{CUFF_TEAR}.below_age.age: unknown key"),
        (setting("findings.locked-knee.route", ""), "findings.locked-knee.route: must be a non-empty string"),
        (setting("findings.locked-knee.severity", "urgent"), "findings.locked-knee.severity: must be one of"),
        (
            setting(f"{RED_FLAGS}.expected_signs.radicular", {"signs": ["muscle-weakness"], "every_open_line": True}),
            f"{RED_FLAGS}.expected_signs.radicular.every_open_line: needs a diagnosis group with a line",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.knee-oa.every_open_line", "all"),
            f"{RED_FLAGS}.expected_signs.knee-oa.every_open_line: must be true or false",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.knee-oa.lines", "every"),
            f"{RED_FLAGS}.expected_signs.knee-oa.lines: unknown key",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.hip-oa.signs", []),
            f"{RED_FLAGS}.expected_signs.hip-oa.signs: must not be empty",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.hip-oa.signs[0]", "calf-pains"),
            f"{RED_FLAGS}.expected_signs.hip-oa.signs[0]: unknown minor finding 'calf-pains'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.hip-oa.signs[0]", "locked-knee"),
            f"{RED_FLAGS}.expected_signs.hip-oa.signs[0]: unknown minor finding 'locked-knee'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.rotator-cuff-pain.signs[1].codes", ["snomed|386661006"]),
            f"{RED_FLAGS}.expected_signs.rotator-cuff-pain.signs[1].codes[0]: 386661006 is no code of the finding "
            "'muscle-weakness'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.rotator-cuff-pain.signs[1].finding", "fever-x"),
            f"{RED_FLAGS}.expected_signs.rotator-cuff-pain.signs[1].finding: unknown minor finding 'fever-x'",
        ),
        (
            setting(f"{RED_FLAGS}.expected_signs.rotator-cuff-pain.signs[0]", "muscle-weakness"),
            f"{RED_FLAGS}.expected_signs.rotator-cuff-pain.signs: lists a finding twice",
        ),
        (
            setting(f"{RED_FLAGS}.major.alone_explanation", "Urgent ({findings})."),
            f"{RED_FLAGS}.major.alone_explanation: unknown key",
        ),
        (
            setting(f"{RED_FLAGS}.cluster.alone_explanation", "Urgent ({finding})."),
            f"{RED_FLAGS}.cluster.alone_explanation: unknown placeholder {{finding}}",
        ),
        (
            setting(f"{RED_FLAGS}.lower_waits_for_higher", "yes"),
            f"{RED_FLAGS}.lower_waits_for_higher: must be true or false",
        ),
    ],
)
def test_the_joint_red_flag_data_is_validated_with_the_exact_path(change: Callable[[Any], None], problem: str) -> None:
    data = joint_red_flags_data()
    change(data)
    assert any(p.startswith(problem) for p in problems_of(data)), problems_of(data)
