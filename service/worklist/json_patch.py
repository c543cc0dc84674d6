"""A small RFC 6902 JSON Patch: add, remove, replace and test (what Task edits need)."""

from __future__ import annotations

import copy
from typing import Any

from service.problems import Problem

OPERATIONS = ("add", "remove", "replace", "test")


def apply(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """`document` with `operations` applied, or a Problem (400 malformed, 409 failed test, 422 bad path)."""
    if not isinstance(operations, list):
        raise Problem(400, "structure", "A JSON Patch is a JSON array of operations.")
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        result = _apply_one(result, operation, index)
    return result


def paths(operations: list[Any]) -> list[str]:
    """The `path` of each operation (after `apply` has checked their shape)."""
    return [op["path"] for op in operations]


def tokens(path: str) -> list[str]:
    """A JSON Pointer's reference tokens, unescaped (RFC 6901)."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise Problem(400, "structure", f"JSON Pointer must start with '/': {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _apply_one(document: Any, operation: Any, index: int) -> Any:
    where = f"operation {index}"
    if not isinstance(operation, dict) or operation.get("op") not in OPERATIONS:
        raise Problem(400, "structure", f"{where}: op must be one of {', '.join(OPERATIONS)}")
    path = operation.get("path")
    if not isinstance(path, str):
        raise Problem(400, "structure", f"{where}: path must be a string")
    if operation["op"] in ("add", "replace", "test") and "value" not in operation:
        raise Problem(400, "structure", f"{where}: {operation['op']} needs a value")
    parts = tokens(path)
    if not parts:
        raise Problem(422, "processing", f"{where}: the whole resource cannot be patched")
    parent = _walk(document, parts[:-1], where)
    return _change(document, parent, parts[-1], operation, where)


def _walk(document: Any, parts: list[str], where: str) -> Any:
    node = document
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise Problem(422, "processing", f"{where}: path does not exist")
    return node


def _change(document: Any, parent: Any, last: str, operation: dict[str, Any], where: str) -> Any:
    op = operation["op"]
    if isinstance(parent, dict):
        if op == "test":
            if parent.get(last, _MISSING) != operation["value"]:
                raise Problem(409, "conflict", f"{where}: test failed; the resource has changed")
        elif op == "add":
            parent[last] = copy.deepcopy(operation["value"])
        elif last not in parent:
            raise Problem(422, "processing", f"{where}: path does not exist")
        elif op == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(operation["value"])
        return document
    if isinstance(parent, list):
        return _change_list(document, parent, last, operation, where)
    raise Problem(422, "processing", f"{where}: path does not exist")


def _change_list(document: Any, items: list[Any], last: str, operation: dict[str, Any], where: str) -> Any:
    op = operation["op"]
    size = len(items) + (1 if op == "add" else 0)
    position = len(items) if (last == "-" and op == "add") else int(last) if last.isdigit() else -1
    if not 0 <= position < size:
        raise Problem(422, "processing", f"{where}: array index out of range")
    if op == "add":
        items.insert(position, copy.deepcopy(operation["value"]))
    elif op == "remove":
        del items[position]
    elif op == "replace":
        items[position] = copy.deepcopy(operation["value"])
    elif items[position] != operation["value"]:
        raise Problem(409, "conflict", f"{where}: test failed; the resource has changed")
    return document


_MISSING = object()
