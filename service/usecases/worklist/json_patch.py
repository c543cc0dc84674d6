"""RFC 6902 JSON Patch for Task edits: the `jsonpatch` package, limited to add, remove, replace and test.

Refusals: 400 for a malformed patch, 409 for a failed test (the resource has changed), 422 for a
path the Task does not have (including array indexes RFC 6901 forbids, such as `00` or `²`).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from service.problems import Problem

OPERATIONS = ("add", "remove", "replace", "test")
NEEDS_VALUE = ("add", "replace", "test")
NO_SUCH_ELEMENT = "names no element of the Task (an array index is 0 or a number without leading zeros; - appends)"


def apply(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """`document` with `operations` applied, or a Problem (400 malformed, 409 failed test, 422 bad path)."""
    if not isinstance(operations, list):
        raise Problem(400, "structure", "A JSON Patch is a JSON array of operations.")
    for index, operation in enumerate(operations):
        _check_shape(operation, f"operation {index}")
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        # one at a time, so a refusal names the operation that caused it
        _apply_one(result, operation, f"operation {index}")
    return result


def paths(operations: list[Any]) -> list[str]:
    """The `path` of each operation (after `apply` has checked their shape)."""
    return [op["path"] for op in operations]


def tokens(path: str) -> list[str]:
    """A JSON Pointer's reference tokens, unescaped (RFC 6901); `apply` has refused invalid pointers."""
    return list(jsonpointer.JsonPointer(path).parts)


def _check_shape(operation: Any, where: str) -> None:
    if not isinstance(operation, dict) or operation.get("op") not in OPERATIONS:
        raise Problem(400, "structure", f"{where}: op must be one of {', '.join(OPERATIONS)}")
    path = operation.get("path")
    if not isinstance(path, str):
        raise Problem(400, "structure", f"{where}: path must be a string")
    if operation["op"] in NEEDS_VALUE and "value" not in operation:
        raise Problem(400, "structure", f"{where}: {operation['op']} needs a value")
    try:
        parts = tokens(path)
    except jsonpointer.JsonPointerException as error:
        raise Problem(400, "structure", f"{where}: path is not a JSON Pointer ({error})") from error
    if not parts:
        raise Problem(422, "processing", f"{where}: the whole resource cannot be patched")


def _apply_one(document: dict[str, Any], operation: dict[str, Any], where: str) -> None:
    path = operation["path"]
    try:
        jsonpatch.JsonPatch([operation]).apply(document, in_place=True)
    except jsonpatch.JsonPatchTestFailed as failed:
        raise Problem(409, "conflict", f"{where}: test of {path} failed; the resource has changed") from failed
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
        # The shape was checked above, so what is left is a path this Task does not have. The
        # library's own message is not passed on: it can quote the whole document.
        raise Problem(422, "processing", f"{where}: {path} {NO_SUCH_ELEMENT}") from error
