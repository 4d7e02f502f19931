"""The approve dialog as a release manager reads it (issue 15, item 4): what
the release changes, what the finished stage did, who started the run, what
approving lets through; its heading stays visible and closing it returns
focus to the button that opened it."""

import pytest
from playwright.sync_api import expect

from rollouts.roles import RELEASE_MANAGERS
from tests.fleet_builders import APPROVAL, run, settle, stage, staged_fleet, strategy

from .conftest import log_in
from .test_reject_and_stop import open_dialog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_dialog_shows_the_evidence_and_gives_focus_back_to_its_opener(page, frozen_clock):
    staged_fleet({"staging": [f"member{i}" for i in range(1, 13)], "canary": ["member13"], "eu": ["member14"],
                  "us": ["member15"]})
    strategy("gated", stage("staging", after=[APPROVAL], max_concurrency=12), stage("canary"), stage("eu"),
             stage("us", after=[APPROVAL]))
    run(index="1", strategy_name="gated")
    settle()
    log_in(page, "rita", RELEASE_MANAGERS)
    page.set_viewport_size({"width": 1280, "height": 600})
    page.goto("/runs/example-run/")
    opener = page.locator("#banner-approve")
    dialog = open_dialog(page, opener.inner_text())
    expect(dialog.locator("#dialog-title")).to_have_text("Approve example-run-staging")
    expect(dialog.locator("#run-started")).to_contain_text("Run started by")
    expect(dialog).to_contain_text("What this release changes")
    expect(dialog).to_contain_text("What stage staging did")
    expect(dialog.locator(".finished-clusters tbody tr")).to_have_count(12)
    expect(dialog).to_contain_text("Stage canary updates 1 cluster to snapshot 1")
    expect(dialog.locator("#stages-ahead")).to_have_text(
        "Then, with no other approval: stage eu (1 cluster), stage us (1 cluster).")
    expect(dialog.locator("#run-stops-at")).to_have_text("The run then waits at the Approval after stage us.")
    dialog.locator(".finished-clusters").scroll_into_view_if_needed()
    expect(dialog.locator("#dialog-title")).to_be_in_viewport()  # the heading stays in view while it scrolls
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
