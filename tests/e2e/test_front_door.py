"""Slow clients cannot hold the API: not through the production proxy, and not against `carepath serve` alone.

The reproducer is 64 connections that each send a request head one byte every two seconds and
never finish it (tests/slowloris.py). While they are held, and replaced whenever the server drops
them, `/healthz` and an intake POST must each answer within one second, again and again for
longer than one request-head deadline. Before the worker read requests whole, eight such
connections held every thread of the default two processes.

`carepath serve` alone must also bound the memory a request can make it hold (chunk extensions
included), limit how many requests one client address has arriving at once, and finish the
requests still arriving when its workers are told to stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.access import bearer, token_for
from tests.builders import PAIN, measure
from tests.nginx import NginxProxy
from tests.processes import CarepathProcess, start_api, wait_until
from tests.slowloris import Slowloris
from tests.stack import new_patient_id

SLOW_CONNECTIONS = 64
PROMPT_SECONDS = 1.0
# Longer than the API's 10 s head deadline and nginx's client_header_timeout: the attack's
# replacement connections are measured too, not only its first ones.
HOLD_SECONDS = 14
# service.web.worker.MAX_READING_PER_ADDRESS, per process; the suite's API runs two.
PER_ADDRESS = 32
API_PROCESSES = 2
# Loopback addresses other than the API's trusted proxy address (127.0.0.1, FORWARDED_ALLOW_IPS).
CLIENT_ADDRESS = "127.0.0.3"
OTHER_CLIENT_ADDRESS = "127.0.0.2"
# Far more than a request may hold (32 KiB head + 1 MiB body and its framing allowance); the flood
# stops by itself after this much or FLOOD_SECONDS, whichever comes first.
FLOOD_BYTES = 64 * 1024 * 1024
FLOOD_SECONDS = 10
# What a worker's resident memory may grow by while a flood is refused: noise, not the flood.
RSS_GROWTH_LIMIT_KIB = 16 * 1024
# service.web.worker.HELD_REQUESTS_BUDGET, in requests of the largest size a request may hold
# (service.web.http_framing: 32 KiB head + 1 MiB body + an eighth of it for chunk framing).
BUDGET_REQUESTS = 48
LARGEST_HELD_BYTES = 32 * 1024 + 1024 * 1024 + 128 * 1024
HEALTH_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
# gunicorn's graceful_timeout (service.web.wsgi), within which a stopping worker answers everything.
GRACEFUL_SECONDS = 10


@pytest.fixture(scope="module")
def served(stack_env: dict[str, str]) -> Iterator[tuple[CarepathProcess, str]]:
    process, base = start_api(stack_env, name="front-door-api")
    yield process, base
    process.stop()


@pytest.fixture(scope="module")
def api(served: tuple[CarepathProcess, str]) -> str:
    return served[1]


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


def connect(base: str, timeout: float, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port_of(base)), timeout=timeout, source_address=(source, 0))


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or the socket's timeout passes between two reads)."""
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def raw_exchange(base: str, request: bytes, wait: float, source: str = "127.0.0.1") -> bytes:
    """Send `request` as is and read the answer until the server closes (at most `wait` seconds)."""
    with connect(base, wait, source) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def worker_pids(master: CarepathProcess) -> list[int]:
    """The gunicorn worker processes of `carepath serve` (children of its master)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master.process.pid:
                children.append(int(stat.parent.name))
    return children


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


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


def flood(base: str, head: bytes, piece: bytes, while_held: Callable[[], None]) -> tuple[bytes, float]:
    """Send `head`, then `piece` again and again until the server answers (at most FLOOD_BYTES or FLOOD_SECONDS).

    `while_held` runs before the connection closes, while the server still holds what it kept of it.
    Returns the answer and the seconds the flood lasted.
    """
    with connect(base, timeout=5) as sock:
        sock.sendall(head)
        started, sent = time.monotonic(), 0
        with contextlib.suppress(OSError):  # the server closing on the flood is an end, not an error
            while sent < FLOOD_BYTES and time.monotonic() - started < FLOOD_SECONDS:
                if select.select([sock], [], [], 0)[0]:
                    break  # an answer has come
                sock.sendall(piece)
                sent += len(piece)
        lasted = time.monotonic() - started
        while_held()
        sock.settimeout(2)
        return read_until_closed(sock), lasted


@pytest.mark.parametrize(
    ("chunk", "status"),
    [
        (b"1;" + b"e" * 1000 + b"\r\nx\r\n", b"400"),  # extensions far beyond their allowance
        (b"1;" + b"e" * 60 + b"\r\nx\r\n", b"413"),  # allowed extensions, but framing adding up past the limit
    ],
    ids=["long-extensions", "tiny-chunks"],
)
def test_carepath_serve_refuses_a_flood_of_chunk_framing_at_once_without_its_workers_growing(
    served: tuple[CarepathProcess, str], chunk: bytes, status: bytes
) -> None:
    process, base = served
    workers = worker_pids(process)
    assert len(workers) == API_PROCESSES
    before = {pid: rss_kib(pid) for pid in workers}
    growth: dict[int, int] = {}

    def measure_growth() -> None:
        growth.update({pid: rss_kib(pid) - before[pid] for pid in workers})

    head = b"POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer, lasted = flood(base, head, chunk * (65536 // len(chunk)), while_held=measure_growth)
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    assert b'"resourceType": "OperationOutcome"' in answer
    assert lasted < PROMPT_SECONDS
    assert max(growth.values()) < RSS_GROWTH_LIMIT_KIB, growth


def test_one_client_address_cannot_have_more_requests_arriving_than_its_limit_while_another_is_served(
    api: str,
) -> None:
    unfinished = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    attempts = API_PROCESSES * PER_ADDRESS + 8  # at least one process is offered more than its limit
    sockets = [connect(api, timeout=5, source=CLIENT_ADDRESS) for _ in range(attempts)]
    try:
        for sock in sockets:
            sock.sendall(unfinished)
        time.sleep(1)  # every connection has been accepted, and refused or held
        refused = select.select(sockets, [], [], 0)[0]
        held = len(sockets) - len(refused)
        assert len(refused) >= attempts - API_PROCESSES * PER_ADDRESS and held <= API_PROCESSES * PER_ADDRESS
        for sock in refused:
            sock.settimeout(1)
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
            assert b"Retry-After: " in answer and b'"resourceType": "OperationOutcome"' in answer

        started = time.monotonic()
        health = raw_exchange(
            api, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 1, OTHER_CLIENT_ADDRESS
        )
        assert health.startswith(b"HTTP/1.1 200 ") and time.monotonic() - started < PROMPT_SECONDS
    finally:
        for sock in sockets:
            sock.close()

    def served_again() -> bool:
        return raw_exchange(api, HEALTH_REQUEST, 1, CLIENT_ADDRESS).startswith(b"HTTP/1.1 200 ")

    wait_until(served_again, 5, what="the address's places to be given back")


def test_requests_arriving_from_everywhere_together_hold_no_more_than_each_process_budget(api: str) -> None:
    # From the trusted address, which no per-address limit applies to: only the budget stands.
    body_sent = 1024 * 1024 - 1  # each request one byte short of its declared megabyte
    head = b"POST /fhir/Observation HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (body_sent + 1)
    fit = BUDGET_REQUESTS * LARGEST_HELD_BYTES // (len(head) + body_sent)  # per process
    attempts = API_PROCESSES * fit + 8
    sockets: list[socket.socket] = []
    try:
        for _ in range(attempts):
            sock = connect(api, timeout=5)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # refused while still sending
                sock.sendall(head + b"x" * body_sent)
        time.sleep(1)
        refused = select.select(sockets, [], [], 0)[0]
        assert len(refused) >= attempts - API_PROCESSES * fit, (len(refused), attempts, fit)
        for sock in refused:
            sock.settimeout(1)
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: " in answer, answer[:200]
        started = time.monotonic()
        health = raw_exchange(api, HEALTH_REQUEST, 1, OTHER_CLIENT_ADDRESS)
        assert health.startswith(b"HTTP/1.1 200 ") and time.monotonic() - started < PROMPT_SECONDS
    finally:
        for sock in sockets:
            sock.close()


def test_workers_told_to_stop_serve_requests_still_arriving_and_answer_503_to_those_that_do_not_finish(
    served: tuple[CarepathProcess, str],
) -> None:
    process, base = served
    body = b'{"x": 123}'
    head = b"POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(body)
    finishing, unfinished, idle = (connect(base, timeout=GRACEFUL_SECONDS + 2) for _ in range(3))
    try:
        finishing.sendall(head + body[:5])
        unfinished.sendall(head + body[:5])
        time.sleep(0.5)  # all three accepted and read
        workers = worker_pids(process)
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        stopped = time.monotonic()
        time.sleep(1)
        finishing.sendall(body[5:])

        answer = read_until_closed(finishing)
        # The app's own answer (it names the request; the worker's refusals do not), whatever it makes of the body.
        assert answer.startswith(b"HTTP/1.1 4") and b"X-Request-ID: " in answer, answer[:200]
        assert b"Connection: close" in answer

        assert read_until_closed(idle) == b""
        assert time.monotonic() - stopped < 4  # an idle connection is let go of soon, not at the end

        answer = read_until_closed(unfinished)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b"Retry-After: " in answer and b"Connection: close" in answer
        assert b'"resourceType": "OperationOutcome"' in answer
        assert time.monotonic() - stopped < GRACEFUL_SECONDS
    finally:
        for sock in (finishing, unfinished, idle):
            sock.close()

    def replaced() -> bool:
        current = worker_pids(process)
        return len(current) == API_PROCESSES and not set(current) & set(workers)

    wait_until(replaced, 30, what="gunicorn to replace the stopped workers")
    wait_until(lambda: requests.get(f"{base}/healthz", timeout=1).status_code == 200, 30, what="the API to answer")
