"""A health gate in the browser: the run page and the approve dialog show
each query with its sparkline (server-drawn SVG) and Prometheus link, under
the production CSP without a violation."""

import pytest
from playwright.sync_api import expect

from rollouts import clock
from rollouts.roles import RELEASE_MANAGERS
from tests.fleet_builders import tutorial_waiting_at_canary
from tests.test_health_gates import FakePrometheus, check, declaration, strategy_with

from .conftest import log_in
from .test_reject_and_stop import open_dialog

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_CSP_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", e => window.__violations.push(e.violatedDirective));
"""


def test_the_dialog_shows_the_health_gate_with_a_sparkline_and_no_csp_violation(page, frozen_clock):
    tutorial_waiting_at_canary(strategy_with(declaration("evidence")))
    prom = FakePrometheus()
    clock.advance(60)
    prom.values["member1"] = 0.03
    check(prom)
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    log_in(page, "rita", RELEASE_MANAGERS)

    page.goto("/runs/example-run/")
    expect(page.locator(".task .health-gate")).to_contain_text("Health gate: failing")
    dialog = open_dialog(page, "Approve example-run-canary…")

    gate = dialog.locator(".health-gate")
    expect(gate).to_contain_text('health gate failed: error-ratio = 0.03 on cluster="member1" (healthy: < 0.01)')
    expect(gate.locator("svg.sparkline polyline")).to_have_count(2)
    expect(gate.locator("svg.sparkline")).to_be_visible()
    expect(gate.get_by_role("link", name="error-ratio")).to_have_attribute(
        "href", "http://prometheus.test:9090/graph?g0.expr=max+by+%28cluster%29+%28app_error_ratio%7Bcluster%3D~"
                "%22member3%7Cmember1%22%7D%29&g0.tab=0&g0.range_input=5m")  # the soak
    assert page.evaluate("window.__violations") == []
