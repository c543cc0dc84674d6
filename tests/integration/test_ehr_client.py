"""EhrClient against a real FHIR R4 server (SEKMET): idempotent writes, conflicts, outages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from pathways.fhir.outbound import token_criteria
from service.ehr import BearerToken, EhrClient, EhrConflict, EhrRejected, EhrUnavailable
from tests.ehr.sekmet import SekmetServer, sekmet_server

pytestmark = pytest.mark.integration

SYSTEM = "urn:example:carepath:test"
TAG_SYSTEM = "urn:example:carepath:provenance"
CONCURRENT_WRITERS = 10


@pytest.fixture(scope="module")
def ehr_server() -> Iterator[SekmetServer]:
    yield from sekmet_server()


@pytest.fixture()
def ehr(ehr_server: SekmetServer) -> Iterator[EhrClient]:
    with client_for(ehr_server) as client:
        yield client


def client_for(server: SekmetServer, token: str | None = None) -> EhrClient:
    return EhrClient(server.base_url, auth=BearerToken(token or server.token), timeout=(3.05, 10.0))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def task(value: str, status: str = "requested") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "status": status,
        "intent": "proposal",
        "identifier": [{"system": SYSTEM, "value": value}],
        "for": {"reference": "Patient/p1"},
    }


def write_bundle(key: str) -> dict[str, Any]:
    """ServiceRequest, the Task that focuses it and their Provenance, each a conditional create."""
    request_urn, task_urn = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    service_request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "proposal",
        "identifier": [{"system": SYSTEM, "value": f"{key}/imaging"}],
        "subject": {"reference": "Patient/p1"},
    }
    focused_task = {**task(f"{key}/imaging-task"), "focus": {"reference": request_urn}}
    # R4 Provenance has no identifier: a deterministic meta.tag makes its create conditional.
    provenance = {
        "resourceType": "Provenance",
        "meta": {"tag": [{"system": TAG_SYSTEM, "code": key}]},
        "target": [{"reference": task_urn}],
        "recorded": "2026-01-01T00:00:00Z",
        "agent": [{"who": {"display": "Carepath"}}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            entry(request_urn, service_request, token_criteria("identifier", SYSTEM, f"{key}/imaging")),
            entry(task_urn, focused_task, token_criteria("identifier", SYSTEM, f"{key}/imaging-task")),
            entry(f"urn:uuid:{uuid.uuid4()}", provenance, token_criteria("_tag", TAG_SYSTEM, key)),
        ],
    }


def entry(full_url: str, resource: dict[str, Any], if_none_exist: str) -> dict[str, Any]:
    request = {"method": "POST", "url": resource["resourceType"], "ifNoneExist": if_none_exist}
    return {"fullUrl": full_url, "resource": resource, "request": request}


def seed_duplicates(ehr: EhrClient, value: str) -> None:
    """Two resources with one identifier, as another system could leave them."""
    for _ in range(2):
        client_id = unique("dup")
        ehr.update("Task", client_id, {**task(value), "id": client_id})


def test_conditional_create_twice_makes_one_resource_first_201_then_200_with_the_same_id(
    ehr: EhrClient, ehr_server: SekmetServer
) -> None:
    value = unique("twice")
    first = ehr.conditional_create(task(value), SYSTEM, value)
    second = ehr.conditional_create(task(value), SYSTEM, value)
    assert (first.status, first.created, first.version_id) == (201, True, "1")
    assert (second.status, second.created) == (200, False)
    assert first.resource_id is not None and second.resource_id == first.resource_id
    assert ehr_server.count("Task", identifier=f"{SYSTEM}|{value}") == 1


def test_identifier_values_with_search_specials_still_match_their_own_resource(
    ehr: EhrClient, ehr_server: SekmetServer
) -> None:
    value = unique("p1,imaging|v3")
    first = ehr.conditional_create(task(value), SYSTEM, value)
    second = ehr.conditional_create(task(value), SYSTEM, value)
    assert (first.status, second.status, second.resource_id) == (201, 200, first.resource_id)
    assert [t["id"] for t in ehr.search_by_identifier("Task", SYSTEM, value)] == [first.resource_id]


def test_ten_concurrent_conditional_create_transactions_leave_exactly_one_of_each_resource(
    ehr_server: SekmetServer,
) -> None:
    # Through a transaction: SEKMET 0.1.1 checks and inserts a bare If-None-Exist POST in two
    # steps, so simultaneous bare POSTs can duplicate; a transaction Bundle is atomic there.
    key = unique("race")
    start = threading.Barrier(CONCURRENT_WRITERS)

    def deliver() -> list[str]:
        with client_for(ehr_server) as client:  # one client per writer, as separate workers have
            start.wait()
            response = client.transaction(write_bundle(key))
        return [e["response"]["status"] for e in response["entry"]]

    with ThreadPoolExecutor(CONCURRENT_WRITERS) as pool:
        statuses = list(pool.map(lambda _: deliver(), range(CONCURRENT_WRITERS)))
    assert sorted(statuses) == [["200 OK"] * 3] * (CONCURRENT_WRITERS - 1) + [["201 Created"] * 3]
    assert ehr_server.count("ServiceRequest", identifier=f"{SYSTEM}|{key}/imaging") == 1
    assert ehr_server.count("Task", identifier=f"{SYSTEM}|{key}/imaging-task") == 1
    assert ehr_server.count("Provenance", _tag=f"{TAG_SYSTEM}|{key}") == 1


def test_a_transaction_sent_twice_leaves_one_service_request_task_and_provenance(
    ehr: EhrClient, ehr_server: SekmetServer
) -> None:
    key = unique("tx")
    first = ehr.transaction(write_bundle(key))
    second = ehr.transaction(write_bundle(key))
    assert first["type"] == second["type"] == "transaction-response"
    assert [e["response"]["status"] for e in first["entry"]] == ["201 Created"] * 3
    assert [e["response"]["status"] for e in second["entry"]] == ["200 OK"] * 3
    assert ehr_server.count("ServiceRequest", identifier=f"{SYSTEM}|{key}/imaging") == 1
    assert ehr_server.count("Task", identifier=f"{SYSTEM}|{key}/imaging-task") == 1
    assert ehr_server.count("Provenance", _tag=f"{TAG_SYSTEM}|{key}") == 1
    request_id = first["entry"][0]["resource"]["id"]
    (stored_task,) = ehr.search_by_identifier("Task", SYSTEM, f"{key}/imaging-task")
    assert stored_task["focus"] == {"reference": f"ServiceRequest/{request_id}"}


def test_a_failing_transaction_is_rolled_back_and_rejected_with_its_outcome(
    ehr: EhrClient, ehr_server: SekmetServer
) -> None:
    key = unique("rollback")
    bundle = write_bundle(key)
    bundle["entry"][2]["resource"]["unknownElement"] = True
    with pytest.raises(EhrRejected) as caught:
        ehr.transaction(bundle)
    assert caught.value.status == 400
    assert caught.value.outcome is not None and caught.value.outcome["issue"][0]["code"] == "structure"
    assert ehr_server.count("Task", identifier=f"{SYSTEM}|{key}/imaging-task") == 0


def test_duplicates_in_the_ehr_make_conditional_creates_conflict_and_a_re_read_finds_both(ehr: EhrClient) -> None:
    value = unique("dup")
    seed_duplicates(ehr, value)
    with pytest.raises(EhrConflict) as caught:
        ehr.conditional_create(task(value), SYSTEM, value)
    assert caught.value.status == 412 and "multiple-matches" in str(caught.value)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry("urn:uuid:x", task(value), token_criteria("identifier", SYSTEM, value))],
    }
    with pytest.raises(EhrConflict):
        ehr.transaction(bundle)
    assert len(ehr.search_by_identifier("Task", SYSTEM, value)) == 2


def test_a_stale_if_match_conflicts_and_the_current_version_wins(ehr: EhrClient) -> None:
    value = unique("versioned")
    created = ehr.conditional_create(task(value), SYSTEM, value)
    assert created.resource_id is not None and created.version_id == "1"
    current = ehr.read("Task", created.resource_id)
    updated = ehr.update("Task", created.resource_id, {**current, "status": "received"}, if_match=created.version_id)
    assert updated["meta"]["versionId"] == "2"
    with pytest.raises(EhrConflict) as caught:
        ehr.update("Task", created.resource_id, {**current, "status": "cancelled"}, if_match="1")
    assert caught.value.status == 412
    replace_status = [{"op": "replace", "path": "/status", "value": "accepted"}]
    with pytest.raises(EhrConflict):
        ehr.patch_json("Task", created.resource_id, replace_status, if_match='W/"1"')
    assert ehr.patch_json("Task", created.resource_id, replace_status, if_match='W/"2"')["status"] == "accepted"


def test_an_invalid_resource_is_rejected_with_the_ehrs_operation_outcome(ehr: EhrClient) -> None:
    value = unique("invalid")
    with pytest.raises(EhrRejected) as caught:
        ehr.conditional_create({**task(value), "unknownElement": 1}, SYSTEM, value)
    assert caught.value.status == 400 and "Task.unknownElement" in str(caught.value)


def test_a_wrong_token_is_rejected_with_401_and_never_shown(ehr_server: SekmetServer) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    with client_for(ehr_server, token=wrong) as client, pytest.raises(EhrRejected) as caught:
        client.read("Task", "anything")
    assert caught.value.status == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value.outcome)


def test_reading_a_deleted_resource_is_rejected_with_410(ehr: EhrClient, ehr_server: SekmetServer) -> None:
    value = unique("deleted")
    created = ehr.conditional_create(task(value), SYSTEM, value)
    url = f"{ehr_server.base_url}/Task/{created.resource_id}"
    requests.delete(url, headers=ehr_server.auth_headers(), timeout=10).raise_for_status()
    with pytest.raises(EhrRejected) as caught:
        ehr.read("Task", str(created.resource_id))
    assert caught.value.status == 410


def test_read_reference_reads_the_absolute_focus_a_notification_carries(ehr: EhrClient) -> None:
    value = unique("focus")
    created = ehr.conditional_create(task(value), SYSTEM, value)
    focus = f"{ehr.base_url}/Task/{created.resource_id}"
    assert ehr.read_reference(focus)["identifier"][0]["value"] == value


def test_read_reference_naming_a_version_reads_that_version_after_later_updates(ehr: EhrClient) -> None:
    value = unique("versioned")
    id = str(ehr.conditional_create(task(value), SYSTEM, value).resource_id)
    second = ehr.update("Task", id, {**task(value, "accepted"), "id": id})
    ehr.update("Task", id, {**task(value, "in-progress"), "id": id})
    focus = f"{ehr.base_url}/Task/{id}/_history/{second['meta']['versionId']}"

    read = ehr.read_reference(focus)

    assert (read["status"], read["meta"]["versionId"]) == ("accepted", second["meta"]["versionId"])
    assert ehr.read_reference(f"{ehr.base_url}/Task/{id}")["status"] == "in-progress"


def test_a_version_the_ehr_never_had_is_rejected_as_not_found(ehr: EhrClient) -> None:
    value = unique("no-such-version")
    id = str(ehr.conditional_create(task(value), SYSTEM, value).resource_id)
    with pytest.raises(EhrRejected) as caught:
        ehr.read_reference(f"Task/{id}/_history/999")
    assert caught.value.status == 404


def test_search_follows_next_links_to_the_last_page(ehr: EhrClient) -> None:
    system = f"urn:example:{unique('paging')}"
    for index in range(5):
        resource = {**task(str(index)), "identifier": [{"system": system, "value": str(index)}]}
        ehr.conditional_create(resource, system, str(index))
    found = ehr.search("Task", [("identifier", f"{system}|"), ("_count", "2")])
    assert sorted(t["identifier"][0]["value"] for t in found) == ["0", "1", "2", "3", "4"]


def test_the_ehr_advertises_transactions_and_answers_pings(ehr: EhrClient) -> None:
    ehr.ping()
    assert ehr.supports_transactions()
    assert ehr.capabilities()["fhirVersion"] == "4.0.1"


def test_a_stopped_ehr_is_unavailable_and_a_restart_on_the_same_port_keeps_file_data(tmp_path: Path) -> None:
    server = SekmetServer(db_path=tmp_path / "ehr.db").start()
    try:
        value = unique("restart")
        with client_for(server) as client:
            created = client.conditional_create(task(value), SYSTEM, value)
            server.stop()
            with pytest.raises(EhrUnavailable):
                client.ping()
            with pytest.raises(EhrUnavailable):
                client.conditional_create(task(value), SYSTEM, value)
            base_url = server.base_url
            server.start()
            again = client.conditional_create(task(value), SYSTEM, value)
        assert server.base_url == base_url
        assert (again.status, again.resource_id) == (200, created.resource_id)
    finally:
        server.close()
