"""What one version of a definition changes from another, in a few plain sentences (for a publisher to confirm).

It compares the parsed data section by section, so it holds for any definition that loads: the
steps added, removed and changed by id, the order of the checkpoint rows, and every other
section that differs. The version's own identity (`version`, `status`) is left out: it always differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

IDENTITY = frozenset({"version", "status"})


def summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Sentences saying what `after` changes from `before`; one sentence when nothing does."""
    found = _steps(before.get("steps"), after.get("steps"))
    rows_before, rows_after = _row_steps(before.get("checkpoint_rows")), _row_steps(after.get("checkpoint_rows"))
    if rows_before != rows_after:
        found.append(f"Checkpoint order: {' → '.join(rows_after)} (was {' → '.join(rows_before)}).")
    elif before.get("checkpoint_rows") != after.get("checkpoint_rows"):
        found.append("Checkpoint rows: the same steps in the same order, with other conditions or intervals.")
    others = sorted(
        key
        for key in set(before) | set(after)
        if key not in IDENTITY | {"steps", "checkpoint_rows"} and before.get(key) != after.get(key)
    )
    if others:
        found.append(f"Also changed: {', '.join(others)}.")
    return found or ["Nothing but the version number changes: both versions propose the same."]


def _steps(before: Any, after: Any) -> list[str]:
    old = before if isinstance(before, Mapping) else {}
    new = after if isinstance(after, Mapping) else {}
    found = []
    for words, names in (
        ("Steps added", [name for name in new if name not in old]),
        ("Steps removed", [name for name in old if name not in new]),
        ("Steps changed", [name for name in new if name in old and old[name] != new[name]]),
    ):
        if names:
            found.append(f"{words}: {', '.join(str(name) for name in names)}.")
    return found


def _row_steps(rows: Any) -> list[str]:
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        return []
    return [str(row.get("step", "?")) if isinstance(row, Mapping) else "?" for row in rows]
