"""Human writes to hub objects: apply, patch, delete. Each is one transaction:
a multi-document apply with one bad document applies none of them."""

import copy
from dataclasses import dataclass

import jsonpatch
from django.db import transaction

from rollouts import changes
from rollouts import models as m
from rollouts.api import last_applied, store
from rollouts.api.errors import BadRequest, Invalid
from rollouts.api.kinds import Kind, KindRegistry
from rollouts.api.strategic import strategic_merge
from rollouts.api.validation import validate, validate_status
from rollouts.controllers import placement as placement_controller
from rollouts.controllers.family import APPROVAL_KINDS, PLACEMENT_KINDS, RUN_KINDS, STRATEGY_KINDS
from rollouts.engine import runner
from rollouts.mirror.marks import require_local
from rollouts.selectors import freezes as freeze_selectors
from rollouts.selectors.preflight import Plan, run_plan

from . import events, policies, policy_scope

_STRATEGY_MODELS = (m.ClusterStagedUpdateStrategy, m.StagedUpdateStrategy)
_RUN_MODELS = (m.ClusterStagedUpdateRun, m.StagedUpdateRun)

PARENT_LABEL = "kubernetes-fleet.io/parent-CRP"
_PLACEMENT_OF = {
    m.ClusterSchedulingPolicySnapshot: m.ClusterResourcePlacement,
    m.ClusterResourceSnapshot: m.ClusterResourcePlacement,
    m.ClusterResourceBinding: m.ClusterResourcePlacement,
    m.SchedulingPolicySnapshot: m.ResourcePlacement,
    m.ResourceSnapshot: m.ResourcePlacement,
    m.ResourceBinding: m.ResourcePlacement,
}


@dataclass
class ApplyResult:
    kind: Kind
    obj: object
    outcome: str  # created | configured | unchanged
    dry_run: bool = False
    plan: Plan | None = None  # a dry run's pre-flight of a new update run

    def __str__(self):
        text = f"{self.kind.singular}{'.' + self.kind.group if self.kind.group else ''}/{self.obj.name} {self.outcome}"
        return text + (" (server dry run)" if self.dry_run else "")


def manifests_apply(*, docs: list[dict], actor: str, namespace: str | None = None, client_address: str = "",
                    via: str = "", dry_run: bool = False) -> list[ApplyResult]:
    """Create or update every document, all or nothing, then let the placement
    controllers react. `namespace` is the default for namespaced documents.

    A new update run whose strategy has no gate before clusters that an
    approval policy on its placement or on clusters protects is refused
    (policy_scope.RunUnprotected), nothing is applied, and the refusal is
    recorded as a `denied` Event (with `client_address` and `via`).

    `dry_run` (kubectl's --dry-run=server) validates and applies everything
    in one transaction that is then rolled back: nothing is stored, no Event
    or denial is recorded, nothing is published. Each new update run gets
    its pre-flight (selectors.preflight.run_plan) as `plan`, computed before
    the rollback so strategies in the same documents count."""
    try:
        with transaction.atomic():
            registry = KindRegistry()
            results = []
            for doc in docs:
                kind = registry.for_manifest(doc["apiVersion"], doc["kind"])
                results.append(_apply_one(kind, doc, actor=actor, default_namespace=namespace, via=via))
                if kind.kind == "CustomResourceDefinition":
                    registry = KindRegistry()
            if dry_run:
                for result in results:
                    _dry_run_plan(result)
                transaction.set_rollback(True)
                return results
            _reconcile_after([(r.kind, r.obj) for r in results if r.outcome != "unchanged"])
            _publish_changes(results)
    except policy_scope.RunUnprotected as exc:
        if dry_run:
            raise
        policies.denial_record(kind_name=exc.kind_name, name=exc.run, namespace=exc.namespace, run=exc.run,
                               actor=actor, reason=str(exc), attempted="create run", client_address=client_address,
                               via=via, policy=exc.policy)
        raise
    return results


def _dry_run_plan(result: ApplyResult) -> None:
    """Mark `result` as a dry run's; a new run gets its pre-flight."""
    result.dry_run = True
    if result.outcome == "created" and result.kind.model in _RUN_MODELS:
        spec = result.obj.spec or {}
        result.plan = run_plan(placement=spec.get("placementName", ""), namespace=result.obj.namespace,
                               strategy=spec.get("stagedRolloutStrategyName", ""),
                               snapshot_index=spec.get("resourceSnapshotIndex", ""))


def _namespace_for(kind: Kind, doc: dict, default: str | None) -> str:
    given = (doc.get("metadata") or {}).get("namespace")
    if not kind.namespaced:
        if given:
            raise Invalid(kind.kind, str(doc["metadata"].get("name", "")),
                          [("metadata.namespace", f"Forbidden: {kind.kind} is cluster-scoped and takes no namespace")])
        return ""
    if given and default and given != default:
        raise BadRequest(
            f"the namespace from the provided object \"{given}\" does not match the namespace \"{default}\". "
            "You must pass '--namespace=" + given + "' to perform this operation."
        )
    return given or default or "default"


def _apply_one(kind: Kind, doc: dict, *, actor: str, default_namespace: str | None, via: str = "") -> ApplyResult:
    namespace = _namespace_for(kind, doc, default_namespace)
    doc = copy.deepcopy(doc)
    doc.setdefault("metadata", {})
    name = doc["metadata"].get("name")
    existing = store.find(kind, name, namespace) if isinstance(name, str) and name else None
    if existing is None:
        validate(kind, doc)
        _remember_applied(doc)
        store.require_namespace(kind, namespace)
        if kind.model in _RUN_MODELS:
            policy_scope.run_protection_check(kind=kind, name=name, namespace=namespace, spec=doc.get("spec") or {})
        obj = store.new_object(kind, doc, namespace=namespace, owner=_owner_for(kind, doc, namespace))
        store.create(obj, kind)
        events.record_object(obj, kind, m.Event.Action.CREATED, actor=actor, details=events.via_details(via))
        _sync_policies(kind, obj)
        return ApplyResult(kind, obj, "created")
    require_local(existing)
    store.check_resource_version(existing, kind, doc)
    before = store.to_manifest(existing, kind)
    merged = last_applied.three_way_merge(doc, before)
    validate(kind, merged, old=before)
    # Only the annotation differs (the same file again, or `get -o yaml`
    # applied back): nothing to store, as the tutorial expects `unchanged`.
    if last_applied.without_last_applied(merged) == last_applied.without_last_applied(before):
        return ApplyResult(kind, existing, "unchanged")
    store.replace_from_manifest(existing, kind, merged)
    store.save(existing)
    events.record_change(existing, kind, before, actor=actor, action=m.Event.Action.CONFIGURED, via=via)
    _sync_policies(kind, existing)
    return ApplyResult(kind, existing, "configured")


def _remember_applied(doc: dict) -> None:
    """Record what was applied in kubectl's last-applied annotation (the next
    apply's three-way merge reads it). One kubectl sent is kept as it is:
    kubectl compares its next one with it, text for text."""
    annotations = doc["metadata"].get("annotations")
    annotations = dict(annotations) if isinstance(annotations, dict) else {}
    if isinstance(annotations.get(last_applied.LAST_APPLIED), str):
        return
    annotations[last_applied.LAST_APPLIED] = last_applied.applied_configuration(doc)
    doc["metadata"]["annotations"] = annotations


def _owner_for(kind: Kind, doc: dict, namespace: str):
    """Placement children need their placement, named by the parent-CRP label."""
    owner_model = _PLACEMENT_OF.get(kind.model)
    if owner_model is None:
        return None
    parent = ((doc.get("metadata") or {}).get("labels") or {}).get(PARENT_LABEL)
    owner = owner_model.objects.filter(name=parent or "", namespace=namespace if kind.namespaced else "").first()
    if owner is None:
        raise Invalid(
            kind.kind,
            doc["metadata"]["name"],
            [(f"metadata.labels[{PARENT_LABEL}]", "Required value: must name an existing placement")],
        )
    return owner


def _patched(current: dict, patch_type: str, patch) -> dict:
    if patch_type == "merge":
        if not isinstance(patch, dict):
            raise BadRequest("a merge patch must be an object")
        return last_applied.merge_patch(current, patch)
    if patch_type == "json":
        if not isinstance(patch, list):
            raise BadRequest("a json patch must be a list of operations")
        try:
            return jsonpatch.JsonPatch(patch).apply(current)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, ValueError) as exc:
            raise BadRequest(f"the json patch cannot be applied: {exc}") from None
    if patch_type == "strategic":  # the built-in kinds only: the caller checks
        if not isinstance(patch, dict):
            raise BadRequest("a strategic merge patch must be an object")
        return strategic_merge(current, patch)
    raise BadRequest(f'unsupported patch type "{patch_type}": use merge or json')


def object_patch(
    *, kind: Kind, name: str, namespace: str, patch_type: str, patch, subresource: str | None, actor: str,
    client_address: str = "", via: str = "",
):
    """Patch an object, or only its status with subresource="status".

    Returns (obj, changed). A status write to an approval request that sets
    Approved=True is recorded as an approval; one that changes its Approved
    condition while an approval policy governs the gate is refused
    (PolicyDenied) and recorded as a `denied` Event: approve with `fleet
    approve`, which counts the votes."""
    if subresource not in (None, "", "status"):
        raise BadRequest(f'unsupported subresource "{subresource}"')
    try:
        return _patch(kind=kind, name=name, namespace=namespace, patch_type=patch_type, patch=patch,
                      subresource=subresource, actor=actor, via=via)
    except policies.PolicyDenied as exc:
        policies.denial_record(kind_name=kind.kind, name=name, namespace=namespace, run=exc.run, actor=actor,
                               reason=str(exc), attempted="patch status", via=via, client_address=client_address)
        raise


def _patch(*, kind: Kind, name: str, namespace: str, patch_type: str, patch, subresource: str | None, actor: str,
           via: str = ""):
    with transaction.atomic():
        obj = store.get(kind, name, namespace, for_update=True)
        require_local(obj)
        current = store.to_manifest(obj, kind)
        wanted = _patched(current, patch_type, patch)
        if not isinstance(wanted, dict):
            raise BadRequest("the patched object is not an object")
        store.check_resource_version(obj, kind, wanted)
        if subresource == "status":
            changed = _write_status(obj, kind, current, wanted, actor=actor, via=via)
        else:
            changed = _write_main(obj, kind, current, wanted, actor=actor, via=via)
        if changed:
            _reconcile_after([(kind, obj)])
            _publish_change(kind, obj)
    return obj, changed


def _write_main(obj, kind: Kind, current: dict, wanted: dict, *, actor: str, via: str = "") -> bool:
    for key in ("apiVersion", "kind"):
        wanted[key] = current[key]
    wanted.setdefault("metadata", {})["name"] = obj.name
    validate(kind, wanted, old=current)
    if not store.replace_from_manifest(obj, kind, wanted):
        return False
    store.save(obj)
    events.record_change(obj, kind, current, actor=actor, action=m.Event.Action.PATCHED, via=via)
    _sync_policies(kind, obj)
    return True


def _write_status(obj, kind: Kind, current: dict, wanted: dict, *, actor: str, via: str = "") -> bool:
    if kind.model is m.HubResource or kind.model in (m.ClusterStagedUpdateStrategy, m.StagedUpdateStrategy):
        raise BadRequest(f"{kind.resource} has no status subresource")
    status = wanted.get("status") or {}
    if not isinstance(status, dict):
        raise Invalid(kind.kind, obj.name, [("status", "Invalid value: must be an object")])
    validate_status(kind, {**current, "status": status})
    if status == (obj.status or {}):
        return False
    if kind.model in (m.ClusterApprovalRequest, m.ApprovalRequest):
        _refuse_approval_under_policy(obj, status, actor=actor)
    obj.status = status
    store.save(obj, spec_changed=False)
    events.record_status_change(obj, kind, current.get("status") or {}, actor=actor, details=events.via_details(via))
    return True


def _refuse_approval_under_policy(request, status: dict, *, actor: str) -> None:
    """A status write may not change the Approved condition of a gate that
    has an approval policy (only votes through approval_request_approve
    may), nor while a freeze holds its run (only break-glass may)."""

    def approved(conditions) -> dict | None:
        return next((c for c in conditions or [] if isinstance(c, dict) and c.get("type") == "Approved"), None)

    if approved(status.get("conditions")) == approved((request.status or {}).get("conditions")):
        return
    gate = policies.gate_of(request)
    if gate.policy is not None:
        raise policies.PolicyDenied(
            f"{actor} may not change the Approved condition of {request.name} with a status patch: the gate is "
            f"governed by {policies.describe(gate)}; approve it with `fleet approve {request.name}`",
            run=gate.run_name)
    frozen = freeze_selectors.freeze_holding_run(gate.run)
    if frozen is not None and not freeze_selectors.break_glass_confirmed(request):
        raise policies.PolicyDenied(
            f"{actor} may not change the Approved condition of {request.name} during a freeze. {frozen.sentence()}. "
            f"A break-glass approval needs a reason and a second person: `fleet approve {request.name} "
            "--break-glass --reason TEXT`", run=gate.run_name)


def _sync_policies(kind: Kind, obj) -> None:
    if kind.model in _STRATEGY_MODELS:
        policies.strategy_policies_sync(strategy=obj, kind=kind, manifest=store.to_manifest(obj, kind))


def object_delete(*, kind: Kind, name: str, namespace: str, actor: str, via: str = "", preconditions=None):
    """Delete an object with what Kubernetes' finalizers and garbage collector
    would do: a Namespace takes its contents, a run its approval requests.
    `preconditions` (a callable given the locked object) may refuse by
    raising; `via` is recorded in the audit row."""
    with transaction.atomic():
        obj = store.get(kind, name, namespace, for_update=True)
        require_local(obj)
        if preconditions is not None:
            preconditions(obj)
        events.record_object(obj, kind, m.Event.Action.DELETED, actor=actor, details=events.via_details(via))
        if kind.kind == "Namespace":
            _delete_namespace_contents(obj.name)
        if kind.model in (m.ClusterStagedUpdateRun, m.StagedUpdateRun):
            runner.run_finalize(run=obj)
        if kind.model in _STRATEGY_MODELS:
            policies.strategy_policies_sync(strategy=obj, kind=kind, manifest=None)
        store.delete(obj)
        _reconcile_after([(kind, obj)], deleted=True)
        if kind.kind not in {*RUN_KINDS, *APPROVAL_KINDS}:  # a run finalized above; a request's run keeps waiting
            _publish_change(kind, obj)  # a member or placement gone: the runs that went to it notice now
    return obj


def _delete_namespace_contents(namespace: str) -> None:
    m.HubResource.objects.filter(namespace=namespace).exclude(kind="Namespace").delete()
    for model in m.FLEET_MODELS:
        if model.NAMESPACED:
            model.objects.filter(namespace=namespace).delete()


# Kinds no placement reads: writing one reschedules and re-snapshots nothing,
# so it costs the same on a hub of 10 placements as on one of 1,000.
_NO_PLACEMENT_INPUT = {*RUN_KINDS, *STRATEGY_KINDS, *APPROVAL_KINDS}


def _reconcile_after(written: list[tuple], *, deleted: bool = False) -> None:
    """Bring placements up to date with what was written: none for runs,
    strategies and approval requests; only the written placements for
    placements (the others do not read each other); for hub resources, the
    placements that may select them; for members, the placements that may
    choose them or had chosen them; every placement for the rest (snapshots
    and bindings written directly: a placement's children)."""
    placements = [obj for kind, obj in written if kind.kind in PLACEMENT_KINDS]
    resources = [obj for _, obj in written if isinstance(obj, m.HubResource)]
    members = [obj for _, obj in written if isinstance(obj, m.MemberCluster)]
    rest = [kind for kind, obj in written if kind.kind not in _NO_PLACEMENT_INPUT | set(PLACEMENT_KINDS)
            and not isinstance(obj, (m.HubResource, m.MemberCluster))]
    if rest:  # a placement's children written directly: reconcile every placement
        placement_controller.placements_reconcile()
        return
    done = [] if deleted else placements
    if placements and not deleted:  # a deleted placement takes its children with it; no other placement reads it
        placement_controller.placements_reconcile(only=placements)
    if resources:  # the other placements that may select them
        placement_controller.placements_reconcile_for(resources, done=done)
    if members:  # the other placements that may choose them
        placement_controller.placements_reconcile_for_members(members, done=done)


def _publish_changes(results: list[ApplyResult]) -> None:
    for result in results:
        if result.outcome != "unchanged":
            _publish_change(result.kind, result.obj)


def _publish_change(kind: Kind, obj) -> None:
    """Say what a person's write changed (rollouts.changes): a run (a stop,
    resume or new run), an approval request, a placement (its runs may
    move), or anything else that may move any run."""
    if kind.model in (m.ClusterStagedUpdateRun, m.StagedUpdateRun):
        changes.publish(changes.RunChanged.of(obj, changes.Origin.PERSON))
    elif kind.model in (m.ClusterApprovalRequest, m.ApprovalRequest):
        changes.publish(changes.ApprovalRequestChanged.of(obj, changes.Origin.PERSON))
    elif kind.kind in PLACEMENT_KINDS:
        changes.publish(changes.PlacementChanged(kind.kind, obj.namespace, obj.name))
    else:
        changes.publish(changes.FleetChanged())
