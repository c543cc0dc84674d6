"""FHIR search parameter values shared by the worklist and the audit search: dates with prefixes, paging."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.problems import Problem

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
# FHIR dateTime precisions: year, year-month, date, or date and time (seconds, maybe fractions).
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")
DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_OFFSET = 10**6


@dataclass(frozen=True)
class DateRange:
    """A date search value as the half-open range [start, end) its precision implies, and its prefix."""

    prefix: str
    start: datetime
    end: datetime


def date_range(name: str, value: str) -> DateRange:
    """Parse `ge2026-01-05`, `2026-01`, `lt2026-01-05T10:00:00Z`...; else a 400 naming the parameter."""
    prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
    match = _DATE.fullmatch(text)
    if match is None:
        raise Problem(400, "invalid", f"{name}: not a FHIR date or dateTime with an optional prefix: {value!r}", [name])
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        start, step = _start_and_step(year, month, day, hour, minute, second, fraction, zone)
        return DateRange(prefix, start, _add(start, step))
    except (ValueError, OverflowError) as error:
        raise Problem(400, "invalid", f"{name}: {error}", [name]) from None


def _start_and_step(*parts: str | None) -> tuple[datetime, str]:
    year, month, day, hour, minute, second, fraction, zone = parts
    if hour is not None and zone is None:
        raise ValueError("a dateTime with a time needs a timezone")
    tz = UTC if zone in (None, "Z") else datetime.strptime(str(zone).replace(":", ""), "%z").tzinfo
    micro = int(float(fraction) * 1_000_000) if fraction else 0
    start = datetime(int(year or 0), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                     int(second or 0), micro, tzinfo=tz)  # fmt: skip
    step = "year" if month is None else "month" if day is None else "day" if hour is None else "second"
    return start.astimezone(UTC), step


def _add(start: datetime, step: str) -> datetime:
    if step == "year":
        return start.replace(year=start.year + 1)
    if step == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + (timedelta(days=1) if step == "day" else timedelta(seconds=1))


def int_param(args: Mapping[str, str], name: str, default: int, upper: int) -> int:
    """A non-negative integer parameter, capped at `upper`."""
    raw = args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise Problem(400, "invalid", f"{name} must be a non-negative integer", [name])
    return min(int(raw), upper)


def split_unescaped(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` not escaped with a backslash (FHIR R4 3.1.1.5.7); escapes are kept."""
    parts, current, escaped = [], "", False
    for character in text:
        if escaped:
            current += "\\" + character
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == separator:
            parts.append(current)
            current = ""
        else:
            current += character
    return [*parts, current + ("\\" if escaped else "")]


def unescaped(text: str) -> str:
    """A search value with FHIR's escapes (`\\,` `\\|` `\\$` `\\\\`) taken out."""
    return re.sub(r"\\([,|$\\])", r"\1", text)


def tokens(value: str) -> list[tuple[str | None, str]]:
    """A token's comma-separated values as (system, code): `system|code`, `|code` (system ""), `code` (None)."""
    found: list[tuple[str | None, str]] = []
    for alternative in split_unescaped(value, ","):
        if not alternative:
            continue
        parts = split_unescaped(alternative, "|")
        if len(parts) == 1:
            found.append((None, unescaped(parts[0])))
        else:
            found.append((unescaped(parts[0]), unescaped("|".join(parts[1:]))))
    return found
