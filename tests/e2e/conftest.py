"""A real Streamlit server on a free localhost port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os

import pytest
from harness import CHROMIUM, CHROMIUM_FLAGS, ROOT, streamlit_server

SCREENSHOTS = ROOT / "screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; skipped with a reason where it is missing, except in CI where it must exist."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests, but {CHROMIUM} is missing (.ci/run installs it)")
    pytest.skip(f"{CHROMIUM} not found: install it with 'apt-get install chromium' to run browser tests")


@pytest.fixture(scope="session")
def server(tmp_path_factory, chromium_path):
    """One streamlit server for the whole session (a harness.Server: URL, logs, process id)."""
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(log_path) as running:
        yield running


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser tab (its own Streamlit session) on the app's first page."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    tab.goto(server.url)
    tab.get_by_text("Draw a digit on the canvas").wait_for(timeout=30_000)
    yield tab
    context.close()


@pytest.fixture(scope="session")
def screenshots():
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
