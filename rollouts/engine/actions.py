"""Carrying out a decision's actions (world.py) against the database: bind
clusters, create and accept approval requests, delete bindings, each with
its audit Event. The runner calls carry_out() inside a pass's transaction,
after the run row is locked."""

from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import IntegrityError, transaction

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.conditions import find_condition, set_condition
from rollouts.controllers import labels as L
from rollouts.controllers.family import Family
from rollouts.controllers.placement import with_rollout_started
from rollouts.members import connector_for
from rollouts.services.events import ENGINE, record

from .world import AcceptApproval, BindBinding, CreateApprovalRequest, DeleteBinding


@dataclass
class Written:
    """What carrying out a pass's actions wrote: the bindings it bound, as
    the rows a reload would now read (placement_bindings' dicts), and whether
    it wrote anything else a pass reads (an approval request, a deleted
    binding), which only a reload of the world shows."""

    bound: list[dict] = field(default_factory=list)
    other: bool = False

    @property
    def bindings_changed(self) -> bool:
        """Whether the placement's bindings changed (its status needs a refresh)."""
        return bool(self.bound) or self.other


def carry_out(actions: list, run, family: Family, rows: dict) -> Written:
    """Carry out the decision's actions, binds first, in the pass's transaction."""
    binds = [a for a in actions if isinstance(a, BindBinding)]
    written = Written(bound=bind_all(binds, family, rows, run) if binds else [])
    for action in actions:
        if isinstance(action, CreateApprovalRequest):
            _create_approval_request(run, family, action)
        elif isinstance(action, AcceptApproval):
            _accept_approval(rows["approvals"][action.name], run)
        elif isinstance(action, DeleteBinding):
            _delete_binding(family.binding.objects.get(pk=rows["bindings"][action.name]["pk"]), rows["placement"], run)
        else:
            continue
        written.other = True
    return written


def bind_all(actions: list[BindBinding], family: Family, rows: dict, run) -> list[dict]:
    """Bind every cluster this pass starts in two statements whatever their
    number: one update of them all, each only where its resourceVersion is
    still the one this pass read (compare-and-set: any other writer since
    fails the pass, which rolls back), then their events. Returns the rows
    as written (new dicts: the pass's rows are shared and never changed)."""
    seen = sorted(((rows["bindings"][a.name], a) for a in actions), key=lambda pair: pair[0]["pk"])
    bindings, events = [], []
    for row, action in seen:  # in id order, as the member agent writes them: no deadlock between the two
        binding = SimpleNamespace(pk=row["pk"], name=row["name"], namespace=run.namespace, spec=row["spec"],
                                  status=row["status"], generation=row["generation"],
                                  resource_version=row["resource_version"], target_cluster=row["target_cluster"])
        if action.spec is not None:
            binding.spec = {**binding.spec, **action.spec}
            binding.generation += 1
        binding.status = with_rollout_started(binding, message=action.message)
        bindings.append(binding)
        events.append(m.Event.row(
            time=clock.now(), actor=ENGINE, action=m.Event.Action.CONDITION, object_kind=family.binding.KIND,
            object_name=binding.name, object_namespace=binding.namespace, run=run.name, reason="RolloutStarted",
            message=action.message, details={"scope": "binding", "cluster": row["target_cluster"],
                                             "type": "RolloutStarted", "status": "True",
                                             "resourceSnapshotName": binding.spec.get("resourceSnapshotName")}))
    store.save_many(family.binding, bindings, ["spec", "status", "generation"])
    m.Event.objects.append_many(events)
    return [{"pk": b.pk, "name": b.name, "target_cluster": b.target_cluster, "generation": b.generation,
             "resource_version": b.resource_version, "spec": b.spec, "status": b.status, "cache": {}}
            for b in bindings]


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
