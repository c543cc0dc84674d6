"""Which records a pathway refuses to read: a measure without a value of its own, an adherence
value in a unit or range the spec refuses (`pathway-spec.md`, "Rules for all facts").

Inbound mapping is neutral about the pathway; whether an Observation's code is a measure, or its
value an adherence percentage, is the definition's to say. So this check runs where a definition
is at hand: intake (a `400` for a post or a Bundle entry), the worker (a notification's resource
kept as rejected, never evaluated) and the dry run (exit status 2). Only a record that would
count is checked: a retraction is never blocked by the value it withdraws.
"""

from __future__ import annotations

from collections.abc import Iterable

from pathways.classify import UnreadableValue, adherence_percent, measure_of
from pathways.definition.model import Definition
from pathways.fhir.inbound import NO_NUMBER, RecordRejected
from pathways.model import ClinicalRecord, RecordStatus

OWN_VALUE = "Observation.value[x]"
ADHERENCE_VALUE = "Observation.valueQuantity"


def check(definition: Definition, records: Iterable[ClinicalRecord]) -> None:
    """Raise `RecordRejected` naming the element when `definition` refuses one of `records`."""
    for record in records:
        if record.source.resource_type == "Observation" and record.status is not RecordStatus.RETRACTED:
            _check_observation(definition, record)


def may_be_refused(records: Iterable[ClinicalRecord]) -> bool:
    """Whether any definition could refuse `records`; when not, nobody need read which definition applies.

    `check` refuses only a missing number (of the record or of a component) or an adherence value
    `adherence_percent` cannot read, so a record with neither passes under every definition.
    """
    for record in records:
        if record.source.resource_type != "Observation" or record.status is RecordStatus.RETRACTED:
            continue
        if record.value_missing is not None or any(c.value_number is None for c in record.components):
            return True
        if record.value_number is not None:
            try:
                adherence_percent(record.value_number, record.value_unit)
            except UnreadableValue:
                return True
    return False


def _check_observation(definition: Definition, record: ClinicalRecord) -> None:
    missing = record.value_missing
    measure = measure_of(definition, record.codes)
    if measure is not None and missing is not None:
        raise RecordRejected(
            OWN_VALUE, f"the {measure} measure needs a number of its own; it has {missing}", "required"
        )
    if missing == NO_NUMBER:
        raise RecordRejected(OWN_VALUE, "the valueQuantity has no number (valueQuantity.value)", "required")
    if measure is None:
        _check_components(definition, record)
    if definition.adherence_codes.matches(record.codes):
        if missing is not None:
            raise RecordRejected(OWN_VALUE, f"an adherence value is needed; it has {missing}", "required")
        if record.value_number is not None:
            try:
                adherence_percent(record.value_number, record.value_unit)
            except UnreadableValue as error:
                raise RecordRejected(ADHERENCE_VALUE, str(error), "value") from error


def _check_components(definition: Definition, record: ClinicalRecord) -> None:
    """A panel's component coded as a measure must carry that measure's number."""
    for component in record.components:
        measure = measure_of(definition, component.codes)
        if measure is not None and component.value_number is None:
            raise RecordRejected(
                f"Observation.component[{component.index}].value[x]",
                f"the {measure} component needs a number (valueQuantity.value or valueInteger)",
                "required",
            )
