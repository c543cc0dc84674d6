"""Resolving notified events, registering subscriptions, secrets and heartbeat liveness, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pathways.fhir.outbound.requests import fhir_instant
from service.ehr import EhrRejected, EhrUnavailable
from service.ehr.urls import EhrBase, ForeignUrl
from service.problems import Problem
from service.store.subscriptions import REGISTERING, Subscription
from service.usecases.notifications import auth, liveness, registration, resolve
from service.usecases.notifications.envelope import Event, Notification
from service.usecases.notifications.operations import supports_events
from tests.builders import CAUDA_EQUINA, finding

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EHR_BASE = "https://ehr.example/fhir"


class FakeEhr:
    """Answers reads from a dict; a value that is an exception is raised instead."""

    def __init__(self, resources: dict[str, Any] | None = None, capabilities: dict[str, Any] | None = None) -> None:
        self.resources = resources or {}
        self.reads: list[str] = []
        self.searches: list[tuple[str, list[tuple[str, str]]]] = []
        self._capabilities = capabilities or {}

    def read_reference(self, reference: str) -> dict[str, Any]:
        """Like the client: only `Type/id` on the EHR base is ever read, whatever the reference says."""
        try:
            key = "/".join(EhrBase(EHR_BASE).resource_key(reference))
        except ForeignUrl:
            raise EhrRejected("GET: refusing a reference outside the EHR base", method="GET", path="") from None
        self.reads.append(key)
        found = self.resources[key]
        if isinstance(found, Exception):
            raise found
        return dict(found)

    def search(self, resource_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        self.searches.append((resource_type, params))
        return [r for r in self.resources.values() if isinstance(r, dict) and r["resourceType"] == resource_type]

    def capabilities(self) -> dict[str, Any]:
        return self._capabilities


def subscription(
    payload: str = "id-only", criteria: tuple[str, ...] = ("Observation?patient=Patient/p1",)
) -> Subscription:
    return Subscription(
        id="carepath-1",
        kind="backport",
        topic="http://example.org/topic",
        criteria=criteria,
        payload=payload,
        endpoint="https://carepath.example/notifications",
        secret_hash=auth.secret_hash("s"),
        status=REGISTERING,
        heartbeat_seconds=None,
        created_at=NOW - timedelta(days=1),
    )


def no_patient(_type: str, _id: str) -> str | None:
    return None


def gone(status: int) -> EhrRejected:
    return EhrRejected(f"GET Observation/o1 -> {status}", method="GET", path="Observation/o1", status=status)


def observation(resource_id: str = "o1") -> dict[str, Any]:
    return finding("p1", CAUDA_EQUINA, "2026-02-01T10:00:00Z", resource_id=resource_id)


# -- secrets --------------------------------------------------------------------------------------


def test_a_secret_matches_only_its_own_hash() -> None:
    secret = auth.new_secret()
    stored = auth.secret_hash(secret)
    assert secret not in stored
    assert auth.matches(stored, secret)
    assert not auth.matches(stored, secret + "x")
    assert not auth.matches(stored, None)
    assert not auth.matches(stored, "")


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_only_a_bearer_credential_is_taken_from_the_authorization_header(header: str | None, token: str | None) -> None:
    assert auth.bearer_token(header) == token


# -- resolving events -------------------------------------------------------------------------------


def test_an_id_only_focus_is_read_from_the_ehr_and_prepared_for_storage() -> None:
    ehr = FakeEhr({"Observation/o1": observation()})
    outcome = resolve.focus(ehr, Event(1, focus=f"{EHR_BASE}/Observation/o1"), {}, no_patient, NOW)  # type: ignore[arg-type]
    assert ehr.reads == ["Observation/o1"]
    [item] = outcome.items
    assert (item.channel, item.prepared.resource_id, item.prepared.patient_id) == ("notification", "o1", "p1")


def test_a_full_resource_focus_is_taken_from_the_bundle_without_reading_the_ehr() -> None:
    ehr = FakeEhr()
    outcome = resolve.focus(
        ehr, Event(1, focus=f"{EHR_BASE}/Observation/o1"), {"Observation/o1": observation()}, no_patient, NOW
    )  # type: ignore[arg-type]
    assert ehr.reads == []
    assert outcome.items[0].prepared.resource_id == "o1"


@pytest.mark.parametrize("status", [404, 410])
def test_a_focus_that_is_gone_becomes_a_deletion_event_for_the_patient_it_was_filed_under(status: int) -> None:
    ehr = FakeEhr({"Observation/o1": gone(status)})
    event = Event(4, timestamp="2026-03-01T11:00:00Z", focus=f"{EHR_BASE}/Observation/o1")
    outcome = resolve.focus(ehr, event, {}, lambda t, i: "p9" if (t, i) == ("Observation", "o1") else None, NOW)  # type: ignore[arg-type]
    [item] = outcome.items
    assert item.channel == "notification-delete"
    assert item.prepared.resource == {
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"lastUpdated": "2026-03-01T11:00:00Z"},
    }
    assert (item.prepared.patient_id, item.prepared.version_id) == ("p9", None)


def test_a_deleted_focus_falls_back_to_the_patient_in_the_additional_context() -> None:
    ehr = FakeEhr({"Observation/o1": gone(410)})
    event = Event(4, focus="Observation/o1", context=(f"{EHR_BASE}/Patient/p2",))
    outcome = resolve.focus(ehr, event, {}, no_patient, NOW)  # type: ignore[arg-type]
    assert outcome.items[0].prepared.patient_id == "p2"


def test_a_deleted_focus_carepath_never_knew_is_noted_and_not_stored() -> None:
    ehr = FakeEhr({"Observation/o1": gone(410)})
    outcome = resolve.focus(ehr, Event(4, focus="Observation/o1"), {}, no_patient, NOW)  # type: ignore[arg-type]
    assert outcome.items == () and "not known" in outcome.note


def test_an_unreachable_ehr_refuses_the_notification_with_503_so_it_is_sent_again() -> None:
    ehr = FakeEhr({"Observation/o1": EhrUnavailable("GET Observation -> 503", method="GET", path="Observation")})
    with pytest.raises(Problem) as refused:
        resolve.focus(ehr, Event(1, focus="Observation/o1"), {}, no_patient, NOW)  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (503, "transient")
    assert "Observation/o1" not in refused.value.message


def test_an_ehr_refusing_the_read_refuses_the_notification_with_502() -> None:
    ehr = FakeEhr({"Observation/o1": gone(403)})
    with pytest.raises(Problem) as refused:
        resolve.focus(ehr, Event(1, focus="Observation/o1"), {}, no_patient, NOW)  # type: ignore[arg-type]
    assert refused.value.status == 502


def test_without_an_ehr_an_id_only_focus_cannot_be_read() -> None:
    with pytest.raises(Problem) as refused:
        resolve.focus(None, Event(1, focus="Observation/o1"), {}, no_patient, NOW)
    assert refused.value.status == 503


@pytest.mark.parametrize(
    "focus",
    ["https://elsewhere.example/fhir/Observation/o1", "https://elsewhere.example\\@ehr.example/fhir/Observation/o1"],
)
def test_a_focus_on_another_server_refuses_the_event_with_400_and_is_not_read(focus: str) -> None:
    ehr = FakeEhr({"Observation/o1": observation()})
    with pytest.raises(Problem) as refused:
        resolve.focus(ehr, Event(1, focus=focus), {}, no_patient, NOW)  # type: ignore[arg-type]
    assert refused.value.status == 400
    assert ehr.reads == []


def test_a_resource_carepath_cannot_use_is_noted_with_the_element_not_refused() -> None:
    broken = dict(observation(), status="bogus")
    outcome = resolve.focus(FakeEhr(), Event(1, focus="Observation/o1"), {"Observation/o1": broken}, no_patient, NOW)  # type: ignore[arg-type]
    assert outcome.items == ()
    assert "Observation.status" in outcome.note


def test_events_without_a_focus_run_one_search_over_the_subscription_criteria_since_the_cursor() -> None:
    ehr = FakeEhr({"a": dict(observation("o1"), meta={"versionId": "1", "lastUpdated": "2026-03-01T10:00:00Z"})})
    note = Notification("R4", "event-notification", "Subscription/carepath-1", events=(Event(1), Event(2)))
    resolved = resolve.events(ehr, subscription("empty"), note, note.events, no_patient, NOW)  # type: ignore[arg-type]
    [(resource_type, params)] = ehr.searches
    since = NOW - timedelta(days=1) - resolve.SEARCH_OVERLAP
    assert resource_type == "Observation"
    assert params == [("patient", "Patient/p1"), ("_lastUpdated", f"gt{fhir_instant(since)}")]
    assert [i.prepared.resource_id for i in resolved.outcomes[None].items] == ["o1"]
    assert resolved.newest == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


# -- registration ------------------------------------------------------------------------------------


def backport_request(**changes: Any) -> registration.Request:
    values: dict[str, Any] = {
        "endpoint": "https://carepath.example/notifications",
        "payload": "id-only",
        "topic": "http://example.org/topic",
        "filters": ("Observation?patient=Patient/p1",),
        "heartbeat_seconds": 60,
    }
    return registration.Request(**{**values, **changes})


def test_a_backport_subscription_names_topic_filter_payload_heartbeat_and_the_secret_header() -> None:
    resource = registration.subscription_resource("carepath-1", backport_request(), "s3cret")
    bp = registration.BACKPORT
    assert resource["criteria"] == "http://example.org/topic"
    assert resource["meta"]["profile"] == [registration.PROFILE]
    assert resource["_criteria"]["extension"] == [
        {"url": f"{bp}/backport-filter-criteria", "valueString": "Observation?patient=Patient/p1"}
    ]
    channel = resource["channel"]
    assert (channel["type"], channel["endpoint"]) == ("rest-hook", "https://carepath.example/notifications")
    assert channel["header"] == ["Authorization: Bearer s3cret"]
    assert channel["_payload"]["extension"] == [{"url": f"{bp}/backport-payload-content", "valueCode": "id-only"}]
    assert channel["extension"] == [{"url": f"{bp}/backport-heartbeat-period", "valueUnsignedInt": 60}]
    assert (resource["id"], resource["status"]) == ("carepath-1", "requested")


def test_a_classic_subscription_without_payload_asks_for_empty_posts() -> None:
    request = backport_request(topic=None, filters=(), criteria="Observation?patient=Patient/p1", payload="empty")
    resource = registration.subscription_resource("carepath-1", request, "s")
    assert resource["criteria"] == "Observation?patient=Patient/p1"
    assert "payload" not in resource["channel"] and "_criteria" not in resource


def test_the_secret_never_shows_in_the_registration_result() -> None:
    assert "s3cret" not in repr(registration.Registered("carepath-1", "active", "s3cret"))


def test_missed_events_are_searched_by_filter_and_by_the_types_the_topic_triggers_on() -> None:
    topic = {
        "extension": [
            {
                "url": registration.TOPIC_TRIGGER,
                "extension": [{"url": "resource", "valueUri": "http://hl7.org/fhir/StructureDefinition/Encounter"}],
            }
        ]
    }
    assert registration.searchable_criteria(backport_request(), topic) == (
        "Observation?patient=Patient/p1",
        "Encounter?",
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"filters": ("patient=Patient/p1",)},
        {"filters": ("Practitioner?_id=p1",)},
        {"filters": ()},
    ],
)
def test_a_subscription_whose_missed_events_cannot_be_searched_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(registration.RegistrationError):
        registration.searchable_criteria(backport_request(**changes))


# -- liveness and capabilities --------------------------------------------------------------------------


def watched(heartbeat: int | None, heard_ago: int | None, ehr_status: str | None = "active") -> Subscription:
    """A subscription heard from `heard_ago` seconds ago (None: never, created ten minutes ago)."""
    return Subscription(
        id="carepath-sub",
        kind="backport",
        topic=None,
        criteria=("Observation?",),
        payload="id-only",
        endpoint="http://carepath/notifications",
        secret_hash="0" * 64,
        status="active",
        heartbeat_seconds=heartbeat,
        created_at=NOW - timedelta(minutes=10),
        ehr_status=ehr_status,
        last_seen_at=None if heard_ago is None else NOW - timedelta(seconds=heard_ago),
    )


@pytest.mark.parametrize(
    ("subscription", "reason"),
    [
        (watched(60, 80), liveness.OK),  # within 60 s + 30 s grace
        (watched(60, 100), liveness.STALE),  # beyond it
        (watched(60, None), liveness.STALE),  # never heard from since it was created
        (watched(None, 3600), liveness.OK),  # no heartbeat promised: silence says nothing
        (watched(60, 5, ehr_status="off"), liveness.OFF),  # the EHR's word, even before the silence shows
        (watched(60, 3600, ehr_status="off"), liveness.OFF),  # the cause, not the symptom
        (watched(None, 5, ehr_status="error"), liveness.ERROR),
        (watched(60, 5, ehr_status="requested"), liveness.OK),
    ],
)
def test_a_subscription_is_judged_off_or_in_error_by_the_ehr_else_stale_by_its_silence(
    subscription: Subscription, reason: str
) -> None:
    health = liveness.judge(subscription, NOW, timedelta(seconds=30))
    assert (health.subscription_id, health.reason) == ("carepath-sub", reason)
    assert health.as_json()["reason"] == reason and health.detail


def test_a_stale_subscription_says_how_long_it_has_been_silent_and_what_it_promised() -> None:
    health = liveness.judge(watched(60, 100), NOW, timedelta(seconds=30))
    assert health.detail == "silent for 100 s; heartbeat every 60 s, grace 30 s"


def test_events_operation_is_used_only_when_the_capability_statement_offers_it() -> None:
    offered = {"rest": [{"resource": [{"type": "Subscription", "operation": [{"name": "events"}]}]}]}
    assert supports_events(FakeEhr(capabilities=offered))  # type: ignore[arg-type]
    assert not supports_events(FakeEhr(capabilities={"rest": [{"operation": [{"name": "export"}]}]}))  # type: ignore[arg-type]
