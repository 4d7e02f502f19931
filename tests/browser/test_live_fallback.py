"""When the page's WebSocket cannot connect, it says so and polls.

pytest-django's live_server speaks no WebSocket, which is the point: the
page is told pushes can reach it, its socket fails, and it must fall back to
htmx polling and say "Refreshing every 1 s" instead of "Live"."""

import pytest
from playwright.sync_api import expect

from rollouts import broadcast
from rollouts.roles import VIEWERS
from tests.fleet_builders import run_obj, settle, tutorial_fleet, tutorial_run, tutorial_strategy

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def socket_that_cannot_connect(settings, monkeypatch):
    settings.FLEET_DASHBOARD_POLL_SECONDS = 1
    monkeypatch.setattr(broadcast, "pushes_reach_browsers", lambda: True)


def test_a_page_whose_socket_cannot_connect_says_so_and_polls(page, frozen_clock, socket_that_cannot_connect):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/example-run/")
    assert page.locator(".live-status").get_attribute("ws-connect") == broadcast.run_socket_path(run_obj())
    expect(page.locator(".live-status")).to_contain_text("Refreshing every 1 s: the live connection is down")
    page.evaluate("document.getElementById('timeline').dataset.before = 'poll'")
    with page.expect_request(lambda r: r.url.endswith("/runs/example-run/") and r.headers.get("hx-request")):
        pass
    expect(page.locator("#timeline[data-before]")).to_have_count(0)  # replaced by the poll's response
    expect(page.locator("#run-sentence")).to_contain_text("waiting for the timed wait")
