"""Intake's lane: a fact that may be a red flag, by code alone, goes to the urgent lane."""

from __future__ import annotations

from typing import Any

import pytest

from service.store import event_queue
from service.usecases import intake
from tests.builders import CAUDA_EQUINA, FEVER, KNEE_PAIN, PAIN, condition, diagnosis, finding, measure, pt_visit

AT = "2026-01-05T09:00:00Z"


def lane(resource: dict[str, Any]) -> str:
    return intake.prepare(resource, resource["resourceType"]).lane


@pytest.mark.parametrize("code", [CAUDA_EQUINA, FEVER])
def test_a_finding_a_shipped_version_names_goes_to_the_urgent_lane(code: tuple[str, str]) -> None:
    assert lane(finding("p1", code, AT)) == event_queue.URGENT


def test_a_finding_recorded_as_absent_is_routine() -> None:
    absent = finding("p1", CAUDA_EQUINA, AT)
    absent["valueBoolean"] = False
    assert lane(absent) == event_queue.ROUTINE


def test_a_condition_coded_as_a_finding_is_urgent_and_a_diagnosis_is_not() -> None:
    assert lane(condition("p1", CAUDA_EQUINA, AT)) == event_queue.URGENT
    assert lane(diagnosis("p1", KNEE_PAIN, AT)) == event_queue.ROUTINE


@pytest.mark.parametrize("resource", [pt_visit("p1", AT), measure("p1", PAIN, 7, AT)], ids=["visit", "pain"])
def test_visits_and_measures_are_routine(resource: dict[str, Any]) -> None:
    assert lane(resource) == event_queue.ROUTINE


def test_a_deletion_is_routine() -> None:
    assert intake.deletion("Observation", "o1", "p1", AT).lane == event_queue.ROUTINE
