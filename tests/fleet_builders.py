"""Building fleets and driving the engine in-process, for scenario tests.

Everything a test sets up goes through the same services a person uses
(YAML through manifests_apply, patches through object_patch, approvals
through approval_request_approve); everything a test observes is read from
the stored objects (run status, approval requests, bindings, MemberObject
rows, Event rows). The engine is driven by engine_tick() under the frozen
clock of rollouts.clock.

Personas (actors recorded on Events):
    OPERATOR ("olivia")  applies fleets, placements, strategies and runs.
    APPROVER ("alice")   approves stage gates.
"""

import json
import textwrap

import yaml

from rollouts import clock
from rollouts import models as m
from rollouts.api.kinds import KindRegistry
from rollouts.api.manifests import parse_documents
from rollouts.controllers import labels as L
from rollouts.engine.loop import engine_tick
from rollouts.services.approvals import approval_request_approve
from rollouts.services.objects import manifests_apply, object_delete, object_patch

OPERATOR = "olivia"
APPROVER = "alice"

GROUP = "placement.kubernetes-fleet.io/v1beta1"
SIMULATE_FAILURE = L.SIMULATE_APPLY_FAILURE
APPROVAL_LABELS = (L.TARGET_UPDATE_RUN, L.TARGET_UPDATING_STAGE, L.TASK_TYPE, L.IS_LATEST_UPDATE_RUN_APPROVAL)


# Writing ------------------------------------------------------------------------


def apply(text_or_docs, *, actor: str = OPERATOR) -> list:
    """Apply YAML text (dedented; several documents allowed) or a list of dicts."""
    if isinstance(text_or_docs, str):
        docs = parse_documents(textwrap.dedent(text_or_docs))
    elif isinstance(text_or_docs, dict):
        docs = [text_or_docs]
    else:
        docs = list(text_or_docs)
    return manifests_apply(docs=docs, actor=actor)


def kind(name: str):
    return KindRegistry().resolve(name)


def patch(kind_name: str, name: str, body: dict, *, subresource: str | None = None, actor: str = OPERATOR):
    obj, _ = object_patch(kind=kind(kind_name), name=name, namespace="", patch_type="merge", patch=body,
                          subresource=subresource, actor=actor)
    return obj


def delete(kind_name: str, name: str, *, actor: str = OPERATOR):
    return object_delete(kind=kind(kind_name), name=name, namespace="", actor=actor)


def member(name: str, **labels) -> dict:
    return {"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
            "metadata": {"name": name, "labels": {k: str(v) for k, v in labels.items()}}, "spec": {}}


def add_members(*members: dict) -> None:
    apply(list(members))


def staged_fleet(layout: dict, *, policy: dict | None = None, labels: dict | None = None) -> None:
    """Members labelled `stage=<stage>` as laid out ({stage: [cluster, ...]}),
    extra labels per cluster from `labels`, the workload at value1, an
    External placement, then value2: snapshots 0 (value1) and 1 (value2)."""
    labels = labels or {}
    add_members(*[member(name, stage=stage_name, **labels.get(name, {}))
                  for stage_name, names in layout.items() for name in names])
    workload("value1")
    placement(policy=policy)
    workload("value2")


def fleet(count: int, *, prefix: str = "member", **labels) -> list[str]:
    """`count` members named <prefix>1..<prefix>N, all carrying `labels`."""
    names = [f"{prefix}{i}" for i in range(1, count + 1)]
    apply([member(n, **labels) for n in names])
    return names


def label_member(name: str, **labels) -> None:
    """Set labels on a member (a value of None removes the label)."""
    patch("membercluster", name, {"metadata": {"labels": {k: (None if v is None else str(v)) for k, v in labels.items()}}})


def workload(value: str = "value1", *, namespace: str = "test-namespace", name: str = "test-cm") -> None:
    """The tutorial's namespace with its ConfigMap; applying another value makes the next snapshot."""
    apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
         "data": {"key": value}},
    ])


def placement(name: str = "example-placement", *, policy: dict | None = None, strategy_type: str = "External",
              namespace: str = "test-namespace") -> None:
    spec = {"resourceSelectors": [{"group": "", "kind": "Namespace", "name": namespace, "version": "v1"}],
            "policy": policy or {"placementType": "PickAll"}}
    if strategy_type is not None:
        spec["strategy"] = {"type": strategy_type}
    apply({"apiVersion": GROUP, "kind": "ClusterResourcePlacement", "metadata": {"name": name}, "spec": spec})


def stage(name: str, *, selector: dict | None = "default", sort: str | None = None, max_concurrency=None,
          before: list | None = None, after: list | None = None) -> dict:
    """A strategy stage. selector "default" selects `stage=<name>`; None selects nothing; {} everything."""
    entry = {"name": name}
    if selector == "default":
        entry["labelSelector"] = {"matchLabels": {"stage": name}}
    elif selector is not None:
        entry["labelSelector"] = selector
    if sort:
        entry["sortingLabelKey"] = sort
    if max_concurrency is not None:
        entry["maxConcurrency"] = max_concurrency
    if before:
        entry["beforeStageTasks"] = before
    if after:
        entry["afterStageTasks"] = after
    return entry


APPROVAL = {"type": "Approval"}


def timed_wait(wait: str) -> dict:
    return {"type": "TimedWait", "waitTime": wait}


def strategy(name: str = "example-strategy", *stages: dict) -> None:
    apply({"apiVersion": GROUP, "kind": "ClusterStagedUpdateStrategy", "metadata": {"name": name},
           "spec": {"stages": list(stages)}})


def run(name: str = "example-run", *, placement_name: str = "example-placement", index: str | None = "1",
        strategy_name: str = "example-strategy", state: str | None = None) -> None:
    spec = {"placementName": placement_name, "stagedRolloutStrategyName": strategy_name}
    if index is not None:
        spec["resourceSnapshotIndex"] = index
    if state is not None:
        spec["state"] = state
    apply({"apiVersion": GROUP, "kind": "ClusterStagedUpdateRun", "metadata": {"name": name}, "spec": spec})


def set_state(run_name: str, state: str) -> None:
    patch("csur", run_name, {"spec": {"state": state}})


def approve(name: str, *, actor: str = APPROVER, message: str = "lgtm"):
    request, changed = approval_request_approve(kind=kind("careq"), name=name, namespace="", actor=actor,
                                                message=message)
    return changed


def unapprove(name: str, *, actor: str = APPROVER) -> None:
    """Set the request's Approved condition to False (merge patch of the whole conditions list)."""
    request = approval_request(name)
    conditions = [dict(c) for c in request.conditions()]
    for c in conditions:
        if c["type"] == "Approved":
            c.update(status="False", reason="Revoked", message="changed my mind",
                     lastTransitionTime=clock.rfc3339(clock.now()))
    patch("careq", name, {"status": {"conditions": conditions}}, subresource="status", actor=actor)


# The tutorial (seed-tutorial.md) ----------------------------------------------------

TUTORIAL_MEMBERS = (
    member("member1", environment="canary", order="2"),
    member("member2", environment="staging"),
    member("member3", environment="canary", order="1"),
)

TUTORIAL_PLACEMENT = """
    apiVersion: placement.kubernetes-fleet.io/v1beta1
    kind: ClusterResourcePlacement
    metadata:
      name: example-placement
    spec:
      resourceSelectors:
        - group: ""
          kind: Namespace
          name: test-namespace
          version: v1
      policy:
        placementType: PickAll
      strategy:
        type: External
"""

TUTORIAL_STRATEGY = """
    apiVersion: placement.kubernetes-fleet.io/v1beta1
    kind: ClusterStagedUpdateStrategy
    metadata:
      name: example-strategy
    spec:
      stages:
        - name: staging
          labelSelector:
            matchLabels:
              environment: staging
          afterStageTasks:
            - type: TimedWait
              waitTime: 1m
        - name: canary
          labelSelector:
            matchLabels:
              environment: canary
          sortingLabelKey: order
          afterStageTasks:
            - type: Approval
"""

TUTORIAL_RUN = """
    apiVersion: placement.kubernetes-fleet.io/v1beta1
    kind: ClusterStagedUpdateRun
    metadata:
      name: {name}
    spec:
      placementName: example-placement
      resourceSnapshotIndex: "{index}"
      stagedRolloutStrategyName: example-strategy
"""


def tutorial_fleet() -> None:
    """Sections 1-3: three members, the workload at value1, the placement,
    then value2 (snapshots 0 and 1)."""
    add_members(*TUTORIAL_MEMBERS)
    workload("value1")
    apply(TUTORIAL_PLACEMENT)
    workload("value2")


def tutorial_strategy() -> None:
    apply(TUTORIAL_STRATEGY)


def tutorial_run(name: str = "example-run", index: str = "1") -> None:
    apply(TUTORIAL_RUN.format(name=name, index=index))


# Driving the engine -----------------------------------------------------------------


def _without_times(value):
    """The value with every lastTransitionTime dropped."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k != "lastTransitionTime"}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _fingerprint() -> str:
    """What the fleet looks like, ignoring condition timestamps: settle() stops
    when a tick changes nothing but those (a timestamp-only rewrite is an
    engine defect the dedicated tests catch, not a reason to keep ticking)."""
    rows = []
    for model in (m.ClusterStagedUpdateRun, m.ClusterResourceBinding, m.ClusterApprovalRequest,
                  m.ClusterResourcePlacement):
        rows += [(model.KIND, o.name, o.spec, _without_times(o.status), o.labels)
                 for o in model.objects.order_by("name")]
    rows += list(m.MemberObject.objects.order_by("cluster", "name").values_list("cluster", "name", "resource_snapshot"))
    return json.dumps(rows, default=str, sort_keys=True)


def tick(times: int = 1, *, step: float = 0) -> None:
    """engine_tick() `times` times, advancing the clock `step` seconds after each."""
    for _ in range(times):
        engine_tick()
        if step:
            clock.advance(step)


def settle(max_ticks: int = 60) -> int:
    """Tick, advancing the clock one second after each tick that changed
    something, until a tick changes nothing. Returns the ticks taken.
    A run waiting on a TimedWait or an approval is "settled": time does not
    move on its own once nothing changes."""
    last = _fingerprint()
    for count in range(1, max_ticks + 1):
        engine_tick()
        now = _fingerprint()
        if now == last:
            return count
        last = now
        clock.advance(1)
    raise AssertionError(f"the fleet did not settle within {max_ticks} ticks")


def advance(seconds: float) -> None:
    clock.advance(seconds)


def tutorial_waiting_at_canary(strategy=None) -> None:
    """The tutorial's fleet, its strategy (or `strategy`, a manifest) and its
    run, past staging's TimedWait and waiting at the canary approval."""
    tutorial_fleet()
    if strategy is None:
        tutorial_strategy()
    else:
        apply(strategy)
    tutorial_run()
    settle()
    advance(61)
    settle()


def move_to(moment) -> None:
    """Set the frozen clock to `moment` (a datetime or an RFC 3339 string), never backwards."""
    if isinstance(moment, str):
        moment = clock.parse_rfc3339(moment)
    delta = (moment - clock.now()).total_seconds()
    assert delta >= 0, f"cannot move the clock back from {clock.now()} to {moment}"
    clock.advance(delta)


def since(moment: str, seconds: float):
    """The datetime `seconds` after an RFC 3339 timestamp."""
    from datetime import timedelta

    return clock.parse_rfc3339(moment) + timedelta(seconds=seconds)


# Reading ------------------------------------------------------------------------------


def run_obj(name: str = "example-run") -> m.ClusterStagedUpdateRun:
    return m.ClusterStagedUpdateRun.objects.get(name=name)


def status(name: str = "example-run") -> dict:
    return run_obj(name).status or {}


def cond(entry: dict | None, type_: str) -> tuple | None:
    """(status, reason) of the condition of that type, or None."""
    for c in (entry or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c.get("status"), c.get("reason")
    return None


def condition(entry: dict | None, type_: str) -> dict | None:
    for c in (entry or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def conditions(entry: dict | None) -> dict:
    """{type: (status, reason)} of an entry."""
    return {c["type"]: (c.get("status"), c.get("reason")) for c in (entry or {}).get("conditions") or []}


def run_conditions(name: str = "example-run") -> dict:
    return conditions(status(name))


def stage_status(run_name: str, stage_name: str) -> dict:
    for entry in status(run_name).get("stagesStatus") or []:
        if entry["stageName"] == stage_name:
            return entry
    raise AssertionError(f"no stage {stage_name} in {run_name}")


def stage_conditions(run_name: str, stage_name: str) -> dict:
    return conditions(stage_status(run_name, stage_name))


def stage_clusters(run_name: str, stage_name: str) -> list[str]:
    return [c["clusterName"] for c in stage_status(run_name, stage_name)["clusters"]]


def cluster_conditions(run_name: str, stage_name: str, cluster: str) -> dict:
    for c in stage_status(run_name, stage_name)["clusters"]:
        if c["clusterName"] == cluster:
            return conditions(c)
    raise AssertionError(f"no cluster {cluster} in stage {stage_name}")


def started(run_name: str, stage_name: str) -> list[str]:
    """Clusters of the stage with Started=True."""
    return [c["clusterName"] for c in stage_status(run_name, stage_name)["clusters"]
            if cond(c, "Started") == ("True", "ClusterUpdatingStarted")]


def succeeded(run_name: str, stage_name: str) -> list[str]:
    return [c["clusterName"] for c in stage_status(run_name, stage_name)["clusters"]
            if cond(c, "Succeeded") == ("True", "ClusterUpdatingSucceeded")]


def after_task(run_name: str, stage_name: str, index: int = 0) -> dict:
    return stage_status(run_name, stage_name)["afterStageTaskStatus"][index]


def before_task(run_name: str, stage_name: str, index: int = 0) -> dict:
    return stage_status(run_name, stage_name)["beforeStageTaskStatus"][index]


def deletion_status(run_name: str = "example-run") -> dict:
    return status(run_name)["deletionStageStatus"]


def approval_request(name: str) -> m.ClusterApprovalRequest:
    return m.ClusterApprovalRequest.objects.get(name=name)


def approval_requests() -> list[str]:
    return list(m.ClusterApprovalRequest.objects.order_by("name").values_list("name", flat=True))


def approval_labels(name: str) -> dict:
    labels = approval_request(name).labels
    return {k: labels.get(k) for k in APPROVAL_LABELS}


def member_values(placement_name: str = "example-placement", *, configmap: str = "test-cm") -> dict:
    """{cluster: the ConfigMap's data.key} for what each simulated member holds."""
    rows = m.MemberObject.objects.filter(placement=placement_name, kind="ConfigMap", name=configmap)
    return {r.cluster: (r.manifest.get("data") or {}).get("key") for r in rows}


def member_object_clusters(placement_name: str = "example-placement") -> set[str]:
    return set(m.MemberObject.objects.filter(placement=placement_name).values_list("cluster", flat=True))


def bindings(placement_name: str = "example-placement") -> dict:
    """{cluster: (state, resourceSnapshotName)}."""
    return {b.target_cluster: (b.spec.get("state"), b.spec.get("resourceSnapshotName"))
            for b in m.ClusterResourceBinding.objects.filter(owner__name=placement_name)}


def placement_obj(name: str = "example-placement") -> m.ClusterResourcePlacement:
    return m.ClusterResourcePlacement.objects.get(name=name)


def cluster_events(run_name: str, cluster: str, type_: str, status_: str = "True") -> list:
    return [e for e in m.Event.objects.filter(run=run_name, object_kind="ClusterStagedUpdateRun",
                                              action=m.Event.Action.CONDITION)
            if e.details.get("scope") == "cluster" and e.details.get("cluster") == cluster
            and e.details.get("type") == type_ and e.details.get("status") == status_]


def dump(name: str = "example-run") -> str:
    """The run's status as YAML, for assertion messages."""
    return yaml.safe_dump(status(name), sort_keys=False)


def signed_in(username: str, role: str | None, **client_options):
    """A test client signed in as a new user in `role` (None: a user with no
    role). `client_options` go to Client, e.g. REMOTE_ADDR."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from rollouts.roles import user_create

    if role is None:
        user = get_user_model().objects.create_user(username=username)
    else:
        user, _ = user_create(username=username, role=role)
    client = Client(**client_options)
    client.force_login(user)
    return client
