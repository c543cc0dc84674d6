"""The searches FHIR clients expect, on the real app and PostgreSQL: identifiers, totals, summaries,
elements, includes, codes, modifiers, standard names, formats; and paging that holds while Tasks change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from pathways.fhir.outbound.keys import PROPOSAL_IDENTIFIER_SYSTEM
from service.app import create_app
from service.bootstrap import Services, build
from service.fhir.ehr_copy import EHR_ID_SYSTEM
from service.settings import Settings
from service.store import decisions
from service.store.database import transaction
from tests.access import bearer, token_for
from tests.copies import copies_of, decide_red_flag, seed_tasks

RED_FLAG = "urgent-red-flag-review"


@pytest.fixture(scope="module")
def app_services(stack_settings: Settings) -> Iterator[Services]:
    """The real app's services on the test database; no EHR, so decisions stay here."""
    services = build(replace(stack_settings, ehr_base_url=None))
    yield services
    services.db.dispose()


@pytest.fixture(scope="module")
def client(app_services: Services) -> FlaskClient:
    test_client = create_app(app_services.settings, services=app_services).test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = bearer(token_for(app_services, "coordinator", "cleo"))[
        "Authorization"
    ]
    return test_client


@pytest.fixture(scope="module")
def patient(app_services: Services) -> str:
    """A red-flag patient whose review Task the EHR holds as `ehr-<id>` (its id recorded as a delivery does)."""
    patient = decide_red_flag(app_services)
    with transaction(app_services.db) as connection:
        for task in copies_of(app_services, patient, "Task"):
            key = task["identifier"][0]["value"]
            decisions.record_ehr_id(connection, key, f"ehr-{task['id']}", datetime.now(UTC))
        (provenance,) = copies_of(app_services, patient, "Provenance")
        decisions.record_ehr_id(connection, provenance_key(provenance), f"ehr-{provenance['id']}", datetime.now(UTC))
    return patient


def provenance_key(provenance: dict[str, Any]) -> str:
    """R4 Provenance has no identifier: its key is a tag."""
    (key,) = [t["code"] for t in provenance["meta"]["tag"] if t["system"] == PROPOSAL_IDENTIFIER_SYSTEM]
    return str(key)


def test_a_provenance_is_found_by_its_key_and_the_ehrs_id_which_it_carries_as_tags(
    client: FlaskClient, app_services: Services, patient: str
) -> None:
    (provenance,) = copies_of(app_services, patient, "Provenance")
    key, ehr_id = provenance_key(provenance), f"ehr-{provenance['id']}"
    served = client.get(f"/fhir/Provenance/{provenance['id']}").get_json()
    assert {"system": EHR_ID_SYSTEM, "code": ehr_id} in served["meta"]["tag"] and "identifier" not in served
    for wanted in (f"{PROPOSAL_IDENTIFIER_SYSTEM}|{key}", f"{EHR_ID_SYSTEM}|{ehr_id}", ehr_id):
        assert ids(search(client, "Provenance", identifier=wanted)) == [provenance["id"]], wanted
        assert ids(search(client, "Provenance", _tag=wanted)) == ([provenance["id"]] if "|" in wanted else []), wanted


def search(client: FlaskClient, resource_type: str, **params: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{resource_type}", query_string=params)
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def review_task(app_services: Services, patient: str) -> dict[str, Any]:
    tasks = copies_of(app_services, patient, "Task")
    return next(t for t in tasks if t["code"]["coding"][0]["code"] == RED_FLAG)


def test_a_task_is_found_by_its_identifier_by_the_ehrs_id_and_by_its_id(
    client: FlaskClient, app_services: Services, patient: str
) -> None:
    task = review_task(app_services, patient)
    key = task["identifier"][0]["value"]
    assert ids(search(client, "Task", identifier=f"{PROPOSAL_IDENTIFIER_SYSTEM}|{key}")) == [task["id"]]
    escaped = key.replace("|", "\\|")  # Carepath's keys hold bars: a bare value escapes them (FHIR R4 3.1.1.5.7)
    assert ids(search(client, "Task", identifier=escaped)) == [task["id"]]
    assert ids(search(client, "Task", identifier=f"{EHR_ID_SYSTEM}|ehr-{task['id']}")) == [task["id"]]
    assert ids(search(client, "Task", identifier=f"ehr-{task['id']}")) == [task["id"]]
    assert ids(search(client, "Task", identifier=f"urn:other|{key}")) == []
    assert ids(search(client, "Task", _id=task["id"])) == [task["id"]]

    served = client.get(f"/fhir/Task/{task['id']}").get_json()
    assert {"use": "secondary", "system": EHR_ID_SYSTEM, "value": f"ehr-{task['id']}"} in served["identifier"]
    version = served["meta"]["versionId"]
    put = client.put(f"/fhir/Task/{task['id']}", json=served, headers={"If-Match": f'W/"{version}"'})
    assert put.status_code == 200, put.get_json()  # echoing the served EHR id back is no change to identifier


def test_totals_summaries_and_elements(client: FlaskClient, patient: str) -> None:
    counted = search(client, "Task", patient=patient, _summary="count")
    assert counted["total"] == 2 and not counted.get("entry")
    assert {link["relation"] for link in counted["link"]} == {"self", "first"}
    none = search(client, "Task", patient=patient, _total="none")
    assert "total" not in none and len(ids(none)) == 2
    assert search(client, "Task", patient=patient, _total="estimate")["total"] == 2
    zero = search(client, "Task", patient=patient, _count="0")
    assert zero["total"] == 2 and ids(zero) == [] and "next" not in {link["relation"] for link in zero["link"]}

    slim = search(client, "Task", patient=patient, _elements="status,priority")
    for entry in slim["entry"]:
        assert set(entry["resource"]) == {"resourceType", "id", "meta", "status", "priority"}
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} in entry[
            "resource"
        ]["meta"]["tag"]
    assert client.get("/fhir/Task", query_string={"_summary": "text"}).status_code == 400
    assert client.get("/fhir/Task", query_string={"_total": "most"}).status_code == 400


def test_includes_follow_the_focus_and_the_provenance(
    client: FlaskClient, app_services: Services, patient: str
) -> None:
    (request,) = copies_of(app_services, patient, "ServiceRequest")
    (provenance,) = copies_of(app_services, patient, "Provenance")
    both = search(client, "Task", patient=patient, _include="Task:focus", _revinclude="Provenance:target")
    assert len(ids(both)) == 2
    assert sorted(ids(both, "include")) == sorted([request["id"], provenance["id"]])
    assert ids(search(client, "Task", patient=patient, _count="1", _sort="-priority,_lastUpdated",
                      _include="Task:focus"), "include") in ([], [request["id"]])  # fmt: skip
    assert client.get("/fhir/Task", query_string={"_include": "Task:owner"}).status_code == 400
    assert client.get("/fhir/Provenance", query_string={"_include": "Task:focus"}).status_code == 400


def test_code_status_not_and_the_standard_names(client: FlaskClient, app_services: Services, patient: str) -> None:
    task = review_task(app_services, patient)
    coding = task["code"]["coding"][0]
    assert ids(search(client, "Task", patient=patient, code=f"{coding['system']}|{coding['code']}")) == [task["id"]]
    assert ids(search(client, "Task", patient=patient, code=coding["code"])) == [task["id"]]
    assert ids(search(client, "Task", patient=patient, code=f"urn:other|{coding['code']}")) == []
    assert len(ids(search(client, "Task", patient=patient, **{"status:not": "cancelled"}))) == 2
    assert ids(search(client, "Task", patient=patient, **{"status:not": "requested"})) == []

    (request,) = copies_of(app_services, patient, "ServiceRequest")
    day = request["authoredOn"][:10]
    assert ids(search(client, "ServiceRequest", patient=patient, authored=f"ge{day}")) == [request["id"]]
    assert ids(search(client, "ServiceRequest", patient=patient, **{"authored-on": f"ge{day}"})) == [request["id"]]
    assert ids(search(client, "ServiceRequest", patient=patient, authored=f"lt{day}")) == []

    (provenance,) = copies_of(app_services, patient, "Provenance")
    assert ids(search(client, "Provenance", target=f"Task/{task['id']}")) == [provenance["id"]]
    assert ids(search(client, "Provenance", target=f"ServiceRequest/{request['id']}")) == [provenance["id"]]
    assert ids(search(client, "Provenance", target="Task/no-such-task")) == []
    for claimed_before in ("status", "priority", "owner"):
        assert client.get("/fhir/Provenance", query_string={claimed_before: "x"}).status_code == 400
    assert client.get("/fhir/ServiceRequest", query_string={"owner": "x"}).status_code == 400


def test_json_formats_are_honoured_xml_is_406_and_pretty_is_indented(client: FlaskClient, patient: str) -> None:
    for form in ("json", "application/json", "application/fhir+json"):
        answer = client.get("/fhir/Task", query_string={"patient": patient, "_format": form})
        assert answer.status_code == 200 and answer.get_json()["total"] == 2
    for form in ("xml", "application/fhir+xml"):
        assert client.get("/fhir/Task", query_string={"patient": patient, "_format": form}).status_code == 406
    pretty = client.get("/fhir/Task", query_string={"patient": patient, "_pretty": "true"})
    assert pretty.status_code == 200 and pretty.get_data(as_text=True).startswith('{\n  "resourceType"')
    assert "\n" not in client.get("/fhir/Task", query_string={"patient": patient}).get_data(as_text=True).strip()


def walk(client: FlaskClient, first: str, between_pages: Any) -> list[str]:
    """Every Task id the `next` links lead to, calling `between_pages(page number)` after each page."""
    seen: list[str] = []
    url: str | None = first
    page = 0
    while url is not None:
        bundle = client.get(url.replace("http://localhost", "")).get_json()
        seen += ids(bundle)
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        url = links.get("next")
        between_pages(page)
        page += 1
    return seen


def test_paging_finds_each_task_once_while_tasks_are_created_and_claimed(
    client: FlaskClient, app_services: Services, patient: str
) -> None:
    template = review_task(app_services, patient)
    newest = datetime.now(UTC) - timedelta(days=400)  # an hour of authoredOn of their own: only these match
    walked = seed_tasks(app_services, template, 120, newest)
    window = {"authored-on": f"ge{(newest - timedelta(hours=3)).isoformat()}", "_count": "10"}
    window["authored-on"] = window["authored-on"].replace("+00:00", "Z")

    def change(page: int) -> None:
        # New Tasks land before and after the cursor; claims change status, owner and lastUpdated.
        seed_tasks(app_services, template, 3, newest - timedelta(minutes=page * 10 + 1, seconds=30))
        for task_id in (walked[(page * 7) % 120], walked[(page * 7 + 60) % 120]):
            read = client.get(f"/fhir/Task/{task_id}")
            if read.get_json()["status"] == "requested":
                claim = client.post(f"/worklist/Task/{task_id}/claim", headers={"If-Match": read.headers["ETag"]})
                assert claim.status_code == 200, claim.get_json()

    seen = walk(client, f"/fhir/Task?{'&'.join(f'{k}={v}' for k, v in window.items())}", change)
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(walked) <= set(seen)  # everything that was there throughout, once

    by_priority = walk(client, f"/fhir/Task?_sort=priority&_count=25&{'authored-on'}={window['authored-on']}", change)
    assert len(by_priority) == len(set(by_priority)) and set(walked) <= set(by_priority)


def test_a_cursor_not_made_by_this_search_is_refused(client: FlaskClient) -> None:
    assert client.get("/fhir/Task", query_string={"_cursor": "not-a-cursor"}).status_code == 400
    first = search(client, "Task", _count="1")
    following = {link["relation"]: link["url"] for link in first["link"]}["next"]
    assert client.get(following.replace("http://localhost", "")).status_code == 200
    assert client.get(following.replace("http://localhost", "") + "&_sort=status").status_code == 400
