"""How long a Task has waited, in words, and whether it is overdue: what the worklist shows beside each row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pathways.fhir import task_lifecycle as states

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def _count(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"


def waited(since: datetime, now: datetime) -> str:
    """`under a minute`, `45 minutes`, `3 hours`, `12 days`: hours up to two days, then days."""
    gone = max(now - since, timedelta(0))
    if gone < MINUTE:
        return "under a minute"
    if gone < HOUR:
        return _count(gone // MINUTE, "minute")
    if gone < 2 * DAY:
        return _count(gone // HOUR, "hour")
    return _count(gone // DAY, "day")


def due_at(task: Mapping[str, Any]) -> datetime | None:
    """When the Task is due (`restriction.period.end`), if it says."""
    end = (task.get("restriction") or {}).get("period", {}).get("end")
    return datetime.fromisoformat(end) if isinstance(end, str) and end else None


def overdue(task: Mapping[str, Any], now: datetime) -> bool:
    """An open Task past its due time; a closed one is never overdue."""
    due = due_at(task)
    return due is not None and now > due and task.get("status") in states.OPEN
