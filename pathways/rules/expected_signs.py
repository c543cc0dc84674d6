"""Expected signs (spec 1.1, "Red flags"): a weakness or sensory change of a known radiculopathy.

A minor finding that the definition names an expected sign of a diagnosis group is no red flag
on its own when a confirmed diagnosis of that group is on record at or before the finding's
clinical time. Everything here reads clinical times only, never the order facts arrived in: a
diagnosis that arrives after a weakness it predates still makes that weakness expected.
"""

from __future__ import annotations

from datetime import datetime

from pathways.definition.model import Definition
from pathways.rules.context import diagnoses
from pathways.state import DiagnosisEntry, Entry, PatientState


def expecting(
    definition: Definition, state: PatientState, finding: Entry, moment: datetime
) -> tuple[DiagnosisEntry, ...]:
    """Confirmed diagnoses on record at `moment` of which the finding's kind is an expected sign."""
    groups = definition.red_flags.groups_expecting(finding.name)
    return diagnoses(state, groups, moment) if groups else ()


def expected_sign_of(definition: Definition, state: PatientState, finding: Entry) -> tuple[DiagnosisEntry, ...]:
    """The diagnoses that make `finding` an expected sign (recorded at or before it); empty for a red flag."""
    return expecting(definition, state, finding, finding.at)


def is_expected(definition: Definition, state: PatientState, finding: Entry) -> bool:
    return bool(expected_sign_of(definition, state, finding))


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
