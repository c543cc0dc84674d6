"""How the EHR's copy of one of our Tasks follows ours: a guarded JSON Patch, or nothing.

Our copy already holds every change reconciliation brought from the EHR; what differs is what a
coordinator (or a withdrawal) changed here, possibly in several steps. A Task already final in the
EHR stays final: the EHR is the system of record, and its state is adopted instead.
"""

from __future__ import annotations

from typing import Any

from pathways.fhir.task_lifecycle import FINAL, FOLLOWED, STAMP


def task_patch(ehr_copy: dict[str, Any], ours: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The JSON Patch making the EHR's Task follow ours; [] when it already does; None when it cannot."""
    theirs, wanted = ehr_copy.get("status"), ours.get("status")
    if theirs != wanted and theirs in FINAL:
        return None
    differing = [e for e in FOLLOWED if e in ours and ours[e] != ehr_copy.get(e)]
    if not differing:
        return []
    if STAMP in ours:
        differing.append(STAMP)
    # `test` guards the status we read: with If-Match, a change made in between fails instead of being lost
    return [
        {"op": "test", "path": "/status", "value": theirs},
        *({"op": "add", "path": f"/{e}", "value": ours[e]} for e in differing),
    ]
