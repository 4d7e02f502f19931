"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's
live_server, with the engine advanced in-process by the test (engine_tick()
under the frozen clock), so nothing runs in the background.

Skipped, with the reason, when /usr/bin/chromium is missing
(`apt-get install -y chromium`; `playwright install` cannot download here).
"""

import os
from pathlib import Path

import pytest

from rollouts.roles import user_create

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-gpu"]
PASSWORD = "correct horse battery staple"

# Playwright's sync API runs an event loop in this thread; the test's own ORM
# calls (building the fleet, ticking the engine) are still plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config, items):
    # In CI a missing browser is a broken setup: the tests run and fail.
    if CHROMIUM.exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install -y chromium (make test-tools)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def _fast_and_quiet(settings):
    """Cheap password hashing, and no htmx polling: the test decides when
    the page is reloaded, so the server never runs beside engine_tick()."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.FLEET_DASHBOARD_POLL_SECONDS = 0


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page, username: str, role: str):
    """Create the persona and log in through the login form."""
    user_create(username=username, role=role, password=PASSWORD)
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    return page
