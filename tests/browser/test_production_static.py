"""The dashboard as production serves it: Daphne with DEBUG off, static files
from `collectstatic` (hashed, gzipped) served by the app itself, Redis for
live updates. Every page loads its stylesheet and scripts with no failed
request and no console error, and the live socket connects.

The database (SQLite in tmp) is prepared as the Procfile's release step does
(migrate, here a copy of a database it built once; collectstatic), then
`fleet demo`, and the tutorial's run is driven to its canary approval so
that every page has something to show."""

import re

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect

from tests.real_services import Hub, RedisServer, free_port, migrated_sqlite

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PASSWORD = "correct horse battery staple"
PAGES = ["/", "/runs/", "/runs/example-run/", "/runs/example-run/time/", "/approvals/", "/approvals/example-run-canary/", "/placements/",
         "/placements/example-placement/", "/placements/example-placement/history/",
         "/placements/example-placement/rollout/", "/strategies/", "/members/", "/hubs/", "/audit/", "/admin/"]
LIVE_PAGES = {"/", "/runs/example-run/"}
HASHED = re.compile(r"/static/.+\.[0-9a-f]{12}\.\w+$")

# The tutorial's run waiting at canary, and an admin to look at it.
BUILD = f"""
from datetime import UTC, datetime
from rollouts import clock
from rollouts.roles import ADMINS, user_create
from tests import fleet_builders as fb
user_create(username="ada", role=ADMINS, password={PASSWORD!r})
with clock.frozen(datetime.now(UTC)):
    fb.workload("value2")
    fb.tutorial_run()
    fb.settle()
    fb.advance(61)
    fb.settle()
"""


def production_env(tmp_path, redis: RedisServer) -> dict:
    """What a production process gets, but plain http on loopback."""
    return {"DEBUG": "false", "SECRET_KEY": "production-static-test-" + "x" * 40,
            "FLEET_CREDENTIALS_KEY": Fernet.generate_key().decode(), "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_COOKIES": "false", "STATIC_ROOT": str(tmp_path / "static"), "REDIS_URL": redis.url}


@pytest.fixture
def server(tmp_path):
    redis = RedisServer(tmp_path).start()
    hub = Hub(migrated_sqlite(tmp_path / "fleet.sqlite3"), redis, tmp_path)
    hub.env.update(production_env(tmp_path, redis))
    hub.env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    try:
        hub.manage("collectstatic", "--noinput", "-v0")
        hub.manage("fleet", "demo")
        hub.shell(BUILD)
        port = free_port()
        hub.daphne(port, "-v", "0")
        yield f"http://127.0.0.1:{port}", hub
    finally:
        hub.stop_all()
        redis.kill()


def test_every_page_loads_its_css_and_scripts_and_goes_live_with_debug_off(browser, server):
    url, hub = server
    context = browser.new_context(base_url=url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems, statics = [], {}
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console error on {page.url}: {msg.text} {msg.location}"))
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # Chromium fetches the icon after "load" and cancels it (net::ERR_ABORTED) when the
    # next goto starts: that is the browser leaving, not a failure. Every static file
    # must still answer 200 at least once (checked below).
    page.on("requestfailed", lambda req: req.failure == "net::ERR_ABORTED"
            or problems.append(f"failed: {req.url} {req.failure}"))

    def on_response(response):
        if response.status >= 400:
            problems.append(f"{response.status}: {response.url}")
        if "/static/" in response.url:
            statics[response.url] = (response.status, response.headers.get("cache-control", ""))

    page.on("response", on_response)
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")

    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("load")
        assert page.evaluate("() => [...document.styleSheets].every(s => s.cssRules.length > 0)"), path
        assert page.evaluate("() => document.styleSheets.length") >= 1, path
        if not path.startswith("/admin/"):
            assert page.evaluate("() => typeof htmx === 'object'"), path
        if path in LIVE_PAGES:
            expect(page.locator("[data-live-text]")).to_have_text("Live: changes appear as they happen.")

    # The approve dialog (htmx fetches it into <dialog>) works too.
    page.goto("/runs/example-run/")
    page.get_by_role("link", name="Approve…").click()
    expect(page.locator("#dialog")).to_be_visible()

    assert problems == []
    ours = [u for u in statics if "/static/admin/" not in u]
    assert len(ours) == 7 and len(statics) > 7, sorted(statics)  # ours (icon, 2 css, 4 scripts), the admin's
    for static_url, (status, cache_control) in statics.items():
        assert HASHED.search(static_url), static_url
        assert status == 200 and "max-age=315360000" in cache_control and "immutable" in cache_control, \
            (static_url, status, cache_control)
    context.close()
