"""The composition root: settings in, every service out. Used by the API, the workers and tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from pathways.definition import SHIPPED_VERSIONS, Definition, load_definition_text
from service.ehr.auth import Auth, BearerToken, NoAuth
from service.ehr.client import EhrClient
from service.ehr.device import CarepathDevice
from service.ehr.keys import load_signing_key
from service.ehr.smart import SmartBackendAuth
from service.settings import Settings
from service.store.database import make_engine
from service.usecases.definitions.registry import DefinitionRegistry, ShippedVersion

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: sa.Engine
    definitions: DefinitionRegistry
    ehr: EhrClient | None
    clock: Clock
    device: CarepathDevice  # Carepath itself in the EHR: what its writes name as requester and author

    @property
    def definition(self) -> Definition:
        """The definition Carepath was started with (the newest it ships, or PATHWAY_DEFINITION)."""
        return self.definitions.shipped


def build(settings: Settings, *, clock: Clock = system_clock, ehr: EhrClient | None = None) -> Services:
    """Wire every dependency from settings; nothing connects until first use."""
    return Services(
        settings=settings,
        db=make_engine(settings.database_url),
        definitions=DefinitionRegistry(shipped_versions(settings), clock),
        ehr=ehr if ehr is not None else build_ehr_client(settings),
        clock=clock,
        device=CarepathDevice.of(settings),
    )


def shipped_versions(settings: Settings) -> list[ShippedVersion]:
    """The definitions Carepath runs without an upload: `PATHWAY_DEFINITION` alone, else every shipped version."""
    files = [settings.pathway_definition] if settings.pathway_definition else list(SHIPPED_VERSIONS)
    return [ShippedVersion(load_definition_text(text), text) for text in (f.read_text(encoding="utf-8") for f in files)]


def build_ehr_client(settings: Settings) -> EhrClient | None:
    """The EHR client the settings describe, or None when no EHR is configured."""
    if settings.ehr_base_url is None:
        return None
    return EhrClient(
        settings.ehr_base_url,
        auth=ehr_auth(settings),
        timeout=(settings.ehr_connect_timeout, settings.ehr_read_timeout),
    )


def ehr_auth(settings: Settings) -> Auth:
    if settings.ehr_auth == "none":
        return NoAuth()
    if settings.ehr_auth == "bearer":
        if not settings.ehr_token:
            raise ValueError("EHR_AUTH=bearer needs EHR_TOKEN")
        return BearerToken(settings.ehr_token)
    if settings.ehr_auth == "smart":
        return smart_auth(settings)
    raise ValueError(f"EHR_AUTH must be none, bearer or smart, not {settings.ehr_auth!r}")


def smart_auth(settings: Settings) -> SmartBackendAuth:
    """SMART Backend Services auth; reads the key now, so a bad one stops start-up, not a delivery."""
    base_url, client_id, key_file = settings.ehr_base_url, settings.ehr_client_id, settings.ehr_private_key_file
    if not (base_url and client_id and key_file):
        named = {"EHR_BASE_URL": base_url, "EHR_CLIENT_ID": client_id, "EHR_PRIVATE_KEY_FILE": key_file}
        raise ValueError(f"EHR_AUTH=smart needs {', '.join(name for name, value in named.items() if not value)}")
    return SmartBackendAuth(
        base_url,
        client_id=client_id,
        key=load_signing_key(key_file, kid=settings.ehr_key_id),
        scopes=settings.ehr_scopes,
        token_url=settings.ehr_token_url,
        timeout=(settings.ehr_connect_timeout, settings.ehr_read_timeout),
    )
