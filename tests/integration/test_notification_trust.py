"""Only the EHR speaks for a subscription, and no notification chooses where Carepath connects (SEKMET, real API)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from service.bootstrap import Services
from service.store.tables import inbound_events
from tests.access import bearer, token_for
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer, free_port
from tests.integration import test_notifications
from tests.integration.test_notifications import (
    FHIR_JSON,
    carepath,
    deliver,
    ehr_put,
    nothing_taken,
    notification,
    numbers_seen,
    red_flag_task_in_ehr,
    register,
    silenced_red_flag,
    silenced_subscription,
    stored,
)
from tests.processes import wait_until
from tests.stack import new_patient_id

# The same fixtures as the notification tests: their own API and worker, and subscriptions switched off after.
api = test_notifications.api
registered = test_notifications.registered

FORGED_FAR_NUMBER = 2_147_483_648  # the number that once marked every event up to it as handled


class Listener:
    """A plain HTTP server on another port that records every request it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str | None]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                received.append((self.command, self.path, self.headers.get("Authorization")))
                body = json.dumps({"resourceType": "Observation", "id": "x", "status": "final"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", FHIR_JSON)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def listener() -> Iterator[Listener]:
    with Listener() as running:
        yield running


def with_focus(body: dict[str, Any], focus: str) -> dict[str, Any]:
    """The notification with its first event's focus replaced by `focus`."""
    for parameter in body["entry"][0]["resource"]["parameter"]:
        if parameter["name"] == "notification-event":
            parameter["part"][2]["valueReference"]["reference"] = focus
            return body
    raise AssertionError("no notification-event")


def test_a_focus_naming_another_host_before_a_backslash_refuses_the_notification_and_that_host_hears_nothing(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str], listener: Listener
) -> None:
    forged = silenced_red_flag(api, stack_services, sekmet, registered)
    patient, subscription, body = forged.patient, forged.subscription, forged.body
    ehr_host = sekmet.base_url.removeprefix("http://")
    body = with_focus(body, f"http://127.0.0.1:{listener.port}\\@{ehr_host}/Observation/x")
    ehr_token = token_for(stack_services, "ehr")

    for credential in (subscription.secret, ehr_token):
        refused = deliver(api, body, credential)
        assert refused.status_code == 400, refused.text
        assert refused.json()["issue"][0]["expression"] == [
            "Bundle.entry[0].resource.parameter[5].part[2].valueReference"
        ]
    assert listener.received == []
    assert nothing_taken(stack_services, patient, subscription.subscription_id)


def test_a_caller_without_the_secret_is_refused_before_its_content_is_read_and_learns_nothing_of_the_ehr(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str], listener: Listener
) -> None:
    forged = silenced_red_flag(api, stack_services, sekmet, registered)
    patient, subscription, body = forged.patient, forged.subscription, forged.body
    foreign = json.dumps(with_focus(body, f"http://127.0.0.1:{listener.port}/Observation/x"))
    ehr_host = str(urlsplit(sekmet.base_url).hostname)
    json_headers = {"Content-Type": FHIR_JSON}
    attempts = [
        ("POST", "/notifications", foreign, json_headers),
        ("POST", "/notifications", "{not json", json_headers),
        ("POST", "/notifications", foreign, {"Content-Type": "text/plain"}),
        ("POST", "/notifications", json.dumps({"resourceType": "Bundle", "entry": [{"fullUrl": []}]}), json_headers),
        ("PUT", "/notifications/Observation/x", "{not json", json_headers),
    ]

    for method, path, data, headers in attempts:
        for credential in ({}, {"Authorization": "Bearer not-a-secret"}):
            refused = requests.request(method, f"{api}{path}", data=data, headers=headers | credential, timeout=30)
            assert refused.status_code == 401, (method, path, data[:40], refused.text)
            assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="carepath"')
            assert ehr_host not in refused.text
    assert listener.received == []
    assert nothing_taken(stack_services, patient, subscription.subscription_id)

    with_secret = deliver(api, json.loads(foreign), subscription.secret)
    assert with_secret.status_code == 400
    assert "not on the EHR's base URL" in with_secret.text and ehr_host not in with_secret.text


def test_forged_event_numbers_cannot_silence_the_ehrs_real_notification_of_a_red_flag(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    subscription = register(stack_services, f"{api}/notifications", patient, registered)
    bystander = ehr_put(sekmet, measure(new_patient_id(), PAIN, 3, "2026-01-05T10:00:00Z"))  # no subscription of ours
    ehr_token = token_for(stack_services, "ehr")

    def forged(number: int) -> dict[str, Any]:
        return notification(sekmet.base_url, subscription.subscription_id, "event-notification", number,
                            [(number, bystander)])  # fmt: skip

    for number in range(1, 21):
        answer = deliver(api, forged(number), ehr_token)
        assert answer.status_code == 200, answer.text
        assert "not counted" in answer.json()["issue"][0]["diagnostics"]
    assert deliver(api, forged(FORGED_FAR_NUMBER), ehr_token).status_code == 200
    far = deliver(api, forged(FORGED_FAR_NUMBER), subscription.secret)  # even with the secret: too far
    assert far.status_code == 200 and "not counted" in far.json()["issue"][0]["diagnostics"]
    assert deliver(api, forged(2**63), ehr_token).status_code == 400
    assert deliver(api, forged(2**63), subscription.secret).status_code == 400
    assert numbers_seen(stack_services, subscription.subscription_id) == []

    start = datetime.now(UTC) - timedelta(days=3)
    ehr_put(sekmet, pt_visit(patient, start))
    flag = ehr_put(sekmet, finding(patient, CAUDA_EQUINA, start + timedelta(days=1)))
    flag_stored = ("notification", "Observation", flag["id"])
    wait_until(lambda: flag_stored in stored(stack_services, patient), 30, what="the EHR's notification of the flag")

    wait_until(lambda: red_flag_task_in_ehr(sekmet, patient), 60, what="the red-flag Task in the EHR")
    assert numbers_seen(stack_services, subscription.subscription_id) == [1, 2]


def test_an_ehr_token_may_put_a_resource_as_a_direct_event_but_not_ping_a_subscription(
    api: str, stack_services: Services
) -> None:
    patient = new_patient_id()
    pain = measure(patient, PAIN, 6, "2026-01-05T10:00:00Z")
    headers = {**bearer(token_for(stack_services, "ehr")), "Content-Type": FHIR_JSON}
    url = f"{api}/notifications/Observation/{pain['id']}"

    assert requests.put(url, data=json.dumps(pain), headers=headers, timeout=30).status_code == 200
    assert stored(stack_services, patient) == [("api", "Observation", pain["id"])]
    ping = requests.post(f"{api}/notifications", data=b"", headers=headers, timeout=30)
    assert ping.status_code == 401
    assert ping.headers["WWW-Authenticate"] == 'Bearer realm="carepath", error="invalid_token"'


@pytest.mark.parametrize(
    ("method", "path", "authorization", "challenge"),
    [
        ("POST", "/notifications", None, 'Bearer realm="carepath"'),
        ("POST", "/notifications", "Bearer not-a-secret", 'Bearer realm="carepath", error="invalid_token"'),
        (
            "PUT",
            "/notifications/Observation/o1",
            "Bearer not-a-secret",
            'Bearer realm="carepath", error="invalid_token"',
        ),
        ("GET", "/fhir/Task", None, 'Bearer realm="carepath"'),
        ("GET", "/admin/tokens", "Bearer not-a-token", 'Bearer realm="carepath", error="invalid_token"'),
    ],
)
def test_every_401_says_how_to_authenticate(
    api: str, method: str, path: str, authorization: str | None, challenge: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = requests.request(method, f"{api}{path}", data=b"", headers=headers, timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == challenge


def test_rotating_a_secret_refuses_the_old_one_and_gives_the_ehr_the_new_one(
    api: str, stack_env: dict[str, str], stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    subscription = register(stack_services, f"{api}/notifications", patient, registered)
    result = carepath(stack_env, "rotate", subscription.subscription_id)
    assert result.returncode == 0, result.stderr
    assert subscription.secret not in result.stdout + result.stderr

    url = f"{sekmet.base_url}/Subscription/{subscription.subscription_id}"
    headers = requests.get(url, headers=sekmet.auth_headers(), timeout=10).json()["channel"]["header"]
    [new_secret] = [h.removeprefix("Authorization: Bearer ") for h in headers if h.startswith("Authorization:")]
    heartbeat = notification(sekmet.base_url, subscription.subscription_id, "heartbeat", 0)
    assert deliver(api, heartbeat, subscription.secret).status_code == 401
    assert deliver(api, heartbeat, new_secret).status_code == 200


def test_a_forged_copy_under_the_same_id_and_version_cannot_shadow_the_ehrs_real_red_flag(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    register(stack_services, f"{api}/notifications", patient, registered)
    start = datetime.now(UTC) - timedelta(days=3)
    ehr_put(sekmet, pt_visit(patient, start))
    real = finding(patient, CAUDA_EQUINA, start + timedelta(days=1))
    harmless = dict(measure(patient, PAIN, 2, "2026-01-05T10:00:00Z"), id=real["id"], meta={"versionId": "1"})
    headers = {**bearer(token_for(stack_services, "ehr")), "Content-Type": FHIR_JSON}
    forged = requests.put(f"{api}/notifications/Observation/{real['id']}", data=json.dumps(harmless), headers=headers,
                          timeout=30)  # fmt: skip
    assert forged.status_code == 200, forged.text

    written = ehr_put(sekmet, real)
    assert written["meta"]["versionId"] == "1"  # the same id and version as the forged copy
    real_stored = ("notification", "Observation", real["id"])
    wait_until(lambda: real_stored in stored(stack_services, patient), 30, what="the EHR's version of the flag")
    wait_until(lambda: red_flag_task_in_ehr(sekmet, patient), 60, what="the red-flag Task in the EHR")


def test_a_focus_naming_a_version_stores_that_version_even_after_the_resource_changed_again(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient, subscription = silenced_subscription(api, stack_services, sekmet, registered)
    first = ehr_put(sekmet, measure(patient, PAIN, 7, "2026-01-05T10:00:00Z"))
    second = ehr_put(sekmet, measure(patient, PAIN, 6, "2026-01-12T10:00:00Z") | {"id": first["id"]})
    third = ehr_put(sekmet, measure(patient, PAIN, 5, "2026-01-19T10:00:00Z") | {"id": first["id"]})
    assert len({first["meta"]["versionId"], second["meta"]["versionId"], third["meta"]["versionId"]}) == 3
    body = notification(sekmet.base_url, subscription.subscription_id, "event-notification", 1, [(1, second)])
    versioned = f"{sekmet.base_url}/Observation/{first['id']}/_history/{second['meta']['versionId']}"

    answer = deliver(api, with_focus(body, versioned), subscription.secret)

    assert answer.status_code == 200, answer.text
    assert stored_versions(stack_services, patient) == [second["meta"]["versionId"]]
    assert numbers_seen(stack_services, subscription.subscription_id) == [1]


def test_a_focus_naming_a_version_that_is_not_a_fhir_id_is_refused_and_nothing_is_read(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    forged = silenced_red_flag(api, stack_services, sekmet, registered)
    focus = f"{sekmet.base_url}/Observation/{forged.flag['id']}/_history/{'9' * 65}"

    refused = deliver(api, with_focus(forged.body, focus), forged.subscription.secret)

    assert refused.status_code == 400, refused.text
    assert nothing_taken(stack_services, forged.patient, forged.subscription.subscription_id)


def stored_versions(services: Services, patient: str) -> list[str | None]:
    with services.db.connect() as connection:
        rows = connection.execute(sa.select(inbound_events.c.version_id).where(inbound_events.c.patient_id == patient))
        return [row.version_id for row in rows]
