"""Which records a pathway refuses to read: a measure without a value of its own, a measure value
outside the range its definition gives (joint spec, section 8), an adherence value in a unit or
range the spec refuses (`pathway-spec.md`, "Rules for all facts").

Inbound mapping is neutral about the pathway; whether an Observation's code is a measure, or its
value an adherence percentage, is the definition's to say. So this check runs where a definition
is at hand: intake (a `400` for a post or a Bundle entry), the worker (a notification's resource
kept as rejected, never evaluated) and the dry run (exit status 2). Only a record that would
count is checked: a retraction is never blocked by the value it withdraws.
"""

from __future__ import annotations

from collections.abc import Iterable

from pathways.classify import UnreadableValue, adherence_percent, measure_named
from pathways.definition.model import Definition, Measure
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

    `check` refuses only a missing number (of the record or of a component) or a number a
    definition's range or the adherence rule refuses, so an Observation with no number and
    nothing missing passes under every definition.
    """
    for record in records:
        if record.source.resource_type != "Observation" or record.status is RecordStatus.RETRACTED:
            continue
        if record.value_missing is not None or record.value_number is not None or record.components:
            return True
    return False


def _check_observation(definition: Definition, record: ClinicalRecord) -> None:
    missing = record.value_missing
    measure = measure_named(definition, record.codes)
    if measure is not None and missing is not None:
        raise RecordRejected(
            OWN_VALUE, f"the {measure.id} measure needs a number of its own; it has {missing}", "required"
        )
    if missing == NO_NUMBER:
        raise RecordRejected(OWN_VALUE, "the valueQuantity has no number (valueQuantity.value)", "required")
    if measure is None:
        _check_components(definition, record)
    elif record.value_number is not None:
        _check_range(measure, record.value_number, OWN_VALUE)
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
        measure = measure_named(definition, component.codes)
        if measure is None:
            continue
        where = f"Observation.component[{component.index}].value[x]"
        if component.value_number is None:
            raise RecordRejected(
                where, f"the {measure.id} component needs a number (valueQuantity.value or valueInteger)", "required"
            )
        _check_range(measure, component.value_number, where)


def _check_range(measure: Measure, number: float, where: str) -> None:
    bounds = measure.value_range
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        low, high = bounds
        raise RecordRejected(where, f"{number:g} is outside the {measure.id} measure's range {low:g}-{high:g}", "value")
