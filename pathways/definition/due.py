"""`task_due`: how long after it is authored a Task of each priority is due (optional)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pathways.definition.reader import Node, Reader, shown
from pathways.model import Priority

KEY = "task_due"
UNITS = {"hours": (1, 24 * 365), "days": (1, 365)}
PRIORITIES = tuple(p.value for p in Priority)


def read_task_due(r: Reader, top: Node) -> tuple[tuple[Priority, timedelta], ...]:
    """Each priority given with its due time, e.g. `stat: {hours: 1}`; none when the key is absent."""
    if KEY not in top:
        return ()
    due = []
    for priority, value, path in r.entries(top, KEY, ""):
        if priority not in PRIORITIES:
            r.report(path, f"unknown priority {shown(priority)}; known: {', '.join(PRIORITIES)}")
            continue
        node = r.fields(value, path, (), tuple(UNITS))
        given = [unit for unit in UNITS if unit in node]
        if len(given) != 1:
            if isinstance(value, Mapping):  # otherwise `fields` said it must be a mapping
                r.report(path, f"give exactly one of {', '.join(UNITS)}")
            continue
        unit = given[0]
        amount = r.integer(node, unit, path, *UNITS[unit])
        due.append((Priority(priority), timedelta(**{unit: amount})))
    return tuple(due)
