"""The worklist's waiting column in words, and the overdue mark: open Tasks past restriction.period.end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.ui.waiting import due_at, overdue, waited

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("gone", "words"),
    [
        (timedelta(seconds=0), "under a minute"),
        (timedelta(seconds=59), "under a minute"),
        (timedelta(minutes=1), "1 minute"),
        (timedelta(minutes=59, seconds=59), "59 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=47, minutes=59), "47 hours"),
        (timedelta(days=2), "2 days"),
        (timedelta(days=1, hours=1), "25 hours"),
        (timedelta(days=43, hours=23), "43 days"),
        (-timedelta(minutes=5), "under a minute"),  # authored a moment ahead of this clock
    ],
)
def test_waiting_reads_in_minutes_then_hours_up_to_two_days_then_days(gone: timedelta, words: str) -> None:
    assert waited(NOW - gone, NOW) == words


def task(status: str, end: str | None) -> dict:
    found: dict = {"resourceType": "Task", "status": status}
    return found | ({"restriction": {"period": {"end": end}}} if end else {})


@pytest.mark.parametrize(
    ("status", "end", "expected"),
    [
        ("requested", "2026-03-10T11:59:00Z", True),
        ("in-progress", "2026-03-10T11:00:00Z", True),
        ("received", "2026-03-10T12:00:00Z", False),  # due this very moment: not yet overdue
        ("requested", "2026-03-10T13:00:00Z", False),
        ("completed", "2026-03-01T00:00:00Z", False),
        ("cancelled", "2026-03-01T00:00:00Z", False),
        ("requested", None, False),  # no due time: never overdue
    ],
)
def test_an_open_task_past_its_due_time_is_overdue(status: str, end: str | None, expected: bool) -> None:
    assert overdue(task(status, end), NOW) is expected


def test_the_due_time_is_read_from_restriction_period_end() -> None:
    assert due_at(task("requested", "2026-03-10T13:00:00Z")) == NOW + timedelta(hours=1)
    assert due_at(task("requested", None)) is None
