"""Matrix tests of the pure state machine: no database, no clock, no engine.

Each case builds a World by hand (the tutorial's three members unless said
otherwise), calls decide() and checks the decision."""

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from rollouts.clock import rfc3339
from rollouts.controllers import labels as L
from rollouts.engine.stages import max_concurrency
from rollouts.engine.state_machine import decide
from rollouts.engine.world import (
    AcceptApproval,
    ApprovalView,
    BindBinding,
    BindingView,
    CreateApprovalRequest,
    PolicySnapshotView,
    ResourceSnapshotView,
    World,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MEMBERS = {
    "member1": {"environment": "canary", "order": "2"},
    "member2": {"environment": "staging"},
    "member3": {"environment": "canary", "order": "1"},
}
STRATEGY = {
    "stages": [
        {"name": "staging", "labelSelector": {"matchLabels": {"environment": "staging"}},
         "afterStageTasks": [{"type": "TimedWait", "waitTime": "1m"}]},
        {"name": "canary", "labelSelector": {"matchLabels": {"environment": "canary"}}, "sortingLabelKey": "order",
         "afterStageTasks": [{"type": "Approval"}]},
    ]
}
SCHEDULED = ({"type": "Scheduled", "status": "True", "observedGeneration": 1, "reason": "SchedulingPolicyFulfilled"},)


def binding(cluster, *, state="Scheduled", snapshot="", conditions=(), generation=1, policy="example-placement-0"):
    return BindingView(
        name=f"example-placement-{cluster}", cluster=cluster, state=state, policy_snapshot=policy,
        resource_snapshot=snapshot, apply_strategy=None, cluster_resource_override_snapshots=None,
        resource_override_snapshots=None, generation=generation, conditions=tuple(conditions),
    )


def world(**overrides) -> World:
    base = World(
        run_name="example-run",
        namespace="",
        generation=1,
        spec={"placementName": "example-placement", "resourceSnapshotIndex": "1",
              "stagedRolloutStrategyName": "example-strategy"},
        status={},
        now=NOW,
        placement={"name": "example-placement", "spec": {"strategy": {"type": "External"}}},
        policy_snapshots=[PolicySnapshotView("example-placement-0", {L.IS_LATEST: "true", L.POLICY_INDEX: "0"}, {}, 1, SCHEDULED)],
        bindings=[binding(c) for c in MEMBERS],
        member_labels=copy.deepcopy(MEMBERS),
        strategy=copy.deepcopy(STRATEGY),
        resource_snapshots=[
            ResourceSnapshotView("example-placement-0-snapshot", {L.RESOURCE_INDEX: "0", L.IS_LATEST: "false"}, {L.RESOURCE_HASH: "a"}),
            ResourceSnapshotView("example-placement-1-snapshot", {L.RESOURCE_INDEX: "1", L.IS_LATEST: "true"}, {L.RESOURCE_HASH: "b"}),
        ],
    )
    return replace(base, **overrides)


def cond(status, type):
    return next((c for c in status.get("conditions") or [] if c["type"] == type), None)


def reason(status, type):
    found = cond(status, type)
    return (found["status"], found["reason"]) if found else None


# Effective maxConcurrency (§4.8, TestCalculateMaxConcurrencyValue) ----------------


@pytest.mark.parametrize(
    "value,clusters,expected",
    [
        pytest.param("50%", 10, 5, id="half-of-ten-is-five"),
        pytest.param("33%", 10, 3, id="a-third-of-ten-rounds-down-to-three"),
        pytest.param("25%", 7, 1, id="a-quarter-of-seven-is-one"),
        pytest.param("10%", 1, 1, id="ten-percent-of-one-is-at-least-one"),
        pytest.param("100%", 10, 10, id="all-of-ten"),
        pytest.param(15, 10, 15, id="an-integer-may-exceed-the-cluster-count"),
        pytest.param("70%", 3, 2, id="seventy-percent-of-three-is-two"),
        pytest.param(None, 3, 1, id="absent-defaults-to-one"),
    ],
)
def test_max_concurrency_follows_kubefleet(value, clusters, expected):
    assert max_concurrency(value, clusters) == expected


# Initialization failures (§4.3, §4.4, §4.5) ----------------------------------------


def _without_strategy_stage_label(w):
    w.member_labels["member1"].pop("order")
    return w


INIT_FAILURES = [
    pytest.param(dict(placement=None), "parent placement not found", id="placement-not-found"),
    pytest.param(dict(placement={"name": "example-placement", "spec": {}}),
                 "does not have an external rollout strategy, current strategy: RollingUpdate", id="placement-not-external"),
    pytest.param(dict(policy_snapshots=[]), "no latest policy snapshot found", id="no-latest-policy-snapshot"),
    pytest.param(dict(policy_snapshots=[PolicySnapshotView("p-0", {L.IS_LATEST: "true", L.POLICY_INDEX: "0"}, {}, 1, SCHEDULED)] * 2),
                 "multiple active policy snapshots found", id="two-latest-policy-snapshots"),
    pytest.param(dict(policy_snapshots=[PolicySnapshotView("p-0", {L.IS_LATEST: "true"}, {}, 1, SCHEDULED)]),
                 "does not have a policy index label", id="policy-snapshot-without-index"),
    pytest.param(dict(policy_snapshots=[PolicySnapshotView("example-placement-0", {L.IS_LATEST: "true", L.POLICY_INDEX: "0"}, {}, 2, SCHEDULED)]),
                 "not fully scheduled yet", id="policy-snapshot-not-scheduled-for-its-generation"),
    pytest.param(dict(bindings=[]), "no scheduled or to-be-deleted bindings found", id="no-bindings"),
    pytest.param(dict(strategy=None), "referenced updateStrategy not found", id="strategy-not-found"),
    pytest.param(dict(spec={"placementName": "example-placement", "resourceSnapshotIndex": "x", "stagedRolloutStrategyName": "s"}),
                 "invalid resource snapshot index `x` provided, expected an integer >= 0", id="index-not-an-integer"),
    pytest.param(dict(spec={"placementName": "example-placement", "resourceSnapshotIndex": "7", "stagedRolloutStrategyName": "s"}),
                 "no resourceSnapshots with index `7` found for placement `/example-placement`", id="index-not-found"),
    pytest.param(dict(spec={"placementName": "example-placement", "resourceSnapshotIndex": "01", "stagedRolloutStrategyName": "s"}),
                 "no resourceSnapshots with index `01` found", id="index-matched-verbatim"),
    pytest.param(dict(member_labels={**MEMBERS, "member1": {"environment": "canary"}}),
                 "the sorting label `order:` on cluster `member1` is not valid", id="sorting-label-missing"),
    pytest.param(dict(member_labels={**MEMBERS, "member1": {"environment": "canary", "order": " 2"}}),
                 "the sorting label `order: 2` on cluster `member1` is not valid", id="sorting-label-not-an-integer"),
    pytest.param(dict(member_labels={**MEMBERS, "member2": {"environment": "elsewhere"}}),
                 "some clusters are not placed in any stage, total 1, showing up to 10: member2", id="cluster-in-no-stage"),
    pytest.param(dict(strategy={"stages": STRATEGY["stages"] + [{"name": "all", "labelSelector": {}}]}),
                 "appears in more than one stages", id="cluster-in-two-stages"),
    pytest.param(dict(strategy={"stages": [{"name": "s", "labelSelector": {},
                                            "afterStageTasks": [{"type": "Approval"}, {"type": "Approval"}]}]}),
                 "afterStageTasks cannot have two tasks of the same type", id="two-after-tasks-of-one-type"),
    pytest.param(dict(strategy={"stages": [{"name": "s", "labelSelector": {},
                                            "afterStageTasks": [{"type": "TimedWait", "waitTime": "0s"}]}]}),
                 "has wait duration <= 0", id="timed-wait-of-zero"),
    pytest.param(dict(strategy={"stages": [{"name": "s", "labelSelector": {},
                                            "beforeStageTasks": [{"type": "TimedWait", "waitTime": "1m"}]}]}),
                 "the before stage tasks are invalid", id="before-stage-timed-wait"),
    pytest.param(dict(strategy={"stages": [{"name": "s", "labelSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}]}),
                 "the stage label selector is invalid", id="malformed-selector"),
]


@pytest.mark.parametrize("overrides,fragment", INIT_FAILURES)
def test_initialization_failure_is_terminal_with_its_message(overrides, fragment):
    decision = decide(world(**overrides))
    init = cond(decision.status, "Initialized")
    assert (init["status"], init["reason"]) == ("False", "UpdateRunInitializedFailed")
    assert init["message"].startswith("cannot continue the updateRun: failed to validate the updateRun: ")
    assert fragment in init["message"]
    assert decision.actions == []
    assert decide(replace(world(**overrides), status=decision.status)).status == decision.status


def test_a_binding_on_an_old_policy_snapshot_is_retried_without_a_condition():
    decision = decide(world(bindings=[binding("member1", policy="example-placement-9")] + [binding(c) for c in ("member2", "member3")]))
    assert decision.retry_error and "has not been scheduled to the latest policy snapshot" in decision.retry_error
    assert cond(decision.status, "Initialized") is None


def test_initialization_records_the_plan_and_starts_the_first_cluster():
    decision = decide(world())
    status = decision.status
    assert reason(status, "Initialized") == ("True", "UpdateRunInitializedSuccessfully")
    assert status["policySnapshotIndexUsed"] == "0" and status["policyObservedClusterCount"] == 3
    assert status["resourceSnapshotIndexUsed"] == "1"
    assert [[c["clusterName"] for c in s["clusters"]] for s in status["stagesStatus"]] == [["member2"], ["member3", "member1"]]
    assert status["stagesStatus"][1]["afterStageTaskStatus"] == [{"type": "Approval", "approvalRequestName": "example-run-canary"}]
    assert status["deletionStageStatus"] == {"stageName": L.DELETE_STAGE_NAME, "clusters": []}
    assert [type(a) for a in decision.actions] == [BindBinding]
    assert decision.actions[0].spec["resourceSnapshotName"] == "example-placement-1-snapshot"


def test_initialize_state_computes_the_plan_and_waits():
    decision = decide(world(spec={**world().spec, "state": "Initialize"}))
    assert [c["type"] for c in decision.status["conditions"]] == ["Initialized"]
    assert decision.actions == [] and decision.requeue_after is None


# The cluster pass: binding results (§4.8 step 7) ---------------------------------------


def _started_world(binding_conditions, generation=2):
    first = decide(world())
    bound = binding("member2", state="Bound", snapshot="example-placement-1-snapshot", generation=generation,
                    conditions=binding_conditions)
    bound = replace(bound, apply_strategy=first.status["appliedStrategy"], cluster_resource_override_snapshots=[],
                    resource_override_snapshots=[])
    return replace(world(), status=first.status, bindings=[bound, binding("member1"), binding("member3")],
                   now=NOW + timedelta(seconds=5))


def _c(type, status, reason="R", generation=2):
    return {"type": type, "status": status, "reason": reason, "observedGeneration": generation}


ROLLOUT = _c("RolloutStarted", "True", "RolloutStarted")


@pytest.mark.parametrize(
    "conditions,outcome",
    [
        pytest.param([ROLLOUT, _c("Available", "True")], "succeeded", id="available-means-succeeded"),
        pytest.param([ROLLOUT, _c("DiffReported", "True")], "succeeded", id="diff-reported-means-succeeded"),
        pytest.param([ROLLOUT, _c("Applied", "False", "ApplyPending")], "in-progress", id="apply-pending-is-in-progress"),
        pytest.param([ROLLOUT, _c("Available", "False", "ResourceNotAvailableYet")], "in-progress", id="not-available-yet-is-in-progress"),
        pytest.param([ROLLOUT, _c("Available", "True", generation=1)], "in-progress", id="a-stale-available-does-not-count"),
        pytest.param([ROLLOUT, _c("Applied", "False", "ApplyFailed")], "retry", id="a-failed-apply-is-retried-not-failed"),
        pytest.param([ROLLOUT, _c("WorkSynchronized", "False", "SyncFailed")], "retry", id="a-sync-failure-is-retried"),
        pytest.param([_c("Available", "True")], "preempted", id="rollout-started-missing-means-preempted"),
    ],
)
def test_an_updating_clusters_binding_decides_its_fate(conditions, outcome):
    decision = decide(_started_world(conditions))
    member2 = decision.status["stagesStatus"][0]["clusters"][0]
    succeeded = cond(member2, "Succeeded")
    if outcome == "succeeded":
        assert (succeeded["status"], succeeded["reason"]) == ("True", "ClusterUpdatingSucceeded")
    elif outcome == "in-progress":
        assert succeeded is None and decision.retry_error is None and decision.requeue_after == 15
    elif outcome == "retry":
        assert succeeded is None and "has failed" in decision.retry_error
        assert cond(decision.status, "Succeeded") is None
    else:
        assert (succeeded["status"], succeeded["reason"]) == ("False", "ClusterUpdatingFailed")
        assert reason(decision.status, "Succeeded") == ("False", "UpdateRunFailed")
        assert reason(decision.status["stagesStatus"][0], "Succeeded") == ("False", "StageUpdatingFailed")


def test_a_cluster_stuck_for_more_than_five_minutes_marks_the_run_stuck():
    w = _started_world([ROLLOUT, _c("Applied", "False", "ApplyPending")])
    decision = decide(replace(w, now=NOW + timedelta(minutes=5, seconds=2)))
    assert reason(decision.status, "Progressing") == ("False", "UpdateRunStuck")
    assert "member2" in cond(decision.status, "Progressing")["message"]


# Approval tasks (§4.9) ---------------------------------------------------------------


def _waiting_for_approval(request: ApprovalView | None):
    """A run whose canary clusters are done and whose approval is pending."""
    status = decide(world()).status
    for stage in status["stagesStatus"]:
        stage["conditions"] = [_c("Progressing", "False", "StageUpdatingWaiting", 1)]
        for cluster in stage["clusters"]:
            cluster["conditions"] = [_c("Started", "True", "ClusterUpdatingStarted", 1), _c("Succeeded", "True", "ClusterUpdatingSucceeded", 1)]
    staging = status["stagesStatus"][0]
    staging["conditions"] = [_c("Progressing", "False", "StageUpdatingSucceeded", 1), _c("Succeeded", "True", "StageUpdatingSucceeded", 1)]
    staging["afterStageTaskStatus"][0]["conditions"] = [_c("WaitTimeElapsed", "True", "AfterStageTaskWaitTimeElapsed", 1)]
    strategy = status["appliedStrategy"]
    bound = [replace(binding(c, state="Bound", snapshot="example-placement-1-snapshot", conditions=[ROLLOUT, _c("Available", "True")]),
                     apply_strategy=strategy, cluster_resource_override_snapshots=[], resource_override_snapshots=[])
             for c in MEMBERS]
    approvals = {request.name: request} if request else {}
    return replace(world(), status=status, bindings=bound, approvals=approvals)


def _request(*conditions, stage="canary", run="example-run"):
    return ApprovalView("example-run-canary", run, stage, 1, tuple(conditions))


@pytest.mark.parametrize(
    "request_view,expected_actions,approved",
    [
        pytest.param(None, [CreateApprovalRequest("example-run-canary", "canary", "afterStage")], False, id="absent-request-is-created"),
        pytest.param(_request(), [], False, id="unapproved-request-waits"),
        pytest.param(_request(_c("Approved", "False", generation=1)), [], False, id="declined-request-just-waits"),
        pytest.param(_request(_c("Approved", "True", generation=1)), [AcceptApproval("example-run-canary")], True, id="approval-is-accepted"),
        pytest.param(_request(_c("Approved", "True", generation=2)), [], False, id="approval-for-another-generation-waits"),
        pytest.param(_request(_c("Approved", "True", generation=1), _c("ApprovalAccepted", "True", generation=1)), [], True,
                     id="accepted-approval-is-not-accepted-twice"),
        pytest.param(_request(_c("Approved", "False", generation=1), _c("ApprovalAccepted", "True", generation=1)), [], True,
                     id="unapproving-after-acceptance-keeps-it-approved"),
    ],
)
def test_an_approval_task_follows_its_request(request_view, expected_actions, approved):
    decision = decide(_waiting_for_approval(request_view))
    canary = decision.status["stagesStatus"][1]
    task = canary["afterStageTaskStatus"][0]
    assert decision.actions == expected_actions
    assert reason(task, "ApprovalRequestCreated") == ("True", "AfterStageTaskApprovalRequestCreated")
    if approved:
        assert reason(task, "ApprovalRequestApproved") == ("True", "AfterStageTaskApprovalRequestApproved")
        assert reason(canary, "Succeeded") == ("True", "StageUpdatingSucceeded")
        assert decision.requeue_after == 0  # the deletion stage comes next, at once
    else:
        assert cond(task, "ApprovalRequestApproved") is None
        assert reason(decision.status, "Progressing") == ("False", "UpdateRunWaiting")
        assert decision.requeue_after == 60


def test_a_request_for_another_stage_aborts_the_run():
    decision = decide(_waiting_for_approval(_request(stage="staging")))
    assert reason(decision.status, "Succeeded") == ("False", "UpdateRunFailed")


# spec.state dispatch and idempotence ------------------------------------------------------


@pytest.mark.parametrize(
    "state,run_progressing",
    [
        pytest.param(None, ("True", "UpdateRunProgressing"), id="no-state-runs-as-in-the-tutorial"),
        pytest.param("Run", ("True", "UpdateRunProgressing"), id="run-executes"),
        pytest.param("Initialize", None, id="initialize-waits"),
        pytest.param("Stop", ("False", "UpdateRunStopped"), id="stop-created-directly-is-stopped"),
    ],
)
def test_spec_state_decides_what_follows_initialization(state, run_progressing):
    spec = {**world().spec, **({"state": state} if state else {})}
    decision = decide(world(spec=spec))
    assert reason(decision.status, "Progressing") == run_progressing
    if state == "Stop":
        assert reason(decision.status["stagesStatus"][0], "Progressing") == ("False", "StageUpdatingStopped")


@pytest.mark.parametrize("case", ["initialize", "waiting-for-approval", "in-flight"])
def test_deciding_again_on_the_new_status_changes_nothing(case):
    # The actions' effects are not in the world here, so cases are ones without actions.
    w = {"initialize": world(spec={**world().spec, "state": "Initialize"}), "waiting-for-approval": _waiting_for_approval(_request()),
         "in-flight": _started_world([ROLLOUT, _c("Applied", "False", "ApplyPending")])}[case]
    first = decide(w)
    second = decide(replace(w, status=first.status))
    assert second.status == first.status


def test_the_timed_wait_ends_exactly_at_its_time():
    w = _waiting_for_approval(_request())
    staging = w.status["stagesStatus"][0]
    staging["conditions"] = [_c("Progressing", "False", "StageUpdatingWaiting", 1) | {"lastTransitionTime": rfc3339(NOW)}]
    staging["afterStageTaskStatus"][0]["conditions"] = []
    w.status["stagesStatus"][1]["conditions"] = []
    for cluster in w.status["stagesStatus"][1]["clusters"]:
        cluster["conditions"] = []
    early = decide(replace(w, now=NOW + timedelta(seconds=59)))
    assert cond(early.status["stagesStatus"][0]["afterStageTaskStatus"][0], "WaitTimeElapsed") is None
    assert early.requeue_after == 1
    on_time = decide(replace(w, now=NOW + timedelta(seconds=60)))
    assert reason(on_time.status["stagesStatus"][0]["afterStageTaskStatus"][0], "WaitTimeElapsed") == ("True", "AfterStageTaskWaitTimeElapsed")
    assert reason(on_time.status["stagesStatus"][0], "Succeeded") == ("True", "StageUpdatingSucceeded")
