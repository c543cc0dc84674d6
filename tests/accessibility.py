"""axe-core in a Playwright page: the accessibility engine the browser tests run on every page they check.

axe-core comes from npm, pinned by tests/browser/package-lock.json (`scripts/ensure-browser.sh`
installs it). It is added as an init script, which the DevTools protocol runs before the page's
own content and outside its Content-Security-Policy, so the UI's policy (no script at all) stays
as strict in the tests as in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page

AXE_SCRIPT = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA, and axe's own best practices.
AXE_RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}


def with_axe(context: BrowserContext) -> BrowserContext:
    """Every page this context opens carries axe-core."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"{AXE_SCRIPT} is missing: run scripts/ensure-browser.sh (make test does)")
    context.add_init_script(path=str(AXE_SCRIPT))
    return context


def axe_violations(page: Page) -> list[str]:
    """Each violation axe-core finds on the page as it stands: rule, impact, and the elements it names."""
    script = "options => axe.run(document, options).then(result => result.violations)"
    found: list[dict[str, Any]] = page.evaluate(script, AXE_RULES)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — " + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in found
    ]
