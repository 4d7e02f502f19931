"""Stop, resume, start and roll back update runs from the dashboard.

Thin wrappers over object_patch and manifests_apply, so the web writes the
very Events the `fleet` command writes (a `state-changed` row for a stop or
resume, a `created` row for a new run), attributed to the person.
"""

from rollouts import mirror
from rollouts import models as m
from rollouts.api.errors import BadRequest, NotFound
from rollouts.api.kinds import FLEET_KINDS, Kind
from rollouts.api.numbers import parse_unsigned
from rollouts.selectors.preflight import run_plan

from .objects import manifests_apply, object_patch

RUN_KINDS = {k.kind: k for k in FLEET_KINDS if k.kind in ("ClusterStagedUpdateRun", "StagedUpdateRun")}
_NAME_LIMIT = 50  # leaves room for the `-<stage>` of approval request names


class RunRefused(BadRequest):
    """A new run refused before it is created: its pre-flight
    (selectors.preflight.run_plan) found scheduled clusters in no stage, or
    a reason KubeFleet's initialization would refuse it. Fleet UI is stricter
    than KubeFleet here, which accepts such a run and fails it at init."""


def run_kind(namespace: str) -> Kind:
    """The run kind of a family: namespaced runs live in a namespace."""
    return RUN_KINDS["StagedUpdateRun" if namespace else "ClusterStagedUpdateRun"]


def _set_state(*, name: str, namespace: str, state: str, actor: str):
    kind = run_kind(namespace)
    run = kind.model.objects.filter(name=name, namespace=namespace).first()
    if run is None:
        raise NotFound(kind.resource, name)
    if not run.active:
        raise BadRequest(f'{kind.kind} "{name}" has finished: its state can no longer change')
    if mirror.is_mirrored(run):  # the hub's controller runs it: stop or resume it there
        return mirror.set_run_state_on_hub(run, state, actor=actor)
    obj, _ = object_patch(kind=kind, name=name, namespace=namespace, patch_type="merge",
                          patch={"spec": {"state": state}}, subresource=None, actor=actor)
    return obj


def run_stop(*, name: str, namespace: str = "", actor: str):
    """spec.state := Stop (in-flight clusters finish, nothing new starts)."""
    return _set_state(name=name, namespace=namespace, state="Stop", actor=actor)


def run_resume(*, name: str, namespace: str = "", actor: str):
    """spec.state := Run: the run goes on exactly where it stopped."""
    return _set_state(name=name, namespace=namespace, state="Run", actor=actor)


def run_start(*, placement: str, strategy: str, index: str, actor: str, namespace: str = "",
              name: str = "", prefix: str = "", client_address: str = "", via: str = "") -> object:
    """Create a run of `strategy` over `placement` pinned to snapshot `index`
    (state Run). Without a name one is made from `prefix` (default the
    placement's name) and a free counter. Returns the new run.

    Refused (policy_scope.RunUnprotected, recorded as `denied` with
    `client_address` and `via`) when the strategy leaves clusters an
    approval policy protects without a gate, as `fleet apply` is. Refused
    (RunRefused, nothing created) when its pre-flight finds a problem."""
    kind = run_kind(namespace)
    _require_snapshot(kind, placement=placement, namespace=namespace, index=index)
    plan = run_plan(placement=placement, namespace=namespace, strategy=strategy, snapshot_index=index)
    if not plan.ok:
        raise RunRefused(f'cannot start a run of strategy "{strategy}" over placement "{placement}": '
                         + "; ".join(plan.problems))
    name = name or _free_name(kind.model, namespace, prefix or placement)
    doc = {"apiVersion": kind.api_version, "kind": kind.kind,
           "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
           "spec": {"placementName": placement, "resourceSnapshotIndex": str(index),
                    "stagedRolloutStrategyName": strategy, "state": "Run"}}
    [result] = manifests_apply(docs=[doc], actor=actor, namespace=namespace or None,
                               client_address=client_address, via=via)
    if result.outcome != "created":
        raise BadRequest(f'{kind.kind} "{name}" already exists')
    return result.obj


def run_rollback(*, placement: str, strategy: str, index: str, actor: str, namespace: str = "", name: str = "",
                 client_address: str = "", via: str = "") -> object:
    """A new run that takes every cluster back to the earlier snapshot
    `index`, through the same stages and gates (and policies) as any run.
    Named `name`, else `<placement>-rollback-<index>-<n>`."""
    return run_start(placement=placement, strategy=strategy, index=index, actor=actor, namespace=namespace,
                     name=name, prefix=f"{placement}-rollback-{index}", client_address=client_address, via=via)


def _require_snapshot(kind: Kind, *, placement: str, namespace: str, index: str) -> None:
    """Refuse a run the engine would fail at once: the snapshot must exist."""
    snapshot_model = m.ResourceSnapshot if namespace else m.ClusterResourceSnapshot
    number = parse_unsigned(index)
    if number is None:
        raise BadRequest(f"invalid resource snapshot index `{index}`: expected an integer >= 0")
    if not snapshot_model.objects.filter(owner__name=placement, namespace=namespace, index=number).exists():
        raise BadRequest(f"no resource snapshot with index {index} for placement {placement}")


def _free_name(model, namespace: str, prefix: str) -> str:
    """`<prefix>-<n>` with the lowest n not taken (one query)."""
    prefix = prefix[:_NAME_LIMIT].rstrip("-")
    taken = set(model.objects.filter(namespace=namespace, name__startswith=f"{prefix}-")
                .values_list("name", flat=True))
    n = 1
    while f"{prefix}-{n}" in taken:
        n += 1
    return f"{prefix}-{n}"
