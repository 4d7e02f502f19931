"""Approving, stopping and resuming mirrored runs: sent to the hub with the
connection's credentials, the person recorded in our audit log, refusals
shown in one line.

Personas: "alice" approves stage gates, "olivia" operates runs, the hub
"prod-hub" answers (its controllers act as `hub:prod-hub`).
"""

import pytest

from rollouts import clock
from rollouts import models as m
from rollouts.api.errors import ApiError
from rollouts.mirror import HubRefused, approve_on_hub, hub_sync, set_run_state_on_hub
from tests.conftest import TUTORIAL_START
from tests.fake_kube import FLEET, condition, tutorial_approval_request, tutorial_hub

SESSION = 0.5
CAREQ_STATUS_PATH = f"/apis/{FLEET}/v1beta1/clusterapprovalrequests/example-run-canary/status"


def mirrored(fake, hub, *, run_state="Run"):
    tutorial_hub(fake, run_state=run_state)
    fake.put(tutorial_approval_request())
    hub_sync(connection_id=hub.pk, seconds=SESSION)
    return m.ClusterApprovalRequest.objects.get(name="example-run-canary")


def test_approving_sends_the_tutorials_status_merge_patch_to_the_hub(fake, hub):
    request = mirrored(fake, hub)

    with clock.frozen(TUTORIAL_START):
        approved, changed = approve_on_hub(request, actor="alice", message="lgtm")

    [patch] = fake.requests_to("PATCH")
    assert patch.path == CAREQ_STATUS_PATH
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {"status": {"conditions": [{
        "lastTransitionTime": "2026-03-02T21:27:00Z",
        "message": "lgtm (approved by alice in Fleet UI)",
        "observedGeneration": 1,
        "reason": "ClusterApprovalRequestApproved",
        "status": "True",
        "type": "Approved",
    }]}}
    assert changed and approved.condition_status("Approved") == "True"
    assert fake.get(f"{FLEET}/v1beta1", "ClusterApprovalRequest", "example-run-canary")["status"] == patch.body["status"]


def test_the_approver_and_comment_are_in_our_audit_log_once(fake, hub):
    request = mirrored(fake, hub)

    approve_on_hub(request, actor="alice", message="lgtm", client_address="10.0.0.7", via="web")
    live = fake.get(f"{FLEET}/v1beta1", "ClusterApprovalRequest", "example-run-canary")
    accepted = condition("ApprovalAccepted", "True", "ApprovalRequestApprovalAccepted")
    fake.put({**live, "status": {"conditions": live["status"]["conditions"] + [accepted]}})  # the hub's controller
    hub_sync(connection_id=hub.pk, seconds=SESSION)

    [approval] = m.Event.objects.filter(action=m.Event.Action.APPROVED)
    assert (approval.actor, approval.message, approval.run) == ("alice", "lgtm", "example-run")
    assert approval.details["hub"] == "prod-hub" and approval.details["client_address"] == "10.0.0.7"
    accepted_event = m.Event.objects.get(reason="ApprovalRequestApprovalAccepted")
    assert accepted_event.actor == "hub:prod-hub"
    assert m.ClusterApprovalRequest.objects.get().condition_status("ApprovalAccepted") == "True"


def test_approving_an_approved_request_sends_nothing(fake, hub):
    request = mirrored(fake, hub)
    approve_on_hub(request, actor="alice", message="lgtm")

    _, changed = approve_on_hub(request, actor="bob", message="me too")

    assert not changed and len(fake.requests_to("PATCH")) == 1
    assert m.Event.objects.filter(action=m.Event.Action.APPROVED).count() == 1


def test_an_approval_made_on_the_hub_itself_is_recorded_for_the_timeline(fake, hub):
    mirrored(fake, hub)
    live = fake.get(f"{FLEET}/v1beta1", "ClusterApprovalRequest", "example-run-canary")
    fake.put({**live, "status": {"conditions": [condition("Approved", "True", "testPassed", message="lgtm")]}})

    hub_sync(connection_id=hub.pk, seconds=SESSION)

    approval = m.Event.objects.get(action=m.Event.Action.APPROVED)
    assert (approval.actor, approval.reason, approval.message) == ("hub:prod-hub", "testPassed", "lgtm")


@pytest.mark.parametrize(("status", "words"), [
    pytest.param(403, "refused", id="forbidden"),
    pytest.param(409, "conflict", id="conflict"),
    pytest.param(404, "no longer exists", id="not-found"),
    pytest.param(410, "gone", id="gone"),
])
def test_a_refusal_from_the_hub_is_one_line_and_approves_nothing(fake, hub, status, words):
    request = mirrored(fake, hub)
    fake.fail(status, method="PATCH", path_contains="/status",
              message='clusterapprovalrequests "example-run-canary" is forbidden: User "fleetui" cannot patch')

    with pytest.raises(HubRefused) as refused:
        approve_on_hub(request, actor="alice", message="lgtm")

    text = str(refused.value)
    assert words in text and "prod-hub" in text and "\n" not in text
    assert isinstance(refused.value, ApiError) and refused.value.code == status
    assert not m.Event.objects.filter(action=m.Event.Action.APPROVED).exists()
    assert m.ClusterApprovalRequest.objects.get().condition_status("Approved") == ""


def test_an_unreachable_hub_approves_nothing_and_says_so(fake, hub):
    request = mirrored(fake, hub)
    fake.go_down()

    with pytest.raises(HubRefused, match="hub prod-hub is unreachable, nothing was approved"):
        approve_on_hub(request, actor="alice", message="lgtm")


def test_an_object_of_our_own_hub_is_not_approved_on_a_hub(db):
    own = m.ClusterApprovalRequest.objects.create(name="mine", creation_timestamp=clock.now())

    with pytest.raises(HubRefused, match="not mirrored"):
        approve_on_hub(own, actor="alice")


@pytest.mark.parametrize(("state", "before"), [pytest.param("Stop", "Run", id="stop"),
                                               pytest.param("Run", "Stop", id="resume")])
def test_stop_and_resume_patch_spec_state_on_the_hub(fake, hub, state, before):
    mirrored(fake, hub, run_state=before)
    run = m.ClusterStagedUpdateRun.objects.get()

    run = set_run_state_on_hub(run, state, actor="olivia")

    [patch] = fake.requests_to("PATCH")
    assert patch.path == f"/apis/{FLEET}/v1beta1/clusterstagedupdateruns/example-run"
    assert (patch.content_type, patch.body) == ("application/merge-patch+json", {"spec": {"state": state}})
    assert run.spec["state"] == state
    event = m.Event.objects.get(action=m.Event.Action.STATE_CHANGED)
    assert event.actor == "olivia" and event.details["changes"] == {"spec.state": [before, state]}


def test_a_legacy_hubs_runs_cannot_be_stopped_and_nothing_is_sent(fake, hub):
    mirrored(fake, hub, run_state=None)

    with pytest.raises(HubRefused, match="legacy staged-update API"):
        set_run_state_on_hub(m.ClusterStagedUpdateRun.objects.get(), "Stop", actor="olivia")

    assert fake.requests_to("PATCH") == []
