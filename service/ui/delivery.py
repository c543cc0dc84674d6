"""The badge a Task shows while the EHR does not hold it as it stands here, with the EHR's reason."""

from __future__ import annotations

from dataclasses import dataclass

from service.ehr.errors import outcome_summary
from service.fhir.delivery_state import DELIVERED, FAILED, LOCAL, PENDING
from service.store.worklist import Delivery

LABELS = {PENDING: "Not yet in the EHR", FAILED: "Refused by the EHR", LOCAL: "Only in Carepath"}


@dataclass(frozen=True)
class Badge:
    state: str
    label: str
    reason: str
    decision_id: int

    @property
    def replayable(self) -> bool:
        """A dead letter waits for an administrator's replay."""
        return self.state == FAILED


def badge(delivery: Delivery) -> Badge | None:
    """None once the EHR holds the copy as it stands here."""
    state = delivery.state
    if state == DELIVERED:
        return None
    return Badge(state, LABELS[state], reason(delivery), delivery.decision_id)


def reason(delivery: Delivery) -> str:
    """Why the EHR does not hold it: its own words when it refused, else what Carepath knows."""
    state = delivery.state
    if state == FAILED:
        why = delivery.dead_reason or "dead-lettered"
        status = f" ({delivery.dead_http_status})" if delivery.dead_http_status else ""
        said = outcome_summary(delivery.dead_outcome)
        return f"{why}{status}" + (f": {said}" if said else "")
    if state == PENDING:
        return f"last try: {delivery.last_error}" if delivery.last_error else "waiting to be written"
    if delivery.outbox_status is None:
        return "no EHR was configured when it was proposed"
    return "withdrawn before it reached the EHR"
