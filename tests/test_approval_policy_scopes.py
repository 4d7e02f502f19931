"""Approval policies that cannot be bypassed (issue 13, findings 3 and 4).

3. The gate a vote counts for comes from the run's status, not from the
   approval request's editable `taskType` label.
4. Policies on a placement or on clusters by label: every run reaching those
   clusters meets them whatever its strategy; a run whose strategy has no
   gate before them is refused at creation and fails at initialization.

Personas (Django users, release managers):
    olivia  starts the runs (the operator of tests/fleet_builders.py), in sre
    alice   an approver in sre
    bob     an approver in sre
    carol   an approver outside sre
The fleet is the tutorial's: member2 (environment=staging) in stage staging,
member3 and member1 (environment=canary) in stage canary.
"""

import html
import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from rollouts import models as m
from rollouts.controllers import labels as L
from rollouts.engine import protection
from rollouts.engine.stages import request_gates
from rollouts.roles import RELEASE_MANAGERS, user_create
from rollouts.services import policies
from rollouts.services.approvals import approval_request_approve
from rollouts.services.policies import PolicyDenied
from rollouts.services.policy_scope import RunUnprotected
from rollouts.services.runs import run_start
from tests.fleet_builders import (
    APPROVAL,
    advance,
    apply,
    approval_request,
    kind,
    label_member,
    member_values,
    patch,
    run_obj,
    settle,
    signed_in,
    timed_wait,
    tutorial_fleet,
    tutorial_waiting_at_canary,
)

pytestmark = pytest.mark.django_db

GATE = "example-run-canary"
Scope = m.ApprovalPolicy.Scope


@pytest.fixture
def people():
    sre = Group.objects.create(name="sre")
    for name in ("olivia", "alice", "bob", "carol"):
        user, _ = user_create(username=name, role=RELEASE_MANAGERS)
        if name != "carol":
            user.groups.add(sre)


def strategy_doc(name: str, staging: dict, canary: dict, *, annotation: dict | None = None) -> dict:
    meta = {"name": name}
    if annotation is not None:
        meta["annotations"] = {"fleetui.io/approval-policy": json.dumps(annotation)}
    return {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy",
            "metadata": meta, "spec": {"stages": [
                {"name": "staging", "labelSelector": {"matchLabels": {"environment": "staging"}}, **staging},
                {"name": "canary", "labelSelector": {"matchLabels": {"environment": "canary"}},
                 "sortingLabelKey": "order", **canary}]}}


STRATEGIES = {
    "tutorial": ({"afterStageTasks": [timed_wait("1m")]}, {"afterStageTasks": [APPROVAL]}),
    "before-canary": ({"afterStageTasks": [timed_wait("1m")]}, {"beforeStageTasks": [APPROVAL]}),
    "after-staging": ({"afterStageTasks": [APPROVAL]}, {}),
    "fast": ({}, {}),
    "gated-everywhere": ({"beforeStageTasks": [APPROVAL]}, {"beforeStageTasks": [APPROVAL]}),
}


def the_fleet(**annotations) -> None:
    """The tutorial's fleet with every strategy of STRATEGIES applied."""
    tutorial_fleet()
    apply([strategy_doc(name, *stages, annotation=annotations.get(name.replace("-", "_")))
           for name, stages in STRATEGIES.items()])


def protect(scope: str, target: str, *, name: str = "canary-clusters", groups=("sre",), quorum: int = 2,
            four_eyes: bool = False) -> m.ApprovalPolicy:
    where = {"placement_name": target} if scope == Scope.PLACEMENT else {"cluster_selector": target}
    return m.ApprovalPolicy.objects.create(scope=scope, name=name, groups=list(groups), quorum=quorum,
                                           four_eyes=four_eyes, **where)


def start(strategy: str, *, name: str = "example-run", actor: str = "olivia", via: str = ""):
    return run_start(placement="example-placement", strategy=strategy, index="1", actor=actor, name=name, via=via)


def approve(gate: str, actor: str):
    return approval_request_approve(kind=kind("careq"), name=gate, namespace="", actor=actor)


def approved(gate: str) -> bool:
    return approval_request(gate).condition_status("Approved") == "True"


def hand_approve(gate: str) -> None:
    """Approved=True written around the service (the database, a script)."""
    request = approval_request(gate)
    conditions = [{"type": "Approved", "status": "True", "reason": "ByHand", "message": "db edit",
                   "observedGeneration": request.generation, "lastTransitionTime": "2026-03-02T21:30:00Z"}]
    m.ClusterApprovalRequest.objects.filter(pk=request.pk).update(status={"conditions": conditions})


def relabel_as_before_stage(gate: str = GATE) -> None:
    patch("careq", gate, {"metadata": {"labels": {L.TASK_TYPE: "beforeStage"}}}, actor="carol")
    assert approval_request(gate).labels[L.TASK_TYPE] == "beforeStage"


@pytest.fixture
def sre_gate(frozen_clock, people):
    """The tutorial's run waiting at canary under `quorum 2, group sre`."""
    tutorial_waiting_at_canary(strategy_doc("example-strategy", *STRATEGIES["tutorial"], annotation={
        "stages": {"canary": {"after": {"groups": ["sre"], "quorum": 2}}}}))
    return approval_request(GATE)


# Finding 3: the gate comes from the run, not from the labels ----------------------------------


@pytest.mark.parametrize("status, name, stage, gates", [
    pytest.param({"stagesStatus": [{"stageName": "canary", "afterStageTaskStatus": [
        {"type": "Approval", "approvalRequestName": "r-canary"}]}]}, "r-canary", "canary", [("canary", "after")],
        id="recorded-after"),
    pytest.param({"stagesStatus": [{"stageName": "prod", "beforeStageTaskStatus": [
        {"type": "Approval", "approvalRequestName": "r-before-prod"}]}]}, "r-before-prod", "prod",
        [("prod", "before")], id="recorded-before"),
    pytest.param({"stagesStatus": [{"stageName": "canary", "afterStageTaskStatus": [
        {"type": "Approval", "approvalRequestName": "r-canary"}]}]}, "r-canary", "other", [("canary", "after")],
        id="recorded-wins-over-spec"),
    pytest.param({}, "r-canary", "canary", [("canary", "after")], id="not-initialized-tutorial-name"),
    pytest.param({}, "r-after-canary", "canary", [("canary", "after")], id="not-initialized-kubefleet-name"),
    pytest.param({}, "r-before-canary", "canary", [("canary", "before")], id="not-initialized-before-name"),
    pytest.param({}, "anything", "canary", [], id="no-gate-of-the-run"),
])
def test_the_gate_of_a_request_is_read_from_the_run_status_or_its_deterministic_name(status, name, stage, gates):
    assert request_gates(status, name, run="r", stage=stage) == gates


def test_relabelling_a_gate_with_fleet_patch_keeps_its_policy(sre_gate, fleet, manifest_file):
    body = manifest_file(json.dumps({"metadata": {"labels": {L.TASK_TYPE: "beforeStage"}}}), "relabel.json")
    code, _, err = fleet("--as", "carol", "patch", "careq", GATE, "--type", "merge", "--patch-file", body)
    assert (code, err) == (0, "")
    assert approval_request(GATE).labels[L.TASK_TYPE] == "beforeStage"
    assert fleet("--as", "carol", "approve", GATE).code == 1
    code, out, _ = fleet("--as", "alice", "approve", GATE)
    assert code == 0 and "1 of 2 approvals" in out
    assert not approved(GATE)
    settle()
    assert run_obj().condition_status("Succeeded") == ""


def test_relabelling_a_gate_in_the_admin_keeps_its_policy(sre_gate, admin_client):
    request = approval_request(GATE)
    change = reverse("admin:rollouts_clusterapprovalrequest_change", args=[request.pk])
    form = {"labels": json.dumps({**request.labels, L.TASK_TYPE: "beforeStage"}),
            "annotations": json.dumps(request.annotations), "spec": json.dumps(request.spec),
            "loaded_resource_version": str(request.resource_version), "_save": "Save"}
    assert admin_client.post(change, form).status_code == 302
    assert approval_request(GATE).labels[L.TASK_TYPE] == "beforeStage"
    with pytest.raises(PolicyDenied, match="only members of sre may approve"):
        approve(GATE, "carol")
    approve(GATE, "alice")
    assert not approved(GATE)


def test_the_engine_ignores_a_relabelled_gate_approved_by_hand(sre_gate):
    relabel_as_before_stage()
    approve(GATE, "alice")
    hand_approve(GATE)
    settle()
    assert approval_request(GATE).condition("ApprovalAccepted") is None
    assert run_obj().condition_status("Succeeded") == ""
    approve(GATE, "bob")
    settle()
    assert run_obj().condition_status("Succeeded") == "True"


def test_a_status_patch_of_a_relabelled_gate_is_still_refused(sre_gate):
    relabel_as_before_stage()
    body = {"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "lgtm", "message": "lgtm",
                                       "observedGeneration": sre_gate.generation,
                                       "lastTransitionTime": "2026-03-02T21:30:00Z"}]}}
    with pytest.raises(PolicyDenied, match="governed by approval policy example-strategy/canary/after"):
        patch("careq", GATE, body, subresource="status", actor="carol")
    assert not approved(GATE)


# Finding 4: refused at creation ---------------------------------------------------------------


@pytest.mark.parametrize("scope, target, strategy, refused_at", [
    pytest.param(Scope.CLUSTERS, "environment=canary", "tutorial", "canary", id="clusters-tutorial"),
    pytest.param(Scope.CLUSTERS, "environment=canary", "fast", "canary", id="clusters-fast"),
    pytest.param(Scope.CLUSTERS, "environment=canary", "before-canary", None, id="clusters-gate-before"),
    pytest.param(Scope.CLUSTERS, "environment=canary", "after-staging", None, id="clusters-gate-after-stage-before"),
    pytest.param(Scope.CLUSTERS, "environment=staging", "after-staging", "staging", id="first-stage-needs-before"),
    pytest.param(Scope.CLUSTERS, "environment=staging", "gated-everywhere", None, id="first-stage-gated"),
    pytest.param(Scope.CLUSTERS, "environment in (canary,staging)", "before-canary", "staging", id="set-selector"),
    pytest.param(Scope.CLUSTERS, "environment=prod", "fast", None, id="clusters-no-match"),
    pytest.param(Scope.PLACEMENT, "example-placement", "fast", "staging", id="placement-fast"),
    pytest.param(Scope.PLACEMENT, "example-placement", "after-staging", "staging", id="placement-after-staging"),
    pytest.param(Scope.PLACEMENT, "example-placement", "gated-everywhere", None, id="placement-gated"),
    pytest.param(Scope.PLACEMENT, "other-placement", "fast", None, id="another-placement"),
])
def test_a_run_whose_strategy_has_no_gate_before_protected_clusters_is_refused(people, scope, target, strategy,
                                                                               refused_at):
    the_fleet()
    protect(scope, target)
    if refused_at is None:
        assert start(strategy).name == "example-run"
        return
    with pytest.raises(RunUnprotected) as refused:
        start(strategy)
    assert f'strategy "{strategy}" has no approval gate before stage "{refused_at}"' in str(refused.value)
    assert not m.ClusterStagedUpdateRun.objects.exists()
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.object_name, denied.details["attempted"]) == ("olivia", "example-run", "create run")


def test_the_refusal_names_the_field_the_stage_and_the_policy(people):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    with pytest.raises(RunUnprotected) as refused:
        start("fast", via="web")
    assert str(refused.value) == (
        'ClusterStagedUpdateRun "example-run" is forbidden: spec.stagedRolloutStrategyName: strategy "fast" has no '
        'approval gate before stage "canary" which updates clusters protected by approval policy "canary-clusters" '
        "(environment=canary; quorum 2, group sre)")
    denied = m.Event.objects.get(action="denied")
    assert denied.message == str(refused.value) and denied.details["via"] == "web"
    assert denied.details["policy"] == 'approval policy "canary-clusters" (environment=canary; quorum 2, group sre)'


def test_fleet_apply_of_an_unprotected_run_is_refused_in_one_line_and_creates_nothing(people, fleet, manifest_file):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    run = manifest_file(json.dumps({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
        "metadata": {"name": "sneaky"}, "spec": {"placementName": "example-placement", "resourceSnapshotIndex": "1",
                                                 "stagedRolloutStrategyName": "fast"}}), "run.json")
    code, out, err = fleet("--as", "carol", "apply", "-f", run)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(
        'Error from server (Forbidden): ClusterStagedUpdateRun "sneaky" is forbidden: '
        'spec.stagedRolloutStrategyName: strategy "fast" has no approval gate before stage "canary"')
    assert not m.ClusterStagedUpdateRun.objects.exists()
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.details["via"], denied.details["attempted"]) == ("carol", "cli", "create run")


def test_the_rollout_form_shows_the_refusal_and_starts_nothing(people):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    rita = signed_in("rita", RELEASE_MANAGERS, REMOTE_ADDR="10.0.0.7")
    response = rita.post("/placements/example-placement/rollout/", {"index": "1", "strategy": "fast"})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert ('spec.stagedRolloutStrategyName: strategy "fast" has no approval gate before stage "canary" which '
            'updates clusters protected by approval policy "canary-clusters"') in page
    assert not m.ClusterStagedUpdateRun.objects.exists()
    denied = m.Event.objects.get(action="denied")
    assert (denied.actor, denied.details["via"], denied.details["client_address"]) == ("rita", "web", "10.0.0.7")


# Finding 4: re-checked at initialization ------------------------------------------------------


def test_a_run_fails_at_initialization_when_labels_changed_after_its_creation(frozen_clock, people):
    the_fleet()
    protect(Scope.CLUSTERS, "tier=critical", name="critical")
    start("fast")  # nothing is critical yet
    label_member("member1", tier="critical")
    settle()
    initialized = run_obj().condition("Initialized")
    assert (initialized["status"], initialized["reason"]) == ("False", protection.UNPROTECTED_REASON)
    assert initialized["message"] == (
        'cannot start the updateRun: strategy "fast" has no approval gate before stage "canary" which updates '
        'clusters protected by approval policy "critical" (tier=critical; quorum 2, group sre)')
    assert not run_obj().active
    assert member_values() == {}  # no cluster was updated


def test_a_run_initializes_when_its_protected_clusters_have_a_gate(frozen_clock, people):
    the_fleet()
    protect(Scope.CLUSTERS, "tier=critical", name="critical")
    start("before-canary")
    label_member("member1", tier="critical")
    settle()
    assert run_obj().condition_status("Initialized") == "True"


# Finding 4: the policies apply to the protecting gate -------------------------------------------


def waiting_at(strategy: str, gate: str) -> None:
    start(strategy)
    settle()
    advance(61)
    settle()
    assert approval_request(gate).condition("Approved") is None


def test_a_clusters_policy_governs_the_before_stage_gate_of_a_strategy_without_its_own_policy(frozen_clock, people):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    waiting_at("before-canary", "example-run-before-canary")
    with pytest.raises(PolicyDenied, match=r'only members of sre may approve this gate \(approval policy '
                                           r'"canary-clusters" \(environment=canary; quorum 2, group sre\)\)'):
        approve("example-run-before-canary", "carol")
    approve("example-run-before-canary", "alice")
    assert not approved("example-run-before-canary")
    approve("example-run-before-canary", "bob")
    assert approved("example-run-before-canary")
    settle()
    assert run_obj().condition_status("Succeeded") == "True"


def test_a_placement_policy_governs_the_after_stage_gate_before_the_protected_stage(frozen_clock, people):
    the_fleet()
    protect(Scope.PLACEMENT, "example-placement", name="placement-owners")
    start("gated-everywhere")
    settle()
    gate = "example-run-before-staging"
    with pytest.raises(PolicyDenied, match='approval policy "placement-owners" '
                                           r"\(placement example-placement; quorum 2, group sre\)"):
        approve(gate, "carol")
    approve(gate, "alice")
    approve(gate, "bob")
    assert approved(gate)


def test_the_after_stage_gate_of_the_stage_before_protects_the_next_stage(frozen_clock, people):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    waiting_at("after-staging", "example-run-staging")
    with pytest.raises(PolicyDenied, match="only members of sre"):
        approve("example-run-staging", "carol")


def test_a_gate_protecting_no_protected_cluster_keeps_no_policy(frozen_clock, people):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    start("gated-everywhere")
    settle()
    approve("example-run-before-staging", "carol")  # staging is not protected: as in KubeFleet
    assert approved("example-run-before-staging") and not m.ApprovalVote.objects.exists()


def test_a_strategy_policy_and_a_clusters_policy_on_one_gate_combine_the_strictest(frozen_clock, people):
    the_fleet(before_canary={"stages": {"canary": {"before": {"quorum": 1, "fourEyes": True}}}})
    protect(Scope.CLUSTERS, "environment=canary")
    waiting_at("before-canary", "example-run-before-canary")
    gate = "example-run-before-canary"
    with pytest.raises(PolicyDenied, match="the person who started the run may not approve it"):
        approve(gate, "olivia")  # in sre, but four-eyes comes from the strategy's policy
    with pytest.raises(PolicyDenied, match="only members of sre"):
        approve(gate, "carol")  # the strategy's policy names no group; the clusters policy does
    approve(gate, "alice")
    assert not approved(gate)  # quorum 2 from the clusters policy
    request, _ = approve(gate, "bob")
    assert request.condition("Approved")["message"] == (
        "approved by alice, bob under approval policy quorum 2, group sre, four-eyes")


def test_policies_naming_different_groups_each_need_one_of_theirs(frozen_clock, people):
    dba = Group.objects.create(name="dba")
    user_create(username="dora", role=RELEASE_MANAGERS)[0].groups.add(dba)
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary", quorum=1)
    protect(Scope.PLACEMENT, "example-placement", name="db-owners", groups=("dba",), quorum=1)
    start("gated-everywhere")
    settle()
    gate = "example-run-before-staging"  # protected by the placement policy only
    approve(gate, "dora")
    assert approved(gate)
    settle()
    gate = "example-run-before-canary"  # both: someone from sre and someone from dba
    with pytest.raises(PolicyDenied, match="only members of sre and dba may approve"):
        approve(gate, "dora")
    with pytest.raises(PolicyDenied, match="only members of sre and dba may approve"):
        approve(gate, "alice")
    assert "someone from sre and dba" in policies.progress(policies.gate_of(approval_request(gate))).text


def test_the_engine_does_not_pass_a_protected_gate_approved_by_hand(frozen_clock, people):
    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    waiting_at("before-canary", "example-run-before-canary")
    hand_approve("example-run-before-canary")
    settle()
    assert approval_request("example-run-before-canary").condition("ApprovalAccepted") is None
    assert set(member_values()) == {"member2"}  # staging only: canary did not start


def test_the_engines_policy_check_costs_two_queries_with_clusters_policies_too(frozen_clock, people):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    from rollouts.controllers.family import CLUSTER
    from rollouts.engine import runner

    the_fleet()
    protect(Scope.CLUSTERS, "environment=canary")
    protect(Scope.CLUSTERS, "order=2", name="second")
    waiting_at("before-canary", "example-run-before-canary")
    approve("example-run-before-canary", "alice")
    pk = run_obj().pk

    def queries() -> int:
        with CaptureQueriesContext(db) as ctx:
            runner.run_advance(family=CLUSTER, pk=pk)
        return len(ctx.captured_queries)

    waiting = queries()
    hand_approve("example-run-before-canary")
    assert queries() == waiting + 2  # the policies in scope of the run, then the gate's votes


# The admin ---------------------------------------------------------------------------------


def test_an_admin_makes_a_clusters_policy_and_each_scope_names_only_its_target(admin_client, people):
    add = reverse("admin:rollouts_approvalpolicy_add")
    form = {"scope": "clusters", "name": "prod-clusters", "cluster_selector": "environment=prod",
            "strategy_kind": "ClusterStagedUpdateStrategy", "groups": '["sre"]', "quorum": "2"}
    assert admin_client.post(add, form).status_code == 302
    policy = m.ApprovalPolicy.objects.get()
    assert (policy.scope, policy.cluster_selector, policy.source) == ("clusters", "environment=prod", "admin")
    event = m.Event.objects.get(object_kind="ApprovalPolicy")
    assert (event.object_name, event.details["policy"]["target"]) == ("prod-clusters", "environment=prod")
    page = admin_client.post(add, {**form, "cluster_selector": "environment in (", "stage": "prod"}).content.decode()
    assert "Not a label selector" in page and "Leave empty for a policy on" in page
    page = admin_client.post(add, {**form, "scope": "placement", "cluster_selector": ""}).content.decode()
    assert "Required for a policy on every run of a placement" in page
    assert m.ApprovalPolicy.objects.count() == 1


# Mirrored hubs ---------------------------------------------------------------------------------


def test_votes_on_a_mirrored_gate_must_meet_the_clusters_policy_it_protects(people, fake, hub):
    from rollouts.mirror import hub_sync
    from tests.fake_kube import fleet_object, tutorial_approval_request, tutorial_hub

    tutorial_hub(fake)
    stages = [{"name": "staging", "labelSelector": {"matchLabels": {"environment": "staging"}}},
              {"name": "canary", "labelSelector": {"matchLabels": {"environment": "canary"}},
               "sortingLabelKey": "order", "beforeStageTasks": [APPROVAL]}]
    fake.put(fleet_object("ClusterStagedUpdateStrategy", "example-strategy", spec={"stages": stages}))
    request = tutorial_approval_request()
    request["metadata"]["name"] = "example-run-before-canary"
    fake.put(request)
    hub_sync(connection_id=hub.pk, seconds=0.5)
    protect(Scope.CLUSTERS, "environment=canary")
    with pytest.raises(PolicyDenied, match='only members of sre may approve this gate .*"canary-clusters"'):
        approve("example-run-before-canary", "carol")
    approve("example-run-before-canary", "alice")
    assert not fake.requests_to("PATCH")  # 1 of 2: nothing is sent to the hub yet


def test_fleet_policies_lists_every_policy_with_what_it_protects(people, fleet):
    m.ApprovalPolicy.objects.create(strategy_name="example-strategy", stage="canary", gate="after", quorum=2,
                                    groups=["sre"], source="annotation")
    protect(Scope.CLUSTERS, "environment=prod", name="prod-clusters", four_eyes=True)
    protect(Scope.PLACEMENT, "example-placement", name="placement-owners", groups=(), quorum=1)
    code, out, err = fleet("policies")
    assert (code, err) == (0, "")
    lines = [line.split() for line in out.splitlines()]
    assert lines == [
        ["SCOPE", "NAME", "PROTECTS", "GROUPS", "QUORUM", "FOUR-EYES", "SOURCE"],
        ["clusters", "prod-clusters", "environment=prod", "sre", "2", "yes", "admin"],
        ["gate", "-", "example-strategy/canary/after", "sre", "2", "no", "annotation"],
        ["placement", "placement-owners", "placement", "example-placement", "-", "1", "no", "admin"],
    ]
