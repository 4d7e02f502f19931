"""Executing and stopping a run (staged-update-semantics.md §4.7–4.10, §4.12).

All functions work on a Pass: they mutate its status and append actions.
They return the requeue delay in seconds (None: wait for a change)."""

from rollouts.clock import parse_rfc3339, rfc3339
from rollouts.conditions import find_condition

from . import freezes
from .context import Pass
from .stages import Abort, Retry, max_concurrency, wait_seconds
from .world import AcceptApproval, BindBinding, BindingView, CreateApprovalRequest, DeleteBinding

CLUSTER_POLL = 15.0  # clusters in flight, deletions, stopping
STAGE_POLL = 60.0  # waiting for an approval
IN_PROGRESS_REASONS = {"OverriddenPending", "WorkNotSynchronizedYet", "ApplyPending", "ResourceNotAvailableYet"}

# Task condition reasons: legacy names after a stage, current ones before (compatibility.md).
_REASONS = {
    "afterStage": ("AfterStageTaskApprovalRequestCreated", "AfterStageTaskApprovalRequestApproved"),
    "beforeStage": ("StageTaskApprovalRequestCreated", "StageTaskApprovalRequestApproved"),
}


def execute(ctx: Pass, position: int) -> float | None:
    if position >= len(ctx.stages):
        deletion = ctx.status["deletionStageStatus"]
        if deletion.get("clusters") and not deletion.get("startTime") and freezes.held(ctx, position):
            return freezes.hold(ctx, deletion, STAGE_POLL)
        return _execute_deletion_stage(ctx)
    stage = ctx.stages[position]
    config = ctx.strategy_stages[position]
    if not stage.get("clusters"):
        return _skip_empty_stage(ctx, stage)
    if config.get("beforeStageTasks") and not stage.get("startTime"):
        if not _before_tasks_done(ctx, stage):
            ctx.set(stage, "Progressing", "False", "StageUpdatingWaiting", "waiting for before-stage tasks")
            ctx.run_set("Progressing", "False", "UpdateRunWaiting",
                        f"the updateRun is waiting for before-stage tasks in stage {stage['stageName']} to complete")
            return STAGE_POLL
    held = freezes.held(ctx, position)
    if held and not stage.get("startTime"):
        return freezes.hold(ctx, stage, STAGE_POLL)
    finished = _cluster_pass(ctx, stage, config, held=held)
    if finished:
        return _complete_stage(ctx, stage, config)
    return CLUSTER_POLL


def _skip_empty_stage(ctx: Pass, stage: dict) -> float:
    ctx.stamp(stage, "startTime")
    ctx.stamp(stage, "endTime")
    message = "no clusters in the stage, skipped"
    ctx.set(stage, "Progressing", "False", "StageUpdatingSkippedNoClusters", message)
    ctx.set(stage, "Succeeded", "True", "StageUpdatingSkippedNoClusters", message)
    ctx.run_set("Progressing", "True", "UpdateRunProgressing", "the updateRun is progressing")
    return 0.0


def _bindings(ctx: Pass) -> dict[str, BindingView]:
    return {b.cluster: b for b in ctx.world.bindings if b.state != "Unscheduled"}


def _snapshot_name(ctx: Pass) -> str:
    placement = (ctx.world.placement or {}).get("name", "")
    return f"{placement}-{ctx.status.get('resourceSnapshotIndexUsed', '')}-snapshot"


def _in_sync(ctx: Pass, binding: BindingView, cluster: dict) -> bool:
    # nil and [] differ, as in KubeFleet's deep-equality; we normalise both sides to lists.
    return (
        binding.resource_snapshot == _snapshot_name(ctx)
        and (binding.cluster_resource_override_snapshots or []) == (cluster.get("clusterResourceOverrideSnapshots") or [])
        and (binding.resource_override_snapshots or []) == (cluster.get("resourceOverrideSnapshots") or [])
        and (binding.apply_strategy or {}) == (ctx.status.get("appliedStrategy") or {})
    )


def _binding_condition(binding: BindingView, type: str, status: str) -> dict | None:
    cond = find_condition(list(binding.conditions), type)
    if cond and cond.get("status") == status and cond.get("observedGeneration") == binding.generation:
        return cond
    return None


def _rollout_started(binding: BindingView) -> bool:
    return _binding_condition(binding, "RolloutStarted", "True") is not None


def _binding_result(ctx: Pass, binding: BindingView, cluster: dict, stage: dict) -> bool:
    """Whether the cluster finished (marking it succeeded); Retry when the
    binding reports a failure (KubeFleet keeps polling: it may become stuck)."""
    if _binding_finished(binding, cluster, stage):
        ctx.set(cluster, "Succeeded", "True", "ClusterUpdatingSucceeded", "cluster update completed successfully")
        return True
    return False


def _binding_finished(binding: BindingView, cluster: dict, stage: dict) -> bool:
    if _binding_condition(binding, "Available", "True") or _binding_condition(binding, "DiffReported", "True"):
        return True
    for type in ("Overridden", "WorkSynchronized", "Applied", "Available"):
        failed = _binding_condition(binding, type, "False")
        if failed and failed.get("reason") not in IN_PROGRESS_REASONS:
            raise Retry(
                f"the cluster `{cluster['clusterName']}` in the stage {stage['stageName']} has failed: "
                f"{type} is False ({failed.get('reason')}): {failed.get('message', '')}"
            )
    if _binding_condition(binding, "DiffReported", "False"):
        raise Retry(f"the cluster `{cluster['clusterName']}` in the stage {stage['stageName']} failed to report diff")
    return False


def _start_cluster(ctx: Pass, binding: BindingView, cluster: dict, stage: dict) -> None:
    """Bind the cluster to the run's snapshot (§4.8 step 5)."""
    message = (
        f"Detected the new changes on the resources and started the rollout process, "
        f"resourceSnapshotIndex: {ctx.status.get('resourceSnapshotIndexUsed')}, updateRun: {ctx.world.run_name}"
    )
    if not _in_sync(ctx, binding, cluster):
        spec = {
            "state": "Bound",
            "resourceSnapshotName": _snapshot_name(ctx),
            "clusterResourceOverrideSnapshots": cluster.get("clusterResourceOverrideSnapshots") or [],
            "resourceOverrideSnapshots": cluster.get("resourceOverrideSnapshots") or [],
            "applyStrategy": ctx.status.get("appliedStrategy") or {},
        }
        ctx.actions.append(BindBinding(binding.name, spec, message))
    elif binding.state != "Bound":
        ctx.actions.append(BindBinding(binding.name, {"state": "Bound"}, message))
    elif not _rollout_started(binding):
        ctx.actions.append(BindBinding(binding.name, None, message))
    else:
        # Already on this snapshot: judge it now; a reported failure leaves it unstarted.
        finished = _binding_finished(binding, cluster, stage)
        ctx.set(cluster, "Started", "True", "ClusterUpdatingStarted", "cluster update has started")
        if finished:
            ctx.set(cluster, "Succeeded", "True", "ClusterUpdatingSucceeded", "cluster update completed successfully")
    ctx.set(cluster, "Started", "True", "ClusterUpdatingStarted", "cluster update has started")
    ctx.stamp(stage, "startTime")
    ctx.set(stage, "Progressing", "True", "StageUpdatingStarted", "stage update has started")


def _cluster_pass(ctx: Pass, stage: dict, config: dict, *, held: bool = False) -> bool:
    """Walk the stage's clusters in order, at most maxConcurrency in flight;
    `held` (a freeze): clusters in flight go on, no other one starts.
    Returns whether every cluster has succeeded."""
    clusters = stage["clusters"]
    limit = max_concurrency(config.get("maxConcurrency"), len(clusters))
    bindings = _bindings(ctx)
    finished, updating, stuck, errors, waiting = 0, 0, [], [], 0
    for cluster in clusters:
        if updating >= limit:
            break
        if ctx.true(cluster, "Succeeded"):
            finished += 1
            continue
        if held and not ctx.true(cluster, "Started"):
            waiting += 1
            continue
        updating += 1
        name = cluster["clusterName"]
        if _is_false(ctx, cluster, "Succeeded"):
            raise Abort(f"the cluster `{name}` in the stage {stage['stageName']} has failed")
        binding = bindings.get(name)
        if binding is None:
            raise Abort(f"the cluster `{name}` in the stage {stage['stageName']} has no binding")
        if not ctx.true(cluster, "Started"):
            _start_cluster(ctx, binding, cluster, stage)
            continue
        _check_not_preempted(ctx, binding, cluster, stage)
        try:
            done = _binding_result(ctx, binding, cluster, stage)
        except Retry as exc:
            errors.append(str(exc))
            done = False
        if done:
            finished += 1
            updating -= 1
        elif _stuck(ctx, cluster):
            stuck.append(name)
    _aggregate_progress(ctx, stage, stuck)
    if waiting and not stuck:
        ctx.run_set("Progressing", "False", freezes.FROZEN_REASON, ctx.world.frozen.sentence()
                    + (f"; {updating} cluster(s) in flight finish" if updating else ""))
    if errors:
        raise Retry("; ".join(errors))
    return finished == len(clusters)


def _is_false(ctx: Pass, entry: dict, type: str) -> bool:
    cond = ctx.cond(entry, type)
    return bool(cond) and cond.get("status") == "False"


def _check_not_preempted(ctx: Pass, binding: BindingView, cluster: dict, stage: dict) -> None:
    """A started cluster whose binding moved on was preempted, typically by
    another run on the same placement (§4.13)."""
    in_sync, started = _in_sync(ctx, binding, cluster), _rollout_started(binding)
    if in_sync and started and binding.state == "Bound":
        return
    # Current KubeFleet's wording (the pre-v0.1 one listed bindingSpecInSync & co.).
    message = (
        f"the binding of the updating cluster `{cluster['clusterName']}` in the stage `{stage['stageName']}` is not "
        f"up-to-date with the desired status, please check the status of binding `{binding.name}` and see if there "
        f"is a concurrent updateRun referencing the same placement and updating the same cluster"
    )
    ctx.set(cluster, "Succeeded", "False", "ClusterUpdatingFailed", message)
    raise Abort(message, user=True)


def _stuck(ctx: Pass, cluster: dict) -> bool:
    started = parse_rfc3339((ctx.cond(cluster, "Started") or {}).get("lastTransitionTime"))
    return bool(started) and (ctx.now - started).total_seconds() > ctx.world.stuck_threshold_seconds


def _aggregate_progress(ctx: Pass, stage: dict, stuck: list[str]) -> None:
    if stuck:
        names = ", ".join(stuck[:3]) + (", ..." if len(stuck) > 3 else "")
        ctx.run_set("Progressing", "False", "UpdateRunStuck",
                    f"the updateRun is stuck waiting for {len(stuck)} cluster(s) in stage {stage['stageName']} "
                    f"to finish updating, please check placement status for potential errors: {names}")
    elif ctx.state == "Run":
        ctx.run_set("Progressing", "True", "UpdateRunProgressing", "the updateRun is progressing")


# Stage tasks (§4.9) ----------------------------------------------------------


def _before_tasks_done(ctx: Pass, stage: dict) -> bool:
    return all(_approval_task(ctx, stage, task, "beforeStage") for task in stage.get("beforeStageTaskStatus") or [])


def _approval_task(ctx: Pass, stage: dict, task: dict, task_type: str) -> bool:
    """Create the approval request once; consume its approval (ApprovalAccepted)."""
    created_reason, approved_reason = _REASONS[task_type]
    if ctx.true(task, "ApprovalRequestApproved"):
        return True
    name = task["approvalRequestName"]
    request = ctx.world.approvals.get(name)
    ctx.set(task, "ApprovalRequestCreated", "True", created_reason, "ApprovalRequest object is created")
    if request is None:
        ctx.actions.append(CreateApprovalRequest(name, stage["stageName"], task_type))
        return False
    if request.target_stage != stage["stageName"] or request.parent_run != ctx.world.run_name:
        raise Abort(f"the approval request task `{name}` is targeting update run `{request.parent_run}` "
                    f"stage `{request.target_stage}`, not this stage")
    conditions = list(request.conditions)
    approved = find_condition(conditions, "Approved")
    approved = (approved and approved.get("status") == "True" and approved.get("observedGeneration") == request.generation
                and request.policy_met)
    accepted = (find_condition(conditions, "ApprovalAccepted") or {}).get("status") == "True"
    if approved and not accepted:
        ctx.actions.append(AcceptApproval(name))
    if approved or accepted:
        ctx.set(task, "ApprovalRequestApproved", "True", approved_reason, "ApprovalRequest object is approved")
        return True
    return False


def _after_tasks(ctx: Pass, stage: dict, config: dict) -> tuple[bool, list[float]]:
    """(all done, seconds left on pending waits). Waits run while approvals are pending."""
    done, waits = True, []
    waiting_since = parse_rfc3339((ctx.cond(stage, "Progressing") or {}).get("lastTransitionTime"))
    for task_config, task in zip(config.get("afterStageTasks") or [], stage.get("afterStageTaskStatus") or [], strict=False):
        if task_config.get("type") == "TimedWait":
            if ctx.true(task, "WaitTimeElapsed"):
                continue
            left = wait_seconds(task_config.get("waitTime", "")) - (ctx.now - waiting_since).total_seconds()
            if left <= 0:
                ctx.set(task, "WaitTimeElapsed", "True", "AfterStageTaskWaitTimeElapsed", "wait time elapsed")
            else:
                done = False
                waits.append(left)
        elif not _approval_task(ctx, stage, task, "afterStage"):
            done = False
    return done, waits


def _complete_stage(ctx: Pass, stage: dict, config: dict) -> float:
    ctx.set(stage, "Progressing", "False", "StageUpdatingWaiting", "all clusters in the stage are updated, waiting for after-stage tasks")
    tasks = ", ".join(t.get("type", "") for t in config.get("afterStageTasks") or []) or "none"
    ctx.run_set("Progressing", "False", "UpdateRunWaiting",
                f"the updateRun is waiting for after-stage tasks ({tasks}) in stage {stage['stageName']} to complete")
    done, waits = _after_tasks(ctx, stage, config)
    if not done:
        return min(waits) if waits else STAGE_POLL
    ctx.run_set("Progressing", "True", "UpdateRunProgressing", "the updateRun is progressing")
    ctx.set(stage, "Progressing", "False", "StageUpdatingSucceeded", "stage update completed successfully")
    ctx.set(stage, "Succeeded", "True", "StageUpdatingSucceeded", "stage update completed successfully")
    ctx.stamp(stage, "endTime")
    return 0.0


# Deletion stage (§4.7) -------------------------------------------------------


def _execute_deletion_stage(ctx: Pass) -> float:
    deletion = ctx.status["deletionStageStatus"]
    ctx.stamp(deletion, "startTime")
    ctx.set(deletion, "Progressing", "True", "StageUpdatingStarted", "deleting clusters that left the placement")
    remaining = {b.cluster: b for b in ctx.world.bindings if b.state == "Unscheduled"}
    listed = {c["clusterName"] for c in deletion.get("clusters") or []}
    for name in remaining:
        if name not in listed:
            raise Abort(f"the to be deleted cluster `{name}` is not in the delete stage")
    for cluster in deletion.get("clusters") or []:
        binding = remaining.get(cluster["clusterName"])
        if binding is None:
            ctx.set(cluster, "Started", "True", "ClusterUpdatingStarted", "cluster deletion has started")
            ctx.set(cluster, "Succeeded", "True", "ClusterUpdatingSucceeded", "cluster resources are deleted")
            continue
        if ctx.true(cluster, "Succeeded"):
            raise Abort(f"the deleted cluster `{binding.cluster}` in the deleting stage still has a binding")
        if not ctx.true(cluster, "Started"):
            ctx.actions.append(DeleteBinding(binding.name, binding.cluster))
            ctx.set(cluster, "Started", "True", "ClusterUpdatingStarted", "cluster deletion has started")
    if remaining:
        ctx.run_set("Progressing", "True", "UpdateRunProgressing", "the updateRun is progressing")
        return 0.0  # our binding deletes finish at once: look again right away
    ctx.set(deletion, "Progressing", "False", "StageUpdatingSucceeded", "delete stage completed successfully")
    ctx.set(deletion, "Succeeded", "True", "StageUpdatingSucceeded", "delete stage completed successfully")
    ctx.stamp(deletion, "endTime")
    mark_run_succeeded(ctx)
    return None


# Stop (§4.10) ----------------------------------------------------------------


def stop(ctx: Pass, position: int) -> float | None:
    ctx.run_set("Progressing", "Unknown", "UpdateRunStopping", "the updateRun is stopping")
    if position >= len(ctx.stages):
        return _stop_deletion_stage(ctx)
    stage = ctx.stages[position]
    ctx.set(stage, "Progressing", "Unknown", "StageUpdatingStopping", "stage is stopping")
    bindings = _bindings(ctx)
    pending, stuck = 0, []
    for cluster in stage.get("clusters") or []:
        if not ctx.true(cluster, "Started") or ctx.cond(cluster, "Succeeded"):
            continue
        binding = bindings.get(cluster["clusterName"])
        try:
            if binding is None or not _binding_result(ctx, binding, cluster, stage):
                pending += 1
                if _stuck(ctx, cluster):
                    stuck.append(cluster["clusterName"])
        except Retry:
            pending += 1
    if stuck:
        _aggregate_progress(ctx, stage, stuck)
    if pending:
        return CLUSTER_POLL
    ctx.set(stage, "Progressing", "False", "StageUpdatingStopped", "stage is stopped")
    ctx.run_set("Progressing", "False", "UpdateRunStopped", "the updateRun is stopped")
    return None


def _stop_deletion_stage(ctx: Pass) -> float | None:
    deletion = ctx.status["deletionStageStatus"]
    ctx.set(deletion, "Progressing", "Unknown", "StageUpdatingStopping", "stage is stopping")
    remaining = {b.cluster for b in ctx.world.bindings if b.state == "Unscheduled"}
    for cluster in deletion.get("clusters") or []:
        if cluster["clusterName"] not in remaining and ctx.true(cluster, "Started"):
            ctx.set(cluster, "Succeeded", "True", "ClusterUpdatingSucceeded", "cluster resources are deleted")
    if any(c["clusterName"] in remaining and ctx.true(c, "Started") for c in deletion.get("clusters") or []):
        return CLUSTER_POLL
    ctx.set(deletion, "Progressing", "False", "StageUpdatingStopped", "stage is stopped")
    if remaining:
        return CLUSTER_POLL
    ctx.run_set("Progressing", "False", "UpdateRunStopped", "the updateRun is stopped")
    return None


# Outcomes (§4.12) --------------------------------------------------------------


def mark_run_succeeded(ctx: Pass) -> None:
    ctx.run_set("Progressing", "False", "UpdateRunSucceeded", "all stages completed")
    ctx.run_set("Succeeded", "True", "UpdateRunSucceeded", "the updateRun completed successfully")


def mark_run_failed(ctx: Pass, message: str, *, stage_position: int | None = None) -> None:
    """Fail the run; an execution abort also fails the stage it happened in."""
    if stage_position is not None:
        stages = ctx.stages
        stage = stages[stage_position] if stage_position < len(stages) else ctx.status.get("deletionStageStatus")
        if stage is not None:
            ctx.set(stage, "Progressing", "False", "StageUpdatingFailed", message)
            ctx.set(stage, "Succeeded", "False", "StageUpdatingFailed", message)
            stage.setdefault("endTime", rfc3339(ctx.now))
    ctx.run_set("Progressing", "False", "UpdateRunFailed", "stages are aborted due to a non-recoverable error")
    ctx.run_set("Succeeded", "False", "UpdateRunFailed", message)
