"""What "Done" walks through, and what the UI reads of a FHIR Patient."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from pathways.fhir import task_lifecycle
from pathways.fhir.patient import age_on, birth_date, display_name


@pytest.mark.parametrize(
    ("status", "path"),
    [
        ("requested", ("accepted", "in-progress", "completed")),
        ("received", ("accepted", "in-progress", "completed")),
        ("accepted", ("in-progress", "completed")),
        ("on-hold", ("in-progress", "completed")),
        ("in-progress", ("completed",)),
        ("completed", ()),
        ("cancelled", ()),
        ("entered-in-error", ()),
    ],
)
def test_done_walks_only_edges_the_state_machine_draws_to_completed(status: str, path: tuple[str, ...]) -> None:
    assert task_lifecycle.path_to_completion(status) == path
    for before, after in zip((status, *path), path, strict=False):
        assert task_lifecycle.allowed(before, after)


def test_the_usual_name_wins_over_the_official_one_and_an_old_name_never_shows() -> None:
    patient = {
        "name": [
            {"use": "old", "text": "Dana Smith"},
            {"use": "official", "given": ["Dana", "Maria"], "family": "Reyes"},
            {"use": "usual", "text": "Dee Reyes"},
        ]
    }
    assert display_name(patient) == "Dee Reyes"
    assert display_name({"name": [{"use": "official", "given": ["Dana", "Maria"], "family": "Reyes"}]}) == (
        "Dana Maria Reyes"
    )
    assert display_name({"name": [{"use": "old", "text": "Dana Smith"}]}) is None
    assert display_name({}) is None


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        ("1961-07-06", date(2026, 7, 5), 64),
        ("1961-07-06", date(2026, 7, 6), 65),
        ("1980-02-29", date(2026, 2, 28), 45),  # the pathway's rule: a leap-day birthday falls on 1 March
        ("1980-02-29", date(2026, 3, 1), 46),
        ("1980-06", date(2026, 5, 31), 45),  # a partial date counts from its first day, as the rules read it
        ("1980", date(2026, 1, 1), 46),
        (None, date(2026, 7, 6), None),
    ],
)
def test_the_age_shown_is_the_one_the_pathway_reads(born: str | None, today: date, age: int | None) -> None:
    assert age_on(born, datetime.combine(today, time(12), UTC)) == age


def test_a_birth_date_that_is_not_a_fhir_date_is_not_shown() -> None:
    assert birth_date({"birthDate": "1961-07-06"}) == "1961-07-06"
    assert birth_date({"birthDate": "1961"}) == "1961"
    assert birth_date({"birthDate": "1961-13-01"}) is None
    assert birth_date({"birthDate": 1961}) is None
