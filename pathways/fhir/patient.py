"""What the UI shows of a FHIR R4 Patient: a name to call them by, the birth date and the age on a day.

The age is the pathway's own (`pathways.rules.age`): the UI and the rules that read an age agree.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pathways.rules.age import age_at

NAME_PREFERENCE = ("usual", "official")  # R4 HumanName.use: the name they go by, else the legal one
MAX_NAME = 200  # characters kept; a longer name is cut rather than refused


def display_name(patient: dict[str, Any]) -> str | None:
    """`HumanName.text`, else given names and family, of the preferred name; None when it has none."""
    names = [n for n in patient.get("name") or [] if isinstance(n, dict) and n.get("use") not in ("old", "anonymous")]
    if not names:
        return None
    ranked = sorted(names, key=lambda n: NAME_PREFERENCE.index(n["use"]) if n.get("use") in NAME_PREFERENCE else 2)
    chosen = ranked[0]
    text = str(chosen.get("text") or "").strip()
    if not text:
        parts = [*(str(g) for g in chosen.get("given") or []), str(chosen.get("family") or "")]
        text = " ".join(p.strip() for p in parts if p.strip())
    return text[:MAX_NAME] or None


def birth_date(patient: dict[str, Any]) -> str | None:
    """`Patient.birthDate` as FHIR gives it (YYYY, YYYY-MM or YYYY-MM-DD), when it is one."""
    value = patient.get("birthDate")
    if not isinstance(value, str) or len(value) not in (4, 7, 10):
        return None
    try:
        date.fromisoformat(value if len(value) == 10 else (value + "-01-01")[:10])
    except ValueError:
        return None
    return value


def age_on(born: str | None, moment: datetime) -> int | None:
    """Whole years at `moment` from a birthDate as `birth_date` keeps it; a partial one counts from its first day."""
    if born is None:
        return None
    year, month, day = (int(part) for part in (born + "-01-01")[:10].split("-"))
    return age_at(date(year, month, day), moment)
