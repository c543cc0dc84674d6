"""Subscription notifications from a real EHR (SEKMET) into Carepath's own API and worker processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask.testing import FlaskClient

from service.app import create_app
from service.bootstrap import Services, build
from service.settings import Settings
from service.store import subscriptions as store
from service.store.access_tables import audit_event_entities, audit_events
from service.store.database import transaction, try_exclusive
from service.store.subscription_tables import subscription_events
from service.store.tables import inbound_events
from service.usecases.notifications import reactivation, registration
from service.usecases.notifications.auth import secret_hash
from tests.builders import CAUDA_EQUINA, PAIN, finding, measure, pt_visit
from tests.ehr.sekmet import SekmetServer, free_port
from tests.processes import ROOT, CarepathProcess, start_api, start_worker, wait_until
from tests.stack import new_patient_id
from tests.topic import TOPIC_FILE, patient_filters

TOPIC = json.loads(TOPIC_FILE.read_text())
TOPIC_URL = "https://carepath.dev/fhir/SubscriptionTopic/pt-intake"
FHIR_JSON = "application/fhir+json"
GAP_GRACE_SECONDS = 3  # short enough to wait for, long enough that a gap is seen open first
HEARTBEAT_GRACE = 3  # SEKMET checks heartbeats once a second, so a 1 s heartbeat may come 2 s apart
GRACE = timedelta(seconds=300)  # SECRET_GRACE_SECONDS' default
SHORT_GRACE_SECONDS = 2.0  # short enough to wait out


@pytest.fixture(scope="module")
def api(stack_env: dict[str, str]) -> Iterator[str]:
    """`carepath worker` and `carepath serve` as separate processes; yields the API base URL."""
    env = dict(stack_env, GAP_GRACE_SECONDS=str(GAP_GRACE_SECONDS), HEARTBEAT_GRACE_SECONDS=str(HEARTBEAT_GRACE))
    worker = start_worker(env, name="notifications-worker")
    server, base = start_api(env, name="notifications-api")
    processes: list[CarepathProcess] = [worker, server]
    yield base
    for process in processes:
        process.stop()


@pytest.fixture()
def registered(stack_services: Services, sekmet: SekmetServer) -> Iterator[list[str]]:
    """Subscriptions a test registers; switched off afterwards, here and on the EHR."""
    ids: list[str] = []
    yield ids
    for subscription_id in ids:
        silence(sekmet, subscription_id)
        with transaction(stack_services.db) as connection:
            store.update(connection, subscription_id, datetime.now(UTC), status=store.OFF)


def register(
    services: Services, endpoint: str, patient: str, ids: list[str], **changes: Any
) -> registration.Registered:
    """Register through the module the CLI uses (the secret is only needed to forge notifications)."""
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "payload": "id-only",
        "topic": TOPIC_URL,
        "filters": patient_filters(patient),
    }
    request = registration.Request(**{**values, **changes})
    assert services.ehr is not None
    result = registration.register(services.db, services.ehr, request, services.clock(), TOPIC)
    ids.append(result.subscription_id)
    # SEKMET sends the handshake asynchronously; switching it off before that lands would be undone.
    assert registration.wait_for_activation(services.ehr, result.subscription_id, 10)["status"] == "active"
    return result


def silence(sekmet: SekmetServer, subscription_id: str) -> None:
    """Switch the Subscription off on the EHR: from now on only the test sends notifications."""
    url = f"{sekmet.base_url}/Subscription/{subscription_id}"
    current = requests.get(url, headers=sekmet.auth_headers(), timeout=10).json()
    current = dict(current, status="off")
    current.pop("error", None)
    response = requests.put(url, json=current, headers={**sekmet.auth_headers(), "Content-Type": FHIR_JSON}, timeout=10)
    response.raise_for_status()


def ehr_status(sekmet: SekmetServer, subscription_id: str) -> str:
    url = f"{sekmet.base_url}/Subscription/{subscription_id}"
    return str(requests.get(url, headers=sekmet.auth_headers(), timeout=10).json()["status"])


def ehr_put(sekmet: SekmetServer, resource: dict[str, Any]) -> dict[str, Any]:
    """Write a resource directly to the EHR under its own id."""
    return sekmet.put(resource)


def ehr_tasks(sekmet: SekmetServer, patient: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{sekmet.base_url}/Task", params={"patient": f"Patient/{patient}"}, headers=sekmet.auth_headers(), timeout=10
    )
    response.raise_for_status()
    return [e["resource"] for e in response.json().get("entry", [])]


def notification(
    base_url: str, subscription_id: str, kind: str, count: int, events: list[tuple[int, dict[str, Any]]] = ()
) -> dict[str, Any]:
    """A Backport R4 notification shaped exactly like SEKMET's own (id-only, patient as context)."""
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{base_url}/Subscription/{subscription_id}"}},
        {"name": "topic", "valueCanonical": TOPIC_URL},
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(count)},
    ]
    for number, focus in events:
        parts = [
            {"name": "event-number", "valueString": str(number)},
            {"name": "timestamp", "valueInstant": stamp},
            {"name": "focus", "valueReference": {"reference": f"{base_url}/{focus['resourceType']}/{focus['id']}"}},
            {
                "name": "additional-context",
                "valueReference": {"reference": f"{base_url}/{focus['subject']['reference']}"},
            },
        ]
        parameters.append({"name": "notification-event", "part": parts})
    status = {"resourceType": "Parameters", "id": "status", "parameter": parameters}
    return {"resourceType": "Bundle", "type": "history", "timestamp": stamp, "entry": [{"resource": status}]}


def deliver(base: str, body: dict[str, Any], secret: str | None) -> requests.Response:
    headers = {"Content-Type": f"{FHIR_JSON}; charset=utf-8"}
    if secret is not None:
        headers["Authorization"] = f"Bearer {secret}"
    return requests.post(f"{base}/notifications", data=json.dumps(body), headers=headers, timeout=30)


def red_flag_task_in_ehr(sekmet: SekmetServer, patient: str) -> bool:
    codes = [t["code"]["coding"][0]["code"] for t in ehr_tasks(sekmet, patient)]
    return "urgent-red-flag-review" in codes


def nothing_taken(services: Services, patient: str, subscription_id: str) -> bool:
    """True when no event of the patient was stored and no event number of the subscription counted."""
    return stored(services, patient) == [] and numbers_seen(services, subscription_id) == []


def stored(services: Services, patient: str) -> list[tuple[str, str, str]]:
    """(channel, type, id) of every inbound event of a patient."""
    with services.db.connect() as connection:
        rows = connection.execute(
            sa.select(inbound_events.c.channel, inbound_events.c.resource_type, inbound_events.c.resource_id)
            .where(inbound_events.c.patient_id == patient)
            .order_by(inbound_events.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def numbers_seen(services: Services, subscription_id: str) -> list[int]:
    with services.db.connect() as connection:
        query = sa.select(subscription_events.c.event_number).where(
            subscription_events.c.subscription_id == subscription_id
        )
        return sorted(connection.execute(query).scalars())


def gaps(services: Services, subscription_id: str) -> list[store.Gap]:
    with services.db.connect() as connection:
        return store.gaps(connection, subscription_id)


def carepath(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "subscriptions", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- the whole loop --------------------------------------------------------------------------------


def test_a_red_flag_written_to_the_ehr_reaches_carepath_by_id_only_notification_and_returns_as_a_task(
    api: str, stack_env: dict[str, str], stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    result = carepath(
        stack_env,
        "register",
        "--topic", TOPIC_URL,
        *[argument for text in patient_filters(patient) for argument in ("--filter", text)],
        "--endpoint", f"{api}/notifications",
        "--payload", "id-only",
        "--heartbeat", "60",
        "--topic-resource", str(TOPIC_FILE),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [subscription_id] = [
        line.removeprefix("Subscription/") for line in result.stdout.splitlines() if line.startswith("Subscription/")
    ]
    registered.append(subscription_id)
    assert "EHR status: active" in result.stdout  # SEKMET activates only after Carepath accepted its handshake
    [device] = [line.rsplit(" ", 1)[-1] for line in result.stdout.splitlines() if line.startswith("Carepath's Device")]
    assert requests.get(f"{sekmet.base_url}/{device}", headers=sekmet.auth_headers(), timeout=10).status_code == 200
    assert "Bearer" not in result.stdout + result.stderr

    start = datetime.now(UTC) - timedelta(days=3)
    visit = ehr_put(sekmet, pt_visit(patient, start))
    flag = ehr_put(sekmet, finding(patient, CAUDA_EQUINA, start + timedelta(days=1)))

    wait_until(lambda: red_flag_task_in_ehr(sekmet, patient), 60, what="the red-flag Task in the EHR")
    assert sorted(stored(stack_services, patient)) == sorted(
        [("notification", "Encounter", visit["id"]), ("notification", "Observation", flag["id"])]
    )
    assert numbers_seen(stack_services, subscription_id) == [1, 2]
    status = carepath(stack_env, "status", subscription_id)
    assert status.returncode == 0, status.stderr
    assert "events: 2 contiguous of 2 known" in status.stdout
    assert "EHR $status: active, 2 event(s) since start" in status.stdout
    assert subscription_id in carepath(stack_env, "list").stdout


@pytest.mark.parametrize(
    ("payload", "channel"),
    [
        ("full-resource", "notification"),  # the EHR PUTs {endpoint}/Observation/{id} with the resource
        ("empty", "notification-search"),  # the EHR POSTs nothing; Carepath re-runs the criteria
    ],
)
def test_a_classic_rest_hook_notification_stores_the_matching_resource(
    payload: str, channel: str, api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    criteria = f"Observation?patient=Patient/{patient}"
    register(stack_services, f"{api}/notifications", patient, registered, topic=None, filters=(),
             criteria=criteria, payload=payload)  # fmt: skip
    pain = ehr_put(sekmet, measure(patient, PAIN, 7, "2026-01-05T10:00:00Z"))
    wait_until(lambda: bool(stored(stack_services, patient)), 30, what="the notified resource to be stored")
    assert stored(stack_services, patient) == [(channel, "Observation", pain["id"])]


# -- authentication, duplicates, gaps --------------------------------------------------------------------


@dataclass(frozen=True)
class Forgeable:
    """A silenced subscription of a new patient, a red flag written to the EHR, and its notification (to alter)."""

    patient: str
    subscription: registration.Registered
    flag: dict[str, Any]
    body: dict[str, Any]


def silenced_subscription(
    api: str, services: Services, sekmet: SekmetServer, registered: list[str]
) -> tuple[str, registration.Registered]:
    """A new patient and a subscription to it whose notifications the EHR does not send (the test does)."""
    patient = new_patient_id()
    subscription = register(services, f"{api}/notifications", patient, registered)
    silence(sekmet, subscription.subscription_id)
    return patient, subscription


def silenced_red_flag(api: str, services: Services, sekmet: SekmetServer, registered: list[str]) -> Forgeable:
    """What a test needs to send its own notification of a red flag, with the EHR's own one switched off."""
    patient, subscription = silenced_subscription(api, services, sekmet, registered)
    flag = ehr_put(sekmet, finding(patient, CAUDA_EQUINA, "2026-01-05T10:00:00Z"))
    body = notification(sekmet.base_url, subscription.subscription_id, "event-notification", 1, [(1, flag)])
    return Forgeable(patient, subscription, flag, body)


def test_a_notification_with_a_wrong_or_missing_secret_is_refused_and_stores_nothing(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    forged = silenced_red_flag(api, stack_services, sekmet, registered)
    patient, subscription, flag, body = forged.patient, forged.subscription, forged.flag, forged.body
    unknown = notification(sekmet.base_url, "carepath-unknown", "event-notification", 1, [(1, flag)])

    for refused in (deliver(api, body, "wrong"), deliver(api, body, None), deliver(api, unknown, subscription.secret)):
        assert refused.status_code == 401
        assert refused.json()["resourceType"] == "OperationOutcome"
        assert refused.json()["issue"][0]["code"] == "login"
    assert nothing_taken(stack_services, patient, subscription.subscription_id)


def test_a_repeated_notification_is_acknowledged_and_processed_once(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    subscription = register(stack_services, f"{api}/notifications", patient, registered)
    silence(sekmet, subscription.subscription_id)
    pain = ehr_put(sekmet, measure(patient, PAIN, 7, "2026-01-05T10:00:00Z"))
    body = notification(sekmet.base_url, subscription.subscription_id, "event-notification", 1, [(1, pain)])

    first, second = deliver(api, body, subscription.secret), deliver(api, body, subscription.secret)
    assert (first.status_code, second.status_code) == (200, 200)
    assert "1 repeated" in second.json()["issue"][0]["diagnostics"]
    assert stored(stack_services, patient) == [("notification", "Observation", pain["id"])]
    assert numbers_seen(stack_services, subscription.subscription_id) == [1]


def test_a_subscription_the_ehr_put_in_error_is_reactivated_with_a_new_secret_and_what_it_missed_is_caught_up(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    subscription_id = register(stack_services, f"{api}/notifications", patient, registered).subscription_id
    break_channel(sekmet, subscription_id)  # as SEKMET does itself once a delivery to Carepath fails
    start = datetime.now(UTC) - timedelta(days=3)
    missed = ehr_put(sekmet, finding(patient, CAUDA_EQUINA, start))  # written while nothing is notified
    assert stack_services.ehr is not None

    checked = reactivation.check_all(stack_services.db, stack_services.ehr, datetime.now(UTC), GRACE)

    (mine,) = [c for c in checked if c.subscription_id == subscription_id]
    assert mine.reactivated and mine.ehr_status == "error" and len(mine.event_ids) == 1, mine
    assert stored(stack_services, patient) == [("notification-search", "Observation", missed["id"])]
    # SEKMET handshakes with the new secret before it calls the subscription active again.
    wait_until(lambda: ehr_status(sekmet, subscription_id) == "active", 15, what="the subscription active again")
    visit = ehr_put(sekmet, pt_visit(patient, start + timedelta(days=1)))
    wait_until(lambda: len(stored(stack_services, patient)) == 2, 30, what="the next event notified")
    assert stored(stack_services, patient)[1] == ("notification", "Encounter", visit["id"])
    again = reactivation.check_all(stack_services.db, stack_services.ehr, datetime.now(UTC), GRACE)
    assert [(c.reactivated, c.ehr_status) for c in again if c.subscription_id == subscription_id] == [(False, "active")]


def test_a_reactivated_subscriptions_previous_secret_is_accepted_for_the_grace_period_then_refused(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    subscription = register(stack_services, f"{api}/notifications", new_patient_id(), registered)
    subscription_id, old_secret = subscription.subscription_id, subscription.secret
    break_channel(sekmet, subscription_id)
    assert stack_services.ehr is not None
    rotated_at = time.monotonic()
    checked = reactivation.check_all(
        stack_services.db, stack_services.ehr, datetime.now(UTC), timedelta(seconds=SHORT_GRACE_SECONDS)
    )
    assert [c.reactivated for c in checked if c.subscription_id == subscription_id] == [True]
    heartbeat = notification(sekmet.base_url, subscription_id, "heartbeat", 0)

    # A notification the EHR sent, or retries, with the header it held before the reactivation.
    assert deliver(api, heartbeat, old_secret).status_code == 200
    time.sleep(max(0.0, rotated_at + SHORT_GRACE_SECONDS + 0.5 - time.monotonic()))
    refused = deliver(api, heartbeat, old_secret)
    assert refused.status_code == 401, refused.text
    silence(sekmet, subscription_id)


def test_a_second_subscription_check_while_one_runs_does_nothing(
    api: str, stack_services: Services, registered: list[str]
) -> None:
    assert stack_services.ehr is not None
    subscription_id = register(stack_services, f"{api}/notifications", new_patient_id(), registered).subscription_id
    with stack_services.db.connect() as running:
        assert try_exclusive(running, "subscription-watch")  # as the first worker's check holds it
        assert reactivation.check_all(stack_services.db, stack_services.ehr, datetime.now(UTC), GRACE) == []
    checked = reactivation.check_all(stack_services.db, stack_services.ehr, datetime.now(UTC), GRACE)
    assert subscription_id in [c.subscription_id for c in checked]  # the first check is over: this one runs


def break_channel(sekmet: SekmetServer, subscription_id: str) -> None:
    """Set the Subscription to `error` on the EHR, with the reason an EHR gives."""
    url = f"{sekmet.base_url}/Subscription/{subscription_id}"
    current = requests.get(url, headers=sekmet.auth_headers(), timeout=10).json()
    broken = dict(current, status="error", error="Event notification delivery failed")
    response = requests.put(url, json=broken, headers={**sekmet.auth_headers(), "Content-Type": FHIR_JSON}, timeout=10)
    response.raise_for_status()
    assert ehr_status(sekmet, subscription_id) == "error"


def test_a_missed_event_is_recovered_from_the_ehr_and_the_gap_recorded(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    subscription = register(stack_services, f"{api}/notifications", patient, registered)
    sid, secret = subscription.subscription_id, subscription.secret
    silence(sekmet, sid)
    first, missed, third = (
        ehr_put(sekmet, measure(patient, PAIN, value, f"2026-01-0{day}T10:00:00Z"))
        for day, value in ((5, 7), (6, 6), (7, 5))
    )

    assert (
        deliver(api, notification(sekmet.base_url, sid, "event-notification", 1, [(1, first)]), secret).status_code
        == 200
    )
    assert (
        deliver(api, notification(sekmet.base_url, sid, "event-notification", 3, [(3, third)]), secret).status_code
        == 200
    )
    [gap] = gaps(stack_services, sid)
    assert (gap.run, gap.recovered_at) == ((2, 2), None)

    wait_until(lambda: datetime.now(UTC) - gap.detected_at > timedelta(seconds=GAP_GRACE_SECONDS), 10)
    assert deliver(api, notification(sekmet.base_url, sid, "heartbeat", 3), secret).status_code == 200
    wait_until(lambda: gaps(stack_services, sid)[0].recovered_at is not None, 30, what="the gap to be recovered")

    [recovered] = gaps(stack_services, sid)
    assert recovered.method == "search"  # SEKMET offers no $events; its CapabilityStatement says so
    assert recovered.outcome is not None and recovered.outcome.endswith("1 new")
    assert ("notification-search", "Observation", missed["id"]) in stored(stack_services, patient)
    assert len(stored(stack_services, patient)) == 3
    with stack_services.db.connect() as connection:
        assert store.find(connection, sid).contiguous_through == 3  # type: ignore[union-attr]


def test_a_focus_deleted_before_carepath_reads_it_is_stored_as_a_deletion(
    api: str, stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    patient = new_patient_id()
    subscription = register(stack_services, f"{api}/notifications", patient, registered)
    sid, secret = subscription.subscription_id, subscription.secret
    silence(sekmet, sid)
    pain = ehr_put(sekmet, measure(patient, PAIN, 7, "2026-01-05T10:00:00Z"))
    assert (
        deliver(api, notification(sekmet.base_url, sid, "event-notification", 1, [(1, pain)]), secret).status_code
        == 200
    )
    requests.delete(f"{sekmet.base_url}/Observation/{pain['id']}", headers=sekmet.auth_headers(), timeout=10)

    assert (
        deliver(api, notification(sekmet.base_url, sid, "event-notification", 2, [(2, pain)]), secret).status_code
        == 200
    )
    assert stored(stack_services, patient)[-1] == ("notification-delete", "Observation", pain["id"])
    with stack_services.db.connect() as connection:
        body = connection.execute(
            sa.select(inbound_events.c.body).where(inbound_events.c.channel == "notification-delete",
                                                   inbound_events.c.patient_id == patient)
        ).scalar_one()  # fmt: skip
    assert body["resourceType"] == "Observation" and body["id"] == pain["id"] and "lastUpdated" in body["meta"]


# -- durability and liveness -----------------------------------------------------------------------------


@pytest.fixture()
def offline_client(stack_settings: Settings) -> Iterator[tuple[FlaskClient, Services]]:
    """The API in-process, with the EHR pointed at a port where nothing listens."""
    settings = replace(stack_settings, ehr_base_url=f"http://127.0.0.1:{free_port()}/fhir")
    services = build(settings)
    with create_app(settings, services=services).test_client() as client:
        yield client, services
    services.db.dispose()


def test_readyz_stays_200_with_the_ehr_down_and_answers_503_only_when_the_broker_or_database_is(
    offline_client: tuple[FlaskClient, Services], stack_settings: Settings
) -> None:
    client, _ = offline_client
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["ehr"]["status"] == "down"  # reported: deliveries wait behind the breaker
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    for broken in (
        replace(stack_settings, redis_url=nowhere),
        replace(stack_settings, database_url=f"postgresql+psycopg://carepath@127.0.0.1:{free_port()}/carepath"),
    ):
        services = build(broken)
        answer = create_app(broken, services=services).test_client().get("/readyz")
        services.db.dispose()
        assert answer.status_code == 503, answer.get_json()
        down = {name for name, check in answer.get_json()["checks"].items() if check["status"] == "down"}
        assert down == ({"broker"} if broken.redis_url == nowhere else {"database"})
        assert healthz_ok(broken)


def healthz_ok(settings: Settings) -> bool:
    """/healthz says only that the process answers, whatever its dependencies."""
    services = build(settings)
    try:
        return create_app(settings, services=services).test_client().get("/healthz").status_code == 200
    finally:
        services.db.dispose()


def test_an_unreachable_ehr_answers_503_and_stores_nothing(offline_client: tuple[FlaskClient, Services]) -> None:
    client, services = offline_client
    patient, secret = new_patient_id(), "offline-secret-" + new_patient_id()
    subscription_id = f"carepath-{patient}"
    now = datetime.now(UTC)
    with transaction(services.db) as connection:
        store.insert(connection, store.Subscription(
            id=subscription_id, kind="backport", topic=TOPIC_URL, criteria=(f"Observation?patient=Patient/{patient}",),
            payload="id-only", endpoint="http://127.0.0.1/notifications", secret_hash=secret_hash(secret),
            status=store.ACTIVE, heartbeat_seconds=None, created_at=now,
        ))  # fmt: skip
    focus = measure(patient, PAIN, 7, "2026-01-05T10:00:00Z")
    body = notification(str(services.settings.ehr_base_url), subscription_id, "event-notification", 1, [(1, focus)])

    response = client.post("/notifications", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 503
    assert response.get_json()["issue"][0]["code"] == "transient"
    assert stored(services, patient) == []
    assert numbers_seen(services, subscription_id) == []
    with transaction(services.db) as connection:
        store.update(connection, subscription_id, now, status=store.OFF)


def reported(api: str, subscription_id: str) -> dict[str, Any] | None:
    """The subscription's entry on /readyz, which answers 200 whatever the subscriptions' state."""
    ready = requests.get(f"{api}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ok"
    entries = [e for e in ready.json()["subscriptions"]["tracked"] if e["id"] == subscription_id]
    return entries[0] if entries else None


def health_gauge(api: str, subscription_id: str) -> dict[str, float]:
    """`carepath_subscription_health` of one subscription, by reason."""
    series = re.compile(r"^carepath_subscription_health\{(.*)\} (\S+)$")
    found = {}
    for line in requests.get(f"{api}/metrics", timeout=10).text.splitlines():
        if match := series.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match[1]))
            if labels["subscription"] == subscription_id:
                found[labels["reason"]] = float(match[2])
    return found


def test_a_subscription_silent_then_switched_off_in_the_ehr_is_reported_with_its_reason_and_readyz_stays_200(
    api: str, stack_env: dict[str, str], stack_services: Services, sekmet: SekmetServer, registered: list[str]
) -> None:
    subscription = register(stack_services, f"{api}/notifications", new_patient_id(), registered, heartbeat_seconds=1)
    subscription_id = subscription.subscription_id
    assert (reported(api, subscription_id) or {}).get("reason") == "ok"
    assert health_gauge(api, subscription_id) == {"ok": 1, "stale": 0, "error": 0, "off": 0}

    silence(sekmet, subscription_id)  # an EHR administrator switches it off: its heartbeats stop
    wait_until(
        lambda: (reported(api, subscription_id) or {}).get("reason") == "stale", 15, what="the silence on /readyz"
    )
    assert "heartbeat every 1 s" in (reported(api, subscription_id) or {})["detail"]
    assert stack_services.ehr is not None
    reactivation.check_all(stack_services.db, stack_services.ehr, datetime.now(UTC), GRACE)  # as beat does

    entry = reported(api, subscription_id)
    assert entry is not None and entry["reason"] == "off" and "the EHR reports it off" in entry["detail"], entry
    assert health_gauge(api, subscription_id) == {"ok": 0, "stale": 0, "error": 0, "off": 1}

    retired = carepath(stack_env, "retire", subscription_id)
    assert retired.returncode == 0, retired.stderr
    assert reported(api, subscription_id) is None
    assert health_gauge(api, subscription_id) == {}
    heartbeat = notification(sekmet.base_url, subscription_id, "heartbeat", 0)
    assert deliver(api, heartbeat, subscription.secret).status_code == 401  # its notifications are refused
    with stack_services.db.connect() as connection:
        audited = connection.execute(
            sa.select(audit_events.c.agent_kind, audit_events.c.action)
            .join(audit_event_entities, audit_event_entities.c.audit_event_id == audit_events.c.id)
            .where(
                audit_event_entities.c.reference == f"Subscription/{subscription_id}",
                audit_events.c.subtype == "subscription-retire",
            )
        ).all()
    assert [tuple(row) for row in audited] == [("cli", "U")]
    unknown = carepath(stack_env, "retire", "carepath-unknown")
    assert unknown.returncode != 0 and "No subscription carepath-unknown" in unknown.stderr
