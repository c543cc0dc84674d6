"""A webhook receiver for Carepath's alerts: a real local HTTP server that records every POST.

It answers from a planned list of statuses first (503 to prove the retry), then 200. Its path holds
a secret, as an operator's webhook URL may, so tests can prove Carepath never logs it.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    status: int  # what the receiver answered
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes


class AlertReceiver:
    def __init__(self, first_answers: tuple[int, ...] = ()) -> None:
        self.secret = secrets.token_hex(12)
        self._answers = list(first_answers)
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/{self.secret}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> AlertReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def taken(self) -> list[dict[str, Any]]:
        """The alerts answered 2xx."""
        with self._lock:
            return [r.body for r in self.received if 200 <= r.status < 300]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    wrong_path = self.path != f"/hooks/{receiver.secret}"
                    status = 404 if wrong_path else (receiver._answers.pop(0) if receiver._answers else 200)
                    receiver.received.append(Received(status, dict(self.headers.items()), json.loads(raw), raw))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
