"""A fault-injecting HTTP proxy in front of the test EHR: random 500s, 429s and timeouts.

Seeded, so a failing run can be replayed. Faults apply before forwarding: a faulted request
never reaches the EHR, like a load balancer refusing it; a timeout holds the connection past
the client's read timeout and then drops it without forwarding.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass
class FaultPlan:
    """Probabilities per request; the rest pass through."""

    server_error: float = 0.0
    throttled: float = 0.0
    timeout: float = 0.0
    timeout_seconds: float = 25.0
    retry_after_seconds: int = 1
    seed: int = 7
    counts: dict[str, int] = field(default_factory=lambda: {"500": 0, "429": 0, "timeout": 0, "passed": 0})


class FaultProxy:
    """Listens on 127.0.0.1 and forwards to `target` (scheme://host:port), injecting faults."""

    def __init__(self, target: str, plan: FaultPlan) -> None:
        self.target = target.rstrip("/")
        self.plan = plan
        self._random = random.Random(plan.seed)
        self._lock = threading.Lock()
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
            else:
                fate = "passed"
            plan.counts[fate] += 1
            return fate

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: tests read the counts instead
                return

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fate = proxy.draw() if not self.path.endswith("/metadata") else "passed"
                if fate == "timeout":
                    time.sleep(proxy.plan.timeout_seconds)
                    self.close_connection = True
                    return
                if fate in ("500", "429"):
                    self._answer(
                        int(fate),
                        b'{"resourceType":"OperationOutcome","issue":[{"severity":"error",'
                        b'"code":"transient","diagnostics":"injected fault"}]}',
                        {"Retry-After": str(proxy.plan.retry_after_seconds)} if fate == "429" else {},
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
                upstream = requests.request(
                    self.command,
                    proxy.target + self.path,
                    data=body,
                    headers=headers,
                    timeout=30,
                    allow_redirects=False,
                )
                relay = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                self._answer(upstream.status_code, upstream.content, relay)

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
