"""Browser tests: Debian's chromium driven by Playwright (never a downloaded browser), axe-core from npm.

Screenshots go to `results/screenshots/` (ignored by git; CI keeps the folder as test output).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "results" / "screenshots"


@pytest.fixture(scope="package")
def browser() -> Iterator:
    """One chromium for the browser tests, closed when they end.

    Playwright's sync API keeps an event loop marked running in this thread while it is open, so it must not
    outlive this package: async tests elsewhere (anyio) would then fail with "another loop is running".
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """Run axe-core in the page; the violations of the given impacts (each with its rule id and nodes).

    axe is evaluated through the browser's DevTools protocol rather than added as a <script>: the app's
    pages forbid inline scripts (CSP) and HTML-string sinks (Trusted Types), and axe is no exception."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]
