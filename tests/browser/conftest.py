"""Tests that drive Chromium (Playwright), Firefox ESR (puppeteer-core) or the official npm
clients against a real daemon. They may import testsupport (browsers, pages, network hosts, the
TURN server) and each other's page helpers; every one is marked browser and slow here. One
Playwright and one Chromium per set of flags serve the whole phase (fixtures ``playwright``,
``chromiums``, ``browser``); each test works in browser contexts of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from testsupport.browser import SharedChromiums

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives a browser or an npm client: marked browser, and slow."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def playwright():
    """Playwright for the whole browser phase: a second ``sync_playwright()`` inside a running one
    fails, so every test that drives Chromium takes this one (and never starts its own)."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def chromiums(playwright) -> SharedChromiums:
    """The session's Chromium processes; a test takes one with ``chromiums.lend(**flags)``."""
    shared = SharedChromiums(playwright)
    yield shared
    shared.close()


@pytest.fixture
def browser(chromiums):
    """The session's Chromium with the default flags, launched again if it is not connected; the
    contexts the test opens in it are closed after the test."""
    with chromiums.lend() as shared:
        yield shared
