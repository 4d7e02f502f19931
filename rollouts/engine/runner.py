"""The thin layer around the state machine: load a run's world with a fixed
number of queries, decide, carry out the actions, save with compare-and-set,
and record every condition change as an Event row.

run_advance() is the single "advance this run" entry point; it is
idempotent: calling it again right away changes nothing.
"""

import logging
import time
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from rollouts import changes, clock, metrics
from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import Conflict
from rollouts.conditions import find_condition, is_true, set_condition
from rollouts.controllers import labels as L
from rollouts.controllers.family import FAMILIES, Family, family_of
from rollouts.controllers.placement import placement_status_refresh, with_rollout_started
from rollouts.members import connector_for
from rollouts.mirror.marks import local_only
from rollouts.selectors import freezes as freeze_selectors
from rollouts.services import policies, policy_scope
from rollouts.services.events import ENGINE, record

from . import timeline
from .freezes import FreezeInfo, holding
from .state_machine import decide
from .world import (
    AcceptApproval,
    ApprovalView,
    BindBinding,
    BindingView,
    CreateApprovalRequest,
    Decision,
    DeleteBinding,
    PolicySnapshotView,
    ResourceSnapshotView,
    World,
)

log = logging.getLogger(__name__)
MAX_IMMEDIATE_PASSES = 100  # bounds one advance; the next tick goes on from there


def run_finalize(*, run) -> None:
    """What the run's finalizer does on delete (§4.15): remove the approval
    requests labelled with its name; bindings stay as they are."""
    family = family_of(run)
    for request in family.approval_request.objects.filter(namespace=run.namespace):
        if request.labels.get(L.TARGET_UPDATE_RUN) == run.name:
            request.delete()


def active_runs() -> list[tuple[Family, int]]:
    """Active runs of our own hub (a mirrored run is its hub's controller's)."""
    return [(family, pk) for family in FAMILIES
            for pk in local_only(family.run.objects.filter(active=True)).values_list("pk", flat=True)]


def run_advance(*, family: Family, pk: int, woken_at: float | None = None,
                freezes: list[FreezeInfo] | None = None) -> Decision | None:
    """Advance one run as far as it can go now: pass after pass while a pass
    changes something (a finished cluster lets the next start at once, a
    completed stage lets the next begin). Returns the last decision, or None
    when the run is gone or another writer got there first. `woken_at` (Unix
    time) is when a writer asked for this advance, for the wake-up lag metric.
    `freezes`: the freezes holding now, read once by a tick for all its runs;
    None: read here (one query)."""
    if woken_at is not None:
        metrics.engine_woken(seconds=time.time() - woken_at, path="celery")
    decision, placement = None, None
    try:
        for _ in range(MAX_IMMEDIATE_PASSES):
            started = time.perf_counter()
            decision, changed, touched = _one_pass(family, pk, freezes)
            metrics.engine_pass_finished(seconds=time.perf_counter() - started, changed=changed)
            placement = touched or placement
            if decision is None or not changed:
                break
    except Conflict:
        log.info("run %s changed under us; the next pass picks it up", pk)
        decision = None
    if placement is not None:  # once per advance, not per pass: it reads every binding
        with transaction.atomic():
            placement_status_refresh(placement, family)
            changes.publish(changes.ClustersBound())
    if decision is not None:
        _schedule_next_look(family, pk, decision)
    return decision


def _schedule_next_look(family: Family, pk: int, decision: Decision) -> None:
    """Record when the run wants another pass. Written only when it moves
    earlier or the old time has passed, so an idle run costs no writes."""
    if decision.requeue_after is None:
        family.run.objects.filter(pk=pk).exclude(wake_at=None).update(wake_at=None)
        return
    wanted = clock.now() + timedelta(seconds=decision.requeue_after)
    family.run.objects.filter(pk=pk).filter(
        Q(wake_at=None) | Q(wake_at__lte=clock.now()) | Q(wake_at__gt=wanted)
    ).update(wake_at=wanted)


def due_runs() -> list[tuple[Family, int]]:
    """Active runs whose next look is due."""
    now = clock.now()
    return [(family, pk) for family in FAMILIES
            for pk in local_only(family.run.objects.filter(active=True, wake_at__lte=now)).values_list("pk", flat=True)]


_retry_logged: dict[tuple, str] = {}  # (run kind, pk) -> the retryable error this process logged last


def _log_retry(run, error: str) -> None:
    """Log a retryable error (a failing cluster…) when it appears or
    changes, not on every pass that meets it again (every tick while a
    cluster keeps failing)."""
    key = (run.KIND, run.pk)
    if not error:
        _retry_logged.pop(key, None)
        return
    if _retry_logged.get(key) != error:
        if len(_retry_logged) > 10_000:  # bounded: runs that finished while failing leave entries
            _retry_logged.clear()
        _retry_logged[key] = error
        log.info("run %s: %s", run.name, error)


def _one_pass(family: Family, pk: int, freezes: list[FreezeInfo] | None = None) -> tuple[Decision | None, bool, object]:
    """One locked pass: (decision, whether it changed anything, the placement
    whose bindings it wrote or None)."""
    with transaction.atomic():
        run = family.run.objects.select_for_update().filter(pk=pk).first()
        if run is None:
            return None, False, None
        world, rows = load_world(run, family, freezes=freezes)
        decision = decide(world)
        _log_retry(run, decision.retry_error)
        touched = _carry_out(decision.actions, run, family, rows)
        changed = _save(run, decision, world) or bool(decision.actions)
    return decision, changed, (rows["placement"] if touched else None)


def load_world(run, family: Family, now=None, freezes: list[FreezeInfo] | None = None) -> tuple[World, dict]:
    """The run's world (six queries at most, seven when initializing: the
    approval policies on its placement and clusters; plus two while a gate
    with an approval policy waits with Approved=True; one for the freezes
    holding now unless `freezes` is given, plus one while a freeze holds the
    run and it has gates: their break-glass approvals) and the rows behind it."""
    spec, status = run.spec or {}, run.status or {}
    now = now or clock.now()
    if freezes is None:
        freezes = freeze_selectors.freezes_holding(now)
    placement = family.placement.objects.filter(namespace=run.namespace, name=spec.get("placementName", "")).first()
    policy_snapshots = list(family.policy_snapshot.objects.filter(owner=placement)) if placement else []
    bindings = list(family.binding.objects.filter(owner=placement).values(*_BINDING_FIELDS)) if placement else []
    # Only this placement's clusters: the stages, the gates and the policies
    # look at no other member, and a hub holds ten times more than one placement.
    members = dict(m.MemberCluster.objects.filter(name__in={b["target_cluster"] for b in bindings})
                   .values_list("name", "labels")) if bindings else {}
    initialized = is_true(status.get("conditions"), "Initialized")
    strategy = snapshots = None
    protections = []
    if not initialized:
        strategy = family.strategy.objects.filter(namespace=run.namespace, name=spec.get("stagedRolloutStrategyName", "")).first()
        snapshots = list(family.resource_snapshot.objects.filter(owner=placement)) if placement else []
        protections = policy_scope.as_protections(policy_scope.policies_in_scope(run))
    names = timeline.approval_request_names(status)
    approvals = list(family.approval_request.objects.filter(namespace=run.namespace, name__in=names)) if names else []
    unmet = _unmet_policies(run, family, approvals, members)
    frozen = holding(freezes, placement.labels) if placement else None
    broken = _break_glass_approved(family, run, approvals) if frozen else set()
    world = World(
        run_name=run.name,
        namespace=run.namespace,
        generation=run.generation,
        spec=spec,
        status=status,
        now=now,
        placement={"name": placement.name, "spec": placement.spec} if placement else None,
        policy_snapshots=[_policy_view(p) for p in policy_snapshots],
        bindings=[_binding_view(b) for b in bindings],
        member_labels=members,
        strategy=strategy.spec if strategy else None,
        resource_snapshots=[ResourceSnapshotView(s.name, s.labels, s.annotations) for s in snapshots or []],
        approvals={a.name: _approval_view(a, policy_met=a.name not in unmet, break_glass=a.name in broken)
                   for a in approvals},
        protections=protections,
        frozen=frozen,
    )
    rows = {"placement": placement, "bindings": {b["name"]: b for b in bindings}, "approvals": {a.name: a for a in approvals}}
    return world, rows


def _policy_view(p) -> PolicySnapshotView:
    return PolicySnapshotView(p.name, p.labels, p.annotations, p.generation, tuple((p.status or {}).get("conditions") or []))


_BINDING_FIELDS = ("pk", "name", "target_cluster", "generation", "resource_version", "spec", "status")


def _binding_view(b: dict) -> BindingView:
    spec = b["spec"] or {}
    return BindingView(
        name=b["name"],
        cluster=b["target_cluster"],
        state=spec.get("state", ""),
        policy_snapshot=spec.get("schedulingPolicySnapshotName", ""),
        resource_snapshot=spec.get("resourceSnapshotName", ""),
        apply_strategy=spec.get("applyStrategy"),
        cluster_resource_override_snapshots=spec.get("clusterResourceOverrideSnapshots"),
        resource_override_snapshots=spec.get("resourceOverrideSnapshots"),
        generation=b["generation"],
        conditions=tuple((b["status"] or {}).get("conditions") or []),
    )


def _approval_view(a, *, policy_met: bool = True, break_glass: bool = False) -> ApprovalView:
    spec = a.spec or {}
    return ApprovalView(a.name, spec.get("parentStageRollout", ""), spec.get("targetStage", ""), a.generation,
                        tuple((a.status or {}).get("conditions") or []), policy_met, break_glass)


def _break_glass_approved(family: Family, run, approvals: list) -> set[str]:
    """Names of the run's approved requests opened by a confirmed break-glass (one query)."""
    approved = [a.name for a in approvals if a.condition_status("Approved") == "True"]
    if not approved:
        return set()
    return set(m.BreakGlass.objects.filter(request_kind=family.approval_request.KIND, request_namespace=run.namespace,
                                           request_name__in=approved).exclude(confirmed_at=None)
               .values_list("request_name", flat=True))


def _unmet_policies(run, family: Family, approvals: list, member_labels: dict) -> set[str]:
    """Names of the approved-but-not-accepted requests whose gate has an
    approval policy its votes do not meet (Approved=True written by hand, in
    the admin or the database). The gate is the one the run's status names
    the request for, never its labels. Two queries at most, and only while
    such a request waits: the policies in scope of the run, then their votes."""
    waiting = [a for a in approvals if a.condition_status("Approved") == "True"
               and a.condition_status("ApprovalAccepted") != "True"]
    if not waiting:
        return set()
    governed = {name: requirement for name, (_, requirement) in
                policy_scope.requirements(run, waiting, member_labels=member_labels).items() if requirement is not None}
    if not governed:
        return set()
    votes: dict[str, list] = {}
    for vote in m.ApprovalVote.objects.filter(request_kind=family.approval_request.KIND, request_namespace=run.namespace,
                                              request_name__in=list(governed)):
        votes.setdefault(vote.request_name, []).append(vote)
    return {name for name, requirement in governed.items()
            if not policies.quorum_met(votes.get(name, []), run_uid=str(run.uid), quorum=requirement.quorum)}


def _carry_out(actions: list, run, family: Family, rows: dict) -> bool:
    """Carry out the decision's actions; returns whether bindings changed."""
    binds = [a for a in actions if isinstance(a, BindBinding)]
    if binds:
        _bind_all(binds, family, rows, run)
    for action in actions:
        if isinstance(action, CreateApprovalRequest):
            _create_approval_request(run, family, action)
        elif isinstance(action, AcceptApproval):
            _accept_approval(rows["approvals"][action.name], run)
        elif isinstance(action, DeleteBinding):
            _delete_binding(family.binding.objects.get(pk=rows["bindings"][action.name]["pk"]), rows["placement"], run)
    return bool(binds) or any(isinstance(a, DeleteBinding) for a in actions)


def _bind_all(actions: list[BindBinding], family: Family, rows: dict, run) -> None:
    """Bind every cluster this pass starts in three queries whatever their
    number: lock the rows and check nobody wrote them since we read them
    (compare-and-set), write them in one bulk update, append their events."""
    seen = [rows["bindings"][a.name] for a in actions]
    locked = family.binding.objects.select_for_update().in_bulk([row["pk"] for row in seen])
    if any(row["pk"] not in locked or locked[row["pk"]].resource_version != row["resource_version"] for row in seen):
        raise Conflict(family.binding.PLURAL, run.name)
    bindings = [locked[row["pk"]] for row in seen]
    versions = store.next_versions(family.binding, len(bindings))
    events = []
    for binding, action, version in zip(bindings, actions, versions, strict=True):
        if action.spec is not None:
            binding.spec = {**binding.spec, **action.spec}
            binding.generation += 1
        binding.status = with_rollout_started(binding, message=action.message)
        binding.resource_version = version
        events.append(m.Event(
            time=clock.now(), actor=ENGINE, action=m.Event.Action.CONDITION, object_kind=binding.KIND,
            object_name=binding.name, object_namespace=binding.namespace, run=run.name, reason="RolloutStarted",
            message=action.message, details={"scope": "binding", "cluster": binding.target_cluster,
                                             "type": "RolloutStarted", "status": "True",
                                             "resourceSnapshotName": binding.spec.get("resourceSnapshotName")}))
    store.rows_update(family.binding, bindings, ["spec", "status", "generation", "resource_version"])
    m.Event.objects.bulk_create(events)


def _create_approval_request(run, family: Family, action: CreateApprovalRequest) -> None:
    request = family.approval_request(
        name=action.name,
        namespace=run.namespace,
        creation_timestamp=clock.now(),
        labels={
            L.TARGET_UPDATE_RUN: run.name,
            L.TARGET_UPDATING_STAGE: action.stage,
            L.TASK_TYPE: action.task_type,
            L.IS_LATEST_UPDATE_RUN_APPROVAL: "true",
        },
        spec={"parentStageRollout": run.name, "targetStage": action.stage},
    )
    try:
        with transaction.atomic():
            request.save(force_insert=True)
    except IntegrityError:
        return  # created by someone else since we looked: the next pass reads it
    record(actor=ENGINE, action=m.Event.Action.CREATED, kind_name=request.KIND, name=request.name,
           namespace=request.namespace, run=run.name, reason="ApprovalRequestCreated",
           message=f"waiting for approval of {action.task_type} tasks of stage {action.stage}",
           details={"stage": action.stage, "taskType": action.task_type})


def _accept_approval(request, run) -> None:
    conditions = [dict(c) for c in (request.status or {}).get("conditions") or []]
    message = "the approval request has been approved and cannot be reverted"
    set_condition(conditions, type="ApprovalAccepted", status="True", reason="ApprovalRequestApprovalAccepted",
                  message=message, observed_generation=request.generation, now=clock.now())
    request.status = {**(request.status or {}), "conditions": conditions}
    store.save(request, spec_changed=False)
    approved = find_condition(conditions, "Approved") or {}
    record(actor=ENGINE, action=m.Event.Action.CONDITION, kind_name=request.KIND, name=request.name,
           namespace=request.namespace, run=run.name, reason="ApprovalRequestApprovalAccepted", message=message,
           details={"scope": "approvalRequest", "type": "ApprovalAccepted", "status": "True",
                    "approvedMessage": approved.get("message", "")})


def _delete_binding(binding, placement, run) -> None:
    member = m.MemberCluster.objects.filter(name=binding.target_cluster).first()
    if member is not None and placement is not None:
        connector_for(member).remove(member, placement=placement.name)
    binding.delete()
    record(actor=ENGINE, action=m.Event.Action.DELETED, kind_name=binding.KIND, name=binding.name,
           namespace=binding.namespace, run=run.name, reason="DeleteStage",
           message=f"removed the placement's resources from {binding.target_cluster}",
           details={"scope": "binding", "cluster": binding.target_cluster})


def _save(run, decision: Decision, world: World) -> bool:
    """Save the run if the pass changed it; returns whether it did."""
    changed = False
    if L.RUN_FINALIZER not in (run.finalizers or []):
        run.finalizers = [*(run.finalizers or []), L.RUN_FINALIZER]
        changed = True
    conditions = decision.status.get("conditions") or []
    active = not (find_condition(conditions, "Succeeded") or
                  (find_condition(conditions, "Initialized") or {}).get("status") == "False")
    if decision.status != (run.status or {}) or active != run.active:
        timeline.record_transitions(run, world.status or {}, decision.status, now=world.now)
        metrics.run_status_changed(run=run, before=world.status or {}, after=decision.status, now=world.now)
        run.status, run.active = decision.status, active
        run.finished_at = None if active else (run.finished_at or world.now)
        changes.publish(changes.RunChanged.of(run, changes.Origin.ENGINE))
        changed = True
    if changed:
        store.save(run, spec_changed=False)
    return changed
