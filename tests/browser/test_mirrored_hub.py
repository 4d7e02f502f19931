"""A KubeFleet hub's run in a real browser: mirrored read-only, approved with
one click, and the hub (tests/fake_kube.py on loopback, spoken to by the
official client) receives the status merge patch."""

import pytest
from playwright.sync_api import expect

from rollouts.mirror import hub_sync
from rollouts.mirror.actions import credential_save
from rollouts.models.connections import HubConnection
from rollouts.roles import RELEASE_MANAGERS
from tests.fake_kube import (
    fleet_object,
    tutorial_approval_request,
    tutorial_hub,
    tutorial_run_status,
)

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hub_waiting_at_canary(fake):
    hub = credential_save(HubConnection(name="prod-hub"), kubeconfig=fake.kubeconfig(), context="fake", actor="ada")
    tutorial_hub(fake)
    fake.put(fleet_object("ClusterStagedUpdateRun", "example-run", status=tutorial_run_status("canary-waiting"), spec={
        "placementName": "example-placement", "resourceSnapshotIndex": "0",
        "stagedRolloutStrategyName": "example-strategy", "state": "Run"}))
    fake.put(tutorial_approval_request())
    hub_sync(connection_id=hub.pk, seconds=0.5)
    return hub


def test_a_release_manager_approves_a_mirrored_gate_and_the_hub_receives_the_patch(page, fake, hub_waiting_at_canary):
    log_in(page, "rita", RELEASE_MANAGERS)
    page.goto("/runs/example-run/")
    expect(page.locator("h1")).to_contain_text("hub prod-hub")
    expect(page.locator("main")).to_contain_text("Mirrored from the KubeFleet hub prod-hub")
    page.get_by_role("link", name="Approve…").click()
    dialog = page.locator("#dialog")
    dialog.get_by_label("Comment").fill("canary looks healthy")
    dialog.get_by_role("button", name="Approve").click()

    expect(page.locator("#timeline .notice")).to_contain_text("example-run-canary approved.")
    [patch] = fake.requests_to("PATCH")
    assert patch.path.endswith("/clusterapprovalrequests/example-run-canary/status")
    condition = patch.body["status"]["conditions"][0]
    assert (condition["type"], condition["status"]) == ("Approved", "True")
    assert condition["message"] == "canary looks healthy (approved by rita in Fleet UI)"
    page.goto("/hubs/")
    expect(page.locator("main")).to_contain_text("synced")
