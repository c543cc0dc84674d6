"""Register Carepath's own Device in the EHR: at `carepath subscriptions register` and at worker start.

Deliveries register it too, on first use in each process (`CarepathDevice.registered`), so a
Device registered here only spares the first delivery a round trip and shows the EHR's
administrators, before any decision, what Carepath's writes will name as their author.
"""

from __future__ import annotations

from service.bootstrap import build_ehr_client
from service.ehr.device import CarepathDevice
from service.settings import Settings


def register_device(settings: Settings) -> str | None:
    """`Device/<EHR id>` of Carepath, created unless the EHR holds it already; None without an EHR.

    EhrError propagates: the caller decides whether a start can go on without it.
    """
    ehr = build_ehr_client(settings)
    if ehr is None:
        return None
    return CarepathDevice.of(settings).registered(ehr)
