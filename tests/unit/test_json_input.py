"""The one JSON decoder for input from outside: bounded depth and numbers, refusals as 400s."""

from __future__ import annotations

import json
import time

import pytest

from service.fhir.json_input import DECIMAL_MAX_CHARS, INTEGER_MAX, INTEGER_MIN, MAX_DEPTH, parse_json
from service.problems import Problem


def refusal(text: str | bytes) -> str:
    with pytest.raises(Problem) as caught:
        parse_json(text)
    assert caught.value.status == 400
    return caught.value.message


def test_nesting_up_to_the_bound_decodes_and_one_level_more_is_refused() -> None:
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    assert "deeper than 64" in refusal("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_brackets_inside_strings_and_escaped_quotes_are_not_counted_as_nesting() -> None:
    text = '{"a": "' + "[{" * 500 + '\\"' + "[" * 500 + '"}'
    assert parse_json(text) == {"a": "[{" * 500 + '"' + "[" * 500}


def test_an_unterminated_string_full_of_brackets_is_refused_quickly() -> None:
    started = time.monotonic()
    refusal('["' + "\\\\ [" * 200_000)
    assert time.monotonic() - started < 2


def test_the_integer64_range_decodes_exactly_and_one_past_either_end_is_refused() -> None:
    assert parse_json(f"[{INTEGER_MIN}, {INTEGER_MAX}]") == [INTEGER_MIN, INTEGER_MAX]
    assert "integer64" in refusal(str(INTEGER_MAX + 1))
    assert "integer64" in refusal(str(INTEGER_MIN - 1))


def test_a_number_past_pythons_digit_limit_is_refused_and_the_message_stays_short() -> None:
    message = refusal("9" * 100_000)
    assert "(100000 characters)" in message
    assert len(message) < 200


def test_decimals_up_to_the_length_bound_decode_and_longer_or_infinite_ones_are_refused() -> None:
    fitting = "0." + "1" * (DECIMAL_MAX_CHARS - 2)
    assert parse_json(fitting) == float(fitting)
    assert "at most 64" in refusal(fitting + "1")
    assert "too large" in refusal("1e400")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_as_not_json(constant: str) -> None:
    assert "not a JSON number" in refusal(f'{{"value": {constant}}}')


def test_bytes_in_any_json_encoding_decode_and_invalid_utf8_is_refused() -> None:
    assert parse_json('{"a": 1}'.encode("utf-16")) == {"a": 1}
    assert "not valid JSON" in refusal(b'{"a": "\xff"}')


@pytest.mark.parametrize(
    "document",
    [
        '{"valueQuantity": {"value": 123456789012345678, "unit": "mg"}}',  # 18 digits: the fast decoder
        '{"value": 1234567890123456789}',  # 19 digits: the checked decoder
        '{"value": 9.99999999999999e99, "low": -1.5e-99, "zero": -0}',
        '{"value": 1e100}',  # a three-digit exponent: the checked decoder
        '{"id": "0000000000000000000000-abc", "text": "a \\u00e9 \\ud800 lone surrogate"}',
        '{"a": 1, "a": 2}',
        ' [true, false, null, "\\n"] \n',
    ],
)
def test_every_document_decodes_to_what_the_standard_decoder_gives(document: str) -> None:
    assert parse_json(document) == json.loads(document)


@pytest.mark.parametrize(
    "document", ['{"value": 12345678901234567890}', '{"value": 1e999}', '{"a": 1,}', '{"a": NaN}', '"a\tb"']
)
def test_what_the_bounds_or_the_grammar_refuse_is_refused_whichever_decoder_reads_it_first(document: str) -> None:
    with pytest.raises(Problem):
        parse_json(document)
