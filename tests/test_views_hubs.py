"""Mirrored KubeFleet hubs in the dashboard: the hubs page, "mirrored from"
badges, and a release manager approving a mirrored gate with one click,
which reaches the hub as the status merge patch `kubectl patch` sends.

The hub is tests/fake_kube.py's API server on loopback; the official
client talks to it over HTTP.
"""

import pytest

from rollouts import clock
from rollouts import models as m
from rollouts.mirror import hub_sync
from rollouts.roles import ADMINS, RELEASE_MANAGERS, VIEWERS
from tests.fake_kube import FLEET, tutorial_approval_request, tutorial_hub
from tests.fleet_builders import signed_in

pytestmark = pytest.mark.django_db

SESSION = 0.5


@pytest.fixture
def mirrored(fake, hub):
    tutorial_hub(fake)
    fake.put(tutorial_approval_request())
    hub_sync(connection_id=hub.pk, seconds=SESSION)
    return hub


def test_the_hubs_page_shows_a_synced_hub_and_never_its_kubeconfig(mirrored, fake):
    page = signed_in("vera", VIEWERS, REMOTE_ADDR="10.0.0.7").get("/hubs/").content.decode()

    assert "prod-hub" in page and "synced" in page
    assert fake.token not in page and "certificate" not in page
    assert "Add a hub" not in page  # viewers cannot add one


def test_an_unreachable_hub_is_shown_failing_with_its_error_and_next_try(fake, hub):
    fake.go_down()
    hub_sync(connection_id=hub.pk, seconds=SESSION)

    page = signed_in("ada", ADMINS, REMOTE_ADDR="10.0.0.7").get("/hubs/").content.decode()

    assert "failing" in page and "1 failed session" in page and "next try" in page
    assert "cannot reach the API server" in page
    assert "Add a hub" in page


def test_mirrored_runs_and_members_carry_their_hubs_badge(mirrored):
    vera = signed_in("vera", VIEWERS, REMOTE_ADDR="10.0.0.7")

    for path in ("/", "/runs/", "/members/", "/placements/example-placement/"):
        assert "hub prod-hub" in vera.get(path).content.decode(), path
    detail = vera.get("/runs/example-run/").content.decode()
    assert "Mirrored from the KubeFleet hub prod-hub" in detail


def test_one_click_approval_of_a_mirrored_gate_patches_the_hubs_status(mirrored, fake):
    rita = signed_in("rita", RELEASE_MANAGERS, REMOTE_ADDR="10.0.0.7")

    with clock.frozen(clock.parse_rfc3339("2026-03-02T21:27:00Z")):
        response = rita.post("/approvals/example-run-canary/approve/", {"comment": "canary looks good"})

    assert response.status_code == 302
    [patch] = fake.requests_to("PATCH")
    assert patch.path == f"/apis/{FLEET}/v1beta1/clusterapprovalrequests/example-run-canary/status"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"status": {"conditions": [{
        "type": "Approved", "status": "True", "reason": "ClusterApprovalRequestApproved",
        "message": "canary looks good (approved by rita in Fleet UI)", "observedGeneration": 1,
        "lastTransitionTime": "2026-03-02T21:27:00Z"}]}}
    event = m.Event.objects.get(action=m.Event.Action.APPROVED)
    assert (event.actor, event.details["via"], event.details["client_address"]) == ("rita", "web", "10.0.0.7")


def test_a_hubs_refusal_is_shown_to_the_person_plainly(mirrored, fake):
    fake.fail(403, method="PATCH", path_contains="/status",
              message='clusterapprovalrequests "example-run-canary" is forbidden: User "fleetui" cannot patch')
    rita = signed_in("rita", RELEASE_MANAGERS, REMOTE_ADDR="10.0.0.7")

    page = rita.post("/approvals/example-run-canary/approve/", {"comment": "ok"}, follow=True).content.decode()

    assert "prod-hub" in page and "refused" in page and "Traceback" not in page
    assert m.ClusterApprovalRequest.objects.get().condition_status("Approved") == ""
