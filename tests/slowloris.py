"""A slowloris client for tests: connections that send a request head a byte at a time and never finish it.

Only to 127.0.0.1. A connection the server closes (a timeout answer, a reset) is opened again at
once, as the attack would; the whole run stops by itself after `max_seconds` whatever the test does.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from types import TracebackType

HEAD_START = b"POST /fhir/Observation HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


class Slowloris:
    """`connections` sockets to 127.0.0.1:`port`, each sent one more header byte every `byte_interval` seconds."""

    def __init__(self, port: int, connections: int = 64, byte_interval: float = 2.0, max_seconds: float = 90) -> None:
        self._port = port
        self._wanted = connections
        self._interval = byte_interval
        self._max_seconds = max_seconds
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slowloris", daemon=True)
        self.reopened = 0  # connections the server ended and the attack replaced

    def __enter__(self) -> Slowloris:
        for _ in range(self._wanted):
            self._sockets.append(self._open())
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self._sockets:
            sock.close()

    def open_connections(self) -> int:
        """How many of the attack's connections are open (none is ever left closed for long)."""
        return sum(1 for sock in self._sockets if sock.fileno() >= 0)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self._port), timeout=5)
        sock.sendall(HEAD_START)
        return sock

    def _run(self) -> None:
        ends = time.monotonic() + self._max_seconds
        while not self._stop.wait(self._interval) and time.monotonic() < ends:
            for index, sock in enumerate(self._sockets):
                if not self._still_held(sock):
                    sock.close()
                    self._sockets[index] = self._open()
                    self.reopened += 1

    def _still_held(self, sock: socket.socket) -> bool:
        """Send one more byte; False when the server has answered or closed instead of waiting."""
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # an answer (408) or the end of the connection: either way the server let go
                return False
            sock.sendall(b"a")
            return True
        except OSError:
            return False
