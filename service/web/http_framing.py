"""Where an HTTP/1.1 request ends, found from bytes as they arrive (no I/O, no parsing beyond framing).

The API's worker reads a whole request before any thread touches it (`service.web.worker`), so it
needs to know when the bytes it holds are one complete request: the head up to its blank line,
then a body of `Content-Length` bytes or chunks up to the last one. Anything it cannot frame is
refused here; gunicorn's own parser still validates every request it is handed.

What it holds is bounded by the bytes as sent, not only by the body they decode to: chunk framing
(size lines, extensions, line ends) is counted too, so a body of one-byte chunks with long
extensions cannot make the worker hold many times the body limit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

HEAD_END = b"\r\n\r\n"
CRLF = b"\r\n"
HEX_DIGITS = b"0123456789abcdefABCDEF"
# A chunk size is at most 16 hex digits (a 64-bit count); more cannot be a size Carepath accepts.
MAX_CHUNK_SIZE_DIGITS = 16
# Chunk extensions (RFC 9112 7.1.1) carry nothing the API reads and no client it serves sends
# them; a few short ones are let through, anything longer only costs the worker memory.
MAX_CHUNK_EXTENSIONS_BYTES = 64
# The chunk-size line before its CRLF: size, extensions and the whitespace allowed around them.
MAX_CHUNK_LINE_BYTES = MAX_CHUNK_SIZE_DIGITS + MAX_CHUNK_EXTENSIONS_BYTES
# Chunk framing a body may carry on top of its data, as a share of the body limit. A chunk costs a
# size line and two line ends, 6 bytes for 64 bytes of data: an eighth covers chunks of 64 bytes or
# more, smaller than any client library sends. A body near the limit in tinier chunks is a 413.
FRAMING_ALLOWANCE_DIVISOR = 8


class Framing(enum.Enum):
    """What the bytes held so far amount to."""

    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    MALFORMED = "malformed"  # 400: no way to tell where the request ends
    BAD_CHUNK = "bad-chunk"  # 400: a chunk-size line that is not hex digits and short extensions
    HEAD_TOO_LARGE = "head-too-large"  # 431
    BODY_TOO_LARGE = "body-too-large"  # 413


@dataclass(frozen=True)
class FramingLimits:
    head_bytes: int
    body_bytes: int

    @property
    def held_bytes(self) -> int:
        """The most one request may hold as sent: its head, its body and the body's chunk framing."""
        return self.head_bytes + self.body_bytes + self.body_bytes // FRAMING_ALLOWANCE_DIVISOR


class RequestFraming:
    """Accumulates one request's bytes and says whether they are complete."""

    def __init__(self, limits: FramingLimits, already_received: bytes = b"") -> None:
        self._limits = limits
        self._data = bytearray()
        self._body_start: int | None = None
        self._content_length: int | None = None
        self._chunked = False
        self._scan = 0  # chunked: where the next chunk-size line starts
        self._chunk_total = 0
        self.expects_continue = False
        self.state = Framing.INCOMPLETE
        if already_received:
            self.feed(already_received)

    @property
    def received(self) -> bool:
        return bool(self._data)

    @property
    def held_bytes(self) -> int:
        """Bytes of this request (and any read beyond it) held so far."""
        return len(self._data)

    @property
    def head_complete(self) -> bool:
        return self._body_start is not None

    def request_bytes(self) -> bytes:
        return bytes(self._data)

    def feed(self, data: bytes) -> Framing:
        """Add bytes just read; return (and remember) the state they leave the request in."""
        if self.state is not Framing.INCOMPLETE:
            return self.state
        self._data += data
        if self._body_start is None:
            self.state = self._read_head()
            if self.state is not Framing.INCOMPLETE or self._body_start is None:
                return self.state
        self.state = self._read_body()
        if self.state is Framing.INCOMPLETE and len(self._data) > self._limits.held_bytes:
            self.state = Framing.BODY_TOO_LARGE  # framing, not data, is what has grown: refuse it all the same
        return self.state

    def drop_expectation(self) -> None:
        """Remove `Expect: 100-continue` from the held head, once the interim answer has been sent for it."""
        assert self._body_start is not None
        head = bytes(self._data[: self._body_start])
        kept = [line for line in head.split(CRLF) if not line.lower().startswith(b"expect:")]
        new_head = CRLF.join(kept)
        self._data[: self._body_start] = new_head
        shift = len(head) - len(new_head)
        self._body_start -= shift
        self._scan -= shift
        self.expects_continue = False

    def _read_head(self) -> Framing:
        end = self._data.find(HEAD_END)
        if end < 0:
            return Framing.HEAD_TOO_LARGE if len(self._data) > self._limits.head_bytes else Framing.INCOMPLETE
        if end + len(HEAD_END) > self._limits.head_bytes:
            return Framing.HEAD_TOO_LARGE
        lengths: set[bytes] = set()
        for line in bytes(self._data[:end]).split(CRLF)[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                lengths.add(value)
            elif name == b"transfer-encoding":
                self._chunked = self._chunked or value.endswith(b"chunked")
                if not value.endswith(b"chunked"):
                    return Framing.MALFORMED  # a body whose end only the closing connection marks
            elif name == b"expect" and value == b"100-continue":
                self.expects_continue = True
        if lengths and self._chunked:
            return Framing.MALFORMED  # request smuggling's classic shape
        if lengths:
            if len(lengths) > 1 or not all(v.isdigit() for v in lengths) or len(min(lengths)) > 18:
                return Framing.MALFORMED
            self._content_length = int(lengths.pop())
            if self._content_length > self._limits.body_bytes:
                return Framing.BODY_TOO_LARGE
        self._body_start = end + len(HEAD_END)
        self._scan = self._body_start
        return Framing.INCOMPLETE

    def _read_body(self) -> Framing:
        assert self._body_start is not None
        if self._chunked:
            return self._read_chunks()
        if len(self._data) - self._body_start >= (self._content_length or 0):
            return Framing.COMPLETE
        return Framing.INCOMPLETE

    def _read_chunks(self) -> Framing:
        while True:
            line_end = self._data.find(CRLF, self._scan, self._scan + MAX_CHUNK_LINE_BYTES + len(CRLF))
            if line_end < 0:
                too_long = len(self._data) - self._scan >= MAX_CHUNK_LINE_BYTES + len(CRLF)
                return Framing.BAD_CHUNK if too_long else Framing.INCOMPLETE
            size_text = bytes(self._data[self._scan : line_end]).split(b";")[0].strip()
            if not size_text or len(size_text) > MAX_CHUNK_SIZE_DIGITS or not all(c in HEX_DIGITS for c in size_text):
                return Framing.BAD_CHUNK
            size = int(size_text, 16)
            if size == 0:
                return self._read_trailers(line_end + len(CRLF))
            self._chunk_total += size
            if self._chunk_total > self._limits.body_bytes:
                return Framing.BODY_TOO_LARGE
            data_end = line_end + len(CRLF) + size
            if len(self._data) < data_end + len(CRLF):
                self._chunk_total -= size  # counted again when the rest of this chunk arrives
                return Framing.INCOMPLETE
            if self._data[data_end : data_end + len(CRLF)] != CRLF:
                return Framing.BAD_CHUNK
            self._scan = data_end + len(CRLF)

    def _read_trailers(self, start: int) -> Framing:
        if self._data[start : start + len(CRLF)] == CRLF:
            return Framing.COMPLETE
        if self._data.find(HEAD_END, start - len(CRLF)) >= 0:
            return Framing.COMPLETE
        too_long = len(self._data) - start > self._limits.head_bytes
        return Framing.HEAD_TOO_LARGE if too_long else Framing.INCOMPLETE
