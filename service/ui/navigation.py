"""What each role finds in the UI's navigation, and the labels pages share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.access.identity import ADMIN, COORDINATOR, Identity


@dataclass(frozen=True)
class Link:
    endpoint: str
    label: str


LINKS: dict[str, tuple[Link, ...]] = {
    COORDINATOR: (Link("ui.worklist_page", "Worklist"),),
    ADMIN: (
        Link("ui.worklist_page", "Worklist"),
        Link("ui.pathway_page", "Pathway"),
        Link("ui.dead_letters_page", "Dead letters"),
        Link("ui.rejected_events_page", "Rejected events"),
        Link("ui.tokens_page", "Tokens"),
        Link("ui.subscriptions_page", "Subscriptions"),
    ),
}


def links(identity: Identity | None) -> tuple[Link, ...]:
    """The pages this person may open; none before sign-in."""
    return LINKS.get(identity.role, ()) if identity else ()


def when(value: Any) -> str:
    """A moment as people read it on a worklist: date and minutes, in UTC."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment.utcoffset() is not None else moment.strftime("%Y-%m-%d")


def duration(value: Any) -> str:
    """A timedelta as `3 d 4 h`, `12 min` or `40 s`."""
    seconds = int(value.total_seconds()) if value is not None else 0
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def shown(value: Any) -> str:
    """A trace or evidence value as text: lists joined, booleans as yes/no, nothing as a dash."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k} {shown(v)}" for k, v in value.items())
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
