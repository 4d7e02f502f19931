"""The dashboard in a real browser: approving the tutorial's canary gate,
what a viewer may not do, the audit log and its export, and a rollback."""

import pytest
from playwright.sync_api import expect

from rollouts.roles import RELEASE_MANAGERS, VIEWERS
from tests.fleet_builders import (
    advance,
    approval_request,
    approve,
    member_values,
    run_obj,
    settle,
    tutorial_waiting_at_canary,
)

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def waiting_at_canary(frozen_clock):
    """The tutorial's run, past its TimedWait, waiting at the canary approval."""
    tutorial_waiting_at_canary()
    assert run_obj().condition("Progressing")["reason"] == "UpdateRunWaiting"
    return approval_request("example-run-canary")


def test_a_release_manager_approves_the_canary_gate_and_sees_the_run_succeed(page, waiting_at_canary):
    log_in(page, "rita", RELEASE_MANAGERS)
    page.goto("/runs/example-run/")
    expect(page.locator("#run-sentence")).to_contain_text("waiting for approval of example-run-canary")
    page.get_by_role("link", name="Approve…").click()
    dialog = page.locator("#dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Approve example-run-canary")
    # The evidence, then Esc: focus goes back to the link that opened the dialog.
    expect(dialog).to_contain_text("Snapshot 1 compared with snapshot 0")
    expect(dialog).to_contain_text("What stage canary did")
    expect(dialog).to_contain_text("Run started by olivia")
    page.wait_for_function("() => !document.getElementById('dialog').classList.contains('htmx-settling')")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("link", name="Approve…")).to_be_focused()
    # The banner's link opens the same dialog.
    page.locator("#banner-approve").click()
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dialog-heading")).to_have_css("position", "sticky")
    page.wait_for_function("() => !document.getElementById('dialog').classList.contains('htmx-settling')")
    dialog.get_by_label("Comment").fill("canary looks healthy")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.locator("#timeline .notice")).to_contain_text("example-run-canary approved.")
    expect(dialog).to_be_hidden()
    assert approval_request("example-run-canary").condition("Approved")["message"] == "canary looks healthy"
    settle()
    page.reload()
    expect(page.locator("#run-state")).to_have_text("succeeded")
    expect(page.locator("#run-progress")).to_have_text("3 of 3 clusters")
    assert member_values() == {"member1": "value2", "member2": "value2", "member3": "value2"}


def test_a_viewer_sees_no_approve_button_and_a_forged_post_is_refused(page, waiting_at_canary):
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/example-run/")
    expect(page.locator("#run-sentence")).to_contain_text("waiting for approval")
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    expect(page.get_by_role("link", name="Stop…")).to_have_count(0)
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post("/approvals/example-run-canary/approve/",
                                 form={"comment": "sneaky", "csrfmiddlewaretoken": token},
                                 headers={"X-CSRFToken": token, "Referer": page.url})
    assert response.status == 403
    assert approval_request("example-run-canary").condition("Approved") is None


def test_the_audit_log_shows_the_approval_and_exports_it_as_csv(page, waiting_at_canary):
    approve("example-run-canary", actor="rita", message="ship it")
    log_in(page, "vera", VIEWERS)
    page.goto("/audit/")
    page.get_by_label("Action").select_option("approved")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("#audit-results tbody tr").first
    expect(row).to_contain_text("rita")
    expect(row).to_contain_text("ship it")
    expect(row).to_contain_text("example-run-canary")
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    text = open(download.value.path(), encoding="utf-8").read()
    assert text.startswith("id,time,actor,action")
    assert "rita,approved,ClusterApprovalRequest" in text and "ship it" in text
    assert text.count("\n") == 2  # the header and the one approval


def test_a_rollback_from_the_placement_page_brings_every_member_back_to_value1(page, waiting_at_canary):
    approve("example-run-canary")
    settle()
    assert set(member_values().values()) == {"value2"}
    log_in(page, "rita", RELEASE_MANAGERS)
    page.goto("/placements/example-placement/")
    page.get_by_role("link", name="Roll back to 0…").click()
    expect(page.locator("h1")).to_have_text("Roll back example-placement to snapshot 0")
    expect(page.locator("main")).to_contain_text('"value2"')
    expect(page.locator("main ins").first).to_have_text('"value1"')
    page.get_by_role("button", name="Roll back to snapshot 0").click()
    page.wait_for_url("**/runs/example-placement-rollback-0-1/")
    settle()
    advance(61)
    settle()
    page.reload()
    page.get_by_role("link", name="Approve…").click()
    page.locator("#dialog").get_by_role("button", name="Approve").click()
    expect(page.locator("#timeline .notice")).to_contain_text("approved.")
    settle()
    page.reload()
    expect(page.locator("#run-state")).to_have_text("succeeded")
    assert member_values() == {"member1": "value1", "member2": "value1", "member3": "value1"}
