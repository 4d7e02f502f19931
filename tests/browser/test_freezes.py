"""Freezes in a real browser: the banner on every page, and the Approve
dialog refusing and asking for break-glass (issue 17, items 3 and 4)."""

import pytest
from playwright.sync_api import expect

from rollouts.roles import RELEASE_MANAGERS
from rollouts.services.freezes import freeze_create
from tests.fleet_builders import approval_request, settle, tutorial_waiting_at_canary

from .conftest import log_in
from .test_reject_and_stop import open_dialog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_banner_shows_on_every_page_and_the_approve_dialog_asks_for_break_glass(page, frozen_clock):
    tutorial_waiting_at_canary()
    freeze_create(name="xmas", reason="holidays", actor="ada")
    settle()
    log_in(page, "rita", RELEASE_MANAGERS)
    for url in ("/", "/runs/", "/runs/example-run/", "/approvals/", "/freezes/"):
        page.goto(url)
        expect(page.locator("#freeze-banner")).to_contain_text("Frozen by ada (freeze xmas): holidays — until it is ended")

    page.goto("/runs/example-run/")
    dialog = open_dialog(page, "Approve…")
    expect(dialog.locator("#frozen-refusal")).to_contain_text("Approving is refused during the freeze.")
    expect(dialog.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    dialog.get_by_label("Break-glass").fill("the fix for the outage")
    dialog.get_by_role("button", name="Ask for break-glass approval").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#timeline .notice")).to_contain_text("a second, different approver must confirm it")
    assert approval_request("example-run-canary").condition_status("Approved") != "True"

    page.context.clear_cookies()
    log_in(page, "sam", RELEASE_MANAGERS)
    page.goto("/runs/example-run/")
    dialog = open_dialog(page, "Approve…")
    expect(dialog.locator("#break-glass-asked")).to_contain_text("rita asked for a break-glass approval")
    dialog.get_by_role("button", name="Confirm break-glass and approve").click()
    expect(page.locator("#timeline .notice")).to_contain_text("approved by break-glass during the freeze")
    assert approval_request("example-run-canary").condition_status("Approved") == "True"
