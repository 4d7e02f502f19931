"""A person subscribes on their Notifications page in a real browser: the
webhook's secret is shown once, the subscription listed without its URL's
token, and a test message reaches a receiver on loopback.

Persona: rita, a release manager."""

import os

import pytest

from rollouts import models as m
from rollouts.roles import RELEASE_MANAGERS
from tests.notify_receivers import receiver

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_subscribes_sees_the_secret_once_and_sends_a_test(page, settings):
    settings.FLEET_NOTIFY_TIMEOUT_SECONDS = 2
    log_in(page, "rita", RELEASE_MANAGERS)
    page.get_by_role("link", name="Notifications").click()
    with receiver("ok") as hook:
        page.get_by_label("Name").fill("my-gates")
        page.get_by_label("Webhook URL or email address").fill(hook.url)
        page.get_by_label("gate opened").check()
        page.get_by_label("run failed").check()
        page.get_by_role("button", name="Subscribe").click()

        secret = page.locator("#secret").inner_text()
        assert m.Subscription.objects.get(name="my-gates").secret() == secret
        row = page.locator("#subscriptions tbody tr")
        assert "secret-path-token" not in row.inner_text() and "gate-opened, run-failed" in row.inner_text()
        if os.environ.get("FLEET_SCREENSHOTS"):
            page.screenshot(path=os.environ["FLEET_SCREENSHOTS"] + "/notifications.png", full_page=True)

        page.get_by_role("button", name="Send a test").click()
        assert "Test message delivered to my-gates" in page.locator(".messages").inner_text()
        [request] = hook.wait_for(1)
    assert request["headers"]["X-Fleet-Event"] == "test"
    page.reload()
    assert page.locator("#secret").count() == 0  # shown once
