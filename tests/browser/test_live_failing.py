"""A failing cluster, live, as in production (Celery worker, Redis,
PostgreSQL, Daphne): Vera watches a run whose member1 is labelled to fail
its applies, and the overview. The cluster turns "failing" with its reason
on the run page without a reload, the overview's "Needs attention" fills;
once the label is removed the run finishes and the block empties itself."""

import pytest
from playwright.sync_api import expect

from . import test_live_celery
from .test_live_celery import signed_in

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.celery]

hub = test_live_celery.hub  # the same PostgreSQL, Redis, Celery and Daphne

RUN = "live-run"
LABEL = "fleetui.io/simulate-apply-failure"

FLEET = f"""
apiVersion: cluster.kubernetes-fleet.io/v1beta1
kind: MemberCluster
metadata: {{name: member1, labels: {{environment: prod, "{LABEL}": "true"}}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: live-namespace}}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata: {{name: live-placement}}
spec:
  resourceSelectors: [{{group: "", kind: Namespace, name: live-namespace, version: v1}}]
  policy: {{placementType: PickAll}}
  strategy: {{type: External}}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata: {{name: live-strategy}}
spec:
  stages:
    - name: prod
      labelSelector: {{matchLabels: {{environment: prod}}}}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata: {{name: {RUN}}}
spec: {{placementName: live-placement, resourceSnapshotIndex: "0", stagedRolloutStrategyName: live-strategy,
       state: Initialize}}
"""

SAME_DOCUMENT = "() => { window.__sameDocument = true; }"


def test_a_failing_cluster_and_the_attention_block_appear_and_clear_live(browser, hub):
    hub.manage("fleet", "apply", "-f", "-", stdin=FLEET)
    run_page = signed_in(browser, hub, "vera")
    run_page.goto(f"/runs/{RUN}/")
    overview = signed_in(browser, hub, "rita")
    overview.goto("/")
    for page in (run_page, overview):
        expect(page.locator(".live-status")).to_have_text("Live: changes appear as they happen.")
        page.evaluate(SAME_DOCUMENT)
    expect(overview.locator("#needs-attention")).to_have_count(0)

    run_page_rita = signed_in(browser, hub, "rita")
    run_page_rita.goto(f"/runs/{RUN}/")
    run_page_rita.get_by_role("button", name="Resume").click()

    row = run_page.locator("#timeline table.clusters tbody tr", has_text="member1")
    expect(row.locator(".state")).to_have_text("failing", timeout=30_000)
    expect(row).to_contain_text(f"ApplyFailed: simulated apply failure: member member1 is labelled {LABEL}=true")
    expect(run_page.locator("#run-sentence")).to_have_class("sentence sentence-problem")
    expect(run_page.locator("#run-sentence")).to_contain_text("Cluster member1 is failing: ApplyFailed")
    attention = overview.locator("#needs-attention")
    expect(attention).to_contain_text("cluster failing")
    expect(attention).to_contain_text("member1 (live-placement)")

    hub.manage("fleet", "patch", "membercluster", "member1", "--type", "merge",
               "-p", f'{{"metadata": {{"labels": {{"{LABEL}": null}}}}}}')
    expect(run_page.locator("#run-state")).to_have_text("succeeded", timeout=30_000)
    expect(row.locator(".state")).to_have_text("succeeded")
    expect(overview.locator("#needs-attention")).to_have_count(0, timeout=30_000)
    for page in (run_page, overview):
        assert page.evaluate("window.__sameDocument"), "the page was reloaded"
    assert run_page.polls == [], "the run page polled: the failure did not arrive over the socket"
