"""The time view, the ETA and a placement's history in a real browser.

The tutorial's fleet with 30 s simulated applies: olivia runs it, alice
approves the canary gate, vera (a viewer) looks."""

import pytest
from playwright.sync_api import expect

from rollouts.roles import VIEWERS
from tests.fleet_builders import (
    approve,
    run_obj,
    tick,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def fleet(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 30
    tutorial_fleet()
    tutorial_strategy()


def drive(seconds: int, step: int = 5) -> None:
    tick(seconds // step, step=step)


def finish(name: str, index: str) -> None:
    tutorial_run(name=name, index=index)
    drive(200)
    approve(f"{name}-canary")
    drive(20)
    assert not run_obj(name).active


@pytest.fixture
def csp_errors(page):
    """Console messages about the Content Security Policy (there must be none)."""
    seen = []
    page.on("console", lambda message: seen.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return seen


def test_the_first_run_has_no_estimate_and_the_next_one_is_in_minutes(page, fleet):
    tutorial_run(name="first", index="1")
    drive(10)
    log_in(page, "vera", VIEWERS)
    expect(page.locator("#active-runs + .scroll")).to_contain_text("no estimate yet")
    page.goto("/runs/first/")
    expect(page.locator("#run-eta")).to_have_text("no estimate yet")
    drive(190)
    approve("first-canary")
    drive(20)
    tutorial_run(name="second", index="0")
    drive(10)
    page.goto("/runs/second/")
    expect(page.locator("#run-eta")).to_have_text("about 2 min left, plus the canary approval")
    page.goto("/")
    expect(page.locator("#active-runs + .scroll")).to_contain_text("about 2 min left, plus the canary approval")


def test_the_time_view_draws_a_finished_run_and_a_now_line_for_a_moving_one(page, fleet, csp_errors):
    finish("first", "1")
    tutorial_run(name="second", index="0")
    drive(10)  # staging's one cluster is updating
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/first/")
    page.get_by_role("link", name="Time view").click()
    drawing = page.get_by_role("img", name="The run's stages and clusters on a time axis")
    expect(drawing).to_be_visible()
    expect(drawing.locator("rect.bar-succeeded")).to_have_count(3)
    expect(drawing.locator("rect.gate-approval")).to_have_count(1)
    expect(drawing.locator("line[data-now]")).to_have_count(0)
    table = page.get_by_role("table")
    expect(table.get_by_role("rowheader", name="canary")).to_be_visible()
    expect(table).to_contain_text("waited")
    expect(table).to_contain_text("approved by alice")

    page.goto("/runs/second/time/")
    expect(drawing.locator("line[data-now]")).to_have_count(1)
    expect(drawing.locator("rect.bar-updating")).to_have_count(1)
    assert csp_errors == []


def test_the_history_marks_the_rollback_and_who_approved(page, fleet):
    finish("first", "1")
    finish("second", "0")
    log_in(page, "vera", VIEWERS)
    page.goto("/placements/example-placement/")
    page.get_by_role("link", name="History of runs").click()
    rows = page.locator("#run-history tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("second")
    expect(rows.nth(0).locator(".rollback-mark")).to_have_text("rollback")
    expect(rows.nth(1).locator(".rollback-mark")).to_have_count(0)
    expect(rows.nth(0)).to_contain_text("canary (after): alice")
