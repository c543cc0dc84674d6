"""Notification envelopes (R4 Backport, R4B, R5) and event-number bookkeeping, from the standards' examples."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from service.problems import Problem
from service.usecases.notifications import envelope, sequence
from service.usecases.notifications.envelope import Event, reference_key
from service.usecases.notifications.sequence import Ledger

STATUS_PROFILE = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4"
EHR = "https://example.org/fhir"
ENCOUNTER_FOCUS = f"{EHR}/Encounter/86009987-eabe-42bf-8c02-b112b18cb616"


def r4_bundle(
    kind: str = "event-notification",
    *,
    count: str | None = "2",
    events: list[list[dict[str, Any]]] | None = None,
    status: str = "active",
    extra_entries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The Backport IG's R4 notification shape (its id-only example by default)."""
    if events is None:
        events = [
            [
                {"name": "event-number", "valueString": "2"},
                {"name": "timestamp", "valueInstant": "2020-05-29T11:44:13.1882432-05:00"},
                {"name": "focus", "valueReference": {"reference": ENCOUNTER_FOCUS}},
            ]
        ]
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": f"{EHR}/Subscription/admission"}},
        {"name": "topic", "valueCanonical": "http://hl7.org/SubscriptionTopic/admission"},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
    ]
    if count is not None:
        parameters.append({"name": "events-since-subscription-start", "valueString": count})
    parameters += [{"name": "notification-event", "part": parts} for parts in events]
    status_entry = {
        "fullUrl": "urn:uuid:292d3c72-edc1-4d8a-afaa-d85e19c7f563",
        "resource": {
            "resourceType": "Parameters",
            "id": "292d3c72-edc1-4d8a-afaa-d85e19c7f563",
            "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters,
        },
        "request": {"method": "GET", "url": f"{EHR}/Subscription/admission/$status"},
        "response": {"status": "200"},
    }
    return {
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": "2020-05-29T11:44:13.1882432-05:00",
        "entry": [status_entry, *(extra_entries or [])],
    }


def r5_bundle(events_since: Any = "2", event_number: Any = "2") -> dict[str, Any]:
    """The R5 `subscription-notification` example shape."""
    return {
        "resourceType": "Bundle",
        "type": "subscription-notification",
        "timestamp": "2020-04-17T10:24:13-05:00",
        "entry": [
            {
                "fullUrl": "urn:uuid:b21e4fae-ce73-45cb-8e37-1e203362b2ae",
                "resource": {
                    "resourceType": "SubscriptionStatus",
                    "status": "active",
                    "type": "event-notification",
                    "eventsSinceSubscriptionStart": events_since,
                    "notificationEvent": [
                        {
                            "eventNumber": event_number,
                            "timestamp": "2020-04-17T10:20:00-05:00",
                            "focus": {"reference": "Encounter/1"},
                        }
                    ],
                    "subscription": {"reference": "http://example.org/FHIR/R5/Subscription/123"},
                    "topic": "http://example.org/FHIR/R5/SubscriptionTopic/admission",
                },
            }
        ],
    }


def expressions(problem: Problem) -> list[str]:
    return [e for i in problem.outcome()["issue"] for e in i.get("expression", [])]


# -- envelopes ---------------------------------------------------------------------------------


def test_an_r4_backport_id_only_notification_names_its_subscription_counter_and_focus() -> None:
    note = envelope.parse(r4_bundle())
    assert (note.release, note.kind, note.status) == ("R4", "event-notification", "active")
    assert note.subscription_id == "admission"
    assert note.topic == "http://hl7.org/SubscriptionTopic/admission"
    assert note.events_since_start == 2
    assert note.events == (Event(2, "2020-05-29T11:44:13.1882432-05:00", ENCOUNTER_FOCUS),)
    assert note.carries_events and not note.resources


def test_an_r4_full_resource_notification_carries_the_focus_resource_by_type_and_id() -> None:
    encounter = {"resourceType": "Encounter", "id": "86009987-eabe-42bf-8c02-b112b18cb616", "status": "finished"}
    entry = {"fullUrl": ENCOUNTER_FOCUS, "resource": encounter, "request": {"method": "PUT", "url": "Encounter/x"}}
    note = envelope.parse(r4_bundle(extra_entries=[entry]))
    assert note.resources == {"Encounter/86009987-eabe-42bf-8c02-b112b18cb616": encounter}
    assert reference_key(note.events[0].focus) in note.resources


def test_an_id_only_entry_without_a_resource_carries_nothing_inline() -> None:
    entry = {"fullUrl": ENCOUNTER_FOCUS, "request": {"method": "GET", "url": ENCOUNTER_FOCUS}}
    assert envelope.parse(r4_bundle(extra_entries=[entry])).resources == {}


def test_an_r4_empty_notification_has_events_without_a_focus() -> None:
    empty = [[{"name": "event-number", "valueString": "3"}]]
    note = envelope.parse(r4_bundle(count="3", events=empty))
    assert note.events == (Event(3),)
    assert note.events[0].focus is None


def test_additional_context_is_kept_with_each_event() -> None:
    parts = [
        {"name": "event-number", "valueString": "1"},
        {"name": "focus", "valueReference": {"reference": f"{EHR}/Observation/o1"}},
        {"name": "additional-context", "valueReference": {"reference": f"{EHR}/Patient/p1"}},
    ]
    note = envelope.parse(r4_bundle(count="1", events=[parts]))
    assert note.events[0].context == (f"{EHR}/Patient/p1",)


def test_a_handshake_carries_count_zero_and_no_events() -> None:
    note = envelope.parse(r4_bundle("handshake", count="0", events=[], status="requested"))
    assert (note.kind, note.status, note.events_since_start, note.events) == ("handshake", "requested", 0, ())
    assert not note.carries_events


def test_a_heartbeat_carries_the_current_count_and_no_events() -> None:
    note = envelope.parse(r4_bundle("heartbeat", count="7", events=[]))
    assert (note.kind, note.events_since_start, note.events) == ("heartbeat", 7, ())


@pytest.mark.parametrize("kind", ["query-status", "query-event"])
def test_query_notifications_are_tolerated(kind: str) -> None:
    assert envelope.parse(r4_bundle(kind)).kind == kind


def test_camel_case_parameter_names_are_read_like_the_r4_kebab_case() -> None:
    bundle = r4_bundle(events=[[{"name": "eventNumber", "valueString": "4"}]], count=None)
    bundle["entry"][0]["resource"]["parameter"].append({"name": "eventsSinceSubscriptionStart", "valueString": "4"})
    note = envelope.parse(bundle)
    assert (note.events_since_start, note.events[0].number) == (4, 4)


def test_an_r4b_notification_is_a_history_bundle_with_a_subscription_status() -> None:
    bundle = r5_bundle()
    bundle["type"] = "history"
    note = envelope.parse(bundle)
    assert (note.release, note.kind, note.subscription_id) == ("R4B", "event-notification", "123")
    assert note.events == (Event(2, "2020-04-17T10:20:00-05:00", "Encounter/1"),)
    assert note.events_since_start == 2


@pytest.mark.parametrize(("since", "number"), [("2", "2"), (2, 2)])
def test_an_r5_subscription_notification_reads_counters_as_strings_or_numbers(since: Any, number: Any) -> None:
    note = envelope.parse(r5_bundle(since, number))
    assert (note.release, note.events_since_start, note.events[0].number) == ("R5", 2, 2)
    assert note.topic == "http://example.org/FHIR/R5/SubscriptionTopic/admission"


def test_parsing_never_changes_the_notification_it_reads() -> None:
    bundle = r5_bundle()
    original = copy.deepcopy(bundle)
    envelope.parse(bundle)
    assert bundle == original


def test_a_status_as_dollar_status_returns_it_is_read_on_its_own() -> None:
    status = r4_bundle("query-status", count="5", events=[])["entry"][0]["resource"]
    reported = envelope.parse_status(status)
    assert (reported.kind, reported.events_since_start) == ("query-status", 5)


# -- malformed envelopes -------------------------------------------------------------------------


def _without_parameter(name: str) -> dict[str, Any]:
    bundle = r4_bundle()
    parameters = bundle["entry"][0]["resource"]["parameter"]
    bundle["entry"][0]["resource"]["parameter"] = [p for p in parameters if p["name"] != name]
    return bundle


def _with_parameter_value(index: int, key: str, value: Any) -> dict[str, Any]:
    bundle = r4_bundle()
    bundle["entry"][0]["resource"]["parameter"][index] = {
        "name": bundle["entry"][0]["resource"]["parameter"][index]["name"],
        key: value,
    }
    return bundle


MALFORMED = [
    ({"resourceType": "Parameters"}, "Bundle.resourceType"),
    ([1, 2], "Bundle.resourceType"),
    (dict(r4_bundle(), type="transaction"), "Bundle.type"),
    (dict(r4_bundle(), entry=[]), "Bundle.entry"),
    (dict(r4_bundle(), entry=[{"resource": {"resourceType": "Observation"}}]), "Bundle.entry[0].resource.resourceType"),
    (dict(r5_bundle(), entry=[{"resource": {"resourceType": "Parameters"}}]), "Bundle.entry[0].resource.resourceType"),
    (_without_parameter("subscription"), "Bundle.entry[0].resource.parameter"),
    (_without_parameter("type"), "Bundle.entry[0].resource.parameter"),
    (_with_parameter_value(3, "valueCode", "bogus"), "Bundle.entry[0].resource.parameter[3]"),
    (_with_parameter_value(0, "valueReference", {"reference": "Patient/1"}), "Bundle.entry[0].resource.parameter[0]"),
    (_with_parameter_value(4, "valueString", "two"), "Bundle.entry[0].resource.parameter[4].valueString"),
    (
        r4_bundle(events=[[{"name": "event-number", "valueString": "-1"}]]),
        "Bundle.entry[0].resource.parameter[5].part[0].valueString",
    ),
    (
        r4_bundle(events=[[{"name": "timestamp", "valueInstant": "2020-01-01T00:00:00Z"}]]),
        "Bundle.entry[0].resource.parameter[5].part",
    ),
    (r5_bundle(event_number=True), "Bundle.entry[0].resource.notificationEvent[0].eventNumber"),
    (
        r4_bundle(events=[[{"name": "event-number", "valueString": "0"}]]),
        "Bundle.entry[0].resource.parameter[5].part[0].valueString",
    ),
    (
        r4_bundle(events=[[{"name": "event-number", "valueString": str(2**63)}]]),
        "Bundle.entry[0].resource.parameter[5].part[0].valueString",
    ),
    (
        r4_bundle(events=[[{"name": "event-number", "valueString": "9" * 5000}]]),
        "Bundle.entry[0].resource.parameter[5].part[0].valueString",
    ),
    (r5_bundle(event_number=2**63), "Bundle.entry[0].resource.notificationEvent[0].eventNumber"),
    (r5_bundle(events_since=str(2**63)), "Bundle.entry[0].resource.eventsSinceSubscriptionStart"),
    (r5_bundle(events_since="x"), "Bundle.entry[0].resource.eventsSinceSubscriptionStart"),
]


@pytest.mark.parametrize(("body", "expression"), MALFORMED)
def test_a_malformed_notification_is_refused_with_an_outcome_naming_the_element(body: Any, expression: str) -> None:
    with pytest.raises(Problem) as refused:
        envelope.parse(body)
    assert refused.value.status == 400
    assert refused.value.outcome()["resourceType"] == "OperationOutcome"
    assert expression in expressions(refused.value)


def test_the_largest_integer64_event_number_is_read() -> None:
    bundle = r4_bundle(events=[[{"name": "event-number", "valueString": str(2**63 - 1)}]])
    assert [e.number for e in envelope.parse(bundle).events] == [2**63 - 1]


def test_every_reference_and_full_url_is_kept_with_its_element_for_the_origin_check() -> None:
    bundle = r4_bundle(extra_entries=[{"fullUrl": f"{EHR}/Encounter/e1", "resource": {"resourceType": "Encounter"}}])
    references = dict(envelope.parse(bundle).references)
    assert references == {
        "Bundle.entry[0].resource.parameter[0]": f"{EHR}/Subscription/admission",
        "Bundle.entry[0].resource.parameter[5].part[2].valueReference": ENCOUNTER_FOCUS,
        "Bundle.entry[1].fullUrl": f"{EHR}/Encounter/e1",
    }


def test_every_problem_of_one_envelope_is_reported_at_once() -> None:
    bundle = _without_parameter("subscription")
    bundle["entry"][0]["resource"]["parameter"][2] = {"name": "type", "valueCode": "bogus"}
    with pytest.raises(Problem) as refused:
        envelope.parse(bundle)
    assert len(refused.value.outcome()["issue"]) == 2


@pytest.mark.parametrize(
    ("reference", "key"),
    [
        (f"{EHR}/Observation/o-1", "Observation/o-1"),
        ("Observation/o-1/_history/3", "Observation/o-1"),
        (f"{EHR}/Subscription/s1?x=1", "Subscription/s1"),
        ("urn:uuid:1234", None),
        ("", None),
    ],
)
def test_references_reduce_to_type_and_id(reference: str, key: str | None) -> None:
    assert reference_key(reference) == key


# -- event numbers ---------------------------------------------------------------------------------


def test_events_in_order_advance_the_contiguous_count_without_gaps() -> None:
    step = sequence.receive(Ledger(), [1])
    step = sequence.receive(step.ledger, [2], reported=2)
    assert (step.fresh, step.gaps, step.ledger.contiguous, step.ledger.known) == ((2,), (), 2, 2)


def test_receiving_21_then_23_reveals_the_gap_22() -> None:
    ledger = Ledger(contiguous=21, known=21)
    step = sequence.receive(ledger, [23], reported=23)
    assert step.fresh == (23,)
    assert step.gaps == ((22, 22),)
    assert (step.ledger.contiguous, step.ledger.known) == (21, 23)
    assert not step.ledger.filled((22, 22))


def test_the_late_event_fills_its_gap_and_moves_the_contiguous_count_past_it() -> None:
    after_23 = sequence.receive(Ledger(contiguous=21, known=21), [23], reported=23).ledger
    step = sequence.receive(after_23, [22], reported=23)
    assert (step.fresh, step.gaps) == ((22,), ())
    assert step.ledger.contiguous == 23
    assert step.ledger.filled((22, 22))


def test_a_repeated_event_number_is_a_duplicate_and_not_processed_again() -> None:
    ledger = sequence.receive(Ledger(contiguous=21, known=21), [23], reported=23).ledger
    step = sequence.receive(ledger, [23, 21], reported=23)
    assert (step.fresh, step.duplicates, step.gaps) == ((), (23, 21), ())


def test_a_number_repeated_within_one_notification_is_processed_once() -> None:
    step = sequence.receive(Ledger(), [1, 1])
    assert (step.fresh, step.duplicates) == ((1,), (1,))


def test_a_heartbeat_count_beyond_the_last_event_reveals_events_never_delivered() -> None:
    step = sequence.receive(Ledger(contiguous=5, known=5), [], reported=8)
    assert step.gaps == ((6, 8),)
    assert (step.ledger.contiguous, step.ledger.known) == (5, 8)


def test_a_gap_already_known_is_not_reported_twice() -> None:
    first = sequence.receive(Ledger(), [3], reported=3)
    again = sequence.receive(first.ledger, [], reported=3)
    assert first.gaps == ((1, 2),)
    assert again.gaps == ()


def test_several_runs_missing_at_once_are_reported_separately() -> None:
    step = sequence.receive(Ledger(contiguous=1, known=1), [3, 6], reported=7)
    assert step.gaps == ((2, 2), (4, 5), (7, 7))


def test_a_recovered_run_counts_as_accounted_for_and_lets_the_count_advance() -> None:
    ledger = sequence.receive(Ledger(contiguous=21, known=21), [23, 24], reported=24).ledger
    recovered = sequence.close(ledger, (22, 22))
    assert recovered.contiguous == 24
    assert recovered.accounted(22) and not recovered.seen


def test_a_recovered_run_above_an_open_gap_waits_for_that_gap() -> None:
    ledger = sequence.receive(Ledger(), [2, 5], reported=5).ledger  # missing 1 and 3-4
    ledger = sequence.close(ledger, (3, 4))
    assert ledger.contiguous == 0 and ledger.accounted(4) and not ledger.accounted(1)
    assert sequence.close(ledger, (1, 1)).contiguous == 5


def test_a_huge_reported_count_is_handled_without_counting_one_by_one() -> None:
    step = sequence.receive(Ledger(), [10**12], reported=10**12)
    assert step.gaps == ((1, 10**12 - 1),)
    assert not step.ledger.filled((1, 10**12 - 1))
