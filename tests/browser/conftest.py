"""Browser tests: Playwright driving Debian's Chromium (Playwright's own browser download is not used).

Without a Chromium the tests are skipped, unless ``$UDL_REQUIRE_BROWSER=1`` (as in CI), where they fail
and say how to install one. Every page a test opens records its console errors, uncaught script errors
and requests that left the machine; a test passes only when there were none.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

import pytest
from browser_helpers import LAUNCH_ARGS, chromium_path

INSTALL_HINT = ("install Debian's Chromium (sudo apt-get install chromium) "
                "and the playwright package (pip install playwright)")


def _unavailable(reason: str):
    if os.environ.get("UDL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"UDL_REQUIRE_BROWSER=1 but {reason}: {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"{reason} (set UDL_REQUIRE_BROWSER=1 to fail instead)")


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium found (/usr/bin/chromium or chromium on PATH)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=LAUNCH_ARGS)
        yield browser
        browser.close()


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("file", "data", "blob", "about") or parsed.hostname in ("127.0.0.1", "localhost")


@pytest.fixture()
def expected_console_errors():
    """Regular expressions of console errors a test causes on purpose, matched against "<text> <url>"."""
    return []


@pytest.fixture()
def page(browser, expected_console_errors):
    """A fresh page; at teardown, no console error, no script error and no request off the machine."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = []

    def console(message):
        where = message.location.get("url", "") if isinstance(message.location, dict) else ""
        expected = any(re.search(p, f"{message.text} {where}") for p in expected_console_errors)
        if message.type == "error" and not expected:
            problems.append(f"console error: {message.text} ({message.location})")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))

    def route(r):
        if _is_local(r.request.url):
            r.continue_()
        else:  # the pages promise to work offline: nothing from a CDN
            problems.append(f"request off the machine: {r.request.url}")
            r.abort()

    context.route("**/*", route)
    page.set_default_timeout(30_000)
    yield page
    context.close()
    assert not problems, "\n".join(problems)
