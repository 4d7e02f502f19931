"""Staged update runs end to end, in one process: YAML in through the same
services a person uses, engine_tick() under a frozen clock, and assertions on
what the hub stores (run status, approval requests, bindings, placement
status, Event rows) and what each simulated member holds (MemberObject).

The behaviour is staged-update-semantics.md §4–§6 with Fleet UI's choices of
compatibility.md: a run without spec.state executes on creation; after-stage
approval requests are `<run>-<stage>` with the legacy `AfterStageTask…`
reasons; before-stage requests are `<run>-before-<stage>` with the current
`StageTask…` reasons; an empty resourceSnapshotIndex means the latest snapshot.

Personas: Olivia the operator applies fleets, strategies and runs; Alice the
approver approves stage gates (fleet_builders.OPERATOR / APPROVER).

Ticks: one engine_tick() syncs members, advances every active run, and syncs
members again. With FLEET_SIMULATED_APPLY_SECONDS=0 a cluster bound in one
tick is seen finished on the next one.
"""

from datetime import UTC, datetime

import pytest

from rollouts import clock
from rollouts import models as m
from rollouts.controllers import labels as L
from rollouts.controllers.family import CLUSTER
from rollouts.engine.loop import engine_tick
from rollouts.engine.runner import run_advance
from tests.fleet_builders import (
    APPROVAL,
    APPROVER,
    SIMULATE_FAILURE,
    add_members,
    advance,
    after_task,
    apply,
    approval_labels,
    approval_request,
    approval_requests,
    approve,
    before_task,
    bindings,
    cluster_conditions,
    cluster_events,
    cond,
    condition,
    conditions,
    delete,
    deletion_status,
    label_member,
    member,
    member_object_clusters,
    member_values,
    move_to,
    patch,
    placement,
    placement_obj,
    run,
    run_conditions,
    run_obj,
    set_state,
    settle,
    since,
    stage,
    stage_clusters,
    stage_conditions,
    stage_status,
    staged_fleet,
    started,
    status,
    strategy,
    succeeded,
    tick,
    timed_wait,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
    unapprove,
    workload,
)

pytestmark = pytest.mark.django_db

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)

INIT_FAILED = ("False", "UpdateRunInitializedFailed")
INITIALIZED = ("True", "UpdateRunInitializedSuccessfully")
RUN_SUCCEEDED = {
    "Initialized": INITIALIZED,
    "Progressing": ("False", "UpdateRunSucceeded"),
    "Succeeded": ("True", "UpdateRunSucceeded"),
}
RUN_FAILED = {
    "Initialized": INITIALIZED,
    "Progressing": ("False", "UpdateRunFailed"),
    "Succeeded": ("False", "UpdateRunFailed"),
}
STAGE_SUCCEEDED = {
    "Progressing": ("False", "StageUpdatingSucceeded"),
    "Succeeded": ("True", "StageUpdatingSucceeded"),
}
STAGE_SKIPPED = {
    "Progressing": ("False", "StageUpdatingSkippedNoClusters"),
    "Succeeded": ("True", "StageUpdatingSkippedNoClusters"),
}
CLUSTER_DONE = {"Started": ("True", "ClusterUpdatingStarted"), "Succeeded": ("True", "ClusterUpdatingSucceeded")}
CLUSTER_STARTED = {"Started": ("True", "ClusterUpdatingStarted")}
WAITING = ("False", "StageUpdatingWaiting")
RUN_WAITING = ("False", "UpdateRunWaiting")
PROGRESSING = ("True", "UpdateRunProgressing")
CLIENT_ERROR = ("cannot continue the updateRun: failed to validate the updateRun: "
                "failed to process the request due to a client error: ")


@pytest.fixture(autouse=True)
def frozen_clock():
    """Every scenario starts at 2026-01-01T00:00:00Z; time moves only when a test moves it."""
    with clock.frozen(NEW_YEAR):
        yield


@pytest.fixture
def tutorial():
    """seed-tutorial.md sections 1–4: three members, snapshots 0 (value1) and 1 (value2), the strategy."""
    tutorial_fleet()
    tutorial_strategy()


@pytest.fixture
def slow_members(settings):
    """Simulated members take 10 s to apply a snapshot, so clusters stay in flight."""
    settings.FLEET_SIMULATED_APPLY_SECONDS = 10
    return 10


def init_message(name: str = "example-run") -> str:
    return condition(status(name), "Initialized")["message"]


def succeeded_message(name: str = "example-run") -> str:
    return condition(status(name), "Succeeded")["message"]


def assert_init_failed(fragment: str, name: str = "example-run") -> None:
    assert run_conditions(name) == {"Initialized": INIT_FAILED}
    assert fragment in init_message(name)
    assert not run_obj(name).active
    assert all(state == "Scheduled" for state, _ in bindings().values())
    assert approval_requests() == []
    assert m.MemberObject.objects.count() == 0


def waiting_since(run_name: str, stage_name: str) -> str:
    """When the stage's clusters finished: its Progressing condition's lastTransitionTime."""
    return condition(stage_status(run_name, stage_name), "Progressing")["lastTransitionTime"]


# Initialization failures (§4.3) ------------------------------------------------


def test_a_run_for_a_placement_that_does_not_exist_fails_to_initialize(tutorial):
    run(placement_name="no-such-placement")
    settle()
    assert_init_failed(CLIENT_ERROR + "parent placement not found")


def test_a_run_for_a_placement_that_is_not_external_fails_to_initialize():
    add_members(member("member1", stage="prod"))
    workload("value1")
    placement("rolling", strategy_type="RollingUpdate")
    strategy("example-strategy", stage("prod"))
    run(placement_name="rolling", index="0")
    settle()
    assert run_conditions() == {"Initialized": INIT_FAILED}
    assert init_message() == (CLIENT_ERROR + "parent placement does not have an external rollout strategy, "
                              "current strategy: RollingUpdate")


def test_a_run_for_a_placement_without_a_latest_policy_snapshot_fails_to_initialize(tutorial):
    # No service lets a person remove the latest policy snapshot (every write
    # reconciles the placement and the scheduler makes a new latest one), so
    # the label is flipped in the database after the run is applied.
    tutorial_run()
    m.ClusterSchedulingPolicySnapshot.objects.filter(name="example-placement-0").update(
        labels={L.IS_LATEST: "false", L.PARENT_CRP: "example-placement", L.POLICY_INDEX: "0"})
    assert [p.labels[L.IS_LATEST] for p in m.ClusterSchedulingPolicySnapshot.objects.all()] == ["false"]
    tick()
    assert_init_failed("no latest policy snapshot found")


def test_a_run_naming_a_strategy_that_does_not_exist_fails_and_keeps_what_it_computed(tutorial):
    run(strategy_name="no-such-strategy")
    settle()
    assert_init_failed(CLIENT_ERROR + "referenced updateStrategy not found")
    recorded = status()
    assert recorded["policySnapshotIndexUsed"] == "0"
    assert recorded["policyObservedClusterCount"] == 3
    assert "stagesStatus" not in recorded


def test_a_run_with_a_resource_snapshot_index_that_is_not_a_number_fails_to_initialize(tutorial):
    run(index="x")
    settle()
    assert_init_failed(CLIENT_ERROR + "invalid resource snapshot index `x` provided, expected an integer >= 0")


def test_a_run_with_a_resource_snapshot_index_that_does_not_exist_fails_to_initialize(tutorial):
    run(index="7")
    settle()
    assert_init_failed(CLIENT_ERROR + "no resourceSnapshots with index `7` found for placement `/example-placement`")


def test_a_run_fails_to_initialize_when_a_cluster_lacks_the_sorting_label():
    staged_fleet({"prod": ["member1", "member2"]}, labels={"member1": {"order": "1"}})
    strategy("example-strategy", stage("prod", sort="order"))
    run()
    settle()
    assert_init_failed(CLIENT_ERROR + "the sorting label `order:` on cluster `member2` is not valid")


def test_a_run_fails_to_initialize_when_a_sorting_label_is_not_an_integer():
    staged_fleet({"prod": ["member1", "member2"]}, labels={"member1": {"order": "1"}, "member2": {"order": "first"}})
    strategy("example-strategy", stage("prod", sort="order"))
    run()
    settle()
    assert_init_failed(CLIENT_ERROR + "the sorting label `order:first` on cluster `member2` is not valid")


def test_a_run_fails_to_initialize_when_a_cluster_is_selected_by_two_stages():
    staged_fleet({"canary": ["member1"], "prod": ["member2"]})
    strategy("example-strategy", stage("canary"), stage("everyone", selector={}))
    run()
    settle()
    assert_init_failed(CLIENT_ERROR + "cluster `member1` appears in more than one stages")


def test_a_run_fails_to_initialize_when_a_scheduled_cluster_is_in_no_stage():
    staged_fleet({"canary": ["member1"], "prod": ["member2"], "other": ["member9"]})
    strategy("example-strategy", stage("canary"), stage("prod"))
    run()
    settle()
    assert_init_failed("some clusters are not placed in any stage, total 1, showing up to 10: member9")
    assert init_message() == CLIENT_ERROR + "some clusters are not placed in any stage, total 1, showing up to 10: member9"


def test_a_run_fails_to_initialize_when_a_stage_has_two_after_tasks_of_the_same_type():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL, APPROVAL]))
    run()
    settle()
    assert_init_failed("afterStageTasks cannot have two tasks of the same type")
    assert init_message().startswith(CLIENT_ERROR + "the after stage tasks are invalid")


def test_a_run_fails_to_initialize_when_a_timed_wait_is_zero_seconds():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[timed_wait("0s")]))
    run()
    settle()
    assert_init_failed("has wait duration <= 0")
    assert init_message().startswith(CLIENT_ERROR + "the after stage tasks are invalid")


def test_a_run_that_failed_to_initialize_ignores_later_state_changes(tutorial):
    run(strategy_name="no-such-strategy")
    settle()
    set_state("example-run", "Stop")
    settle()
    assert run_conditions() == {"Initialized": INIT_FAILED}


# Starting, ordering and stages (§4.4, §4.8) --------------------------------------------


def test_a_run_without_state_executes_on_creation_and_succeeds():
    staged_fleet({"prod": ["member1", "member2"]})
    strategy("example-strategy", stage("prod"))
    run()
    tick()
    assert run_conditions() == {"Initialized": INITIALIZED, "Progressing": PROGRESSING}
    assert started("example-run", "prod") == ["member1"]
    settle()
    assert run_conditions() == RUN_SUCCEEDED
    assert stage_conditions("example-run", "prod") == STAGE_SUCCEEDED
    assert conditions(deletion_status()) == STAGE_SUCCEEDED
    assert deletion_status()["stageName"] == "kubernetes-fleet.io/deleteStage"
    assert member_values() == {"member1": "value2", "member2": "value2"}
    assert status()["resourceSnapshotIndexUsed"] == "1"
    binding = m.ClusterResourceBinding.objects.get(target_cluster="member1")
    assert binding.spec["state"] == "Bound"
    assert binding.spec["resourceSnapshotName"] == "example-placement-1-snapshot"
    assert binding.spec["applyStrategy"] == status()["appliedStrategy"]
    rollout = condition(binding.status, "RolloutStarted")
    assert (rollout["status"], rollout["reason"]) == ("True", "RolloutStarted")
    assert "example-run" in rollout["message"] and "1" in rollout["message"]


def test_an_empty_resource_snapshot_index_rolls_out_the_latest_snapshot():
    staged_fleet({"prod": ["member1"]})
    workload("value3")  # snapshot 2 is now the latest
    strategy("example-strategy", stage("prod"))
    run(index="")
    settle()
    assert run_conditions() == RUN_SUCCEEDED
    assert status()["resourceSnapshotIndexUsed"] == "2"
    assert member_values() == {"member1": "value3"}


def test_clusters_are_ordered_by_the_sorting_label_with_ties_broken_by_name():
    # Integer order (Go's Atoi: "007" is 7), not string order ("007" < "1" < "10").
    staged_fleet({"prod": ["delta", "alpha", "charlie", "bravo"]},
                 labels={"delta": {"order": "1"}, "alpha": {"order": "10"}, "charlie": {"order": "007"},
                         "bravo": {"order": "1"}})
    strategy("example-strategy", stage("prod", sort="order"))
    run()
    tick()
    assert stage_clusters("example-run", "prod") == ["bravo", "delta", "charlie", "alpha"]
    assert started("example-run", "prod") == ["bravo"]


def test_without_a_sorting_key_clusters_are_ordered_byte_wise_by_name():
    staged_fleet({"prod": ["cluster-2", "cluster-10", "cluster-3", "cluster-1"]})
    strategy("example-strategy", stage("prod"))
    run()
    tick()
    assert stage_clusters("example-run", "prod") == ["cluster-1", "cluster-10", "cluster-2", "cluster-3"]
    tick()
    assert started("example-run", "prod") == ["cluster-1", "cluster-10"]


def test_a_member_that_matches_a_stage_but_is_not_scheduled_is_not_in_the_stage():
    affinity = {"placementType": "PickAll", "affinity": {"clusterAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"clusterSelectorTerms": [
            {"labelSelector": {"matchLabels": {"region": "east"}}}]}}}}
    staged_fleet({"prod": ["member1", "member9"]}, policy=affinity,
                 labels={"member1": {"region": "east"}, "member9": {"region": "west"}})
    strategy("example-strategy", stage("prod"))
    run()
    settle()
    assert stage_clusters("example-run", "prod") == ["member1"]
    assert run_conditions() == RUN_SUCCEEDED
    assert member_values() == {"member1": "value2"}


def test_an_empty_stage_is_skipped_without_running_its_tasks():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy",
             stage("canary", before=[APPROVAL], after=[timed_wait("1h"), APPROVAL]),
             stage("prod"))
    run()
    tick()
    canary = stage_status("example-run", "canary")
    assert conditions(canary) == STAGE_SKIPPED
    assert canary["startTime"] == canary["endTime"] == "2026-01-01T00:00:00Z"
    assert canary["clusters"] == []
    assert [t.get("conditions") for t in canary["beforeStageTaskStatus"] + canary["afterStageTaskStatus"]] == [
        None, None, None]
    assert canary["beforeStageTaskStatus"][0]["approvalRequestName"] == "example-run-before-canary"
    assert canary["afterStageTaskStatus"][1]["approvalRequestName"] == "example-run-canary"
    settle()
    assert run_conditions() == RUN_SUCCEEDED
    assert approval_requests() == []
    assert stage_conditions("example-run", "canary") == STAGE_SKIPPED


# maxConcurrency (§4.8) ----------------------------------------------------------


def test_max_concurrency_of_70_percent_over_three_clusters_updates_two_at_once():
    staged_fleet({"prod": ["member1", "member2", "member3"]})
    strategy("example-strategy", stage("prod", max_concurrency="70%"))
    run()
    tick()
    assert started("example-run", "prod") == ["member1", "member2"]
    assert succeeded("example-run", "prod") == []
    tick()
    assert succeeded("example-run", "prod") == ["member1", "member2"]
    assert started("example-run", "prod") == ["member1", "member2", "member3"]
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_max_concurrency_of_two_updates_two_clusters_at_once():
    staged_fleet({"prod": ["member1", "member2", "member3", "member4"]})
    strategy("example-strategy", stage("prod", max_concurrency=2))
    run()
    tick()
    assert started("example-run", "prod") == ["member1", "member2"]
    tick()
    assert succeeded("example-run", "prod") == ["member1", "member2"]
    assert started("example-run", "prod") == ["member1", "member2", "member3", "member4"]
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_max_concurrency_of_25_percent_of_seven_clusters_is_one_at_a_time():
    names = [f"member{i}" for i in range(1, 8)]
    staged_fleet({"prod": names})
    strategy("example-strategy", stage("prod", max_concurrency="25%"))
    run()
    for done in range(7):
        tick()
        in_flight = [c for c in started("example-run", "prod") if c not in succeeded("example-run", "prod")]
        assert in_flight == [names[done]], f"pass {done + 1}"
    tick()
    assert run_conditions() == RUN_SUCCEEDED


def test_with_max_concurrency_one_the_next_cluster_starts_in_the_pass_that_sees_the_previous_finish():
    staged_fleet({"prod": ["member1", "member2", "member3"]})
    strategy("example-strategy", stage("prod"))
    run()
    tick()
    assert cluster_conditions("example-run", "prod", "member1") == CLUSTER_STARTED
    tick()
    assert cluster_conditions("example-run", "prod", "member1") == CLUSTER_DONE
    assert cluster_conditions("example-run", "prod", "member2") == CLUSTER_STARTED
    assert cluster_conditions("example-run", "prod", "member3") == {}
    assert bindings()["member3"] == ("Scheduled", None)


# Before-stage approval (§4.8, §4.9) ------------------------------------------------------


def test_a_before_stage_approval_holds_the_stage_until_approved():
    staged_fleet({"prod": ["member1", "member2"]})
    strategy("example-strategy", stage("prod", before=[APPROVAL]))
    run()
    settle()
    prod = stage_status("example-run", "prod")
    assert conditions(prod) == {"Progressing": WAITING}
    assert "startTime" not in prod
    assert started("example-run", "prod") == []
    assert run_conditions() == {"Initialized": INITIALIZED, "Progressing": RUN_WAITING}
    assert "before-stage" in condition(status(), "Progressing")["message"]
    assert approval_requests() == ["example-run-before-prod"]
    assert approval_labels("example-run-before-prod") == {
        L.TARGET_UPDATE_RUN: "example-run", L.TARGET_UPDATING_STAGE: "prod",
        L.TASK_TYPE: "beforeStage", L.IS_LATEST_UPDATE_RUN_APPROVAL: "true"}
    assert approval_request("example-run-before-prod").spec == {"parentStageRollout": "example-run",
                                                                "targetStage": "prod"}
    assert conditions(before_task("example-run", "prod")) == {
        "ApprovalRequestCreated": ("True", "StageTaskApprovalRequestCreated")}
    assert all(state == "Scheduled" for state, _ in bindings().values())

    advance(30)
    approve("example-run-before-prod")
    tick()
    assert cond(approval_request("example-run-before-prod").status, "ApprovalAccepted") == (
        "True", "ApprovalRequestApprovalAccepted")
    assert conditions(before_task("example-run", "prod")) == {
        "ApprovalRequestCreated": ("True", "StageTaskApprovalRequestCreated"),
        "ApprovalRequestApproved": ("True", "StageTaskApprovalRequestApproved")}
    assert started("example-run", "prod") == ["member1"]
    assert stage_status("example-run", "prod")["startTime"] == "2026-01-01T00:00:31Z"
    assert stage_conditions("example-run", "prod") == {"Progressing": ("True", "StageUpdatingStarted")}
    settle()
    assert run_conditions() == RUN_SUCCEEDED


# After-stage tasks (§4.9) ------------------------------------------------------


def test_a_timed_wait_ends_exactly_when_its_time_has_passed():
    staged_fleet({"prod": ["member1"], "last": ["member2"]})
    strategy("example-strategy", stage("prod", after=[timed_wait("1m")]), stage("last"))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    move_to(since(finished, 59))
    tick()
    assert conditions(after_task("example-run", "prod")) == {}
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    assert started("example-run", "last") == []
    move_to(since(finished, 60))
    tick()
    assert conditions(after_task("example-run", "prod")) == {
        "WaitTimeElapsed": ("True", "AfterStageTaskWaitTimeElapsed")}
    assert stage_conditions("example-run", "prod") == STAGE_SUCCEEDED
    assert stage_status("example-run", "prod")["endTime"] == clock.rfc3339(since(finished, 60))
    assert started("example-run", "last") == ["member2"]


def test_with_a_timed_wait_then_an_approval_the_request_appears_before_the_wait_ends():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[timed_wait("1m"), APPROVAL]))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    assert approval_requests() == ["example-run-prod"]
    request = approval_request("example-run-prod")
    assert clock.rfc3339(request.creation_timestamp) == finished
    assert approval_labels("example-run-prod")[L.TASK_TYPE] == "afterStage"
    assert conditions(after_task("example-run", "prod", 1)) == {
        "ApprovalRequestCreated": ("True", "AfterStageTaskApprovalRequestCreated")}

    move_to(since(finished, 60))
    tick()
    elapsed = condition(after_task("example-run", "prod", 0), "WaitTimeElapsed")
    assert (elapsed["status"], elapsed["reason"]) == ("True", "AfterStageTaskWaitTimeElapsed")
    assert request.creation_timestamp < clock.parse_rfc3339(elapsed["lastTransitionTime"])
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    assert run_conditions()["Progressing"] == RUN_WAITING

    approve("example-run-prod")
    tick()
    assert conditions(after_task("example-run", "prod", 1)) == {
        "ApprovalRequestCreated": ("True", "AfterStageTaskApprovalRequestCreated"),
        "ApprovalRequestApproved": ("True", "AfterStageTaskApprovalRequestApproved")}
    assert stage_conditions("example-run", "prod") == STAGE_SUCCEEDED
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_with_an_approval_then_a_timed_wait_the_stage_waits_for_both():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL, timed_wait("1m")]))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    assert approval_requests() == ["example-run-prod"]
    move_to(since(finished, 10))
    approve("example-run-prod")
    tick()
    assert cond(after_task("example-run", "prod", 0), "ApprovalRequestApproved") == (
        "True", "AfterStageTaskApprovalRequestApproved")
    assert conditions(after_task("example-run", "prod", 1)) == {}
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    move_to(since(finished, 59))
    tick()
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    move_to(since(finished, 60))
    tick()
    assert stage_conditions("example-run", "prod") == STAGE_SUCCEEDED
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_a_request_approved_before_the_run_reaches_it_is_consumed_at_once():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL]))
    apply("""
        apiVersion: placement.kubernetes-fleet.io/v1beta1
        kind: ClusterApprovalRequest
        metadata:
          name: example-run-prod
        spec:
          parentStageRollout: example-run
          targetStage: prod
    """)
    approve("example-run-prod")
    run()
    settle()
    assert conditions(after_task("example-run", "prod")) == {
        "ApprovalRequestCreated": ("True", "AfterStageTaskApprovalRequestCreated"),
        "ApprovalRequestApproved": ("True", "AfterStageTaskApprovalRequestApproved")}
    assert cond(approval_request("example-run-prod").status, "ApprovalAccepted") == (
        "True", "ApprovalRequestApprovalAccepted")
    assert run_conditions() == RUN_SUCCEEDED


def test_an_approval_request_of_the_same_name_for_another_stage_aborts_the_run():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL]))
    apply("""
        apiVersion: placement.kubernetes-fleet.io/v1beta1
        kind: ClusterApprovalRequest
        metadata:
          name: example-run-prod
        spec:
          parentStageRollout: example-run
          targetStage: canary
    """)
    run()
    settle()
    assert run_conditions() == RUN_FAILED
    assert "unexpected behavior which cannot be handled by the controller" in succeeded_message()
    assert stage_conditions("example-run", "prod") == {"Progressing": ("False", "StageUpdatingFailed"),
                                                       "Succeeded": ("False", "StageUpdatingFailed")}
    assert cluster_conditions("example-run", "prod", "member1") == CLUSTER_DONE


def test_the_engine_asks_to_be_woken_exactly_when_a_timed_wait_ends():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[timed_wait("1m"), APPROVAL]))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    move_to(since(finished, 20))
    assert engine_tick() == 40
    move_to(since(finished, 60))
    assert engine_tick() == 60  # only the approval is left: poll every minute


def test_an_approval_request_deleted_before_acceptance_is_recreated_unapproved():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL]))
    run()
    settle()
    first_uid = approval_request("example-run-prod").uid
    approve("example-run-prod")
    delete("careq", "example-run-prod")
    tick()
    again = approval_request("example-run-prod")
    assert again.uid != first_uid
    assert again.conditions() == []
    assert approval_labels("example-run-prod")[L.TARGET_UPDATE_RUN] == "example-run"
    assert cond(after_task("example-run", "prod"), "ApprovalRequestApproved") is None
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    approve("example-run-prod")
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_an_approval_request_deleted_after_acceptance_is_not_recreated_and_the_run_goes_on():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL, timed_wait("1m")]))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    approve("example-run-prod")
    tick()
    assert cond(approval_request("example-run-prod").status, "ApprovalAccepted") == (
        "True", "ApprovalRequestApprovalAccepted")
    delete("careq", "example-run-prod")
    tick()
    assert approval_requests() == []
    move_to(since(finished, 60))
    settle()
    assert approval_requests() == []
    assert run_conditions() == RUN_SUCCEEDED


def test_un_approving_after_acceptance_keeps_the_stage_approved():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL, timed_wait("1m")]))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    approve("example-run-prod")
    tick()
    unapprove("example-run-prod")
    tick()
    request = approval_request("example-run-prod")
    assert cond(request.status, "Approved") == ("False", "Revoked")
    assert cond(request.status, "ApprovalAccepted") == ("True", "ApprovalRequestApprovalAccepted")
    assert cond(after_task("example-run", "prod"), "ApprovalRequestApproved") == (
        "True", "AfterStageTaskApprovalRequestApproved")
    move_to(since(finished, 60))
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_a_declined_or_stale_approval_leaves_the_stage_waiting():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL]))
    run()
    settle()

    def write_approved(state: str, generation: int) -> None:
        patch("careq", "example-run-prod", {"status": {"conditions": [{
            "type": "Approved", "status": state, "reason": "manual", "message": "by hand",
            "observedGeneration": generation, "lastTransitionTime": clock.rfc3339(clock.now())}]}},
            subresource="status", actor=APPROVER)

    write_approved("False", 1)
    settle()
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    write_approved("True", 2)  # observedGeneration does not match the request's generation 1
    settle()
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    assert cond(approval_request("example-run-prod").status, "ApprovalAccepted") is None
    write_approved("True", 1)
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_approving_twice_is_recorded_once_and_accepted_once():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", after=[APPROVAL]))
    run()
    settle()
    assert approve("example-run-prod") is True
    assert approve("example-run-prod", actor="bob") is False
    settle()
    approved = m.Event.objects.filter(object_name="example-run-prod", action=m.Event.Action.APPROVED)
    assert [(e.actor, e.reason) for e in approved] == [(APPROVER, "ClusterApprovalRequestApproved")]
    accepted = m.Event.objects.filter(object_name="example-run-prod", reason="ApprovalRequestApprovalAccepted")
    assert accepted.count() == 1
    assert run_conditions() == RUN_SUCCEEDED


def test_an_approval_given_while_the_run_is_stopped_is_accepted_only_after_resuming():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod", before=[APPROVAL]))
    run()
    settle()
    set_state("example-run", "Stop")
    settle()
    assert run_conditions()["Progressing"] == ("False", "UpdateRunStopped")
    approve("example-run-before-prod")
    settle()
    assert cond(approval_request("example-run-before-prod").status, "ApprovalAccepted") is None
    assert cond(before_task("example-run", "prod"), "ApprovalRequestApproved") is None
    assert stage_conditions("example-run", "prod") == {"Progressing": ("False", "StageUpdatingStopped")}
    assert started("example-run", "prod") == []
    set_state("example-run", "Run")
    tick()
    assert cond(approval_request("example-run-before-prod").status, "ApprovalAccepted") == (
        "True", "ApprovalRequestApprovalAccepted")
    assert started("example-run", "prod") == ["member1"]
    settle()
    assert run_conditions() == RUN_SUCCEEDED


# Re-validation on every pass (§4.11) ------------------------------------------------


def test_relabelling_a_member_into_another_stage_mid_run_fails_the_run_and_leaves_the_stages_alone(tutorial):
    tutorial_run()
    settle()
    before = status()["stagesStatus"]
    label_member("member1", environment="staging", order=None)
    tick()
    assert run_conditions() == RUN_FAILED
    assert succeeded_message().startswith("cannot continue the updateRun: ")
    assert "the number of clusters in index `0` stage has changed" in succeeded_message()
    assert status()["stagesStatus"] == before
    assert stage_conditions("example-run", "staging") == {"Progressing": WAITING}
    assert stage_conditions("example-run", "canary") == {}
    assert not run_obj().active


def test_a_member_joining_mid_run_fails_the_run(tutorial):
    tutorial_run()
    settle()
    add_members(member("member4", environment="canary", order="3"))
    assert "member4" in bindings()
    tick()
    assert run_conditions() == RUN_FAILED
    assert "the number of clusters in index `1` stage has changed" in succeeded_message()
    assert stage_conditions("example-run", "staging") == {"Progressing": WAITING}


def test_deleting_the_placement_mid_run_fails_the_run(tutorial):
    tutorial_run()
    settle()
    delete("crp", "example-placement")
    tick()
    assert run_conditions() == RUN_FAILED
    assert "parent placement not found" in succeeded_message()
    assert stage_conditions("example-run", "staging") == {"Progressing": WAITING}


def test_changing_the_placement_apply_strategy_mid_run_fails_the_run(tutorial):
    tutorial_run()
    settle()
    patch("crp", "example-placement", {"spec": {"strategy": {"applyStrategy": {"type": "ServerSideApply"}}}})
    tick()
    assert run_conditions() == RUN_FAILED
    assert "the applyStrategy in the updateRun is outdated" in succeeded_message()


def test_changing_the_pick_n_count_mid_run_fails_the_run():
    staged_fleet({"canary": ["member1"], "prod": ["member2", "member3"]},
                 policy={"placementType": "PickN", "numberOfClusters": 3})
    strategy("example-strategy", stage("canary", after=[APPROVAL]), stage("prod"))
    run()
    settle()
    assert status()["policyObservedClusterCount"] == 3
    patch("crp", "example-placement", {"spec": {"policy": {"numberOfClusters": 2}}})
    tick()
    assert run_conditions() == RUN_FAILED
    assert "the cluster count initialized in the updateRun is outdated" in succeeded_message()


def test_a_run_waiting_in_initialize_is_still_revalidated():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod"))
    run(state="Initialize")
    settle()
    add_members(member("member2", stage="prod"))
    tick()
    assert run_conditions() == RUN_FAILED
    assert "the number of clusters in index `0` stage has changed" in succeeded_message()
    assert stage_conditions("example-run", "prod") == {}


# spec.state: Initialize, Run, Stop (§4.1, §4.10) ---------------------------------------


def test_a_run_in_initialize_computes_the_plan_and_waits(tutorial):
    run(state="Initialize")
    settle()
    recorded = status()
    assert run_conditions() == {"Initialized": INITIALIZED}
    assert [(s["stageName"], [c["clusterName"] for c in s["clusters"]]) for s in recorded["stagesStatus"]] == [
        ("staging", ["member2"]), ("canary", ["member3", "member1"])]
    assert all(not s.get("conditions") for s in recorded["stagesStatus"])
    assert recorded["stagesStatus"][1]["afterStageTaskStatus"] == [
        {"type": "Approval", "approvalRequestName": "example-run-canary"}]
    assert recorded["deletionStageStatus"] == {"stageName": "kubernetes-fleet.io/deleteStage", "clusters": []}
    assert recorded["policySnapshotIndexUsed"] == "0"
    assert recorded["policyObservedClusterCount"] == 3
    assert recorded["resourceSnapshotIndexUsed"] == "1"
    assert recorded["appliedStrategy"] == {"type": "ClientSideApply", "comparisonOption": "PartialComparison",
                                           "whenToApply": "Always", "whenToTakeOver": "Always"}
    assert L.RUN_FINALIZER in run_obj().finalizers
    assert approval_requests() == []
    assert all(state == "Scheduled" for state, _ in bindings().values())
    assert m.MemberObject.objects.count() == 0


def test_switching_a_run_from_initialize_to_run_executes_it():
    staged_fleet({"prod": ["member1", "member2"]})
    strategy("example-strategy", stage("prod"))
    run(state="Initialize")
    settle()
    advance(3600)
    settle()
    assert run_conditions() == {"Initialized": INITIALIZED}
    set_state("example-run", "Run")
    tick()
    assert run_conditions() == {"Initialized": INITIALIZED, "Progressing": PROGRESSING}
    assert started("example-run", "prod") == ["member1"]
    settle()
    assert run_conditions() == RUN_SUCCEEDED
    assert member_values() == {"member1": "value2", "member2": "value2"}


def test_a_run_created_stopped_is_initialized_and_reported_stopped():
    staged_fleet({"prod": ["member1"], "last": ["member2"]})
    strategy("example-strategy", stage("prod"), stage("last"))
    run(state="Stop")
    settle()
    assert run_conditions() == {"Initialized": INITIALIZED, "Progressing": ("False", "UpdateRunStopped")}
    assert stage_conditions("example-run", "prod") == {"Progressing": ("False", "StageUpdatingStopped")}
    assert stage_conditions("example-run", "last") == {}
    assert started("example-run", "prod") == []
    assert all(state == "Scheduled" for state, _ in bindings().values())
    set_state("example-run", "Run")
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_stopping_during_a_timed_wait_restarts_the_wait_from_the_stop():
    staged_fleet({"prod": ["member1"], "last": ["member2"]})
    strategy("example-strategy", stage("prod", after=[timed_wait("1m")]), stage("last"))
    run()
    settle()
    finished = waiting_since("example-run", "prod")
    move_to(since(finished, 30))
    set_state("example-run", "Stop")
    tick()
    stopped_at = clock.now()
    assert run_conditions()["Progressing"] == ("False", "UpdateRunStopped")
    assert stage_conditions("example-run", "prod") == {"Progressing": ("False", "StageUpdatingStopped")}
    move_to(since(finished, 45))
    set_state("example-run", "Run")
    tick()
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    assert waiting_since("example-run", "prod") == clock.rfc3339(stopped_at)
    move_to(since(finished, 61))  # the original wait would have ended by now
    tick()
    assert conditions(after_task("example-run", "prod")) == {}
    assert stage_conditions("example-run", "prod") == {"Progressing": WAITING}
    move_to(since(clock.rfc3339(stopped_at), 60))
    tick()
    assert conditions(after_task("example-run", "prod")) == {
        "WaitTimeElapsed": ("True", "AfterStageTaskWaitTimeElapsed")}
    assert stage_conditions("example-run", "prod") == STAGE_SUCCEEDED
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_stopping_mid_stage_lets_clusters_in_flight_finish_and_starts_no_new_ones(slow_members):
    staged_fleet({"prod": ["member1", "member2", "member3", "member4"]})
    strategy("example-strategy", stage("prod", max_concurrency=2))
    run()
    tick()
    assert started("example-run", "prod") == ["member1", "member2"]
    set_state("example-run", "Stop")
    advance(1)
    tick()
    assert run_conditions()["Progressing"] == ("Unknown", "UpdateRunStopping")
    assert stage_conditions("example-run", "prod") == {"Progressing": ("Unknown", "StageUpdatingStopping")}
    assert started("example-run", "prod") == ["member1", "member2"]
    advance(slow_members)
    settle()
    assert succeeded("example-run", "prod") == ["member1", "member2"]
    assert started("example-run", "prod") == ["member1", "member2"]
    assert run_conditions()["Progressing"] == ("False", "UpdateRunStopped")
    assert stage_conditions("example-run", "prod") == {"Progressing": ("False", "StageUpdatingStopped")}
    assert bindings()["member3"] == ("Scheduled", None)
    assert bindings()["member4"] == ("Scheduled", None)
    assert member_values() == {"member1": "value2", "member2": "value2"}
    set_state("example-run", "Run")
    tick()
    assert started("example-run", "prod") == ["member1", "member2", "member3", "member4"]
    advance(slow_members)
    settle()
    assert run_conditions() == RUN_SUCCEEDED


# A failing member (§4.8 steps 7–8) ---------------------------------------------------


def test_a_member_that_fails_to_apply_keeps_the_run_in_progress_then_reports_it_stuck():
    staged_fleet({"prod": ["member1"]}, labels={"member1": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("prod"))
    run()
    settle()
    started_at = condition(stage_status("example-run", "prod")["clusters"][0], "Started")["lastTransitionTime"]
    assert cluster_conditions("example-run", "prod", "member1") == CLUSTER_STARTED
    assert run_conditions() == {"Initialized": INITIALIZED, "Progressing": PROGRESSING}
    binding = m.ClusterResourceBinding.objects.get(target_cluster="member1")
    assert cond(binding.status, "Applied") == ("False", "ApplyFailed")
    move_to(since(started_at, 300))
    tick()
    assert run_conditions()["Progressing"] == PROGRESSING
    move_to(since(started_at, 301))
    tick()
    assert run_conditions()["Progressing"] == ("False", "UpdateRunStuck")
    assert "member1" in condition(status(), "Progressing")["message"]
    assert cluster_conditions("example-run", "prod", "member1") == CLUSTER_STARTED
    assert "Succeeded" not in run_conditions()


def test_a_member_that_stops_failing_lets_the_run_recover():
    staged_fleet({"prod": ["member1"]}, labels={"member1": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("prod"))
    run()
    settle()
    advance(600)
    settle()
    assert "Succeeded" not in cluster_conditions("example-run", "prod", "member1")
    label_member("member1", **{SIMULATE_FAILURE: None})
    settle()
    assert cluster_conditions("example-run", "prod", "member1") == CLUSTER_DONE
    assert run_conditions() == RUN_SUCCEEDED
    assert member_values() == {"member1": "value2"}


# Concurrent runs (§4.13) ------------------------------------------------------------


def test_a_second_run_with_another_snapshot_preempts_the_first(slow_members):
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod"))
    run("run-a", index="1")
    tick()
    assert started("run-a", "prod") == ["member1"]
    run("run-b", index="0")
    advance(1)
    tick()
    assert bindings()["member1"] == ("Bound", "example-placement-0-snapshot")
    advance(1)
    tick()
    assert run_conditions("run-a") == RUN_FAILED
    failed = condition(stage_status("run-a", "prod")["clusters"][0], "Succeeded")
    assert (failed["status"], failed["reason"]) == ("False", "ClusterUpdatingFailed")
    binding = m.ClusterResourceBinding.objects.get(target_cluster="member1").name
    assert failed["message"] == (
        f"the binding of the updating cluster `member1` in the stage `prod` is not up-to-date with the desired "
        f"status, please check the status of binding `{binding}` and see if there is a concurrent updateRun "
        "referencing the same placement and updating the same cluster")
    assert "failed to process the request due to a client error" in succeeded_message("run-a")
    assert stage_conditions("run-a", "prod") == {"Progressing": ("False", "StageUpdatingFailed"),
                                                 "Succeeded": ("False", "StageUpdatingFailed")}
    assert stage_status("run-a", "prod")["endTime"] == clock.rfc3339(clock.now())
    advance(slow_members)
    settle()
    assert run_conditions("run-b") == RUN_SUCCEEDED
    assert member_values() == {"member1": "value1"}


def test_two_runs_with_the_same_snapshot_do_not_conflict():
    staged_fleet({"canary": ["member1"], "prod": ["member2", "member3"]})
    strategy("example-strategy", stage("canary"), stage("prod"))
    run("run-a", index="1")
    run("run-b", index="1")
    settle()
    assert run_conditions("run-a") == RUN_SUCCEEDED
    assert run_conditions("run-b") == RUN_SUCCEEDED
    assert member_values() == {"member1": "value2", "member2": "value2", "member3": "value2"}


# The deletion stage (§4.7) -------------------------------------------------------------


def test_the_deletion_stage_removes_a_cluster_dropped_by_a_smaller_pick_n():
    staged_fleet({"prod": ["member1", "member2", "member3"]},
                 policy={"placementType": "PickN", "numberOfClusters": 3})
    strategy("example-strategy", stage("prod", max_concurrency=3))
    run("first")
    settle()
    assert member_object_clusters() == {"member1", "member2", "member3"}
    patch("crp", "example-placement", {"spec": {"policy": {"numberOfClusters": 2}}})
    assert bindings()["member3"][0] == "Unscheduled"
    run("second")
    settle()
    deletion = deletion_status("second")
    assert [c["clusterName"] for c in deletion["clusters"]] == ["member3"]
    assert conditions(deletion["clusters"][0]) == CLUSTER_DONE
    assert conditions(deletion) == STAGE_SUCCEEDED
    assert run_conditions("second") == RUN_SUCCEEDED
    assert "member3" not in bindings()
    assert member_object_clusters() == {"member1", "member2"}


def test_the_deletion_stage_removes_a_cluster_that_no_longer_matches_the_required_affinity():
    affinity = {"placementType": "PickAll", "affinity": {"clusterAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"clusterSelectorTerms": [
            {"labelSelector": {"matchLabels": {"fleet": "yes"}}}]}}}}
    staged_fleet({"prod": ["member1", "member2"]}, policy=affinity,
                 labels={"member1": {"fleet": "yes"}, "member2": {"fleet": "yes"}})
    strategy("example-strategy", stage("prod"))
    run("first")
    settle()
    assert member_values() == {"member1": "value2", "member2": "value2"}
    label_member("member2", fleet="no")
    assert bindings()["member2"][0] == "Unscheduled"
    run("second")
    settle()
    assert stage_clusters("second", "prod") == ["member1"]
    assert [c["clusterName"] for c in deletion_status("second")["clusters"]] == ["member2"]
    assert conditions(deletion_status("second")) == STAGE_SUCCEEDED
    assert run_conditions("second") == RUN_SUCCEEDED
    assert "member2" not in bindings()
    assert member_object_clusters() == {"member1"}


# Rollback, strategy edits, deleting runs (§4.14, §4.15) ------------------------------


def test_a_run_of_an_older_snapshot_rolls_every_member_back():
    staged_fleet({"canary": ["member1"], "prod": ["member2", "member3"]})
    strategy("example-strategy", stage("canary"), stage("prod"))
    run("forward", index="1")
    settle()
    assert member_values() == {"member1": "value2", "member2": "value2", "member3": "value2"}
    run("rollback", index="0")
    settle()
    assert run_conditions("rollback") == RUN_SUCCEEDED
    assert member_values() == {"member1": "value1", "member2": "value1", "member3": "value1"}
    assert {b for _, b in bindings().values()} == {"example-placement-0-snapshot"}


def test_editing_the_strategy_mid_run_does_not_change_the_running_run(tutorial):
    tutorial_run()
    settle()
    frozen_plan = status()["stagedUpdateStrategySnapshot"]
    finished = waiting_since("example-run", "staging")
    apply("""
        apiVersion: placement.kubernetes-fleet.io/v1beta1
        kind: ClusterStagedUpdateStrategy
        metadata:
          name: example-strategy
        spec:
          stages:
            - name: everyone
              labelSelector: {}
              afterStageTasks:
                - type: TimedWait
                  waitTime: 1h
    """)
    move_to(since(finished, 60))
    settle()
    assert status()["stagedUpdateStrategySnapshot"] == frozen_plan
    assert stage_conditions("example-run", "staging") == STAGE_SUCCEEDED
    assert approval_requests() == ["example-run-canary"]
    approve("example-run-canary")
    settle()
    assert run_conditions() == RUN_SUCCEEDED


def test_deleting_a_run_deletes_its_approval_requests_and_leaves_bindings(tutorial):
    tutorial_run("example-run")
    tutorial_run("other-run")
    settle()
    advance(60)
    settle()
    assert approval_requests() == ["example-run-canary", "other-run-canary"]
    bound = bindings()
    held = member_values()
    delete("csur", "example-run")
    settle()
    assert approval_requests() == ["other-run-canary"]
    assert not m.ClusterStagedUpdateRun.objects.filter(name="example-run").exists()
    assert bindings() == bound
    assert all(state == "Bound" for state, _ in bound.values())
    assert member_values() == held


def test_a_finished_run_ignores_a_later_stop():
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod"))
    run()
    settle()
    set_state("example-run", "Stop")
    settle()
    assert run_conditions() == RUN_SUCCEEDED


# The tutorial (seed-tutorial.md §4–6) ---------------------------------------------------


def test_the_tutorial_rolls_out_value2_in_stages_then_rolls_back_to_value1(tutorial):
    assert [s.name for s in m.ClusterResourceSnapshot.objects.order_by("index")] == [
        "example-placement-0-snapshot", "example-placement-1-snapshot"]
    tutorial_run()
    tick()
    recorded = status()
    assert recorded["policySnapshotIndexUsed"] == "0"
    assert recorded["policyObservedClusterCount"] == 3
    assert recorded["deletionStageStatus"] == {"stageName": "kubernetes-fleet.io/deleteStage", "clusters": []}
    assert cluster_conditions("example-run", "staging", "member2") == CLUSTER_STARTED
    settle()
    assert cluster_conditions("example-run", "staging", "member2") == CLUSTER_DONE
    assert stage_conditions("example-run", "staging") == {"Progressing": WAITING}
    advance(60)
    settle()
    assert conditions(after_task("example-run", "staging")) == {
        "WaitTimeElapsed": ("True", "AfterStageTaskWaitTimeElapsed")}
    assert stage_conditions("example-run", "staging") == STAGE_SUCCEEDED
    staging = stage_status("example-run", "staging")
    assert staging["startTime"] and staging["endTime"]
    assert stage_clusters("example-run", "canary") == ["member3", "member1"]
    assert cluster_conditions("example-run", "canary", "member3") == CLUSTER_DONE
    assert cluster_conditions("example-run", "canary", "member1") == CLUSTER_DONE
    m3 = condition(stage_status("example-run", "canary")["clusters"][0], "Succeeded")["lastTransitionTime"]
    m1 = condition(stage_status("example-run", "canary")["clusters"][1], "Started")["lastTransitionTime"]
    assert m3 == m1  # member1 starts in the pass that sees member3 finish

    assert approval_requests() == ["example-run-canary"]
    assert approval_labels("example-run-canary") == {
        L.TARGET_UPDATE_RUN: "example-run", L.TARGET_UPDATING_STAGE: "canary",
        L.TASK_TYPE: "afterStage", L.IS_LATEST_UPDATE_RUN_APPROVAL: "true"}
    assert after_task("example-run", "canary")["approvalRequestName"] == "example-run-canary"
    assert conditions(after_task("example-run", "canary")) == {
        "ApprovalRequestCreated": ("True", "AfterStageTaskApprovalRequestCreated")}
    assert stage_conditions("example-run", "canary") == {"Progressing": WAITING}
    assert run_conditions()["Progressing"] == RUN_WAITING
    assert "canary" in condition(status(), "Progressing")["message"]

    patch("clusterapprovalrequests", "example-run-canary", {"status": {"conditions": [{
        "type": "Approved", "status": "True", "reason": "testPassed", "message": "lgtm",
        "observedGeneration": 1, "lastTransitionTime": clock.rfc3339(clock.now())}]}},
        subresource="status", actor=APPROVER)
    settle()
    request = approval_request("example-run-canary")
    assert cond(request.status, "Approved") == ("True", "testPassed")
    assert cond(request.status, "ApprovalAccepted") == ("True", "ApprovalRequestApprovalAccepted")
    assert run_conditions() == RUN_SUCCEEDED
    assert cond(placement_obj().status, "ClusterResourcePlacementAvailable") == ("True", "ResourceAvailable")
    assert member_values() == {"member1": "value2", "member2": "value2", "member3": "value2"}

    tutorial_run("example-run-2", index="0")
    settle()
    advance(60)
    settle()
    assert approval_requests() == ["example-run-2-canary", "example-run-canary"]
    assert run_conditions("example-run") == RUN_SUCCEEDED
    assert "Succeeded" not in run_conditions("example-run-2")
    assert member_values() == {"member1": "value1", "member2": "value1", "member3": "value1"}
    approve("example-run-2-canary")
    settle()
    assert run_conditions("example-run-2") == RUN_SUCCEEDED
    assert member_values() == {"member1": "value1", "member2": "value1", "member3": "value1"}


# Conditions, idempotence and the timeline (§4.2, §11) -------------------------------------


def test_a_reason_change_keeps_the_condition_transition_time(tutorial):
    tutorial_run()
    settle()
    waiting = condition(stage_status("example-run", "staging"), "Progressing")
    assert (waiting["status"], waiting["reason"]) == WAITING
    move_to(since(waiting["lastTransitionTime"], 60))
    tick()
    done = condition(stage_status("example-run", "staging"), "Progressing")
    assert (done["status"], done["reason"]) == ("False", "StageUpdatingSucceeded")
    assert done["lastTransitionTime"] == waiting["lastTransitionTime"]
    stage_succeeded = condition(stage_status("example-run", "staging"), "Succeeded")
    assert clock.parse_rfc3339(stage_succeeded["lastTransitionTime"]) == since(waiting["lastTransitionTime"], 60)


def test_the_run_progressing_condition_keeps_its_transition_time_while_the_run_waits(tutorial):
    tutorial_run()
    settle()
    waiting = condition(status(), "Progressing")
    assert (waiting["status"], waiting["reason"]) == RUN_WAITING
    version = run_obj().resource_version
    advance(20)
    tick()
    advance(20)
    tick()
    still = condition(status(), "Progressing")
    assert (still["status"], still["reason"]) == RUN_WAITING
    assert still["lastTransitionTime"] == waiting["lastTransitionTime"]
    assert run_obj().resource_version == version


def test_advancing_a_run_twice_in_a_row_changes_nothing_the_second_time(tutorial):
    tutorial_run()
    pk = run_obj().pk
    for step in range(6):  # creation, staging, the TimedWait, canary, waiting for approval, done
        run_advance(family=CLUSTER, pk=pk)
        first = run_obj()
        run_advance(family=CLUSTER, pk=pk)
        second = run_obj()
        assert (second.status, second.resource_version) == (first.status, first.resource_version), f"step {step}"
        if step == 4:
            approve("example-run-canary")
        settle()
        advance(60)
    assert run_conditions() == RUN_SUCCEEDED


def test_each_cluster_start_and_success_is_recorded_once(tutorial):
    tutorial_run()
    settle()
    advance(60)
    settle()
    approve("example-run-canary")
    settle()
    assert run_conditions() == RUN_SUCCEEDED
    for stage_name, cluster in (("staging", "member2"), ("canary", "member3"), ("canary", "member1")):
        for type_ in ("Started", "Succeeded"):
            events = cluster_events("example-run", cluster, type_)
            assert len(events) == 1, (cluster, type_, events)
            assert events[0].details["stage"] == stage_name
            assert events[0].reason == f"ClusterUpdating{type_}"
    run_events = [e for e in m.Event.objects.filter(run="example-run", object_kind="ClusterStagedUpdateRun")
                  if e.details.get("scope") == "run" and e.details.get("type") == "Succeeded"]
    assert [(e.details["status"], e.reason) for e in run_events] == [("True", "UpdateRunSucceeded")]


# The placement while a run drives it (§6) ------------------------------------------


def test_the_placement_status_follows_the_rollout(tutorial):
    def placement_view():
        placed = placement_obj().status
        return (cond(placed, "ClusterResourcePlacementRolloutStarted"), placed["observedResourceIndex"],
                {c["clusterName"]: c["observedResourceIndex"] for c in placed["placementStatuses"]})

    assert placement_view() == (("Unknown", "RolloutControlledByExternalController"), "",
                                {"member1": "", "member2": "", "member3": ""})
    tutorial_run()
    settle()
    assert placement_view() == (("Unknown", "RolloutControlledByExternalController"), "",
                                {"member1": "", "member2": "1", "member3": ""})
    assert cond(placement_obj().status, "ClusterResourcePlacementAvailable") is None
    advance(60)
    settle()
    approve("example-run-canary")
    settle()
    placed = placement_obj().status
    assert cond(placed, "ClusterResourcePlacementAvailable") == ("True", "ResourceAvailable")
    assert placed["observedResourceIndex"] == "1"
    assert {c["clusterName"]: c["observedResourceIndex"] for c in placed["placementStatuses"]} == {
        "member1": "1", "member2": "1", "member3": "1"}
    assert cond(placed, "ClusterResourcePlacementRolloutStarted") == ("True", "RolloutStarted")
