"""Live updates end to end, as in production: the engine in a Celery worker
(Redis broker and channel layer, PostgreSQL), the web on a Daphne process of
its own, and two people watching one run in two browsers.

Rita, a release manager, resumes the run and approves its gate; Vera, a
viewer, watches. Every cluster's start and finish, the approval and the end
of the run appear on both pages without a reload and without a single poll:
everything arrives over the WebSocket."""

import subprocess

import pytest
from playwright.sync_api import expect

from tests.real_services import Hub, celery_hub, free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.celery]

PASSWORD = "correct horse battery staple"
RUN = "live-run"
MEMBERS = {"member2": "staging", "member3": "canary", "member1": "canary"}  # in update order

FLEET = """
apiVersion: cluster.kubernetes-fleet.io/v1beta1
kind: MemberCluster
metadata: {name: member1, labels: {environment: canary, order: "2"}}
---
apiVersion: cluster.kubernetes-fleet.io/v1beta1
kind: MemberCluster
metadata: {name: member2, labels: {environment: staging}}
---
apiVersion: cluster.kubernetes-fleet.io/v1beta1
kind: MemberCluster
metadata: {name: member3, labels: {environment: canary, order: "1"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: live-namespace}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: live-cm, namespace: live-namespace}
data: {key: value1}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterResourcePlacement
metadata: {name: live-placement}
spec:
  resourceSelectors: [{group: "", kind: Namespace, name: live-namespace, version: v1}]
  policy: {placementType: PickAll}
  strategy: {type: External}
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateStrategy
metadata: {name: live-strategy}
spec:
  stages:
    - name: staging
      labelSelector: {matchLabels: {environment: staging}}
      afterStageTasks: [{type: Approval}]
    - name: canary
      labelSelector: {matchLabels: {environment: canary}}
      sortingLabelKey: order
---
apiVersion: placement.kubernetes-fleet.io/v1beta1
kind: ClusterStagedUpdateRun
metadata: {name: live-run}
spec: {placementName: live-placement, resourceSnapshotIndex: "0", stagedRolloutStrategyName: live-strategy,
       state: Initialize}
"""

USERS = f"""
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
user_create(username="rita", role=RELEASE_MANAGERS, password={PASSWORD!r})
user_create(username="vera", role=VIEWERS, password={PASSWORD!r})
"""

# Records every (cluster, state) the page's timeline ever showed, whatever
# replaced it, and marks the document so a reload would be noticed.
WATCH = """() => {
  window.__sameDocument = true;
  window.__seen = {};
  const look = () => document.querySelectorAll("#timeline table.clusters tbody tr").forEach(row => {
    const cells = row.querySelectorAll("td");
    window.__seen[cells[1].textContent.trim() + " " + cells[2].querySelector(".state").textContent.trim()] = true;
  });
  look();
  new MutationObserver(look).observe(document.body, {childList: true, subtree: true});
}"""


def daphne(hub: Hub, port: int) -> subprocess.Popen:
    """The ASGI app on a Daphne process of its own, with the hub's settings;
    DEBUG on, so pages need no collectstatic."""
    return hub.daphne(port, "-v", "0", DEBUG="true")


@pytest.fixture
def hub(tmp_path):
    """PostgreSQL, Redis, one Celery worker and beat, and Daphne serving the web."""
    # Each cluster is seen updating, then succeeded.
    with celery_hub(tmp_path, FLEET_SIMULATED_APPLY_SECONDS="1") as hub:
        hub.shell(USERS)
        hub.worker("w1")
        hub.beat()
        hub.base_url = f"http://127.0.0.1:{free_port()}"
        daphne(hub, int(hub.base_url.rsplit(":", 1)[1]))
        yield hub


def signed_in(browser, hub: Hub, username: str):
    context = browser.new_context(base_url=hub.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    page.polls = []
    page.on("request", lambda r: page.polls.append(r.url) if r.headers.get("hx-request") and r.method == "GET"
            and f"/runs/{RUN}/" in r.url else None)
    return page


def test_two_people_watch_a_celery_driven_run_live(browser, hub):
    hub.manage("fleet", "apply", "-f", "-", stdin=FLEET)
    rita, vera = signed_in(browser, hub, "rita"), signed_in(browser, hub, "vera")
    pages = (rita, vera)
    for page in pages:
        page.goto(f"/runs/{RUN}/")
        page.evaluate(WATCH)
        expect(page.locator(".live-status")).to_have_text("Live: changes appear as they happen.")
        expect(page.locator("#run-state")).to_have_text("initialized (idle)")

    rita.get_by_role("button", name="Resume").click()
    for page in pages:
        expect(page.locator("#run-sentence")).to_contain_text(f"waiting for approval of {RUN}-staging")
        expect(page.locator("#run-progress")).to_have_text("1 of 3 clusters")

    rita.get_by_role("link", name="Approve…").click()  # in a timeline the socket pushed
    dialog = rita.locator("#dialog")
    dialog.get_by_label("Comment").fill("staging is healthy")
    dialog.get_by_role("button", name="Approve").click()
    expect(rita.locator("#timeline .notice")).to_contain_text(f"{RUN}-staging approved.")
    expect(vera.locator("#stage-1 .task")).to_contain_text("by rita")
    expect(vera.locator("#stage-1 .task")).to_contain_text("staging is healthy")

    for page in pages:
        expect(page.locator("#run-state")).to_have_text("succeeded")
        expect(page.locator("#run-progress")).to_have_text("3 of 3 clusters")
    for page in pages:
        seen = page.evaluate("window.__seen")
        missed = [f"{c} {s}" for c in MEMBERS for s in ("updating", "succeeded") if f"{c} {s}" not in seen]
        assert not missed, f"{page.url} never showed {missed}"
        assert page.evaluate("window.__sameDocument"), "the page was reloaded"
        assert page.polls == [], "the page polled: an update did not arrive over the socket"
