"""A release manager rejects a gate and sees it rejected everywhere; Stop
asks first (issue 15, items 3 and 6)."""

import pytest
from playwright.sync_api import expect

from rollouts.roles import RELEASE_MANAGERS
from tests.fleet_builders import (
    SIMULATE_FAILURE,
    run,
    run_obj,
    settle,
    stage,
    staged_fleet,
    strategy,
    tutorial_waiting_at_canary,
)

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RED = "rgb(207, 34, 46)"  # --bad in static/fleetui.css (light theme)
REJECTED_RED = "rgb(130, 7, 30)"  # --state-rejected (light theme): a darker red, on its own pink


def open_dialog(page, link: str):
    """Click `link` and wait until htmx has settled the dialog: its settle
    step focuses the [autofocus] field again, so typing before it ends could
    land in that field."""
    page.get_by_role("link", name=link).click()
    page.wait_for_function("() => { const d = document.getElementById('dialog');"
                           " return d.open && !d.classList.contains('htmx-settling'); }")
    return page.locator("#dialog")


def test_a_release_manager_rejects_a_gate_and_it_reads_rejected_in_red_with_the_inbox_empty(page, frozen_clock):
    tutorial_waiting_at_canary()
    log_in(page, "rita", RELEASE_MANAGERS)
    expect(page.locator("#inbox")).to_contain_text("(1)")
    page.goto("/runs/example-run/")
    dialog = open_dialog(page, "Approve…")
    dialog.get_by_label("Reason for rejecting").fill("error rate up on member3")
    dialog.get_by_role("button", name="Reject and stop the run").click()
    expect(dialog).to_be_hidden()
    notice = page.locator("#timeline .notice")
    expect(notice).to_contain_text("example-run-canary rejected")
    expect(notice).to_have_class("notice notice-rejected")
    settle()
    page.reload()
    gate = page.locator(".task").filter(has_text="example-run-canary")
    expect(gate.locator(".state")).to_have_text("rejected")
    expect(gate.locator(".state")).to_have_css("color", REJECTED_RED)
    expect(gate.locator(".rejected")).to_have_text("Rejected by rita: error rate up on member3")
    expect(gate.locator(".rejected")).to_have_css("color", RED)
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)
    expect(page.locator("#run-sentence")).to_contain_text(
        "rita rejected the approval of example-run-canary: “error rate up on member3”")
    page.goto("/")
    expect(page.locator("#inbox")).to_contain_text("(0)")
    expect(page.get_by_text("Nothing is waiting for approval.")).to_be_visible()


def test_stop_asks_first_cancel_keeps_the_run_going_and_confirm_stops_it(page, frozen_clock):
    staged_fleet({"staging": ["member2"], "canary": ["member1"]}, labels={"member2": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("staging"), stage("canary"))
    run()
    settle()
    log_in(page, "rita", RELEASE_MANAGERS)
    page.goto("/runs/example-run/")
    dialog = open_dialog(page, "Stop…")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice comes first
    expect(dialog).to_contain_text("Stop example-run?")
    expect(dialog).to_contain_text("member2 (updating since")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert run_obj().spec.get("state") is None, "cancel changes nothing"
    open_dialog(page, "Stop…")
    dialog.get_by_role("button", name="Stop the run").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#timeline .notice")).to_contain_text("Stop requested for example-run")
    assert run_obj().spec["state"] == "Stop"
    settle()
    page.reload()
    expect(page.locator("#run-state")).to_have_text("stopping · 1 failing")
    expect(page.locator("#run-sentence")).to_contain_text(
        "The run is stopping: waiting for member2 (updating since")
    expect(page.locator("#run-sentence")).to_contain_text("nothing new starts")
