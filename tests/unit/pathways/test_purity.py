"""`pathways` stays pure: no I/O libraries, no logging, no clock reads, no clinical codes in Python."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pathways

PACKAGE = Path(pathways.__file__).parent
FORBIDDEN_MODULES = {
    "flask",
    "celery",
    "requests",
    "sqlalchemy",
    "redis",
    "psycopg",
    "psycopg2",
    "kombu",
    "socket",
    "urllib",
    "urllib3",
    "http",
    "httpx",
    "aiohttp",
    "logging",
    "structlog",
    "time",
}
PURE_SUBMODULES = {"urllib.parse"}  # string quoting and splitting only: no I/O
CLOCK_CALLS = {"now", "utcnow", "today"}
ENGINE_MODULES = ("classify", "engine", "explain", "simulate", "state", "rules")
CODE_PATTERNS = (r"^[1-9][0-9]{5,17}$", r"^[0-9]{3,7}-[0-9]$", r"^[A-Z][0-9]{2}\.[0-9A-Z]{1,4}$")


def violations(source: str) -> list[str]:
    """Forbidden imports, clock reads and prints in one module's source."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [
            f"imports {name}"
            for name in names
            if name.split(".")[0] in FORBIDDEN_MODULES and name not in PURE_SUBMODULES
        ]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS:
                found.append(f"reads the clock with .{func.attr}()")
            if isinstance(func, ast.Name) and func.id == "print":
                found.append("prints")
    return found


def clinical_codes(source: str) -> list[str]:
    """String constants that look like SNOMED CT, LOINC or ICD-10 codes."""
    constants = [
        n.value for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    return [c for c in constants if any(re.match(p, c) for p in CODE_PATTERNS)]


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize(
    "snippet",
    [
        "import requests",
        "from sqlalchemy import select",
        "import logging\nlogging.info('x')",
        "from http.client import HTTPConnection",
        "import urllib.request",
        "from urllib import request",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "print(record)",
    ],
)
def test_the_purity_check_catches_each_forbidden_thing(snippet: str) -> None:
    assert violations(snippet)


def test_the_code_check_catches_a_hard_coded_clinical_code() -> None:
    found = clinical_codes("PAIN = ('http://loinc.org', '72514-3')\nCE = '192970008'\nICD = 'M54.16'")
    assert sorted(found) == ["192970008", "72514-3", "M54.16"]


def test_there_are_modules_to_check() -> None:
    names = {p.stem for p in modules()}
    assert {"engine", "classify", "simulate", "state"} <= names


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_pathways_module_does_io_logs_or_reads_the_clock(path: Path) -> None:
    assert violations(path.read_text()) == []


@pytest.mark.parametrize(
    "path",
    [p for p in modules() if p.relative_to(PACKAGE).parts[0].removesuffix(".py") in ENGINE_MODULES],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_no_clinical_code_is_hard_coded_in_the_engine(path: Path) -> None:
    assert clinical_codes(path.read_text()) == []


def test_importing_the_engine_loads_no_heavy_or_io_library() -> None:
    script = (
        "import sys, pathways.engine, pathways.simulate, pathways.definition; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fhir', 'pydantic', 'flask', 'celery', 'sqlalchemy', 'requests', 'redis', 'logging'}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
