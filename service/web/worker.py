"""A gunicorn threaded worker that hands a thread only a request it already holds whole.

gunicorn's `gthread` worker gives a connection to a thread as soon as its first byte arrives and
the thread then blocks reading the rest of the head and body: a client that sends a header byte
every few seconds holds a thread for as long as it likes, and eight such clients held every
thread of the API's default two processes. Here the event loop (gunicorn's own selector) reads
each connection without blocking into a `RequestFraming` until the request is complete, under a
deadline for the head and one for the body, and only then queues it for a thread. A slow client
costs a buffer and a file descriptor, never a thread; one past its deadline gets a 408.

The buffers are bounded three ways: each request by its head and body limits (chunk framing
included, `service.web.http_framing`), each client address by the number of its requests being read at
once (429 beyond it), and the whole process by a budget of bytes held across all of them (the
largest refused with a 503 when it is exceeded). A worker told to stop keeps reading for its
graceful timeout: requests that complete are served (with `Connection: close`), the rest get a 503.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import selectors
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from gunicorn.workers.gthread import TConn, ThreadWorker

from service.problems import Problem
from service.web.http_framing import MAX_CHUNK_EXTENSIONS_BYTES, Framing, FramingLimits, RequestFraming
from service.web.security_headers import ALWAYS, NOT_STORED

# Seconds a client has to send a request's head, and then its body. nginx's client_header_timeout
# and client_body_timeout in deploy/nginx.conf hold the production front door to the same.
REQUEST_HEAD_TIMEOUT_SECONDS = 10.0
REQUEST_BODY_TIMEOUT_SECONDS = 30.0
# The request line, headers and blank line together: nginx's large_client_header_buffers (4 × 8k).
REQUEST_HEAD_LIMIT_BYTES = 32 * 1024
RECEIVE_BYTES = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Requests one client address may have arriving at once in a process: nginx's limit_conn in
# deploy/nginx.conf. Addresses in FORWARDED_ALLOW_IPS are not counted: behind the proxy every client
# arrives from the proxy's address, and the proxy reads each request whole before it connects, so its
# connections are never slow; it holds each real client to the same limit itself.
MAX_READING_PER_ADDRESS = 32
# Bytes all requests still arriving may hold together in one process, in requests of the largest
# size allowed (head, body and chunk framing): more than one address may hold on its own.
HELD_REQUESTS_BUDGET = 48
# Seconds a client refused for load or a restart is told to wait before trying again.
RETRY_AFTER_SECONDS = 2
# A stopping process answers requests still arriving this long before its graceful timeout ends,
# so that its 503s leave before it does (its loop wakes at least once a second).
STOP_ANSWER_MARGIN_SECONDS = 2.0
# A stopping process closes connections that have sent nothing after this long, as gthread lingers
# on its kept-alive ones: long enough for a request already on its way.
STOP_IDLE_LINGER_SECONDS = 2.0

REFUSALS: dict[Framing, Problem] = {
    Framing.MALFORMED: Problem(400, "invalid", "The request's length cannot be determined from its headers."),
    Framing.BAD_CHUNK: Problem(
        400,
        "invalid",
        "A chunk of the request body is not framed as HTTP/1.1 requires: a hexadecimal size, "
        f"at most {MAX_CHUNK_EXTENSIONS_BYTES} bytes of extensions, CRLF, the data, CRLF.",
    ),
    Framing.HEAD_TOO_LARGE: Problem(
        431, "too-costly", f"Request headers larger than {REQUEST_HEAD_LIMIT_BYTES} bytes."
    ),
}
TIMED_OUT = Problem(408, "timeout", "The request was not received in time.")
TOO_MANY_FROM_ADDRESS = Problem(
    429, "throttled", f"More than {MAX_READING_PER_ADDRESS} requests from this address are arriving at once."
)
OVER_BUDGET = Problem(503, "transient", "The server holds too many unfinished requests; retry shortly.")
STOPPING = Problem(503, "transient", "The server is restarting and the request did not arrive in time; retry it.")
REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Content Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
RETRY_LATER = {429, 503}

Key = TypeVar("Key", bound=Hashable)


@dataclass
class _Reading:
    """A connection whose next request is still arriving."""

    conn: TConn
    framing: RequestFraming
    deadline: float


class HeldRequests(Generic[Key]):
    """The requests a process is still reading: the bytes they hold together, and how many come from each address."""

    def __init__(self, budget_bytes: int, per_address: int) -> None:
        self._budget_bytes = budget_bytes
        self._per_address = per_address
        self._bytes: dict[Key, int] = {}
        self._address: dict[Key, str | None] = {}
        self._from: Counter[str] = Counter()
        self.total_bytes = 0

    def admits(self, address: str | None) -> bool:
        """Whether one more request may be read from `address` (None: an address that is not counted)."""
        return address is None or self._from[address] < self._per_address

    def add(self, key: Key, address: str | None) -> None:
        self._bytes[key] = 0
        self._address[key] = address
        if address is not None:
            self._from[address] += 1

    def holds(self, key: Key, held_bytes: int) -> None:
        """Record what the request `key` holds now."""
        self.total_bytes += held_bytes - self._bytes[key]
        self._bytes[key] = held_bytes

    def remove(self, key: Key) -> None:
        if key not in self._bytes:
            return
        self.total_bytes -= self._bytes.pop(key)
        address = self._address.pop(key)
        if address is not None:
            self._from[address] -= 1
            if not self._from[address]:
                del self._from[address]

    def beyond_budget(self) -> list[Key]:
        """The requests to refuse for the rest to fit the budget: the largest, which free the most for the fewest."""
        excess = self.total_bytes - self._budget_bytes
        refused: list[Key] = []
        for key in sorted(self._bytes, key=self._bytes.__getitem__, reverse=True):
            if excess <= 0:
                break
            refused.append(key)
            excess -= self._bytes[key]
        return refused


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with each request read whole in the event loop before a thread serves it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: dict[TConn, _Reading] = {}
        # self.app is service.web.wsgi.GunicornApplication: the body limit is the app's own MAX_BODY_BYTES
        self._limits = FramingLimits(head_bytes=REQUEST_HEAD_LIMIT_BYTES, body_bytes=self.app.settings.max_body_bytes)
        self._held: HeldRequests[TConn] = HeldRequests(
            HELD_REQUESTS_BUDGET * self._limits.held_bytes, MAX_READING_PER_ADDRESS
        )
        self._stopping_since: float | None = None

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        if cfg.is_ssl:
            raise RuntimeError("BufferedThreadWorker reads plain HTTP; terminate TLS at the proxy in front")
        super().check_config(cfg, log)

    def enqueue_req(self, conn: TConn) -> None:
        """Every path by which gunicorn would hand a connection to a thread comes through here first."""
        conn.sock.setblocking(False)  # a thread may hand back a blocking socket; the loop must never wait on one
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        address = self._counted_address(conn)
        if not self._held.admits(address):
            self._refuse(conn, TOO_MANY_FROM_ADDRESS)
            return
        reading = _Reading(conn, RequestFraming(self._limits), deadline=time.monotonic() + REQUEST_HEAD_TIMEOUT_SECONDS)
        self._reading[conn] = reading
        self._held.add(conn, address)
        if leftover and self._advance(reading, leftover):
            self._forget(reading)
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, reading))
        self._keep_within_budget()

    def murder_pending(self) -> None:
        """Also end requests past their deadline, and those a stopping worker can wait for no longer."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive and self._stopping_since is None:
            self._stopping_since = now
        for reading in [r for r in self._reading.values() if self._deadline(r) <= now]:
            self._forget(reading)
            self._refuse(reading.conn, self._late_answer(reading))

    def _deadline(self, reading: _Reading) -> float:
        """When a stopping worker gives up on a request: at its graceful timeout, or soon if nothing has arrived."""
        if self._stopping_since is None:
            return reading.deadline
        if not reading.framing.received:
            return min(reading.deadline, self._stopping_since + STOP_IDLE_LINGER_SECONDS)
        graceful = max(float(self.cfg.graceful_timeout) - STOP_ANSWER_MARGIN_SECONDS, 0.0)
        return min(reading.deadline, self._stopping_since + graceful)

    def _late_answer(self, reading: _Reading) -> Problem | None:
        if not reading.framing.received:
            return None  # nobody is waiting for an answer
        return STOPPING if self._stopping_since is not None else TIMED_OUT

    def _counted_address(self, conn: TConn) -> str | None:
        """The client address the per-address limit counts; None for the trusted proxy and Unix-socket peers."""
        if not isinstance(conn.client, tuple) or "*" in self.cfg.forwarded_allow_ips:
            return None
        try:
            address = ipaddress.ip_address(conn.client[0])
        except ValueError:
            return None
        if any(address in network for network in self.cfg.forwarded_allow_networks()):
            return None
        return str(address)

    def _keep_within_budget(self) -> None:
        for conn in self._held.beyond_budget():
            self._forget(self._reading[conn])
            self._refuse(conn, OVER_BUDGET)

    def _on_readable(self, reading: _Reading, sock: Any) -> None:
        try:
            data = sock.recv(RECEIVE_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away before finishing its request
            self._forget(reading)
            self._refuse(reading.conn, None)
            return
        if self._advance(reading, data):
            self._forget(reading)
        else:
            self._keep_within_budget()

    def _advance(self, reading: _Reading, data: bytes) -> bool:
        """Feed bytes; dispatch or refuse a request that is settled. True once it has left the event loop."""
        had_head = reading.framing.head_complete
        state = reading.framing.feed(data)
        if state is Framing.INCOMPLETE:
            if reading.framing.head_complete and not had_head:
                reading.deadline = time.monotonic() + REQUEST_BODY_TIMEOUT_SECONDS
                if reading.framing.expects_continue:
                    _send_quietly(reading.conn.sock, CONTINUE)
                    reading.framing.drop_expectation()
            self._held.holds(reading.conn, reading.framing.held_bytes)
            return False
        if state is Framing.COMPLETE:
            self._dispatch(reading)
        else:
            self._refuse(reading.conn, self._refusal(state))
        return True

    def _refusal(self, state: Framing) -> Problem:
        if state is Framing.BODY_TOO_LARGE:
            return Problem(
                413,
                "too-costly",
                f"Request body larger than the limit of {self._limits.body_bytes} bytes, "
                "or sent in chunks so small that their framing adds more than an eighth to it.",
            )
        return REFUSALS[state]

    def _dispatch(self, reading: _Reading) -> None:
        conn = reading.conn
        conn.data_ready = True  # gthread's own wait for a first byte is moot: the whole request is here
        conn.init()
        conn.parser.unreader.unread(reading.framing.request_bytes())
        super().enqueue_req(conn)

    def _forget(self, reading: _Reading) -> None:
        self._reading.pop(reading.conn, None)
        self._held.remove(reading.conn)
        with contextlib.suppress(KeyError, ValueError, OSError):  # never registered: settled from bytes held
            self.poller.unregister(reading.conn.sock)

    def _refuse(self, conn: TConn, problem: Problem | None) -> None:
        """Answer (when there is someone to answer) and close; the connection never reached a thread."""
        if problem is not None:
            # What has already arrived is read first: closing with unread bytes resets the connection,
            # and a reset can overtake the answer on its way to the client.
            with contextlib.suppress(OSError):
                conn.sock.recv(RECEIVE_BYTES)
            _send_quietly(conn.sock, _answer(problem))
        self.nr_conns -= 1
        conn.close()


def _answer(problem: Problem) -> bytes:
    body = json.dumps(problem.outcome()).encode()
    head = (
        f"HTTP/1.1 {problem.status} {REASONS[problem.status]}\r\n"
        "Content-Type: application/fhir+json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    )
    if problem.status in RETRY_LATER:
        head += f"Retry-After: {RETRY_AFTER_SECONDS}\r\n"
    protections = "".join(f"{name}: {value}\r\n" for name, value in (ALWAYS | NOT_STORED).items())
    return (head + protections + "\r\n").encode() + body


def _send_quietly(sock: Any, data: bytes) -> None:
    """Best effort on a non-blocking socket: a short answer fits its send buffer, and a gone client is no error."""
    with contextlib.suppress(OSError):
        sock.send(data)
