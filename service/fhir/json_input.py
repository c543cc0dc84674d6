"""Decoding JSON from outside: every request body, uploaded Bundle and backfill line comes through here.

The standard decoder recurses once per nesting level (a deep body is a RecursionError, not a
refusal), converts integers of any length (past 4,300 digits a ValueError, below that quadratic
work) and accepts NaN and Infinity, which are not JSON and which PostgreSQL's jsonb refuses
later. So depth is counted before decoding, and numbers are bounded as they are decoded; orjson
decodes, several times faster, only the documents in which no number can reach those bounds.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from service.problems import Problem

# FHIR resources nest a dozen levels (Parameters → Bundle → entry → resource → code → coding);
# a notification or $apply Parameters wraps one more Bundle. 64 leaves room for extensions of
# extensions while keeping the validator's recursion far from Python's limit.
MAX_DEPTH = 64
# FHIR's widest integer type is integer64 (R5); no id, count or event number Carepath keeps is wider.
INTEGER_MIN, INTEGER_MAX = -(2**63), 2**63 - 1
INTEGER_MAX_DIGITS = len(str(INTEGER_MAX))
# FHIR decimals need at most 18 significant digits; sign, point and exponent fit well within 64.
DECIMAL_MAX_CHARS = 64
SHOWN_CHARS = 24  # of an offending number in a message: refusals stay small whatever was sent

# orjson decodes several times faster but knows none of the bounds above (20 digits become a float).
# It may decode a document only when no number in it can reach them: every integer under 19 digits
# fits 64 bits, a decimal of more than 64 characters holds a run of 19 digits or more, and with an
# exponent of at most two digits none overflows. Such a run inside a string only sends the document
# to the checked decoder, as does anything orjson refuses: that decoder judges it, as it judged all
# before. The runs are found on a copy reduced to digits, exponent marks and signs, which a
# substring search scans several times faster than a regular expression.
_NUMBER_SHAPE = str.maketrans(
    {code: " " for code in range(128)}
    | dict.fromkeys(map(ord, "0123456789"), "0")
    | {ord("E"): "e", ord("e"): "e"}
    | {ord("+"): "+", ord("-"): "+"}
)
_LONG_DIGIT_RUN = "0" * 19
_LONG_EXPONENTS = ("e000", "e+000")


def _may_pass_a_bound(text: str) -> bool:
    shape = text.translate(_NUMBER_SHAPE)
    return _LONG_DIGIT_RUN in shape or any(exponent in shape for exponent in _LONG_EXPONENTS)


# A whole string (escapes included, possessive so an unterminated one cannot backtrack) or one
# bracket: brackets inside strings are skipped with the string.
_STRUCTURE = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)


def parse_json(raw: bytes | str) -> Any:
    """Decode a JSON document from outside, or raise a 400 Problem that names what is wrong."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise _refusal(f"not valid JSON: {error}") from error
    _check_depth(text)
    if not _may_pass_a_bound(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the checked decoder below refuses it with its own, precise message
    try:
        return json.loads(text, parse_int=_integer, parse_float=_decimal, parse_constant=_constant)
    except json.JSONDecodeError as error:
        raise _refusal(f"not valid JSON: {error}") from error


def _check_depth(text: str) -> None:
    """Refuse nesting past MAX_DEPTH without recursing, stopping at the first level too deep."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return  # no deeper than its opening brackets, however many sit in strings: a count is 10x cheaper
    depth = 0
    for token in _STRUCTURE.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _refusal(
                    f"JSON nested deeper than {MAX_DEPTH} levels (at character {token.start()}); nothing was stored."
                )
        elif bracket in "]}":
            depth -= 1


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) <= INTEGER_MAX_DIGITS:
        value = int(literal)
        if INTEGER_MIN <= value <= INTEGER_MAX:
            return value
    raise _refusal(
        f"The number {_shown(literal)} ({len(literal)} characters) is outside the 64-bit integer range"
        " FHIR allows (integer64); nothing was stored."
    )


def _decimal(literal: str) -> float:
    if len(literal) > DECIMAL_MAX_CHARS:
        raise _refusal(
            f"The number {_shown(literal)} has {len(literal)} characters; a FHIR decimal needs at most"
            f" {DECIMAL_MAX_CHARS}. Nothing was stored."
        )
    value = float(literal)
    if not math.isfinite(value):
        raise _refusal(f"The number {_shown(literal)} is too large for a FHIR decimal; nothing was stored.")
    return value


def _constant(literal: str) -> Any:
    raise _refusal(f"{literal} is not a JSON number (RFC 8259); nothing was stored.")


def _shown(literal: str) -> str:
    return literal if len(literal) <= SHOWN_CHARS else literal[:SHOWN_CHARS] + "…"


def _refusal(message: str) -> Problem:
    return Problem(400, "structure", message)
