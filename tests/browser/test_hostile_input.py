"""Hostile text in a real browser: a run page whose approval comment, approver
and events hold every markup payload of tests/payloads.py shows them as text,
no dialog opens, no element or request comes from them, and the page breaks no
CSP rule; the same after a live push carrying new payloads is swapped in.

The push is the very HTML rollouts.broadcast renders, delivered by a WebSocket
that Playwright answers in place of the server (pytest-django's live_server
speaks no WebSocket). Rita, a release manager, watches."""

import pytest
from playwright.sync_api import expect

from rollouts import broadcast
from rollouts import models as m
from rollouts.roles import RELEASE_MANAGERS
from rollouts.services import events
from tests.fleet_builders import (
    approve,
    run_obj,
    tutorial_waiting_at_canary,
)
from tests.payloads import MARKER, PAYLOADS

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARKUP = ["script", "img-onerror", "svg-onload", "double-quote-break", "htmx-div", "htmx-data-attr", "htmx-oob",
          "ws-connect", "anchor-javascript", "textarea-break", "iframe", "meta-refresh", "style-tag"]
COMMENT = " ".join(PAYLOADS[name] for name in MARKUP[:7])
PUSHED = " ".join(PAYLOADS[name] for name in MARKUP[7:])

RECORD_CSP_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", e => window.__violations.push(e.violatedDirective));
"""
# Anything of the payloads' making, found in the live DOM.
TRACES = f"""() => {{
  const traces = [];
  document.querySelectorAll("*").forEach(el => {{
    for (const attr of el.attributes) {{
      if (attr.name.startsWith("on") || attr.name.startsWith("data-hx-")) traces.push(el.tagName + " " + attr.name);
      if (attr.value.includes("/{MARKER}/") && attr.name !== "value") traces.push(el.tagName + " " + attr.name);
    }}
  }});
  const selectors = ["img", "svg", "iframe", "style", "body meta", "a[href^='javascript']", "script:not([src])",
                     "[hx-trigger~='load']", "[ws-connect]:not([ws-connect^='/ws/'])"];
  selectors.forEach(s => document.querySelectorAll(s).forEach(el => traces.push(s)));
  if (document.querySelectorAll("#timeline").length !== 1) traces.push("#timeline twice");
  return traces;
}}"""


@pytest.fixture
def hostile_run(frozen_clock, settings, monkeypatch):
    """The tutorial's run at its canary gate, approved by COMMENT with COMMENT."""
    monkeypatch.setattr(broadcast, "pushes_reach_browsers", lambda: True)
    tutorial_waiting_at_canary()
    approve("example-run-canary", actor=COMMENT, message=COMMENT)
    return run_obj()


def assert_nothing_fired(page, dialogs, requests):
    assert dialogs == [], dialogs
    assert [url for url in requests if MARKER in url] == []
    assert page.evaluate(TRACES) == []
    assert page.evaluate("window.__violations") == []


def test_a_run_page_shows_hostile_comments_and_pushes_as_text(page, hostile_run):
    dialogs, requests, sockets = [], [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda request: requests.append(request.url))
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    page.route_web_socket("**/ws/runs/**", lambda socket: sockets.append(socket))  # answered here, not by the server
    log_in(page, "rita", RELEASE_MANAGERS)
    page.goto("/runs/example-run/")
    expect(page.locator(".live-status")).to_contain_text("Live")
    expect(page.locator("#timeline .task").last).to_contain_text(PAYLOADS["script"])
    expect(page.locator("#timeline table.events")).to_contain_text(PAYLOADS["htmx-oob"])
    page.wait_for_timeout(300)  # time for a load trigger or an onerror to fire
    assert_nothing_fired(page, dialogs, requests)

    events.record(actor=PUSHED, action=m.Event.Action.PATCHED, kind_name=hostile_run.KIND, name=hostile_run.name,
                  run=hostile_run.name, reason="Hostile", message=PUSHED)
    push = broadcast.render_run(hostile_run.KIND, hostile_run.pk, ["manage"])["manage"]
    sockets[-1].send(push)
    expect(page.locator("#timeline table.events")).to_contain_text(PAYLOADS["ws-connect"])
    expect(page.locator("#timeline table.events")).to_contain_text(PAYLOADS["iframe"])
    page.wait_for_timeout(300)
    assert_nothing_fired(page, dialogs, requests)
    expect(page.get_by_role("link", name="Approve…")).to_have_count(0)  # approved: the push kept its state
