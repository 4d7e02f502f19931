"""Approval policies on stage gates: each rule, the binding of votes to what
they saw, the engine's own check, and the `fleet` command under a policy.

Personas (Django users, release managers):
    olivia  starts the runs (the operator of tests/fleet_builders.py), in sre
    alice   an approver in sre
    bob     an approver in sre
    carol   an approver outside sre
The fleet is the tutorial's, waiting at canary's after-stage approval.
"""

import json

import pytest
from django.contrib.auth.models import Group

from rollouts import models as m
from rollouts.api.errors import Invalid
from rollouts.mirror import hub_sync
from rollouts.roles import RELEASE_MANAGERS, user_create
from rollouts.services.approvals import approval_request_approve, approval_request_reject
from rollouts.services.policies import PolicyDenied
from tests.fake_kube import FLEET, tutorial_approval_request, tutorial_hub
from tests.fleet_builders import (
    TUTORIAL_STRATEGY,
    apply,
    approval_request,
    kind,
    patch,
    run_obj,
    set_state,
    settle,
    tutorial_waiting_at_canary,
)
from tests.test_mirror_actions import mirrored

pytestmark = pytest.mark.django_db

GATE = "example-run-canary"
ANNOTATION = "fleetui.io/approval-policy"


def strategy_doc(policy: dict | str | None) -> dict:
    import yaml

    doc = yaml.safe_load(TUTORIAL_STRATEGY)
    if policy is not None:
        doc["metadata"]["annotations"] = {ANNOTATION: policy if isinstance(policy, str) else json.dumps(policy)}
    return doc


def canary(rule: dict) -> dict:
    return {"stages": {"canary": {"after": rule}}}


@pytest.fixture
def people():
    sre = Group.objects.create(name="sre")
    for name in ("olivia", "alice", "bob", "carol"):
        user, _ = user_create(username=name, role=RELEASE_MANAGERS)
        if name != "carol":
            user.groups.add(sre)


@pytest.fixture
def gated(frozen_clock, people):
    """`gated(rule)`: the tutorial's run waiting at canary under `rule`."""

    def build(rule: dict | None):
        tutorial_waiting_at_canary(strategy_doc(canary(rule) if rule is not None else None))
        assert approval_request(GATE).condition("Approved") is None
        return approval_request(GATE)

    return build


def approve(actor: str, *, message: str = "", client_address: str = "", via: str = ""):
    return approval_request_approve(kind=kind("careq"), name=GATE, namespace="", actor=actor, message=message,
                                    client_address=client_address, via=via)


def approved() -> bool:
    return approval_request(GATE).condition_status("Approved") == "True"


def succeeded() -> bool:
    settle()
    return run_obj().condition_status("Succeeded") == "True"


# The annotation ------------------------------------------------------------------------


@pytest.mark.parametrize("policy, path, words", [
    pytest.param({"stages": {"prod": {"after": {}}}}, ".stages.prod", "no stage named \"prod\"", id="unknown-stage"),
    pytest.param(canary({"quorum": 0}), ".stages.canary.after.quorum", "integer from 1", id="quorum-zero"),
    pytest.param(canary({"quorum": "2"}), ".stages.canary.after.quorum", "integer from 1", id="quorum-string"),
    pytest.param(canary({"groups": "sre"}), ".stages.canary.after.groups", "list of group names", id="groups-string"),
    pytest.param(canary({"fourEyes": "yes"}), ".stages.canary.after.fourEyes", "true or false", id="four-eyes"),
    pytest.param(canary({"quorom": 2}), ".stages.canary.after.quorom", "supported fields", id="typo"),
    pytest.param({"stages": {"canary": {"before": {}}}}, ".stages.canary.before", "no Approval task",
                 id="gate-without-approval"),
    pytest.param({"stages": {"staging": {"after": {}}}}, ".stages.staging.after", "no Approval task",
                 id="timed-wait-only"),
    pytest.param({"stages": {"canary": {"during": {}}}}, ".stages.canary.during", '"before", "after"', id="bad-gate"),
    pytest.param("stages: [unclosed", "", "not YAML or JSON", id="not-yaml"),
])
def test_a_bad_policy_annotation_is_refused_naming_the_field(policy, path, words):
    with pytest.raises(Invalid) as refused:
        apply(strategy_doc(policy))
    assert f"metadata.annotations[{ANNOTATION}]{path}:" in str(refused.value)
    assert words in str(refused.value)
    assert not m.ClusterStagedUpdateStrategy.objects.exists()


def test_applying_the_strategy_keeps_its_policy_rows_in_step_with_the_annotation():
    apply(strategy_doc("stages:\n  canary:\n    after: {groups: [sre], quorum: 2, fourEyes: true}\n"))
    row = m.ApprovalPolicy.objects.get()
    assert (row.strategy_name, row.stage, row.gate, row.groups, row.quorum, row.four_eyes, row.source) == (
        "example-strategy", "canary", "after", ["sre"], 2, True, "annotation")
    apply(strategy_doc(canary({"quorum": 3})))
    assert list(m.ApprovalPolicy.objects.values_list("quorum", "groups", "four_eyes")) == [(3, [], False)]
    apply(strategy_doc(None))
    assert not m.ApprovalPolicy.objects.exists()


def test_the_annotation_wins_over_an_admin_row_for_the_same_gate(gated):
    m.ApprovalPolicy.objects.create(strategy_name="example-strategy", stage="canary", gate="after", quorum=3)
    gated({"quorum": 2})
    approve("alice")
    approve("bob")
    assert approved()


def test_deleting_the_strategy_drops_its_annotation_rows_and_keeps_admin_rows():
    from tests.fleet_builders import delete

    apply(strategy_doc(canary({"quorum": 2})))
    m.ApprovalPolicy.objects.create(strategy_name="example-strategy", stage="canary", gate="after", quorum=3)
    delete("csus", "example-strategy")
    assert list(m.ApprovalPolicy.objects.values_list("source", flat=True)) == ["admin"]


# Quorum --------------------------------------------------------------------------------


def test_one_approval_of_a_quorum_of_two_is_recorded_and_opens_nothing(gated):
    gated({"quorum": 2})
    request, changed = approve("alice", message="canary looks fine", client_address="10.0.0.1", via="web")
    assert changed and not approved()
    vote = m.ApprovalVote.objects.get()
    assert (vote.actor, vote.comment, vote.client_address, vote.via, vote.stage, vote.gate) == (
        "alice", "canary looks fine", "10.0.0.1", "web", "canary", "after")
    assert vote.run_uid == str(run_obj().uid) and vote.snapshot == "example-placement-1-snapshot"
    event = m.Event.objects.get(action="approved")
    assert (event.actor, event.reason, event.message, event.run) == (
        "alice", "ApprovalVoteRecorded", "1 of 2 approvals", "example-run")
    assert not succeeded()


def test_two_distinct_approvers_reach_a_quorum_of_two_and_the_run_goes_on(gated):
    gated({"quorum": 2})
    approve("alice")
    request, changed = approve("bob", message="lgtm")
    assert changed and approved()
    condition = request.condition("Approved")
    assert condition["message"] == "approved by alice, bob under approval policy quorum 2: lgtm"
    transition = m.Event.objects.filter(action="approved").last()
    assert transition.actor == "bob" and transition.details["approvers"] == ["alice", "bob"]
    assert succeeded()


def test_a_third_approval_after_the_quorum_changes_nothing(gated):
    gated({"quorum": 2})
    approve("alice")
    approve("bob")
    assert approve("olivia")[1] is False
    assert m.ApprovalVote.objects.count() == 2


# Who may approve ------------------------------------------------------------------------


def test_the_person_who_started_the_run_may_not_approve_it(gated):
    gated({"fourEyes": True})
    with pytest.raises(PolicyDenied) as refused:
        approve("olivia", client_address="10.9.8.7", via="cli")
    assert str(refused.value).startswith(
        "olivia may not approve canary: the person who started the run may not approve it (approval policy "
        "example-strategy/canary/after: quorum 1, four-eyes)")
    assert not approved() and not m.ApprovalVote.objects.exists()
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.object_name, denied.run, denied.reason) == ("olivia", GATE, "example-run",
                                                                             "PolicyDenied")
    assert denied.message == str(refused.value)
    assert denied.details["client_address"] == "10.9.8.7" and denied.details["via"] == "cli"
    assert denied.details["attempted"] == "approve"
    approve("alice")
    assert approved() and succeeded()


def test_someone_outside_the_policy_groups_may_not_approve(gated):
    gated({"groups": ["sre"]})
    with pytest.raises(PolicyDenied, match="carol may not approve canary: only members of sre may approve"):
        approve("carol", client_address="10.0.0.3")
    assert m.Event.objects.get(action="denied").details["client_address"] == "10.0.0.3"
    assert not approved()


def test_a_name_that_is_no_fleet_ui_user_may_not_approve_under_a_policy(gated):
    gated({"quorum": 1})
    with pytest.raises(PolicyDenied, match="only Fleet UI users with the approve permission"):
        approve("root")


def test_the_same_person_cannot_vote_twice(gated):
    gated({"quorum": 2})
    approve("alice")
    with pytest.raises(PolicyDenied, match="you have already approved this gate: another person must approve it"):
        approve("alice")
    assert m.ApprovalVote.objects.count() == 1 and not approved()


# Bound to what it saw -------------------------------------------------------------------


def test_stopping_and_resuming_the_run_voids_a_partial_approval(gated):
    gated({"quorum": 2})
    approve("alice")
    set_state("example-run", "Stop")
    settle()
    set_state("example-run", "Run")
    settle()
    approve("bob")
    assert not approved(), "alice's vote was cast before the stop: it no longer counts"
    approve("alice")
    assert approved() and succeeded()
    assert m.ApprovalVote.objects.count() == 3


def test_a_full_approval_survives_a_stop_and_resume(gated):
    gated({"quorum": 2})
    set_state("example-run", "Stop")
    settle()
    approve("alice")
    approve("bob")
    set_state("example-run", "Run")
    assert succeeded()


def test_a_changed_snapshot_voids_a_partial_approval(gated):
    gated({"quorum": 2})
    approve("alice")
    # The snapshot the run rolls out is replaced under the same name (say the
    # placement was deleted and made again): what alice reviewed is gone.
    snapshot = m.ClusterResourceSnapshot.objects.get(name="example-placement-1-snapshot")
    m.ClusterResourceSnapshot.objects.filter(pk=snapshot.pk).update(generation=snapshot.generation + 1)
    approve("bob")
    assert not approved()


# The engine's own check ---------------------------------------------------------------------


def test_the_engine_does_not_pass_a_gate_approved_by_hand_without_the_votes(gated):
    request = gated({"quorum": 2})
    approve("alice")
    conditions = [{"type": "Approved", "status": "True", "reason": "ByHand", "message": "db edit",
                   "observedGeneration": request.generation, "lastTransitionTime": "2026-03-02T21:30:00Z"}]
    m.ClusterApprovalRequest.objects.filter(pk=request.pk).update(status={"conditions": conditions})
    assert not succeeded()
    assert approval_request(GATE).condition("ApprovalAccepted") is None
    approve("bob")  # the quorum backs it now
    assert approval_request(GATE).condition("Approved")["message"].startswith("approved by alice, bob")
    assert succeeded()


def test_without_a_policy_approving_is_as_in_kubefleet(gated):
    gated(None)
    approve("carol")
    assert approved() and not m.ApprovalVote.objects.exists() and succeeded()


# Status patches ---------------------------------------------------------------------------


def approved_patch(generation: int) -> dict:
    return {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "lgtm", "message": "lgtm",
                                       "observedGeneration": generation,
                                       "lastTransitionTime": "2026-03-02T21:30:00Z"}]}}


def test_a_plain_status_patch_still_approves_where_no_policy_is_set(gated):
    request = gated(None)
    patch("careq", GATE, approved_patch(request.generation), subresource="status", actor="carol")
    assert approved() and succeeded()


def test_a_status_patch_of_approved_is_refused_where_a_policy_applies(gated):
    request = gated({"quorum": 2, "groups": ["sre"]})
    with pytest.raises(PolicyDenied) as refused:
        patch("careq", GATE, approved_patch(request.generation), subresource="status", actor="carol")
    assert str(refused.value) == (
        "carol may not change the Approved condition of example-run-canary with a status patch: the gate is "
        "governed by approval policy example-strategy/canary/after: quorum 2, group sre; approve it with "
        "`fleet approve example-run-canary`")
    assert not approved()
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.details["attempted"], denied.run) == ("carol", "patch status", "example-run")


# The fleet command ---------------------------------------------------------------------------


def test_fleet_approve_obeys_the_policy(gated, fleet):
    gated({"quorum": 2, "fourEyes": True})
    assert fleet("--as", "olivia", "approve", GATE) == (
        1, "", "Error from server (Forbidden): olivia may not approve canary: the person who started the run may "
        "not approve it (approval policy example-strategy/canary/after: quorum 2, four-eyes)\n")
    code, out, err = fleet("--as", "alice", "approve", GATE, "--message", "ok")
    assert (code, err) == (0, "")
    assert out == ("clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary: approval by alice "
                   "recorded: 1 of 2 approvals, waiting for another approver: olivia started the run and may not "
                   "approve it\n")
    assert fleet("--as", "bob", "approve", GATE).out == (
        "clusterapprovalrequest.placement.kubernetes-fleet.io/example-run-canary approved\n")
    assert approved()
    assert m.Event.objects.get(action="denied").details["via"] == "cli"


def test_fleet_patch_of_the_status_is_refused_under_a_policy(gated, fleet, manifest_file):
    request = gated({"quorum": 2})
    body = manifest_file(json.dumps(approved_patch(request.generation)), "approval.json")
    code, out, err = fleet("--as", "alice", "patch", "careq", GATE, "--type", "merge", "--subresource", "status",
                           "--patch-file", body)
    assert code == 1 and "may not change the Approved condition" in err and "fleet approve" in err
    assert not approved()


# The admin ---------------------------------------------------------------------------------


def admin_url(model, view: str, *args) -> str:
    from django.urls import reverse

    return reverse(f"admin:rollouts_{model._meta.model_name}_{view}", args=args)


def test_an_admin_makes_a_policy_in_the_admin_and_it_is_audited(admin_client, people):
    form = {"strategy_kind": "ClusterStagedUpdateStrategy", "strategy_namespace": "", "strategy_name": "s",
            "stage": "prod", "gate": "after", "groups": '["sre"]', "quorum": "2", "four_eyes": "on"}
    assert admin_client.post(admin_url(m.ApprovalPolicy, "add"), form).status_code == 302
    policy = m.ApprovalPolicy.objects.get()
    assert (policy.groups, policy.quorum, policy.four_eyes, policy.source) == (["sre"], 2, True, "admin")
    event = m.Event.objects.get(object_kind="ApprovalPolicy")
    assert (event.action, event.object_name, event.message) == ("created", "s/prod/after",
                                                                 "quorum 2, group sre, four-eyes")
    bad = {**form, "stage": "qa", "groups": '["nobody"]', "quorum": "0"}
    page = admin_client.post(admin_url(m.ApprovalPolicy, "add"), bad).content.decode()
    assert "No such group: nobody." in page and m.ApprovalPolicy.objects.count() == 1


def test_annotation_policies_and_votes_are_read_only_in_the_admin(admin_client, gated):
    gated({"quorum": 2})
    approve("alice")
    policy, vote = m.ApprovalPolicy.objects.get(), m.ApprovalVote.objects.get()
    assert admin_client.get(admin_url(m.ApprovalPolicy, "changelist")).status_code == 200
    assert admin_client.post(admin_url(m.ApprovalPolicy, "delete", policy.pk), {"post": "yes"}).status_code == 403
    assert admin_client.get(admin_url(m.ApprovalVote, "changelist")).status_code == 200
    assert admin_client.post(admin_url(m.ApprovalVote, "delete", vote.pk), {"post": "yes"}).status_code == 403
    assert m.ApprovalPolicy.objects.exists() and m.ApprovalVote.objects.exists()


# Mirrored from a hub ----------------------------------------------------------------------


def test_votes_on_a_mirrored_gate_are_counted_here_and_the_quorum_is_sent_to_the_hub(people, fake, hub):
    mirrored(fake, hub)
    m.ApprovalPolicy.objects.create(strategy_name="example-strategy", stage="canary", gate="after", quorum=2,
                                    groups=["sre"])
    with pytest.raises(PolicyDenied, match="carol may not approve canary"):
        approve("carol")
    assert approve("alice")[1] and not fake.requests_to("PATCH")
    request_, changed = approve("bob", message="lgtm")
    [sent] = fake.requests_to("PATCH")
    assert sent.body["status"]["conditions"][0]["message"].startswith(
        "approved by alice, bob under approval policy quorum 2, group sre: lgtm")
    assert changed and request_.condition_status("Approved") == "True"
    assert m.ApprovalVote.objects.count() == 2
    with pytest.raises(Exception, match="already approved"):
        approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="alice", reason="late")


def test_a_hubs_strategy_brings_its_policy_annotation_and_loses_it_with_the_strategy(people, fake, hub):
    tutorial_hub(fake)
    strategy = fake.get(f"{FLEET}/v1beta1", "ClusterStagedUpdateStrategy", "example-strategy")
    strategy["metadata"]["annotations"] = {
        "fleetui.io/approval-policy": '{"stages": {"canary": {"after": {"quorum": 2, "groups": ["sre"]}}}}'}
    fake.put(strategy)
    fake.put(tutorial_approval_request())
    hub_sync(connection_id=hub.pk, seconds=0.5)

    policy = m.ApprovalPolicy.objects.get()
    assert (policy.stage, policy.gate, policy.quorum, policy.groups, policy.source) == (
        "canary", "after", 2, ["sre"], m.ApprovalPolicy.Source.ANNOTATION)
    assert approve("alice")[1] and not fake.requests_to("PATCH")  # 1 of 2: nothing sent to the hub yet

    fake.delete(f"{FLEET}/v1beta1", "ClusterStagedUpdateStrategy", "example-strategy")
    hub_sync(connection_id=hub.pk, seconds=0.5)
    assert not m.ApprovalPolicy.objects.exists()


def test_a_malformed_policy_annotation_on_a_hub_governs_nothing(people, fake, hub):
    tutorial_hub(fake)
    strategy = fake.get(f"{FLEET}/v1beta1", "ClusterStagedUpdateStrategy", "example-strategy")
    strategy["metadata"]["annotations"] = {"fleetui.io/approval-policy": '{"stages": {"prod": {"after": {}}}}'}
    fake.put(strategy)
    hub_sync(connection_id=hub.pk, seconds=0.5)

    assert not m.ApprovalPolicy.objects.exists()
    assert m.ClusterStagedUpdateStrategy.objects.filter(name="example-strategy").exists()


def test_rejecting_a_mirrored_gate_stops_the_run_on_its_hub(people, fake, hub):
    mirrored(fake, hub)
    approval_request_reject(kind=kind("careq"), name=GATE, namespace="", actor="alice", reason="errors up")
    [sent] = fake.requests_to("PATCH")
    assert sent.body == {"spec": {"state": "Stop"}}
    rejected = m.Event.objects.get(action="rejected")
    assert (rejected.actor, rejected.message, rejected.run) == ("alice", "errors up", "example-run")


def test_the_engines_policy_check_costs_at_most_two_queries_a_pass(gated):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from rollouts.controllers.family import CLUSTER
    from rollouts.engine import runner

    request = gated({"quorum": 2})
    approve("alice")
    pk = run_obj().pk

    def queries() -> int:
        with CaptureQueriesContext(db) as ctx:
            runner.run_advance(family=CLUSTER, pk=pk)
        return len(ctx.captured_queries)

    waiting = queries()
    conditions = [{"type": "Approved", "status": "True", "reason": "ByHand", "message": "db edit",
                   "observedGeneration": request.generation, "lastTransitionTime": "2026-03-02T21:30:00Z"}]
    m.ClusterApprovalRequest.objects.filter(pk=request.pk).update(status={"conditions": conditions})
    assert queries() == waiting + 2  # the strategy's policies, then the gate's votes
