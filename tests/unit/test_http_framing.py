"""Where a request ends, told from its bytes as they arrive."""

from __future__ import annotations

import pytest

from service.web.http_framing import MAX_CHUNK_EXTENSIONS_BYTES, Framing, FramingLimits, RequestFraming

LIMITS = FramingLimits(head_bytes=1024, body_bytes=100)
HEAD = b"POST /fhir/Observation HTTP/1.1\r\nHost: x\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
# A head just large enough for CHUNKED, and a body limit its framing allowance is measured against.
SMALL_HEAD_LIMITS = FramingLimits(head_bytes=128, body_bytes=800)


def fed_byte_by_byte(data: bytes) -> list[Framing]:
    framing = RequestFraming(LIMITS)
    return [framing.feed(data[i : i + 1]) for i in range(len(data))]


def test_a_request_without_a_body_is_complete_at_the_blank_line_and_not_one_byte_before() -> None:
    states = fed_byte_by_byte(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert states[-1] is Framing.COMPLETE
    assert set(states[:-1]) == {Framing.INCOMPLETE}


def test_a_body_of_declared_length_completes_the_request_with_its_last_byte() -> None:
    states = fed_byte_by_byte(HEAD + b"Content-Length: 5\r\n\r\nhello")
    assert states[-1] is Framing.COMPLETE
    assert set(states[:-1]) == {Framing.INCOMPLETE}


def test_chunks_complete_the_request_only_with_the_last_empty_chunk_and_its_blank_line() -> None:
    body = b"5\r\nhello\r\n3;ext=1\r\n\r\n\r\r\n0\r\n\r\n"
    states = fed_byte_by_byte(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert states[-1] is Framing.COMPLETE
    assert set(states[:-1]) == {Framing.INCOMPLETE}


def test_chunk_trailers_are_waited_for() -> None:
    framing = RequestFraming(LIMITS, HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX-Sum: 1\r\n")
    assert framing.state is Framing.INCOMPLETE
    assert framing.feed(b"\r\n") is Framing.COMPLETE


def test_a_declared_body_over_the_limit_is_refused_from_the_head_alone() -> None:
    framing = RequestFraming(LIMITS, HEAD + b"Content-Length: 101\r\n\r\n")
    assert framing.state is Framing.BODY_TOO_LARGE


def test_chunks_adding_up_past_the_limit_are_refused() -> None:
    chunk = b"32\r\n" + b"a" * 50 + b"\r\n"
    framing = RequestFraming(LIMITS, CHUNKED + chunk + chunk)
    assert framing.state is Framing.INCOMPLETE
    assert framing.feed(b"1\r\n") is Framing.BODY_TOO_LARGE


def test_a_head_that_never_ends_is_refused_once_past_the_limit() -> None:
    framing = RequestFraming(LIMITS, HEAD)
    assert framing.feed(b"X-Slow: " + b"a" * 1024) is Framing.HEAD_TOO_LARGE


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: -1\r\n",
        b"Content-Length: 99999999999999999999999\r\n",
        b"Transfer-Encoding: gzip\r\n",
    ],
)
def test_a_request_whose_end_cannot_be_told_from_its_headers_is_malformed(headers: bytes) -> None:
    assert RequestFraming(LIMITS, HEAD + headers + b"\r\n").state is Framing.MALFORMED


def test_a_chunk_size_that_is_not_hex_is_a_bad_chunk() -> None:
    framing = RequestFraming(LIMITS, CHUNKED + b"zz\r\n")
    assert framing.state is Framing.BAD_CHUNK


def test_chunk_extensions_up_to_their_allowance_are_let_through() -> None:
    extension = b";" + b"e" * (MAX_CHUNK_EXTENSIONS_BYTES - 1)
    framing = RequestFraming(LIMITS, CHUNKED + b"1" + extension + b"\r\nx\r\n0\r\n\r\n")
    assert framing.state is Framing.COMPLETE


def test_a_chunk_size_line_with_long_extensions_is_refused_before_its_line_end_arrives() -> None:
    framing = RequestFraming(LIMITS, CHUNKED + b"1;" + b"e" * (MAX_CHUNK_EXTENSIONS_BYTES + 16))
    assert framing.state is Framing.BAD_CHUNK


def test_a_chunk_size_line_with_long_extensions_is_refused_when_it_arrives_whole() -> None:
    framing = RequestFraming(LIMITS, CHUNKED + b"1;" + b"e" * 1000 + b"\r\nx\r\n")
    assert framing.state is Framing.BAD_CHUNK


def test_the_bytes_held_for_a_chunked_body_are_bounded_even_when_its_data_is_not_yet_over_the_limit() -> None:
    framing = RequestFraming(SMALL_HEAD_LIMITS, CHUNKED)
    states = [framing.feed(b"1\r\nx\r\n") for _ in range(300)]  # 300 bytes of data, 1,800 as sent
    assert Framing.BODY_TOO_LARGE in states
    assert framing.held_bytes <= SMALL_HEAD_LIMITS.held_bytes + len(b"1\r\nx\r\n")


def test_a_body_at_the_limit_sent_in_64_byte_chunks_fits_the_framing_allowance() -> None:
    data = b"a" * SMALL_HEAD_LIMITS.body_bytes
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 64]), data[i : i + 64]) for i in range(0, len(data), 64))
    framing = RequestFraming(SMALL_HEAD_LIMITS, CHUNKED + chunks + b"0\r\n\r\n")
    assert framing.state is Framing.COMPLETE


def test_an_expectation_answered_early_is_removed_from_the_request_handed_on() -> None:
    framing = RequestFraming(LIMITS, HEAD + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert framing.expects_continue and framing.state is Framing.INCOMPLETE
    framing.drop_expectation()
    assert framing.feed(b"ok") is Framing.COMPLETE
    assert framing.request_bytes() == HEAD + b"Content-Length: 2\r\n\r\nok"


def test_bytes_beyond_a_complete_request_stay_with_it_for_the_parser() -> None:
    pipelined = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n"
    framing = RequestFraming(LIMITS, pipelined)
    assert framing.state is Framing.COMPLETE
    assert framing.request_bytes() == pipelined
