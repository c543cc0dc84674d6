"""Slow clients cannot hold the API: not through the production proxy, and not against `carepath serve` alone.

The reproducer is 64 connections that each send a request head one byte every two seconds and
never finish it (tests/slowloris.py). While they are held, and replaced whenever the server drops
them, `/healthz` and an intake POST must each answer within one second, again and again for
longer than one request-head deadline. Before the worker read requests whole, eight such
connections held every thread of the default two processes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from tests.access import bearer, token_for
from tests.builders import PAIN, measure
from tests.nginx import NginxProxy
from tests.processes import start_api
from tests.slowloris import Slowloris
from tests.stack import new_patient_id

SLOW_CONNECTIONS = 64
PROMPT_SECONDS = 1.0
# Longer than the API's 10 s head deadline and nginx's client_header_timeout: the attack's
# replacement connections are measured too, not only its first ones.
HOLD_SECONDS = 14


@pytest.fixture(scope="module")
def api(stack_env: dict[str, str]) -> Iterator[str]:
    process, base = start_api(stack_env, name="front-door-api")
    yield base
    process.stop()


@pytest.fixture(scope="module")
def proxy(api: str) -> Iterator[NginxProxy]:
    front = NginxProxy(upstream=api.removeprefix("http://"))
    yield front
    front.stop()


@pytest.fixture(scope="module")
def ehr_token(stack_env: dict[str, str]) -> str:
    return token_for(stack_env, "ehr")


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


def answers_promptly_while_held(base: str, ehr_token: str) -> int:
    """Run the reproducer against `base`, probing health and intake throughout; return how many probe rounds passed."""
    rounds = 0
    with Slowloris(port_of(base), connections=SLOW_CONNECTIONS) as attack:
        time.sleep(3)  # every slow connection has been accepted and has sent part of its head
        ends = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < ends:
            assert attack.open_connections() == SLOW_CONNECTIONS
            started = time.monotonic()
            health = requests.get(f"{base}/healthz", timeout=PROMPT_SECONDS)
            assert health.status_code == 200 and time.monotonic() - started < PROMPT_SECONDS

            observation = measure(new_patient_id(), PAIN, 6, datetime.now(UTC))
            started = time.monotonic()
            intake = requests.post(
                f"{base}/fhir/Observation",
                json=observation,
                headers={"Content-Type": "application/fhir+json"} | bearer(ehr_token),
                timeout=PROMPT_SECONDS,
            )
            assert intake.status_code == 201, intake.text
            assert time.monotonic() - started < PROMPT_SECONDS
            rounds += 1
            time.sleep(0.5)
        assert attack.reopened >= SLOW_CONNECTIONS  # the server let go of the first ones, and the attack came back
    return rounds


def test_sixty_four_slow_clients_leave_health_and_intake_answering_within_a_second_through_the_nginx_front_door(
    proxy: NginxProxy, ehr_token: str
) -> None:
    assert answers_promptly_while_held(proxy.base_url, ehr_token) >= 10


def test_sixty_four_slow_clients_leave_health_and_intake_answering_within_a_second_from_carepath_serve_alone(
    api: str, ehr_token: str
) -> None:
    assert answers_promptly_while_held(api, ehr_token) >= 10


def raw_exchange(base: str, request: bytes, wait: float) -> bytes:
    """Send `request` as is and read the answer until the server closes (at most `wait` seconds)."""
    with socket.create_connection(("127.0.0.1", port_of(base)), timeout=wait) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_carepath_serve_answers_a_request_head_unfinished_after_ten_seconds_with_408_and_closes(api: str) -> None:
    started = time.monotonic()
    answer = raw_exchange(api, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", wait=20)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b'"resourceType": "OperationOutcome"' in answer
    assert b"X-Content-Type-Options: nosniff" in answer and b"Cache-Control: no-store" in answer
    assert 9 <= time.monotonic() - started < 13


def test_carepath_serve_refuses_a_body_declared_over_the_limit_at_once_without_waiting_for_it(api: str) -> None:
    head = b"POST /fhir/Observation HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 104857600\r\n\r\n"
    started = time.monotonic()
    answer = raw_exchange(api, head, wait=5)
    assert answer.startswith(b"HTTP/1.1 413 ") and b"too-costly" in answer
    assert time.monotonic() - started < PROMPT_SECONDS


def test_carepath_serve_answers_a_request_whose_chunked_body_arrives_in_pieces(api: str, ehr_token: str) -> None:
    def pieces() -> Iterator[bytes]:
        body = json.dumps(measure(new_patient_id(), PAIN, 5, datetime.now(UTC))).encode()
        for start in range(0, len(body), 100):
            time.sleep(0.05)
            yield body[start : start + 100]

    answer = requests.post(
        f"{api}/fhir/Observation",
        data=pieces(),
        headers={"Content-Type": "application/fhir+json"} | bearer(ehr_token),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
