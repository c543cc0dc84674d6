"""ICD-10-CM families (spec 2.0, "Code matching"): a family matches its own code and every code under it.

Every other code of a definition matches exactly, as in 1.x: no subsumption, and a family is never
a code Carepath sends.
"""

from __future__ import annotations

import pytest

from pathways.definition.codes import ICD10CM, SNOMED
from pathways.definition.model import CodeSet
from pathways.model import Coding


def icd(code: str) -> Coding:
    return Coding(ICD10CM, code)


KNEE_AND_CUFF = CodeSet.of([icd("M17*"), icd("M25.56*"), icd("S46.01*"), icd("M54.50"), Coding(SNOMED, "239873007")])


@pytest.mark.parametrize(
    ("coding", "matches"),
    [
        (icd("M17"), True),  # the family's own code
        (icd("M17.11"), True),  # spec example: M17 matches M17.11
        (icd("M25.561"), True),  # M25.56 matches M25.561
        (icd("S46.011A"), True),  # S46.01 matches S46.011A
        (icd("M25.5"), False),  # a parent of a family is not in it
        (icd("M25.551"), False),  # a sibling family (hip) is not the knee's
        (icd("M16.11"), False),
        (icd("M54.50"), True),  # an exact code matches itself
        (icd("M54.501"), False),  # … and nothing under it: 1.x lists are not families
        (Coding(SNOMED, "239873007"), True),
        (Coding(SNOMED, "2398730"), False),  # SNOMED is exact, never a prefix
        (Coding("http://example.org/other-icd", "M17.11"), False),  # the system must match too
    ],
)
def test_a_family_matches_its_code_and_every_code_under_it_and_nothing_else(coding: Coding, matches: bool) -> None:
    assert KNEE_AND_CUFF.matches([coding]) is matches
    assert KNEE_AND_CUFF.contains(coding) is matches


def test_the_first_matching_coding_is_named() -> None:
    codes = [Coding(SNOMED, "1"), icd("M17.0"), icd("M17.11")]
    assert KNEE_AND_CUFF.first(codes) == icd("M17.0")
    assert KNEE_AND_CUFF.first([Coding(SNOMED, "1")]) is None


def test_a_set_without_families_matches_exactly_as_before() -> None:
    exact = CodeSet.of([icd("M17.11")])
    assert exact.families == ()
    assert exact.matches([icd("M17.11")])
    assert not exact.matches([icd("M17.1")])
