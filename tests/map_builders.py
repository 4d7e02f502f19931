"""Runs of any size for the pipeline strip and the cluster map, written as
status JSON (no engine passes): a 1,000-cluster run in milliseconds."""

from rollouts import clock
from rollouts import models as m
from tests.conftest import TUTORIAL_START

STAMP = clock.rfc3339(TUTORIAL_START)


def _cond(type_: str, status: str, reason: str, message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": STAMP}


STARTED = _cond("Started", "True", "ClusterUpdatingStarted")
SUCCEEDED = [STARTED, _cond("Succeeded", "True", "ClusterUpdatingSucceeded")]
FAILED = [STARTED, _cond("Succeeded", "False", "ClusterUpdatingFailed", "ApplyFailed: quota exceeded")]


def _cluster(name: str, state: str) -> dict:
    conditions = {"succeeded": SUCCEEDED, "failed": FAILED, "updating": [STARTED], "pending": []}[state]
    return {"clusterName": name, "conditions": conditions}


def _stage(name: str, clusters: list[dict], state: str) -> dict:
    entry = {"stageName": name, "clusters": clusters}
    if state == "succeeded":
        entry.update(startTime=STAMP, endTime=STAMP, conditions=[
            _cond("Progressing", "False", "StageUpdatingSucceeded"), _cond("Succeeded", "True", "StageUpdatingSucceeded")])
    elif state == "updating":
        entry.update(startTime=STAMP, conditions=[_cond("Progressing", "True", "StageUpdatingStarted")])
    return entry


def big_run(name: str = "big", *, stages: int = 10, per_stage: int = 100, done_stages: int = 6,
            failing: int = 1, gate_after: int | None = None, deletion: int = 0) -> m.ClusterStagedUpdateRun:
    """An active run of `stages` stages of `per_stage` clusters each
    (members `m<stage>-<i>`): the first `done_stages` succeeded, the next one
    updating (its first `failing` clusters failed, the next 3 updating, the
    rest pending), the rest not started; an Approval after stage
    `gate_after` (1-based), its request created and waiting when that
    stage is done; `deletion`
    clusters in the deletion stage, removed."""
    stage_list, configs = [], []
    for s in range(stages):
        state = "succeeded" if s < done_stages else "updating" if s == done_stages else "pending"
        clusters = []
        for i in range(per_stage):
            cluster_state = state if state != "updating" else (
                "failed" if i < failing else "updating" if i < failing + 3 else "pending")
            clusters.append(_cluster(f"m{s + 1}-{i}", "pending" if state == "pending" else cluster_state))
        entry, config = _stage(f"s{s + 1}", clusters, state), {"name": f"s{s + 1}"}
        if gate_after == s + 1:
            config["afterStageTasks"] = [{"type": "Approval"}]
            created = [_cond("ApprovalRequestCreated", "True", "AfterStageTaskApprovalRequestCreated")]
            entry["afterStageTaskStatus"] = [{"type": "Approval", "approvalRequestName": f"{name}-s{s + 1}",
                                              "conditions": created if state == "succeeded" else []}]
        stage_list.append(entry)
        configs.append(config)
    status = {"conditions": [_cond("Initialized", "True", "UpdateRunInitializedSuccessfully"),
                             _cond("Progressing", "True", "UpdateRunProgressing")],
              "stagesStatus": stage_list, "stagedUpdateStrategySnapshot": {"stages": configs},
              "deletionStageStatus": {"stageName": "kubernetes-fleet.io/deleteStage",
                                      "clusters": [_cluster(f"gone-{i}", "succeeded") for i in range(deletion)]}}
    run = m.ClusterStagedUpdateRun.objects.create(
        name=name, creation_timestamp=TUTORIAL_START, status=status, active=True,
        spec={"placementName": "p", "stagedRolloutStrategyName": "s", "resourceSnapshotIndex": "0"})
    if gate_after is not None and gate_after <= done_stages:
        m.ClusterApprovalRequest.objects.create(name=f"{name}-s{gate_after}", creation_timestamp=TUTORIAL_START,
                                                spec={"parentStageRollout": name, "targetStage": f"s{gate_after}"})
    return run
