"""Parsing definition text as YAML (JSON included) within bounds an uploader cannot push us past.

A definition arrives from an administrator's upload, so its parsing must cost what its size
suggests: YAML aliases can make 20 KB expand to gigabytes (a "billion laughs"), deep nesting
exhausts the recursion of the composer, and a 100,000-digit integer is refused by `int()`
itself. Each is counted while the document is composed, before anything is built from it, and
refused as a `DefinitionBeyondLimits` whose message is short.

Whatever else the text holds becomes data or a `DefinitionError` naming where, never another
exception: a mapping key must be a scalar (a list or mapping as a key cannot be hashed), a
scalar that its tag cannot build (`2026-99-99`, `!!int abc`) is refused at its line, and text
no database or JSON answer can carry (NUL, a lone surrogate) is refused where it stands.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pathways.definition.reader import DefinitionError, Problem, join

MAX_SOURCE_CHARS = 262_144  # the shipped definition is about 20,000 characters
MAX_EXPANDED_SIZE = 1_000_000  # nodes plus scalar characters, every alias counted where it is used
MAX_DEPTH = 32  # collections within collections; the shipped definition nests six deep
MAX_NUMBER_CHARS = 32  # definition numbers are days, weeks, points and percentages
YAML_TAG_PREFIX = "tag:yaml.org,2002:"
UNSTORABLE_TEXT = re.compile(r"[\x00\ud800-\udfff]")  # PostgreSQL text refuses NUL; UTF-8 refuses lone surrogates
# What a scalar's constructor raises when its tag cannot build the text (`int("abc")`, a 13th
# month, a regex that does not match a timestamp, an unknown boolean word).
_UNBUILDABLE = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


class DefinitionBeyondLimits(DefinitionError):
    """The text breaks a safety limit (size, alias expansion, depth, number length); it was not parsed."""


def _line(mark: Any) -> str:
    return f"(line {mark.line + 1})" if mark is not None else "(yaml)"


def _number(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _beyond(node_or_mark: Any, reason: str) -> DefinitionBeyondLimits:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return DefinitionBeyondLimits([Problem(_line(mark), reason, _number(mark))])


def _problem(where: str, reason: str, mark: Any = None) -> DefinitionError:
    return DefinitionError([Problem(where, reason, _number(mark))])


def _kind(tag: str) -> str:
    name = tag.removeprefix(YAML_TAG_PREFIX)
    return f"{'an' if name[:1] in tuple('aeiou') else 'a'} {name}"


def _refuse_collection_keys(node: Node, path: str, seen: set[int]) -> None:
    """Every mapping key in the tree is a scalar; else a `DefinitionError` naming the mapping's path."""
    if id(node) in seen:  # an alias repeats a node already walked
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                raise _problem(path or "(top)", f"mapping keys must be scalars {_line(key.start_mark)}", key.start_mark)
            _refuse_collection_keys(value, join(path, key.value), seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_collection_keys(item, join(path, index), seen)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


class BoundedLoader(yaml.SafeLoader):
    """A safe loader that counts depth and expanded size while composing, and refuses duplicate keys.

    The pure-Python composer is used (not libyaml's) because only it lets each node be counted
    as it is composed; an alias counts the whole size of the node it repeats.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) → its size with aliases expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        is_alias = self.check_event(AliasEvent)
        if self._depth >= MAX_DEPTH:
            raise _beyond(self.peek_event().start_mark, f"nested deeper than {MAX_DEPTH} levels")  # type: ignore[no-untyped-call]
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return None
        if is_alias:
            if id(node) not in self._sizes:
                raise _beyond(node, "an alias refers to the collection that contains it")
            return node
        self._sizes[id(node)] = self._expanded_size(node)
        return node

    def _expanded_size(self, node: Node) -> int:
        """One for the node, its characters if a scalar, and the sizes of its children (already composed)."""
        size = 1 + (len(node.value) if isinstance(node, ScalarNode) else 0)
        size += sum(self._sizes[id(child)] for child in _children(node))
        if size > MAX_EXPANDED_SIZE:
            raise _beyond(node, f"aliases expand the document beyond {MAX_EXPANDED_SIZE:,} nodes and characters")
        return size

    def construct_document(self, node: Node) -> Any:
        _refuse_collection_keys(node, "", set())
        return super().construct_document(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        if not isinstance(node, ScalarNode):
            return super().construct_object(node, deep=deep)
        try:
            value = super().construct_object(node, deep=deep)
        except DefinitionError:
            raise
        except _UNBUILDABLE as error:
            raise _problem(_line(node.start_mark), f"{_kind(node.tag)} that cannot be read", node.start_mark) from error
        if isinstance(value, str) and UNSTORABLE_TEXT.search(value):
            reason = "text that cannot be stored (a NUL character or a lone surrogate)"
            raise _problem(_line(node.start_mark), reason, node.start_mark)
        return value

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, MappingNode):  # a `!!map` or `!!set` tag on a sequence or scalar
            return dict(super().construct_mapping(node, deep=deep))
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _problem(_line(key_node.start_mark), f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return dict(super().construct_mapping(node, deep=deep))

    def construct_bounded_number(self, node: ScalarNode) -> Any:
        if len(node.value) > MAX_NUMBER_CHARS:
            raise _beyond(node, f"a number longer than {MAX_NUMBER_CHARS} characters")
        if node.tag.endswith(":int"):
            return self.construct_yaml_int(node)
        return self.construct_yaml_float(node)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_bounded_number)
BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_bounded_number)


def parse_located(text: str) -> tuple[Any, dict[str, int]]:
    """The data in YAML (or JSON) text, and the line (1-based) of each path in it (`steps.adherence` → 57).

    A syntax error or a broken limit becomes a `DefinitionError`.
    The lines let a problem found later, by path, name the line an administrator must edit.
    """
    if len(text) > MAX_SOURCE_CHARS:
        raise DefinitionBeyondLimits([Problem("(yaml)", f"longer than {MAX_SOURCE_CHARS:,} characters")])
    loader: BoundedLoader | None = None
    try:
        loader = BoundedLoader(text)  # reads the stream: a character YAML forbids is refused here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = getattr(error, "problem", None) or getattr(error, "reason", None) or "cannot be parsed"
        raise DefinitionError([Problem(_line(mark), f"not valid YAML: {reason}", _number(mark))]) from error
    finally:
        if loader is not None:
            loader.dispose()
    lines: dict[str, int] = {}
    _record_lines(node, "", lines, set())
    return data, lines


def _record_lines(node: Node, path: str, lines: dict[str, int], seen: set[int]) -> None:
    """Each path's line: a mapping entry's is its key's; a node an alias repeats is walked once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        for key, value in node.value:
            entry = join(path, str(key.value))
            lines.setdefault(entry, key.start_mark.line + 1)
            _record_lines(value, entry, lines, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            entry = join(path, index)
            lines.setdefault(entry, item.start_mark.line + 1)
            _record_lines(item, entry, lines, seen)
