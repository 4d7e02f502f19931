"""The rollout page's pre-flight as a person sees it (issue 15, item 5):
choosing a strategy swaps in its plan without a reload, and a strategy that
leaves a cluster in no stage cannot be started."""

import pytest
from playwright.sync_api import expect

from rollouts.roles import RELEASE_MANAGERS
from tests.fleet_builders import stage, strategy, tutorial_fleet, tutorial_strategy

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_choosing_a_strategy_shows_its_plan_and_a_bad_one_is_refused_before_the_run_exists(page):
    tutorial_fleet()
    tutorial_strategy()
    strategy("canary-only", stage("canary", selector={"matchLabels": {"environment": "canary"}}))
    log_in(page, "rita", RELEASE_MANAGERS)
    page.goto("/placements/example-placement/rollout/?index=1&strategy=example-strategy")
    plan = page.locator("#preflight")
    expect(plan.locator(".plan-stages li")).to_have_text(["staging: member2", "canary: member3, member1"])
    expect(page.get_by_role("button", name="Start the run")).to_be_enabled()
    page.get_by_label("Strategy").select_option("canary-only")
    expect(page.locator("#preflight .notice-error")).to_contain_text("some clusters are not placed in any stage")
    expect(page.locator("#preflight")).to_contain_text("In no stage: member2")
    expect(page.get_by_role("button", name="Start the run")).to_be_disabled()
    assert "strategy=canary-only" in page.url
