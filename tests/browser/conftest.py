"""A real browser for tests: Debian's chromium, driven by Playwright for Python (no browser download).

`make test` installs chromium when it is missing. Where it cannot (not root, no package), these tests are
skipped and the reason is printed in the skip line.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

# As root on a closed network: no sandbox, and none of chromium's background calls home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return os.environ.get("PERSONAFORGE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium: install Debian's chromium package (make test does when it can) or set"
                    " PERSONAFORGE_CHROMIUM to a Chromium binary")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        # Playwright starts every launch with a fresh, empty profile of its own.
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
