"""Test tiers by folder: unit (pure, seconds), integration (real services), e2e (real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.stack"]

TIERS = {"unit": None, "integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder, and refuse tests outside the known tiers."""
    root = Path(__file__).parent
    for item in items:
        tier = Path(item.fspath).relative_to(root).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in tests/unit, tests/integration or tests/e2e")
        marker = TIERS[tier]
        if marker:
            item.add_marker(getattr(pytest.mark, marker))
