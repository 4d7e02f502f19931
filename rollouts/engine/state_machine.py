"""The staged update run state machine: given a run and the world it refers
to (`World`), decide what to do next (`Decision`). Pure: no ORM, no clock,
no I/O. One call is one reconcile pass of KubeFleet's controller
(staged-update-semantics.md §4.2); the runner loads the world, carries out
the actions and saves the status.

Steps of a pass:
1. Bump every condition's observedGeneration; strip waitTime from Approval tasks.
2. A terminal run (Initialized=False, or Succeeded set) is left alone.
3. Not initialized: initialize (§4.3); otherwise re-validate (§4.11), which
   also finds the stage to work on.
4. Dispatch on spec.state: Initialize waits, Run executes, Stop stops.
"""

import copy

from rollouts.controllers import labels as L

from . import execution, protection
from .context import Pass
from .stages import (
    Abort,
    Retry,
    Terminal,
    atoi,
    compute_stages,
    default_apply_strategy,
    deletion_stage,
    max_concurrency,
)
from .world import Decision, World

ALL_DONE = -1


def decide(world: World) -> Decision:
    """One pass over a run: the new status, the actions, when to look again."""
    ctx = Pass(world)
    decision = _decide(ctx)
    ctx.settle_transition_times()
    return decision


def _decide(ctx: Pass) -> Decision:
    world = ctx.world
    ctx.bump_observed_generations()
    ctx.strip_approval_wait_times()
    init = ctx.cond(ctx.status, "Initialized")
    if init and init.get("status") == "False":
        return Decision(ctx.status)
    if not (init and init.get("status") == "True"):
        try:
            _initialize(ctx)
        except Retry as exc:
            return Decision(copy.deepcopy(world.status), retry_error=str(exc))
        except Terminal as exc:
            ctx.run_set("Initialized", "False", "UpdateRunInitializedFailed", str(exc))
            return Decision(ctx.status)
        except protection.Unprotected as exc:
            ctx.run_set("Initialized", "False", protection.UNPROTECTED_REASON, str(exc))
            return Decision(ctx.status)
        ctx.run_set("Initialized", "True", "UpdateRunInitializedSuccessfully", "the updateRun is initialized successfully")
        position = 0
    else:
        if ctx.cond(ctx.status, "Succeeded"):
            return Decision(ctx.status)
        try:
            position = _validate(ctx)
        except Retry as exc:
            return Decision(ctx.status, retry_error=str(exc))
        except (Terminal, Abort) as exc:
            execution.mark_run_failed(ctx, str(exc))
            return Decision(ctx.status, ctx.actions)
    if position == ALL_DONE:
        execution.mark_run_succeeded(ctx)
        return Decision(ctx.status, ctx.actions)
    return _dispatch(ctx, position)


def _dispatch(ctx: Pass, position: int) -> Decision:
    if ctx.state == "Initialize":
        return Decision(ctx.status, ctx.actions)
    try:
        if ctx.state == "Stop":
            requeue = execution.stop(ctx, position)
        else:
            requeue = execution.execute(ctx, position)
    except Abort as exc:
        execution.mark_run_failed(ctx, str(exc), stage_position=position)
        return Decision(ctx.status, ctx.actions)
    except Retry as exc:
        return Decision(ctx.status, ctx.actions, requeue_after=None, retry_error=str(exc))
    return Decision(ctx.status, ctx.actions, requeue_after=requeue)


# Initialization (§4.3) ----------------------------------------------------


def _placement_spec(ctx: Pass) -> dict:
    placement = ctx.world.placement
    if placement is None:
        raise Terminal("parent placement not found")
    spec = copy.deepcopy(placement.get("spec") or {})
    spec.setdefault("policy", {"placementType": "PickAll"})
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    strategy["applyStrategy"] = default_apply_strategy(strategy.get("applyStrategy"))
    if strategy["type"] != "External":
        raise Terminal(
            f"parent placement does not have an external rollout strategy, current strategy: {strategy['type']}"
        )
    return spec


def _latest_policy_snapshot(ctx: Pass, placement_spec: dict):
    """(latest policy snapshot, its index label, expected cluster count or -1)."""
    latest = [s for s in ctx.world.policy_snapshots if s.labels.get(L.IS_LATEST) == "true"]
    if not latest:
        raise Terminal("no latest policy snapshot found", user=False)
    if len(latest) > 1:
        raise Terminal("multiple active policy snapshots found", user=False)
    snapshot = latest[0]
    index = snapshot.labels.get(L.POLICY_INDEX)
    if not index:
        raise Terminal(f"policy snapshot `{snapshot.name}` does not have a policy index label", user=False)
    policy = placement_spec.get("policy") or {}
    expected = -1
    if policy.get("placementType") == "PickN":
        count = atoi(snapshot.annotations.get(L.NUMBER_OF_CLUSTERS))
        if count is None or count < 0:
            raise Terminal(f"policy snapshot `{snapshot.name}` doesn't have valid cluster count annotation", user=False)
        expected = count
    elif policy.get("placementType") == "PickFixed":
        expected = len(policy.get("clusterNames") or [])
    scheduled = next((c for c in snapshot.conditions if c.get("type") == "Scheduled"), None)
    if not scheduled or scheduled.get("status") != "True" or scheduled.get("observedGeneration") != snapshot.generation:
        raise Terminal(f"policy snapshot `{snapshot.name}` not fully scheduled yet")
    return snapshot, index, expected


def _classify_bindings(ctx: Pass, policy_snapshot, expected: int) -> tuple[list, list]:
    """(selected bindings, to-be-deleted bindings) for the latest policy snapshot."""
    selected, to_delete = [], []
    for binding in ctx.world.bindings:
        unscheduled = binding.state == "Unscheduled"
        if binding.policy_snapshot == policy_snapshot.name or unscheduled:
            (to_delete if unscheduled else selected).append(binding)
        else:
            raise Retry(f"the binding `{binding.name}` has not been scheduled to the latest policy snapshot yet")
    if not selected and not to_delete:
        raise Terminal("no scheduled or to-be-deleted bindings found for the latest policy snapshot")
    if expected != -1 and len(selected) != expected:
        raise Terminal(
            f"the number of selected bindings {len(selected)} is not equal to the observed cluster count {expected}",
            user=False,
        )
    return selected, to_delete


def _initialize(ctx: Pass) -> None:
    world, status = ctx.world, ctx.status
    placement_spec = _placement_spec(ctx)
    status["appliedStrategy"] = placement_spec["strategy"]["applyStrategy"]
    snapshot, index, expected = _latest_policy_snapshot(ctx, placement_spec)
    status["policySnapshotIndexUsed"] = index
    status["policyObservedClusterCount"] = expected
    selected, to_delete = _classify_bindings(ctx, snapshot, expected)
    if expected == -1:
        status["policyObservedClusterCount"] = len(selected)
    if world.strategy is None:
        raise Terminal("referenced updateStrategy not found")
    status["stagedUpdateStrategySnapshot"] = copy.deepcopy(world.strategy)
    ctx.strip_approval_wait_times()
    status["stagesStatus"] = compute_stages(
        world.run_name, world.spec.get("stagedRolloutStrategyName", ""), status["stagedUpdateStrategySnapshot"],
        [b.cluster for b in selected], world.member_labels,
    )
    status["deletionStageStatus"] = deletion_stage([b.cluster for b in to_delete])
    status["resourceSnapshotIndexUsed"] = _resolve_resource_snapshot(ctx)
    _check_protected(ctx)


def _check_protected(ctx: Pass) -> None:
    """Fail a run whose stages update clusters an approval policy on the
    placement or on clusters protects with no gate before them: the labels
    or the placement's clusters may have changed since the run was created
    (where it was checked too)."""
    world, status = ctx.world, ctx.status
    if not world.protections:
        return
    stages = status["stagedUpdateStrategySnapshot"].get("stages") or []
    clusters = [[c["clusterName"] for c in entry["clusters"]] for entry in status["stagesStatus"]]
    _, missing = protection.gate_protections(stages, clusters, world.member_labels, world.protections)
    if missing:
        stage, unprotected = missing[0]
        strategy = world.spec.get("stagedRolloutStrategyName", "")
        raise protection.Unprotected("cannot start the updateRun: "
                                     + protection.unprotected_message(strategy, stage, unprotected))


def _resolve_resource_snapshot(ctx: Pass) -> str:
    """The index of the master snapshot the run rolls out (§4.5)."""
    world = ctx.world
    index = world.spec.get("resourceSnapshotIndex") or ""
    where = f"`{world.namespace}/{(world.placement or {}).get('name', '')}`"
    if index:
        number = atoi(index)
        if number is None or number < 0:
            raise Terminal(f"invalid resource snapshot index `{index}` provided, expected an integer >= 0")
        found = [s for s in world.resource_snapshots if s.labels.get(L.RESOURCE_INDEX) == index]
        if not found:
            raise Terminal(f"no resourceSnapshots with index `{index}` found for placement {where}")
    else:
        # Fleet UI snapshots on every change, so an empty index means the latest (compatibility.md).
        found = [s for s in world.resource_snapshots if s.labels.get(L.IS_LATEST) == "true"]
        if not found:
            raise Terminal(f"no latest resourceSnapshot found for placement {where}")
    master = next((s for s in found if L.RESOURCE_HASH in s.annotations), None)
    if master is None:
        raise Terminal("no master resourceSnapshot found for placement", user=False)
    return master.labels.get(L.RESOURCE_INDEX, "")


# Re-validation on every pass (§4.11) ---------------------------------------


def _validate(ctx: Pass) -> int:
    """Recompute the world and compare it with what was recorded; return the
    position to work on (a stage index, len(stages) for the deletion stage,
    or ALL_DONE)."""
    status = ctx.status
    placement_spec = _placement_spec(ctx)
    if placement_spec["strategy"]["applyStrategy"] != status.get("appliedStrategy"):
        raise Terminal("the applyStrategy in the updateRun is outdated")
    snapshot, index, expected = _latest_policy_snapshot(ctx, placement_spec)
    if index != status.get("policySnapshotIndexUsed"):
        raise Terminal("the policy snapshot index used in the updateRun is outdated")
    if expected != -1 and expected != status.get("policyObservedClusterCount"):
        raise Terminal("the cluster count initialized in the updateRun is outdated")
    selected, to_delete = _classify_bindings(ctx, snapshot, expected)
    for field, label in (("stagedUpdateStrategySnapshot", "updateStrategySnapshot"), ("stagesStatus", "stagesStatus"),
                         ("deletionStageStatus", "deletionStageStatus")):
        if status.get(field) is None:
            raise Terminal(f"nil {label}", user=False)
    fresh = _stages_of(ctx, [b.cluster for b in selected])
    _compare_stages(fresh, ctx.stages)
    listed = {c["clusterName"] for c in status["deletionStageStatus"].get("clusters") or []}
    for binding in to_delete:
        if binding.cluster not in listed:
            raise Terminal(f"the cluster `{binding.cluster}` to be deleted is not in the delete stage", user=False)
    return _current_position(ctx)


def _stages_of(ctx: Pass, selected: list[str]) -> list[dict]:
    """compute_stages for the run's recorded strategy snapshot, once per
    selection for the worlds an advance derives from one load (the labels
    and the snapshot are the same in all of them). Read only."""
    world = ctx.world
    key = ("stages", tuple(selected))
    if key not in world.derived:
        world.derived[key] = compute_stages(world.run_name, world.spec.get("stagedRolloutStrategyName", ""),
                                            ctx.status["stagedUpdateStrategySnapshot"], selected, world.member_labels)
    return world.derived[key]


def _compare_stages(fresh: list[dict], recorded: list[dict]) -> None:
    if len(fresh) != len(recorded):
        raise Terminal("the number of stages in the updateRun has changed")
    for i, (new, old) in enumerate(zip(fresh, recorded, strict=True)):
        if new["stageName"] != old.get("stageName"):
            raise Terminal(f"index `{i}` stage name in the updateRun has changed")
        if len(new["clusters"]) != len(old.get("clusters") or []):
            raise Terminal(f"the number of clusters in index `{i}` stage has changed")
        for j, (a, b) in enumerate(zip(new["clusters"], old["clusters"], strict=True)):
            if a["clusterName"] != b.get("clusterName"):
                raise Terminal(f"the `{j}` cluster in the `{i}` stage has changed")


def _current_position(ctx: Pass) -> int:
    updating, last_finished = -1, -1
    for i, stage in enumerate(ctx.stages):
        succeeded = ctx.cond(stage, "Succeeded")
        if succeeded and succeeded.get("status") == "False":
            raise Terminal(f"the stage `{stage['stageName']}` has failed", user=False)
        if succeeded and succeeded.get("status") == "True":
            _check_finished_stage(ctx, i, stage, updating, last_finished)
            last_finished = i
        elif ctx.cond(stage, "Progressing") is not None:
            _check_updating_stage(ctx, i, stage, updating, last_finished)
            updating = i
    deletion = ctx.status["deletionStageStatus"]
    if updating == -1:
        updating = last_finished + 1
    if updating < len(ctx.stages) and deletion.get("conditions"):
        raise Terminal("the delete stage is active while there are still update stages", user=False)
    deleted = ctx.cond(deletion, "Succeeded")
    if deleted and deleted.get("status") == "False":
        raise Terminal("the delete stage has failed", user=False)
    if deleted and deleted.get("status") == "True":
        return ALL_DONE
    return updating


def _check_finished_stage(ctx: Pass, i: int, stage: dict, updating: int, last_finished: int) -> None:
    name = stage["stageName"]
    if updating != -1:
        raise Terminal(f"the finished stage `{name}` is after the updating stage", user=False)
    if last_finished != i - 1:
        raise Terminal(f"the finished stage `{name}` is not right after the last finished stage", user=False)
    for cluster in stage.get("clusters") or []:
        if not ctx.true(cluster, "Succeeded"):
            raise Terminal(f"cluster `{cluster['clusterName']}` in the finished stage `{name}` has not succeeded", user=False)


def _check_updating_stage(ctx: Pass, i: int, stage: dict, updating: int, last_finished: int) -> None:
    name = stage["stageName"]
    if updating != -1:
        raise Terminal(f"the stage `{name}` is updating while another stage is updating", user=False)
    if last_finished != i - 1:
        raise Terminal(f"the updating stage `{name}` is not right after the last finished stage", user=False)
    config = ctx.strategy_stages[i] if i < len(ctx.strategy_stages) else {}
    clusters = stage.get("clusters") or []
    limit = max_concurrency(config.get("maxConcurrency"), len(clusters))
    in_flight = [c for c in clusters if ctx.true(c, "Started") and not ctx.true(c, "Succeeded")]
    if len(in_flight) > limit:
        raise Terminal(f"the number of updating clusters in stage `{name}` exceeds maxConcurrency", user=False)
