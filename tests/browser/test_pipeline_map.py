"""The pipeline strip and the cluster map in a real browser (issue 16): the
strip on the overview and the run page leads to a stage, the map's cells
tell their cluster on focus, "only failing" hides the rest, and a
1,000-cluster run's map fits on one desktop screen."""

import os
import re

import pytest
from playwright.sync_api import expect

from rollouts.roles import VIEWERS
from tests.fleet_builders import tutorial_waiting_at_canary
from tests.map_builders import big_run

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DESKTOP = {"width": 1440, "height": 900}
re_failed = re.compile(r"^1\s*m7-0\s*failed ApplyFailed: quota exceeded")
SHOTS = os.environ.get("FLEET_TEST_SCREENSHOTS", "")  # a directory: save what the tests saw, to look at


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def test_the_strip_on_the_overview_and_the_run_page_leads_to_the_stage(page, frozen_clock):
    tutorial_waiting_at_canary()
    page.set_viewport_size(DESKTOP)
    log_in(page, "vera", VIEWERS)
    strip = page.locator("#overview-live .pipeline")
    expect(strip.locator(".pipe-stage")).to_have_count(3)  # staging, canary, the deletion stage
    expect(strip.locator(".pipe-gate")).to_have_text(["wait 1m: elapsed", "approval: waiting"])
    expect(strip.locator(".pipe-stage").nth(1)).to_contain_text("canary")
    shot(page, "overview-strip")
    strip.get_by_role("link", name="Stage 2: canary").click()
    page.wait_for_url("**/runs/example-run/#stage-2")
    stage = page.locator("#stage-2")
    expect(stage).to_be_in_viewport()
    # On the run page the strip sits at the top and links to its stages.
    page.evaluate("window.scrollTo(0, 0)")
    run_strip = page.locator("#timeline .pipeline")
    expect(run_strip.locator(".pipe-stage").first).to_contain_text("staging")
    run_strip.get_by_role("link", name="Stage 1: staging").click()
    expect(page.locator("#stage-1")).to_be_in_viewport()
    assert page.evaluate("location.hash") == "#stage-1"


def test_the_map_tells_a_cell_on_focus_and_only_failing_hides_the_rest(page, frozen_clock):
    big_run(stages=3, per_stage=20, done_stages=1, failing=2)
    page.set_viewport_size(DESKTOP)
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/big/")
    legend = page.get_by_role("list", name="Cluster map legend")
    expect(legend).to_contain_text("pending")
    expect(legend).to_contain_text("failing or failed")
    cells = page.locator(".cluster-map .cell")
    expect(cells).to_have_count(60)
    cell = page.locator("#cell-2-m2-0")
    expect(cell).to_have_accessible_name(re.compile(
        r"^m2-0: failed · started \d\d:\d\d:\d\d · ended \d\d:\d\d:\d\d \(0s\) · ApplyFailed: quota exceeded$"))
    cell.focus()
    tip = cell.evaluate("el => getComputedStyle(el, '::after').content")
    assert "m2-0: failed" in tip and "quota exceeded" in tip
    shot(page, "map-focus")
    # The finished stage is folded to its map; its table is one toggle away.
    expect(page.locator("#table-1 table")).to_be_hidden()
    page.locator("#table-1 > summary").click()
    expect(page.locator("#table-1 table")).to_be_visible()
    page.get_by_label("Only failing clusters (2)").check()
    visible = page.locator(".cluster-map .cell:visible")
    expect(visible).to_have_count(2)
    assert [c.get_attribute("id") for c in visible.all()] == ["cell-2-m2-0", "cell-2-m2-1"]
    expect(page.locator("#table-2 tbody tr:visible")).to_have_count(2)
    shot(page, "map-only-failing")
    page.get_by_label("Only failing clusters (2)").uncheck()
    expect(cells.locator("visible=true")).to_have_count(60)


def test_a_1000_cluster_run_map_fits_on_one_desktop_screen(page, frozen_clock):
    big_run(stages=10, per_stage=100, gate_after=6, failing=1, deletion=5)
    page.set_viewport_size(DESKTOP)
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/big/")
    expect(page.locator(".cluster-map .cell")).to_have_count(1005)
    stages = page.locator("#stages").bounding_box()
    assert stages["width"] <= DESKTOP["width"] and stages["height"] <= DESKTOP["height"], stages
    maps = [m.bounding_box() for m in page.locator(".cluster-map").all()]
    assert max(b["y"] + b["height"] for b in maps) - min(b["y"] for b in maps) <= DESKTOP["height"]
    page.locator("#stages").scroll_into_view_if_needed()
    shot(page, "map-1000")
    # A big stage's table is one click away: it loads when opened.
    page.locator("#table-7 > summary").click()
    expect(page.locator("#table-7 tbody tr")).to_have_count(100)
    expect(page.locator("#table-7 tbody tr.row-failing")).to_have_text(re_failed)


def test_a_tap_on_a_cell_tells_its_cluster_on_a_phone(browser, live_server, frozen_clock):
    big_run(stages=2, per_stage=20, done_stages=1, failing=1)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                  has_touch=True, is_mobile=True)
    try:
        phone = log_in(context.new_page(), "vera", VIEWERS)
        phone.goto("/runs/big/")
        cell = phone.locator("#cell-2-m2-0")
        cell.tap()
        expect(cell).to_be_focused()
        assert "m2-0: failed" in cell.evaluate("el => getComputedStyle(el, '::after').content")
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing scrolls sideways
        shot(phone, "phone-map")
    finally:
        context.close()


def test_only_failing_and_an_opened_table_stay_so_when_the_timeline_is_replaced(page, frozen_clock):
    big_run(stages=3, per_stage=30, done_stages=1, failing=2)  # 30 clusters a stage: tables load when opened
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/big/")
    page.get_by_label("Only failing clusters (2)").check()
    page.locator("#table-1 > summary").click()
    expect(page.locator("#table-1 tbody tr")).to_have_count(30)
    page.evaluate("document.getElementById('timeline').dataset.old = 'yes'")
    # What a live push or a refresh does: a new #timeline from the server.
    page.evaluate("htmx.ajax('GET', location.pathname, {target: '#timeline', swap: 'outerHTML'})")
    expect(page.locator("#timeline[data-old]")).to_have_count(0)
    expect(page.get_by_label("Only failing clusters (2)")).to_be_checked()
    expect(page.locator("#table-1")).to_have_attribute("open", "")
    expect(page.locator("#table-1 tbody tr")).to_have_count(30)  # loaded again
    expect(page.locator(".cluster-map .cell:visible")).to_have_count(2)


def test_a_map_is_one_tab_stop_and_arrow_keys_move_between_its_cells(page, frozen_clock):
    big_run(stages=2, per_stage=20, done_stages=1, failing=2)
    page.set_viewport_size(DESKTOP)
    log_in(page, "vera", VIEWERS)
    page.goto("/runs/big/")
    page.locator("#table-1 > summary").focus()
    page.keyboard.press("Shift+Tab")  # back from the first stage's Table toggle: its map
    expect(page.locator("#cell-1-m1-0")).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#cell-1-m1-1")).to_be_focused()
    page.keyboard.press("End")
    expect(page.locator("#cell-1-m1-19")).to_be_focused()
    page.keyboard.press("Tab")  # out of the map in one step, whichever cell had the focus
    expect(page.locator("#cell-1-m1-18")).not_to_be_focused()
    assert page.evaluate("document.activeElement.closest('.cluster-map') === null")
    # With only failing clusters shown, the second stage's Tab stop is its first failing cell.
    page.get_by_label("Only failing clusters (2)").check()
    page.locator("#cell-2-m2-1").focus()
    page.keyboard.press("Home")
    expect(page.locator("#cell-2-m2-0")).to_be_focused()
