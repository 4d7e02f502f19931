"""The nav's "Approvals (n)" and the tab title follow the fleet live, as in
production (Celery worker, Redis, PostgreSQL, Daphne): Vera reads the audit
log, a page with no live partial of its own; when Rita's run reaches its
approval gate her nav says "Approvals (1)" and her tab "(1) Audit log", and
when Rita approves it from her own browser both go back, without a reload."""

import pytest
from playwright.sync_api import expect

from . import test_live_celery
from .test_live_celery import FLEET, RUN, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.celery]

hub = test_live_celery.hub  # the same PostgreSQL, Redis, Celery and Daphne


def test_the_approvals_count_goes_from_1_to_0_live_when_another_session_approves(browser, hub):
    hub.manage("fleet", "apply", "-f", "-", stdin=FLEET)
    vera = signed_in(browser, hub, "vera")
    vera.goto("/audit/")
    vera.evaluate("""() => { window.__sameDocument = true; window.__closed = [];
        document.addEventListener("htmx:wsClose", e => window.__closed.push(e.detail.event.code)); }""")
    nav = vera.get_by_role("navigation", name="Main").locator("#approvals-count")
    expect(nav).to_have_attribute("data-count", "0")
    expect(vera).to_have_title("Audit log · Fleet UI")

    rita = signed_in(browser, hub, "rita")
    rita.goto(f"/runs/{RUN}/")
    rita.get_by_role("button", name="Resume").click()
    expect(nav).to_have_attribute("data-count", "1", timeout=30_000)
    expect(vera.get_by_role("link", name="Approvals (1)")).to_be_visible()
    expect(vera).to_have_title("(1) Audit log · Fleet UI")
    expect(rita).to_have_title(f"(1) {RUN} · Fleet UI")  # the run page hears it on its own socket

    rita.get_by_role("link", name="Approve…").click()
    rita.locator("#dialog").get_by_role("button", name="Approve").click()
    expect(nav).to_have_attribute("data-count", "0")
    expect(vera.get_by_role("link", name="Approvals", exact=True)).to_be_visible()
    expect(vera).to_have_title("Audit log · Fleet UI")
    assert vera.evaluate("window.__sameDocument"), "the page was reloaded"
    # Every change came over the one socket, open throughout (an idle socket
    # once died every few seconds and caught up on reconnect: fleetui/settings.py).
    assert vera.evaluate("window.__closed") == [], "the nav's socket closed"
