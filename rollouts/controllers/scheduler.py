"""The scheduler: turns a placement's policy into a policy snapshot and one
binding per chosen member cluster (state Scheduled), and marks bindings of
clusters no longer chosen Unscheduled. Level-triggered: call it after any
change of policy, membership or member labels."""

import hashlib
import json
import secrets

from django.db import transaction

from rollouts import clock
from rollouts.api import store
from rollouts.api.labels import selector_matches
from rollouts.conditions import set_condition
from rollouts.models import revisions

from . import labels as L


def placement_policy(placement) -> dict:
    policy = dict((placement.spec or {}).get("policy") or {})
    policy.setdefault("placementType", "PickAll")
    return policy


def policy_hash(policy: dict) -> str:
    # numberOfClusters is left out: a PickN count change updates the latest
    # snapshot's annotation in place instead of making a new snapshot.
    hashed = {k: v for k, v in policy.items() if k != "numberOfClusters"}
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _eligible(policy: dict, members: list) -> list:
    terms = (
        ((policy.get("affinity") or {}).get("clusterAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        or {}
    ).get("clusterSelectorTerms") or []
    if not terms:
        return list(members)
    return [c for c in members if any(selector_matches(t.get("labelSelector") or {}, c.labels) for t in terms)]


def choose_clusters(policy: dict, members: list, current: set[str]) -> tuple[list[str], bool]:
    """(cluster names chosen, whether the policy is fulfilled)."""
    eligible = _eligible(policy, members)
    kind = policy.get("placementType", "PickAll")
    if kind == "PickFixed":
        wanted = list(policy.get("clusterNames") or [])
        known = {c.name for c in members}
        return sorted(n for n in wanted if n in known), all(n in known for n in wanted)
    names = sorted(c.name for c in eligible)
    if kind == "PickN":
        count = int(policy.get("numberOfClusters") or 0)
        # Prefer clusters already chosen so a reschedule does not move workloads.
        ordered = [n for n in names if n in current] + [n for n in names if n not in current]
        return sorted(ordered[:count]), len(ordered) >= count
    return names, True


def may_choose(policy: dict, member) -> bool:
    """Whether the policy may choose this member now, as choose_clusters
    would: PickFixed naming it, PickAll whose required affinity it matches,
    any PickN (the count and the order depend on every member)."""
    kind = policy.get("placementType", "PickAll")
    if kind == "PickFixed":
        return member.name in (policy.get("clusterNames") or [])
    return kind == "PickN" or bool(_eligible(policy, [member]))


def schedule(placement, family, members: list) -> None:
    """Bring the placement's policy snapshots and bindings up to date."""
    policy = placement_policy(placement)
    snapshot = _latest_policy_snapshot(placement, family, policy)
    bindings = list(family.binding.objects.filter(owner=placement))
    current = {b.target_cluster for b in bindings if b.spec.get("state") != "Unscheduled"}
    chosen, fulfilled = choose_clusters(policy, members, current)
    _sync_bindings(placement, family, snapshot, bindings, chosen)
    _mark_scheduled(snapshot, placement, chosen, fulfilled, policy)


def _latest_policy_snapshot(placement, family, policy: dict):
    snapshots = list(family.policy_snapshot.objects.filter(owner=placement).order_by("index"))
    latest = next((s for s in reversed(snapshots) if s.labels.get(L.IS_LATEST) == "true"), None)
    digest = policy_hash(policy)
    if latest is not None and latest.spec.get("policyHash") == digest:
        _update_cluster_count(latest, policy)
        return latest
    if latest is not None:
        latest.labels = {**latest.labels, L.IS_LATEST: "false"}
        store.save(latest)
    index = snapshots[-1].index + 1 if snapshots else 0
    snapshot = family.policy_snapshot(
        name=f"{placement.name}-{index}",
        namespace=placement.namespace,
        owner=placement,
        index=index,
        creation_timestamp=clock.now(),
        labels={L.IS_LATEST: "true", L.PARENT_CRP: placement.name, L.POLICY_INDEX: str(index)},
        annotations=_count_annotation(policy),
        spec={"policy": policy, "policyHash": digest},
    )
    snapshot.save(force_insert=True)
    return snapshot


def _count_annotation(policy: dict) -> dict:
    if policy.get("placementType") == "PickN":
        return {L.NUMBER_OF_CLUSTERS: str(policy.get("numberOfClusters") or 0)}
    return {}


def _update_cluster_count(snapshot, policy: dict) -> None:
    wanted = _count_annotation(policy)
    if wanted and snapshot.annotations.get(L.NUMBER_OF_CLUSTERS) != wanted[L.NUMBER_OF_CLUSTERS]:
        snapshot.annotations = {**snapshot.annotations, **wanted}
        snapshot.spec = {**snapshot.spec, "policy": policy}
        store.save(snapshot)


def _sync_bindings(placement, family, snapshot, bindings: list, chosen: list[str]) -> None:
    by_cluster = {b.target_cluster: b for b in bindings}
    _create_bindings(placement, family, snapshot, [name for name in chosen if name not in by_cluster])
    for name in chosen:
        binding = by_cluster.get(name)
        if binding is None:
            continue
        spec = dict(binding.spec)
        spec["schedulingPolicySnapshotName"] = snapshot.name
        if spec.get("state") == "Unscheduled":
            spec["state"] = "Scheduled"
        if spec != binding.spec:
            binding.spec = spec
            store.save(binding, spec_changed=True)
    for binding in bindings:
        if binding.target_cluster not in chosen and binding.spec.get("state") != "Unscheduled":
            binding.spec = {**binding.spec, "state": "Unscheduled"}
            store.save(binding, spec_changed=True)


def _create_bindings(placement, family, snapshot, clusters: list[str]) -> None:
    """One Scheduled binding per cluster, inserted together with the hub's
    next resourceVersions (a placement of 100 clusters: one statement, not 100)."""
    if not clusters:
        return
    now = clock.now()
    with transaction.atomic(savepoint=False):  # the revisions commit with the rows (models/revisions.py)
        versions = revisions.next_versions(family.binding, len(clusters))
        family.binding.objects.bulk_create([family.binding(
            name=f"{placement.name}-{cluster}-{secrets.token_hex(4)}"[:253],
            namespace=placement.namespace,
            owner=placement,
            target_cluster=cluster,
            creation_timestamp=now,
            resource_version=version,
            labels={L.PARENT_CRP: placement.name},
            spec={
                "state": "Scheduled",
                "targetCluster": cluster,
                "schedulingPolicySnapshotName": snapshot.name,
                "clusterDecision": {"clusterName": cluster, "selected": True, "reason": "picked by scheduling policy"},
            },
        ) for cluster, version in zip(clusters, versions, strict=True)])


def _mark_scheduled(snapshot, placement, chosen: list[str], fulfilled: bool, policy: dict) -> None:
    status = dict(snapshot.status or {})
    conditions = [dict(c) for c in status.get("conditions") or []]
    if fulfilled:
        reason, message = "SchedulingPolicyFulfilled", f"found all cluster needed as specified by the scheduling policy, found {len(chosen)} cluster(s)"
    else:
        reason, message = "SchedulingPolicyUnfulfilled", f"could not find all the clusters needed as specified by the scheduling policy, found {len(chosen)} cluster(s)"
    set_condition(
        conditions,
        type="Scheduled",
        status="True" if fulfilled else "False",
        reason=reason,
        message=message,
        observed_generation=snapshot.generation,
        now=clock.now(),
    )
    status.update(
        conditions=conditions,
        observedCRPGeneration=placement.generation,
        targetClusters=[{"clusterName": n, "selected": True, "reason": "picked by scheduling policy"} for n in chosen],
    )
    if status != snapshot.status:
        snapshot.status = status
        store.save(snapshot)
