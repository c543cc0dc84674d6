"""Carepath's own `Device` in the EHR: registered by identifier, and named as the author of what Carepath writes.

Every Task and ServiceRequest names Carepath as requester and every Provenance as agent. An EHR
that checks references on write (HAPI does by default) refuses a reference to a Device it does not
hold, so Carepath registers one (a conditional create on its identifier: never a second one) and
refers to the id the EHR gave it. Decisions are rendered with the identifier alone (`author`), since
the id is known only once the EHR has answered; the delivery adds it (`registered`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import structlog

from pathways.fhir import references
from service.ehr.client import EhrClient
from service.ehr.errors import EhrConflict, EhrUnavailable
from service.ehr.responses import oldest
from service.settings import Settings

log = structlog.get_logger(__name__)

FRIENDLY_NAME = "user-friendly-name"  # R4 device-nametype


@dataclass
class CarepathDevice:
    """Carepath's Device: its identifier and name from the settings, the EHR's id once registered (per process)."""

    system: str
    value: str
    name: str
    _reference: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> CarepathDevice:
        system, _, value = settings.device_identifier.partition("|")
        return cls(system, value, settings.device_name)

    @property
    def author(self) -> dict[str, Any]:
        """The logical Reference to Carepath that decisions are rendered with."""
        return references.logical(self.system, self.value, self.name)

    def resource(self) -> dict[str, Any]:
        """The Device as Carepath registers it."""
        return {
            "resourceType": "Device",
            "identifier": [{"system": self.system, "value": self.value}],
            "status": "active",
            "deviceName": [{"name": self.name, "type": FRIENDLY_NAME}],
        }

    def registered(self, ehr: EhrClient) -> str:
        """`Device/<EHR id>`: registered on first use in this process, then remembered.

        EhrUnavailable propagates: the caller's write waits for the EHR like any other.
        """
        with self._lock:
            if self._reference is None:
                self._reference = f"Device/{self._register(ehr)}"
                log.info("carepath device registered in the EHR", device=self._reference)
            return self._reference

    def _register(self, ehr: EhrClient) -> str:
        try:
            created = ehr.conditional_create(self.resource(), self.system, self.value)
        except EhrConflict:
            # Two matches (an earlier race on a server without a unique identifier): the oldest stands.
            matches = ehr.search_by_identifier("Device", self.system, self.value)
            if not matches:
                raise
            return str(oldest(matches)["id"])
        if created.resource_id is None:
            raise EhrUnavailable("Device created without a Location", method="POST", path="Device")
        return created.resource_id

    def naming(self, resources: list[dict[str, Any]], ehr: EhrClient) -> list[dict[str, Any]]:
        """`resources` with every reference to Carepath pointing at its registered Device as well."""
        literal = self.registered(ehr)
        return [references.with_literal(resource, self.author, literal) for resource in resources]
