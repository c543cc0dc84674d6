"""The layout's rules hold: what each package may import, SQL only in the store, and no import cycles."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pathways", "service", "workers")
PATHWAYS_MAY_NOT_IMPORT = {"service", "workers", "flask", "celery", "kombu", "sqlalchemy", "requests"}
SQL_CONSTRUCTS = {"select", "insert", "update", "delete", "text", "func", "and_", "or_", "case", "exists", "union"}
STORE = "service.store"
TABLE_MODULES = ("service.store.tables", "service.store.access_tables", "service.store.subscription_tables")
# What the tasks need of the service: the use cases, the composition root, the queue port, settings and errors.
WORKERS_MAY_IMPORT = (
    "service.usecases",
    "service.bootstrap",
    "service.queue",
    "service.settings",
    "service.ehr.errors",
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module imported (a submodule when `from package import submodule`)
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


MODULES = sources()


def imports_of(module: str, source: str) -> Iterator[Import]:
    """Every import in a module, at the top or inside a function, resolved to full module names."""
    tree = ast.parse(source)
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function |= {id(inner) for inner in ast.walk(node) if inner is not node}
    package = module if MODULES.get(module, Path()).name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from package import submodule` depends on the submodule; `from module import name` on the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            yield Import(module, target, node.lineno, id(node) in in_function)


def all_imports() -> list[Import]:
    return [i for module, path in MODULES.items() for i in imports_of(module, path.read_text())]


IMPORTS = all_imports()


def top(name: str) -> str:
    return name.split(".")[0]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each as a path that closes on itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(_closed_path(sorted(group), edges))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _closed_path(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle through the group's first module, for a readable failure."""
    members = set(group)
    start, path, seen = group[0], [group[0]], {group[0]}
    while True:
        options = sorted(edges[path[-1]] & members)
        if start in options and len(path) > 1:
            return [*path, start]
        fresh = [o for o in options if o not in seen]
        if not fresh:
            return [*path, start]
        path.append(fresh[0])
        seen.add(fresh[0])


def graph(imports: list[Import]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for i in imports:
        if i.target in MODULES and i.target != i.module:
            edges.setdefault(i.module, set()).add(i.target)
    return edges


def sql_in(source: str) -> list[str]:
    """SQL built in a module: SQLAlchemy statement constructs, or the table objects themselves."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("sa", "sqlalchemy")
            and node.attr in SQL_CONSTRUCTS
        ):
            found.append(f"line {node.lineno}: sa.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "sqlalchemy" and any(a.name in SQL_CONSTRUCTS for a in node.names):
                found.append(f"line {node.lineno}: from sqlalchemy import {', '.join(a.name for a in node.names)}")
            if node.module in TABLE_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import (tables)")
    return found


def test_there_are_modules_and_imports_to_check() -> None:
    assert {"pathways.engine", "service.app", "service.queue", "workers.tasks"} <= set(MODULES)
    assert any(i.in_function for i in IMPORTS)


def test_the_cycle_check_finds_a_cycle_held_apart_by_a_function_level_import() -> None:
    fake = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert cycles(fake) == [["a.x", "a.y", "a.z", "a.x"]]
    deferred = list(imports_of("service.app", "def f():\n    from service.queue import Dispatcher\n"))
    assert deferred == [Import("service.app", "service.queue", 2, True)]


def test_the_sql_check_catches_statements_and_tables() -> None:
    source = "import sqlalchemy as sa\nfrom service.store.tables import proposals\nq = sa.select(proposals)\n"
    assert len(sql_in(source)) == 2
    assert sql_in("import sqlalchemy as sa\ndef f(c: sa.Connection) -> sa.Engine: ...\n") == []


def test_pathways_imports_nothing_of_the_service_the_workers_or_io_libraries() -> None:
    wrong = [i for i in IMPORTS if top(i.module) == "pathways" and top(i.target) in PATHWAYS_MAY_NOT_IMPORT]
    assert wrong == []


def test_only_the_command_line_of_the_service_imports_workers() -> None:
    wrong = [
        i
        for i in IMPORTS
        if top(i.module) == "service" and top(i.target) == "workers" and not within(i.module, "service.cli")
    ]
    assert wrong == []


def test_workers_import_only_the_service_entry_points_they_need() -> None:
    wrong = [
        i
        for i in IMPORTS
        if top(i.module) == "workers"
        and top(i.target) == "service"
        and not any(within(i.target, allowed) for allowed in WORKERS_MAY_IMPORT)
    ]
    assert wrong == []


@pytest.mark.parametrize(
    "module",
    [m for m in MODULES if top(m) != "pathways" and not within(m, STORE)],
)
def test_sql_is_built_only_in_the_store(module: str) -> None:
    assert sql_in(MODULES[module].read_text()) == []


def test_there_is_no_import_cycle_not_even_behind_a_function_level_import() -> None:
    found = cycles(graph(IMPORTS))
    assert found == [], "import cycles: " + "; ".join(" -> ".join(c) for c in found)
