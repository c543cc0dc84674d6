"""A red-flag finding's class and route for this patient at the finding's clinical time.

Most findings have one class (major, urgent-alone, minor, context). From 2.0 a finding may take
another class, and route, while the patient is younger than an age at the finding (spec 2.0
section 6: a suspected acute traumatic cuff tear is urgent-alone below 65, minor from 65 on); the
definition says whether an unknown birthDate counts as younger.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathways.definition.model import Definition, Severity
from pathways.rules.age import younger_than
from pathways.state import Entry, PatientState


@dataclass(frozen=True, slots=True)
class FindingClass:
    severity: Severity
    route: str | None


def finding_class(definition: Definition, state: PatientState, entry: Entry) -> FindingClass | None:
    """The class of `entry` for this patient, or None when its finding is no longer in the definition."""
    finding = next((f for f in definition.findings if f.id == entry.name), None)
    if finding is None:
        return None
    younger = finding.below_age
    if younger is not None and younger_than(state.birth_date, younger.years, entry.at, unknown=younger.unknown_counts):
        return FindingClass(younger.severity, younger.route or finding.route)
    return FindingClass(finding.severity, finding.route)


def severity_of(definition: Definition, state: PatientState, entry: Entry) -> Severity | None:
    found = finding_class(definition, state, entry)
    return None if found is None else found.severity
