"""EhrClient over a fake transport: status mapping, no retries, no secrets, safe URLs."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import structlog
from requests.adapters import BaseAdapter

from pathways.fhir.outbound import PROPOSAL_IDENTIFIER_SYSTEM
from service.ehr import BearerToken, EhrClient, EhrConflict, EhrRejected, EhrUnavailable, NoAuth
from service.ehr.errors import EhrError, parse_retry_after
from service.usecases.ehr_writes import existing_ids

BASE = "https://ehr.example.test/fhir"
TOKEN = "tok-7f3a9c-never-shown"
FHIR_JSON = "application/fhir+json"
SYSTEM = "urn:example:carepath"
PATIENT_ID = "patient-4711"

Answer = requests.Response | Exception
Handler = Callable[[requests.PreparedRequest], Answer]


class FakeTransport(BaseAdapter):
    """A requests transport that answers from a handler and records what it was sent."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[requests.PreparedRequest] = []
        self.timeouts: list[Any] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.sent.append(request)
        self.timeouts.append(timeout)
        answer = self.handler(request)
        if isinstance(answer, Exception):
            raise answer
        answer.request, answer.url = request, request.url or ""
        return answer

    def close(self) -> None:
        """Nothing to release."""


def answer(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> requests.Response:
    """A canned HTTP answer; dicts are sent as FHIR JSON, bytes as they are."""
    response = requests.Response()
    response.status_code = status
    content = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    response.raw = io.BytesIO(content)
    response.headers.update({"Content-Type": FHIR_JSON, **(headers or {})})
    return response


def outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


def task(task_id: str = "t1", value: str = "pt-fail/p1/imaging/v3") -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": "requested",
        "intent": "proposal",
        "identifier": [{"system": SYSTEM, "value": value}],
    }


def bundle(resources: list[dict[str, Any]], next_url: str | None = None, mode: str = "match") -> dict[str, Any]:
    links = [{"relation": "next", "url": next_url}] if next_url else []
    entries = [{"resource": r, "search": {"mode": mode}} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


Connect = Callable[[Handler], tuple[EhrClient, FakeTransport]]


@pytest.fixture()
def connect() -> Iterator[Connect]:
    """Build clients whose session sends every request to a fake transport."""
    sessions: list[requests.Session] = []

    def build(handler: Handler) -> tuple[EhrClient, FakeTransport]:
        transport = FakeTransport(handler)
        session = requests.Session()
        # Both schemes: a request that escaped to another server would be recorded, not lost.
        session.mount("https://", transport)
        session.mount("http://", transport)
        sessions.append(session)
        return EhrClient(BASE, auth=BearerToken(TOKEN), timeout=(3.05, 20.0), session=session), transport

    yield build
    for session in sessions:
        session.close()


def fails_with(connect: Connect, answer_: Answer, call: Callable[[EhrClient], object]) -> EhrError:
    client, transport = connect(lambda request: answer_)
    with pytest.raises(EhrError) as caught:
        call(client)
    assert len(transport.sent) == 1, "the client must send exactly one request and never retry"
    return caught.value


# -- construction and headers -------------------------------------------------------------------


def test_building_a_client_sends_nothing(connect: Connect) -> None:
    _, transport = connect(lambda request: answer(200, {}))
    assert transport.sent == []


def test_every_request_carries_fhir_json_headers_the_token_and_the_configured_timeouts(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(200, task()))
    client.read("Task", "t1")
    sent = transport.sent[0]
    assert sent.url == f"{BASE}/Task/t1"
    assert sent.headers["Accept"] == FHIR_JSON
    assert sent.headers["Content-Type"] == FHIR_JSON
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert transport.timeouts == [(3.05, 20.0)]


def test_no_auth_sends_no_authorization_header() -> None:
    transport = FakeTransport(lambda request: answer(200, task()))
    with requests.Session() as session:
        session.mount("https://", transport)
        EhrClient(BASE, auth=NoAuth(), timeout=(1.0, 1.0), session=session).read("Task", "t1")
    assert "Authorization" not in transport.sent[0].headers


# -- conditional create ---------------------------------------------------------------------------


def test_conditional_create_reports_created_with_id_and_version_from_location_on_201(connect: Connect) -> None:
    headers = {"Location": f"{BASE}/Task/new-1/_history/1", "ETag": 'W/"1"'}
    client, _ = connect(lambda request: answer(201, task("new-1"), headers))
    result = client.conditional_create(task(), SYSTEM, "pt-fail/p1/imaging/v3")
    assert (result.status, result.resource_id, result.version_id, result.created) == (201, "new-1", "1", True)


def test_conditional_create_reports_the_existing_resource_on_200_even_without_a_body(connect: Connect) -> None:
    headers = {"Location": "Task/old-7/_history/3", "ETag": 'W/"3"'}
    client, _ = connect(lambda request: answer(200, None, headers))
    result = client.conditional_create(task(), SYSTEM, "pt-fail/p1/imaging/v3")
    assert (result.status, result.resource_id, result.version_id, result.created) == (200, "old-7", "3", False)


def test_conditional_create_sends_if_none_exist_as_an_encoded_identifier_query(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(201, task()))
    client.conditional_create(task(), SYSTEM, "pt-fail/p1/imaging/v3")
    header = transport.sent[0].headers["If-None-Exist"]
    assert header == "identifier=urn%3Aexample%3Acarepath%7Cpt-fail%2Fp1%2Fimaging%2Fv3"
    assert transport.sent[0].method == "POST" and transport.sent[0].url == f"{BASE}/Task"


def test_if_none_exist_escapes_fhir_search_specials_in_the_identifier_value(connect: Connect) -> None:
    value = "a,b|c$d\\e&f=g h"
    client, transport = connect(lambda request: answer(201, task(value=value)))
    client.conditional_create(task(value=value), SYSTEM, value)
    query = parse_qs(transport.sent[0].headers["If-None-Exist"], strict_parsing=True)
    # A bare comma would OR two values, and the EHR would create a duplicate instead of matching.
    assert query == {"identifier": [f"{SYSTEM}|a\\,b\\|c\\$d\\\\e&f=g h"]}


def test_conditional_create_refuses_a_resource_that_lacks_the_identifier_it_names(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(201, task()))
    with pytest.raises(EhrRejected):
        client.conditional_create(task(value="other"), SYSTEM, "pt-fail/p1/imaging/v3")
    assert transport.sent == []


def test_conditional_create_with_several_matches_raises_conflict(connect: Connect) -> None:
    multiple = answer(412, outcome("multiple-matches", "criteria matched 2 resources"))
    error = fails_with(connect, multiple, lambda c: c.conditional_create(task(), SYSTEM, "pt-fail/p1/imaging/v3"))
    assert isinstance(error, EhrConflict)
    assert error.status == 412 and error.outcome is not None
    assert str(error) == "POST Task -> 412: multiple-matches: criteria matched 2 resources"


# -- status and transport mapping -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, EhrRejected),
        (401, EhrRejected),
        (403, EhrRejected),
        (404, EhrRejected),
        (410, EhrRejected),
        (422, EhrRejected),
        (302, EhrRejected),
        (409, EhrConflict),
        (412, EhrConflict),
        (429, EhrUnavailable),
        (500, EhrUnavailable),
        (502, EhrUnavailable),
        (503, EhrUnavailable),
    ],
)
def test_each_error_status_maps_to_one_taxonomy_class_after_one_request(
    connect: Connect, status: int, kind: type[EhrError]
) -> None:
    error = fails_with(connect, answer(status, outcome("processing", "nope")), lambda c: c.read("Task", "t1"))
    assert type(error) is kind
    assert (error.status, error.method, error.path) == (status, "GET", "Task/t1")


def test_redirects_are_refused_not_followed(connect: Connect) -> None:
    # Following one would resend the request, with our token, wherever the Location points.
    moved = answer(307, None, {"Location": "https://evil.example/fhir/Task/t1"})
    error = fails_with(connect, moved, lambda c: c.read("Task", "t1"))
    assert isinstance(error, EhrRejected) and error.status == 307


def test_rejections_carry_the_parsed_operation_outcome(connect: Connect) -> None:
    body = outcome("structure", "Extra inputs are not permitted (Task.foo)")
    error = fails_with(connect, answer(400, body), lambda c: c.update("Task", "t1", task()))
    assert error.outcome == body
    assert str(error) == "PUT Task/t1 -> 400: structure: Extra inputs are not permitted (Task.foo)"


def test_429_and_503_carry_retry_after_in_seconds(connect: Connect) -> None:
    error = fails_with(connect, answer(429, None, {"Retry-After": "120"}), lambda c: c.read("Task", "t1"))
    assert isinstance(error, EhrUnavailable) and error.retry_after == 120.0
    later = "Wed, 21 Oct 2099 07:28:00 GMT"
    error = fails_with(connect, answer(503, None, {"Retry-After": later}), lambda c: c.read("Task", "t1"))
    assert isinstance(error, EhrUnavailable) and error.retry_after is not None and error.retry_after > 0


def test_retry_after_parses_seconds_and_http_dates_and_ignores_garbage() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:01:30 GMT", now) == 90.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
        requests.ConnectionError("connection refused"),
        requests.exceptions.ChunkedEncodingError("connection broken"),
    ],
)
def test_timeouts_and_connection_errors_raise_unavailable_after_one_attempt(
    connect: Connect, failure: Exception
) -> None:
    error = fails_with(connect, failure, lambda c: c.read("Task", "t1"))
    assert isinstance(error, EhrUnavailable) and error.status is None and error.retry_after is None


def test_a_success_that_is_not_fhir_json_raises_unavailable(connect: Connect) -> None:
    html = answer(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})
    assert isinstance(fails_with(connect, html, lambda c: c.read("Task", "t1")), EhrUnavailable)


def test_a_success_of_the_wrong_resource_type_raises_unavailable(connect: Connect) -> None:
    assert isinstance(
        fails_with(connect, answer(200, {"resourceType": "Patient"}), lambda c: c.read("Task", "t1")), EhrUnavailable
    )


def test_the_clients_own_session_does_not_retry_a_dropped_connection() -> None:
    attempts = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def drop_connections() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:
                    return
                attempts.append(1)
                connection.close()  # hang up without answering

        threading.Thread(target=drop_connections, daemon=True).start()
        client = EhrClient(f"http://127.0.0.1:{port}/fhir", auth=NoAuth(), timeout=(1.0, 1.0))
        with client, pytest.raises(EhrUnavailable):
            client.read("Task", "t1")
    assert len(attempts) == 1


# -- secrets, PHI and query values ----------------------------------------------------------------


def test_no_error_message_repr_or_kept_outcome_shows_the_token(connect: Connect) -> None:
    echo = outcome("login", f"Invalid token 'Bearer {TOKEN}'")
    error = fails_with(connect, answer(401, echo), lambda c: c.read("Task", "t1"))
    client, _ = connect(lambda request: answer(200, {}))
    for text in (str(error), repr(error), json.dumps(error.outcome), repr(client), repr(BearerToken(TOKEN))):
        assert TOKEN not in text


def test_error_messages_carry_no_query_values_or_resource_bodies(connect: Connect) -> None:
    leaky = requests.ConnectionError(f"Max retries exceeded with url: /fhir/Task?identifier={PATIENT_ID}")
    error = fails_with(connect, leaky, lambda c: c.search("Task", {"patient": PATIENT_ID}))
    assert PATIENT_ID not in str(error) and str(error) == "GET Task: connection failed (ConnectionError)"
    assert error.__cause__ is None and error.__suppress_context__
    error = fails_with(
        connect, answer(500, None), lambda c: c.conditional_create(task(value=PATIENT_ID), SYSTEM, PATIENT_ID)
    )
    assert PATIENT_ID not in str(error) and "requested" not in str(error)


def test_each_call_logs_one_line_without_query_values_ids_bodies_or_headers(connect: Connect) -> None:
    client, _ = connect(lambda request: answer(200, bundle([task()])))
    with structlog.testing.capture_logs() as logs:
        client.search("Task", {"patient": PATIENT_ID})
    assert len(logs) == 1
    assert set(logs[0]) == {"event", "log_level", "method", "resource_type", "status", "duration_ms"}
    assert (logs[0]["method"], logs[0]["resource_type"], logs[0]["status"]) == ("GET", "Task", 200)
    client, _ = connect(lambda request: answer(404, outcome("not-found", f"Task/{PATIENT_ID} not found")))
    with structlog.testing.capture_logs() as logs, pytest.raises(EhrRejected):
        client.read("Task", PATIENT_ID)
    assert PATIENT_ID not in repr(logs) and TOKEN not in repr(logs)
    assert logs[0]["error"] == "EhrRejected" and logs[0]["issue_codes"] == ["not-found"]


# -- reading URLs from notifications --------------------------------------------------------------


@pytest.mark.parametrize("url", [f"{BASE}/Task/t1", "Task/t1", f"{BASE}/Task/t1/_history/2"])
def test_read_reference_reads_focus_references_on_the_ehr_from_the_base(connect: Connect, url: str) -> None:
    client, transport = connect(lambda request: answer(200, task()))
    assert client.read_reference(url)["id"] == "t1"
    assert (transport.sent[0].url or "").startswith(f"{BASE}/Task/t1")


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/fhir/Task/t1",
        "http://ehr.example.test/fhir/Task/t1",
        "https://ehr.example.test:8443/fhir/Task/t1",
        "https://ehr.example.test/other/Task/t1",
        "https://ehr.example.test/fhirx/Task/t1",
        "https://ehr.example.test@evil.example/fhir/Task/t1",
        "//evil.example/fhir/Task/t1",
        "/Task/t1",
        f"{BASE}/Task/../../admin",
        BASE,
    ],
)
def test_read_reference_refuses_urls_outside_the_base_without_sending_anything(connect: Connect, url: str) -> None:
    client, transport = connect(lambda request: answer(200, task()))
    with pytest.raises(EhrRejected):
        client.read_reference(url)
    assert transport.sent == []


@pytest.mark.parametrize(
    ("resource_type", "id"), [("Task", "../metadata"), ("task", "t1"), ("Task", "a/b"), ("Task", "")]
)
def test_read_refuses_types_and_ids_that_are_not_fhir(connect: Connect, resource_type: str, id: str) -> None:
    client, transport = connect(lambda request: answer(200, task()))
    with pytest.raises(EhrRejected):
        client.read(resource_type, id)
    assert transport.sent == []


# -- search ---------------------------------------------------------------------------------------


def test_search_follows_next_links_and_returns_only_matches(connect: Connect) -> None:
    pages = {
        f"{BASE}/Task?status=requested": bundle([task("a")], next_url=f"{BASE}/Task?status=requested&_offset=1"),
        f"{BASE}/Task?status=requested&_offset=1": {
            **bundle([task("b")]),
            "entry": [
                {"resource": task("b"), "search": {"mode": "match"}},
                {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "include"}},
                {"resource": outcome("informational", "x"), "search": {"mode": "outcome"}},
                {"resource": task("c")},
            ],
        },
    }
    client, transport = connect(lambda request: answer(200, pages[request.url or ""]))
    assert [r["id"] for r in client.search("Task", {"status": "requested"})] == ["a", "b", "c"]
    assert len(transport.sent) == 2


def test_search_refuses_a_next_link_to_another_server(connect: Connect) -> None:
    client, transport = connect(
        lambda request: answer(200, bundle([task()], next_url="https://evil.example/fhir/Task"))
    )
    with pytest.raises(EhrRejected):
        client.search("Task", {"status": "requested"})
    assert len(transport.sent) == 1


def test_search_gives_up_with_rejected_after_the_page_bound(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(200, bundle([task()], next_url=f"{BASE}/Task?page=n")))
    with pytest.raises(EhrRejected, match="more than 3 pages"):
        client.search("Task", [("status", "requested")], max_pages=3)
    assert len(transport.sent) == 3


def test_search_by_identifier_sends_an_escaped_token(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(200, bundle([task()])))
    client.search_by_identifier("Task", SYSTEM, "a,b")
    assert parse_qs(urlsplit(transport.sent[0].url or "").query) == {"identifier": [f"{SYSTEM}|a\\,b"]}


def test_the_re_read_after_a_conflict_puts_each_key_on_the_wire_encoded_exactly_once(connect: Connect) -> None:
    group = "Patient/p1|pt-nonresponse|1|ep-1|red-flags:major|1"
    rendered = [
        {
            "resourceType": "Task",
            "id": "c1",
            "identifier": [{"system": PROPOSAL_IDENTIFIER_SYSTEM, "value": f"{group}|task"}],
        },
        {
            "resourceType": "Provenance",
            "id": "c2",
            "meta": {"tag": [{"system": PROPOSAL_IDENTIFIER_SYSTEM, "code": f"{group}|provenance"}]},
        },
    ]
    client, transport = connect(lambda request: answer(200, bundle([{"resourceType": "Task", "id": "ehr-1"}])))
    existing_ids(client, rendered)

    raw = [urlsplit(request.url or "").query for request in transport.sent]
    assert not any("%25" in query for query in raw), raw  # a `%` encoded again: the EHR would match nothing
    escaped = "Patient/p1\\|pt-nonresponse\\|1\\|ep-1\\|red-flags:major\\|1\\|"
    assert [parse_qs(query) for query in raw] == [
        {"identifier": [f"{PROPOSAL_IDENTIFIER_SYSTEM}|{escaped}task"]},
        {"_tag": [f"{PROPOSAL_IDENTIFIER_SYSTEM}|{escaped}provenance"]},
    ]


# -- transactions, updates, capabilities ----------------------------------------------------------


def test_transaction_posts_to_the_base_and_returns_the_response_bundle(connect: Connect) -> None:
    response = {"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "201"}}]}
    client, transport = connect(lambda request: answer(200, response))
    sent_bundle = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    assert client.transaction(sent_bundle) == response
    assert (transport.sent[0].method, transport.sent[0].url) == ("POST", BASE)
    assert json.loads(transport.sent[0].body or b"") == sent_bundle


def test_a_rolled_back_transaction_with_several_matches_raises_conflict(connect: Connect) -> None:
    body = outcome("multiple-matches", "Transaction rolled back: Entry 0 conditional create: criteria matched 2")
    error = fails_with(connect, answer(412, body), lambda c: c.transaction({"resourceType": "Bundle"}))
    assert isinstance(error, EhrConflict) and str(error).startswith("POST transaction -> 412: multiple-matches")


@pytest.mark.parametrize(("if_match", "sent"), [("3", 'W/"3"'), ('W/"3"', 'W/"3"'), (None, None)])
def test_update_sends_if_match_as_an_etag(connect: Connect, if_match: str | None, sent: str | None) -> None:
    client, transport = connect(lambda request: answer(200, task()))
    client.update("Task", "t1", task(), if_match=if_match)
    assert transport.sent[0].method == "PUT" and transport.sent[0].headers.get("If-Match") == sent


def test_a_stale_if_match_raises_conflict(connect: Connect) -> None:
    stale = answer(412, outcome("conflict", 'Version conflict: If-Match W/"1" but current is 2'))
    assert isinstance(fails_with(connect, stale, lambda c: c.update("Task", "t1", task(), if_match="1")), EhrConflict)


def test_patch_json_sends_a_json_patch_document(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(200, task()))
    ops = [{"op": "replace", "path": "/status", "value": "cancelled"}]
    client.patch_json("Task", "t1", ops, if_match='W/"2"')
    sent = transport.sent[0]
    assert (sent.method, sent.headers["Content-Type"], sent.headers["If-Match"]) == (
        "PATCH",
        "application/json-patch+json",
        'W/"2"',
    )
    assert json.loads(sent.body or b"") == ops


def test_capabilities_are_fetched_once_and_show_transaction_support(connect: Connect) -> None:
    statement = {
        "resourceType": "CapabilityStatement",
        "rest": [{"mode": "server", "interaction": [{"code": "transaction"}]}],
    }
    client, transport = connect(lambda request: answer(200, statement))
    assert client.supports_transactions() and client.supports_transactions()
    assert client.capabilities() == statement
    assert [r.url for r in transport.sent] == [f"{BASE}/metadata"]


def test_an_ehr_without_the_transaction_interaction_does_not_support_transactions(connect: Connect) -> None:
    statement = {
        "resourceType": "CapabilityStatement",
        "rest": [{"mode": "server", "interaction": [{"code": "batch"}]}],
    }
    client, _ = connect(lambda request: answer(200, statement))
    assert not client.supports_transactions()


def test_ping_reads_metadata_with_a_short_timeout_and_raises_when_down(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(200, {"resourceType": "CapabilityStatement"}))
    client.ping()
    assert transport.sent[0].url == f"{BASE}/metadata" and transport.timeouts == [(2.0, 3.0)]
    assert isinstance(fails_with(connect, requests.ConnectTimeout("x"), lambda c: c.ping()), EhrUnavailable)


class _RefreshingAuth:
    """An auth scheme that fetches tokens: it can be told a token was refused."""

    def __init__(self) -> None:
        self.invalidated = 0

    def apply(self, headers: dict[str, str]) -> None:
        headers["Authorization"] = "Bearer fetched"

    def invalidate(self) -> None:
        self.invalidated += 1


def test_a_refused_fetched_token_is_forgotten_and_the_call_is_worth_retrying() -> None:
    auth = _RefreshingAuth()
    transport = FakeTransport(lambda request: answer(401, outcome("login", "token expired")))
    session = requests.Session()
    session.mount("https://", transport)
    client = EhrClient(BASE, auth=auth, timeout=(1, 1), session=session)
    with pytest.raises(EhrUnavailable):
        client.read("Task", "t1")
    assert (auth.invalidated, len(transport.sent)) == (1, 1)


def test_a_refused_static_token_stays_a_rejection(connect: Connect) -> None:
    error = fails_with(connect, answer(401, outcome("login", "bad token")), lambda c: c.read("Task", "t1"))
    assert isinstance(error, EhrRejected)


def test_an_instance_operation_reads_its_bundle_answer_and_refuses_a_non_operation(connect: Connect) -> None:
    client, transport = connect(lambda request: answer(200, {"resourceType": "Bundle", "type": "searchset"}))
    assert client.instance_operation("Subscription", "s1", "$status", "Bundle")["type"] == "searchset"
    assert transport.sent[0].url == f"{BASE}/Subscription/s1/$status"
    with pytest.raises(EhrRejected):
        client.instance_operation("Subscription", "s1", "../../admin", "Bundle")
