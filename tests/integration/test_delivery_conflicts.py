"""After a 409 or a 412, a delivery re-reads what the EHR holds (the Provenance by its tag too) and settles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from pathways.fhir.outbound import for_create, key_of, transaction_bundle
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import decisions, outbox
from service.store.database import transaction
from service.usecases import delivery
from tests.delivery import decide
from tests.ehr.sekmet import SekmetServer
from tests.faults.proxy import FaultPlan, FaultProxy
from tests.stack import new_patient_id


def rendered(services: Services, decision_id: int) -> list[dict[str, Any]]:
    with transaction(services.db) as connection:
        delivery = decisions.load_delivery(connection, decision_id)
    assert delivery is not None
    return delivery.resources


def post(sekmet: SekmetServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = sekmet.auth_headers() | {"Content-Type": "application/fhir+json"}
    answer = requests.post(f"{sekmet.base_url}/{path}", json=body, headers=headers, timeout=10)
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def ehr_ids_and_outcomes(services: Services, decision_id: int) -> tuple[dict[str, str | None], list[str]]:
    with transaction(services.db) as connection:
        ids = {p.identifier: p.ehr_id for p in decisions.proposals_of_decision(connection, decision_id)}
        outcomes = [a["outcome"] for a in outbox.attempts_of(connection, decision_id)]
    return ids, outcomes


def test_after_a_412_for_duplicates_left_by_a_peer_the_re_read_finds_the_oldest_copy_of_each_provenance_included(
    stack_services: Services, sekmet: SekmetServer
) -> None:
    decision_id = decide(stack_services, new_patient_id())
    resources = rendered(stack_services, decision_id)
    # A peer's racy conditional creates left two copies of each: ifNoneExist now matches two (412).
    oldest = {key_of(r): post(sekmet, r["resourceType"], for_create(r))["id"] for r in resources}
    for resource in resources:
        post(sekmet, resource["resourceType"], for_create(resource))

    assert delivery.deliver_decision(stack_services, decision_id) == []

    ids, outcomes = ehr_ids_and_outcomes(stack_services, decision_id)
    assert ids == oldest
    assert outcomes == ["conflict", "delivered"]
    provenance = next(r for r in resources if r["resourceType"] == "Provenance")
    assert ids[key_of(provenance)] is not None


@pytest.fixture()
def conflicting(stack_settings: Settings, sekmet: SekmetServer) -> Iterator[Services]:
    """Services whose EHR answers every write 409, as a server does when a concurrent create won the race."""
    proxy = FaultProxy(f"http://127.0.0.1:{sekmet.port}", FaultPlan(write_conflict=1.0)).start()
    built = build(replace(stack_settings, ehr_base_url=proxy.url_for("/fhir")))
    yield built
    built.db.dispose()
    proxy.stop()


def test_after_a_409_the_re_read_finds_what_the_concurrent_writer_created_provenance_included(
    conflicting: Services, sekmet: SekmetServer
) -> None:
    decision_id = decide(conflicting, new_patient_id())
    resources = rendered(conflicting, decision_id)
    # The concurrent writer (another worker with the same message) wrote the decision first.
    written = post(sekmet, "", transaction_bundle(resources))
    created = {
        key_of(resource): entry["response"]["location"].split("/_history")[0].rsplit("/", 1)[-1]
        for resource, entry in zip(resources, written["entry"], strict=True)
    }

    assert delivery.deliver_decision(conflicting, decision_id) == []

    ids, outcomes = ehr_ids_and_outcomes(conflicting, decision_id)
    assert ids == created
    assert outcomes == ["conflict", "delivered"]
