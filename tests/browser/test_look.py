"""How every page looks (issue 16, items 7 and 8), in Chromium: at a phone's
390 px nothing scrolls sideways, tables read as cards and the Approve action
stays on screen; the theme toggle switches without a reload and is remembered
for the person; axe-core finds no serious or critical accessibility problem
on any page, in the light and in the dark theme.

axe-core comes from the npm registry through `make test-tools` (into var/,
git-ignored); without it these tests fail and say so, they never skip.

Personas: rita is a release manager (she sees every button)."""

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from rollouts.roles import RELEASE_MANAGERS
from rollouts.services.freezes import freeze_create

from ..fleet_builders import tutorial_waiting_at_canary
from .conftest import PASSWORD, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"  # as the Makefile's AXE_VERSION
AXE = ROOT / "var" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
PHONE = {"width": 390, "height": 844}

# Every page of the dashboard, as rita reaches it with the tutorial's run
# waiting at its canary gate. The login page is visited signed out.
PAGES = [
    "/", "/runs/", "/runs/example-run/", "/runs/example-run/stop/", "/runs/example-run/time/", "/approvals/",
    "/approvals/example-run-canary/", "/placements/", "/placements/example-placement/",
    "/placements/example-placement/history/",
    "/placements/example-placement/rollout/", "/placements/example-placement/rollout/?index=0",
    "/strategies/", "/members/", "/hubs/", "/freezes/", "/audit/", "/runs/no-such-run/",
]
LOGIN = "/accounts/login/"


@pytest.fixture
def fleet(frozen_clock):
    """The tutorial's run at its canary gate."""
    tutorial_waiting_at_canary()


@pytest.fixture
def frozen_fleet(fleet):
    """And a freeze: every page shows its banner, the gate offers break-glass."""
    freeze_create(name="xmas", reason="holidays: nothing ships until January", actor="ada")


def context_for(browser, live_server, **options):
    context = browser.new_context(base_url=live_server.url, **options)
    context.set_default_timeout(10_000)
    return context


def visit_all(page):
    """Each page, then the login page signed out; yields its path once loaded."""
    for path in PAGES:
        page.goto(path)
        yield path
    page.context.clear_cookies()
    page.goto(LOGIN)
    yield LOGIN


# Phone -----------------------------------------------------------------------------------------


def test_no_page_scrolls_sideways_on_a_phone_and_tables_read_as_cards(browser, live_server, frozen_fleet):
    context = context_for(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    page = log_in(context.new_page(), "rita", RELEASE_MANAGERS)
    wide = {}
    for path in visit_all(page):
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if width[0] > width[1]:
            wide[path] = width
    assert not wide, f"pages wider than the 390 px screen ([document, screen] px): {wide}"

    page.context.close()
    context = context_for(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(LOGIN)
    page.get_by_label("User name").fill("rita")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    page.goto("/runs/")
    row = page.locator("main table tbody tr").first
    expect(row).to_have_css("display", "block")
    expect(row.locator("td").nth(1)).to_have_attribute("data-label", "Placement")
    label = row.locator("td").nth(1).evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Placement"'
    context.close()


def test_the_approve_action_stays_on_screen_on_a_phone(browser, live_server, fleet):
    context = context_for(browser, live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    page = log_in(context.new_page(), "rita", RELEASE_MANAGERS)
    for path, action in (("/runs/example-run/", "#banner-approve"), ("/approvals/example-run-canary/", ".action-bar a")):
        page.goto(path)
        page.mouse.wheel(0, 5000)
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight / 2)")
        box = page.locator(action).bounding_box()
        assert box and 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], f"{path}: {action} at {box}"
    page.locator(".action-bar a").click()
    expect(page.get_by_role("button", name="Approve", exact=True)).to_be_in_viewport()
    context.close()


# Theme ----------------------------------------------------------------------------------------


def background(page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


LIGHT, DARK = "rgb(255, 255, 255)", "rgb(13, 17, 23)"


def test_the_dark_toggle_switches_at_once_and_is_remembered_for_the_person(browser, live_server, fleet):
    first = log_in(context_for(browser, live_server, color_scheme="light").new_page(), "rita", RELEASE_MANAGERS)
    first.goto("/runs/")
    assert background(first) == LIGHT
    toggle = first.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    first.evaluate("() => { window.__sameDocument = true; }")
    with first.expect_response("**/accounts/theme/") as answer:
        toggle.click()
    assert answer.value.status == 204
    expect(first.locator("html")).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert background(first) == DARK and first.evaluate("window.__sameDocument"), "the page was reloaded"
    first.reload()
    assert background(first) == DARK

    second = context_for(browser, live_server, color_scheme="light").new_page()
    second.goto(LOGIN)
    assert background(second) == LIGHT  # another browser, not signed in yet
    second.get_by_label("User name").fill("rita")
    second.get_by_label("Password").fill(PASSWORD)
    second.get_by_role("button", name="Log in").click()
    second.wait_for_url("**/")
    assert background(second) == DARK
    second.get_by_role("button", name="Dark theme").click()  # back to light, here
    expect(second.locator("html")).to_have_attribute("data-theme", "light")
    assert background(second) == LIGHT
    for page in (first, second):
        page.context.close()


def test_without_a_choice_the_page_follows_the_system_setting(browser, live_server, fleet):
    page = log_in(context_for(browser, live_server, color_scheme="dark").new_page(), "rita", RELEASE_MANAGERS)
    page.goto("/runs/")
    assert background(page) == DARK
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Dark theme").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background(page) == LIGHT
    # Back to following the system (dark here), at once and after a reload.
    with page.expect_response("**/accounts/theme/"):
        page.get_by_role("button", name="Follow system theme").click()
    expect(page.locator("html")).not_to_have_attribute("data-theme", "light")
    expect(page.get_by_role("button", name="Follow system theme")).to_be_hidden()
    assert background(page) == DARK
    page.reload()
    assert background(page) == DARK
    expect(page.get_by_role("button", name="Follow system theme")).to_be_hidden()
    page.context.close()


# Accessibility -----------------------------------------------------------------------------------


def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE.relative_to(ROOT)}): run `make test-tools`, which fetches "
                    f"axe-core@{AXE_VERSION} from the npm registry", pytrace=False)
    return AXE.read_text()


def serious_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {json.dumps([n['target'] for n in v['nodes']][:5])}"
            for v in results["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_problem_on_any_page(browser, live_server, frozen_fleet, scheme):
    source = axe_source()
    page = log_in(context_for(browser, live_server, color_scheme=scheme).new_page(), "rita", RELEASE_MANAGERS)
    problems = {}
    for path in visit_all(page):
        page.evaluate(source)
        if found := serious_problems(page):
            problems[path] = found
    log_in(page, "rita2", RELEASE_MANAGERS)  # and the Approve dialog, open over the run page
    page.goto("/runs/example-run/")
    page.get_by_role("link", name="Approve…").click()
    expect(page.locator("#dialog")).to_be_visible()
    page.evaluate(source)
    if found := serious_problems(page):
        problems["the Approve dialog"] = found
    page.context.close()
    assert not problems, f"{scheme} theme:\n" + "\n".join(f"{p}: {f}" for p, f in problems.items())


def test_axe_would_report_a_serious_problem(browser, live_server, fleet):
    """The check can fail: a low-contrast line added to a page is reported."""
    page = log_in(context_for(browser, live_server).new_page(), "rita", RELEASE_MANAGERS)
    page.goto("/runs/")
    page.evaluate("""() => { const p = document.createElement('p'); p.textContent = 'faint';
        p.style.color = '#eeeeee'; document.querySelector('main').append(p); }""")
    page.evaluate(axe_source())
    assert any(line.startswith("color-contrast") for line in serious_problems(page))
    page.context.close()
