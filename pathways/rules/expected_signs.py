"""Expected signs (spec 1.1 "Red flags"; 2.0 section 6): findings a known diagnosis explains.

A minor finding that the definition names an expected sign of a diagnosis group (by finding, or
by some of its codes only) is no red flag on its own when a confirmed diagnosis of that group is
on record at or before the finding's clinical time. Everything here reads clinical times only,
never the order facts arrived in: a diagnosis that arrives after a weakness it predates still
makes that weakness expected.

Signs listed `every_open_line` (2.0's joint signs) carry no region: while two or more episodes
are open (`PatientState.open_lines`), such a sign is expected only when every open episode's line
has a confirmed diagnosis of a group that expects it (a knee OA cannot silence night pain that may
come from the back). Other signs (1.1's radicular signs, ruling 3) are read for the patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pathways.definition.model import Definition, ExpectedSigns
from pathways.rules.context import diagnoses
from pathways.state import DiagnosisEntry, Entry, PatientState


def _lists(definition: Definition, finding: Entry) -> tuple[ExpectedSigns, ...]:
    return definition.red_flags.expecting(finding.name, finding.code)


def _per_line(
    definition: Definition, state: PatientState, lists: Sequence[ExpectedSigns], moment: datetime
) -> tuple[DiagnosisEntry, ...]:
    """Diagnoses of the `every_open_line` lists; none unless they cover every open line."""
    groups = [e.group for e in lists if e.every_open_line]
    found = diagnoses(state, groups, moment) if groups else ()
    if len(state.open_lines) < 2 or not found:
        return found
    lines = {definition.diagnosis_group(g).line for d in found for g in d.groups if g in groups}
    return found if lines.issuperset(state.open_lines) else ()


def expecting(
    definition: Definition, state: PatientState, finding: Entry, moment: datetime
) -> tuple[DiagnosisEntry, ...]:
    """Confirmed diagnoses on record at `moment` of which the finding is an expected sign."""
    lists = _lists(definition, finding)
    if not lists:
        return ()
    patient = [e.group for e in lists if not e.every_open_line]
    found = diagnoses(state, patient, moment) if patient else ()
    return found + tuple(d for d in _per_line(definition, state, lists, moment) if d not in found)


def expected_sign_of(definition: Definition, state: PatientState, finding: Entry) -> tuple[DiagnosisEntry, ...]:
    """The diagnoses that make `finding` an expected sign (recorded at or before it); empty for a red flag."""
    return expecting(definition, state, finding, finding.at)


def is_expected(definition: Definition, state: PatientState, finding: Entry) -> bool:
    return bool(expected_sign_of(definition, state, finding))


def expected_groups(definition: Definition, state: PatientState, finding: Entry) -> tuple[str, ...]:
    """The groups whose diagnoses on record make `finding` an expected sign, for its explanation."""
    lists = {e.group for e in _lists(definition, finding)}
    found = expected_sign_of(definition, state, finding)
    return tuple(sorted({g for d in found for g in d.groups if g in lists}))


def unexpected_while_lines_open(definition: Definition, state: PatientState, finding: Entry) -> bool:
    """True when a diagnosis would make `finding` an expected sign but not every open episode's line has one."""
    lists = [e for e in _lists(definition, finding) if e.every_open_line]
    if len(state.open_lines) < 2 or not lists or is_expected(definition, state, finding):
        return False
    return bool(diagnoses(state, [e.group for e in lists], finding.at))


def pair_clusters(definition: Definition, state: PatientState, one: Entry, other: Entry) -> bool:
    """Whether two different minor findings within the cluster window make an urgent cluster.

    An expected sign clusters with no other expected sign, nor with a finding of a kind that is an
    expected sign of a diagnosis on record when the later of the two was recorded (a weakness
    from before the radiculopathy was diagnosed); with any other minor finding it does.
    """
    if not (is_expected(definition, state, one) or is_expected(definition, state, other)):
        return True
    moment = max(one.at, other.at)
    return not (expecting(definition, state, one, moment) and expecting(definition, state, other, moment))
