"""Tests that drive Chromium (Playwright), Firefox ESR (puppeteer-core) or the official npm
clients against a real daemon. They may import testsupport (browsers, pages, network hosts, the
TURN server) and each other's page helpers; every one is marked browser and slow here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives a browser or an npm client: marked browser, and slow."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
