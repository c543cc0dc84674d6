"""Refusals as values: what the API turns into an OperationOutcome (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Problem(Exception):
    """A request Carepath refuses: HTTP status, FHIR issue code, message, element paths."""

    status: int
    code: str
    message: str
    expressions: list[str] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)

    def outcome(self) -> dict[str, Any]:
        issues = self.issues or [issue(self.code, self.message, self.expressions)]
        return {"resourceType": "OperationOutcome", "issue": issues}


def issue(code: str, message: str, expressions: list[str] | None = None, severity: str = "error") -> dict[str, Any]:
    entry: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message, "details": {"text": message}}
    if expressions:
        entry["expression"] = expressions
    return entry
