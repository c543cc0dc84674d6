"""A fault-injecting HTTP proxy in front of the test EHR: random 500s, 429s and timeouts.

Seeded, so a failing run can be replayed. Faults apply before forwarding: a faulted request
never reaches the EHR, like a load balancer refusing it; a timeout holds the connection past
the client's read timeout and then drops it without forwarding. A write delay holds every write
(POST, PUT, PATCH, DELETE) that passes and then forwards it whether or not its client is still
waiting: a slow EHR that still applies a write its caller gave up on, or died during. A lost
answer is the same seen from the caller: the request is forwarded and applied, and then the
connection drops before the answer. A write conflict answers a write 409 without forwarding it, as
a server does when a concurrent identical create won the race (HAPI FHIR, for one). A write refusal
answers every write 422 with an OperationOutcome without forwarding it: an EHR whose business rules
refuse what Carepath sends.

The plan is read on every request, so a test may change it while the proxy runs.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

REFUSAL = "Task.owner: no practitioner may be assigned a Task of this kind here"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass
class FaultPlan:
    """Probabilities per request; the rest pass through."""

    server_error: float = 0.0
    throttled: float = 0.0
    timeout: float = 0.0
    lost_answer: float = 0.0
    timeout_seconds: float = 25.0
    retry_after_seconds: int = 1
    write_delay_seconds: float = 0.0
    write_conflict: float = 0.0  # writes only: reads pass, so a re-read sees what the EHR holds
    write_refusal: bool = False  # every write answered 422; reads pass
    seed: int = 7
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "500": 0,
            "429": 0,
            "409": 0,
            "timeout": 0,
            "lost": 0,
            "passed": 0,
            "delayed": 0,
            "forwarded": 0,
        }
    )


class FaultProxy:
    """Listens on 127.0.0.1 and forwards to `target` (scheme://host:port), injecting faults."""

    def __init__(self, target: str, plan: FaultPlan) -> None:
        self.target = target.rstrip("/")
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()
        self.received: Counter[str] = Counter()  # "METHOD /path" of every request, answered or not
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url_for(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def draw(self) -> str:
        """The fate of the next request."""
        with self._lock:
            roll = self._random.random()
            plan = self.plan
            if roll < plan.server_error:
                fate = "500"
            elif roll < plan.server_error + plan.throttled:
                fate = "429"
            elif roll < plan.server_error + plan.throttled + plan.timeout:
                fate = "timeout"
            elif roll < plan.server_error + plan.throttled + plan.timeout + plan.lost_answer:
                fate = "lost"
            else:
                fate = "passed"
            plan.counts[fate] += 1
            return fate

    def conflicts(self) -> bool:
        """Whether the next write is answered 409."""
        with self._lock:
            return self.plan.write_conflict > 0 and self._random.random() < self.plan.write_conflict

    def count(self, name: str, counter: dict[str, int] | None = None) -> None:
        with self._lock:
            counts = self.plan.counts if counter is None else counter
            counts[name] = counts.get(name, 0) + 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: tests read the counts instead
                return

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.count(f"{self.command} {self.path.split('?')[0]}", proxy.received)
                if self.command != "GET" and proxy.plan.write_refusal:
                    proxy.count("422")
                    self._answer(422, _outcome("business-rule", REFUSAL), {})
                    return
                if self.command != "GET" and proxy.conflicts():
                    proxy.count("409")
                    self._answer(409, _outcome("duplicate", "injected conflict"), {})
                    return
                fate = proxy.draw() if not self.path.endswith("/metadata") else "passed"
                if fate == "timeout":
                    time.sleep(proxy.plan.timeout_seconds)
                    self.close_connection = True
                    return
                if fate in ("500", "429"):
                    self._answer(
                        int(fate),
                        _outcome("transient", "injected fault"),
                        {"Retry-After": str(proxy.plan.retry_after_seconds)} if fate == "429" else {},
                    )
                    return
                delay = proxy.plan.write_delay_seconds if self.command != "GET" else 0.0
                if delay > 0:
                    proxy.count("delayed")
                    time.sleep(delay)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
                upstream = requests.request(
                    self.command,
                    proxy.target + self.path,
                    data=body,
                    headers=headers,
                    timeout=30,
                    allow_redirects=False,
                )
                proxy.count("forwarded")
                if fate == "lost":
                    self.close_connection = True  # applied upstream; the caller never hears back
                    return
                relay = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                try:
                    self._answer(upstream.status_code, upstream.content, relay)
                except OSError:
                    self.close_connection = True  # the client is gone (gave up, or was killed)

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if not any(name.lower() == "content-type" for name in headers):
                    self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

        return Handler


def _outcome(code: str, diagnostics: str) -> bytes:
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()
