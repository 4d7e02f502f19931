"""Resource snapshots and what differs between two of them, object by
object: added, removed, or changed with each changed field's before/after."""

import json
from dataclasses import dataclass, field

from rollouts.api.diff import MISSING, changed_leaves
from rollouts.controllers import labels as L

from .common import family_for
from .failures import Failure, binding_failure


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: str  # JSON text; "" when the field is absent
    after: str


@dataclass
class ObjectDiff:
    kind: str
    namespace: str
    name: str
    change: str  # added | removed | changed
    fields: list[FieldChange] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def _key(manifest: dict) -> tuple:
    meta = manifest.get("metadata") or {}
    group = str(manifest.get("apiVersion", "")).rpartition("/")[0]
    return group, str(manifest.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", ""))


def _text(value, present: bool) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if present else ""


def resources_diff(old: list[dict], new: list[dict]) -> list[ObjectDiff]:
    """The objects that differ between two selectedResources lists, in a
    stable order (kind, namespace, name); unchanged objects are left out."""
    before, after = {_key(o): o for o in old}, {_key(o): o for o in new}
    diffs = []
    for key in sorted(set(before) | set(after)):
        _, kind, namespace, name = key
        if key not in before:
            diffs.append(ObjectDiff(kind, namespace, name, "added", _field_changes({}, after[key])))
        elif key not in after:
            diffs.append(ObjectDiff(kind, namespace, name, "removed", _field_changes(before[key], {})))
        elif before[key] != after[key]:
            diffs.append(ObjectDiff(kind, namespace, name, "changed", _field_changes(before[key], after[key])))
    return diffs


def _field_changes(old: dict, new: dict) -> list[FieldChange]:
    return [FieldChange(path, _text(a, a is not MISSING), _text(b, b is not MISSING))
            for path, (a, b) in changed_leaves(old, new).items()]


@dataclass
class SnapshotRow:
    index: int
    name: str
    created: object
    latest: bool
    hash: str
    objects: int
    clusters: list[str]


def snapshots_of(placement) -> list:
    """The placement's resource snapshots, newest index first."""
    family = family_for(placement.namespace)
    return list(family.resource_snapshot.objects.filter(owner=placement).order_by("-index"))


def snapshot_rows(placement, bindings: list[dict]) -> list[SnapshotRow]:
    """Snapshot history with the clusters bound to each (from `bindings`,
    dicts with target_cluster and resource_snapshot)."""
    on = {}
    for b in bindings:
        on.setdefault(b["resource_snapshot"], []).append(b["target_cluster"])
    return [SnapshotRow(s.index, s.name, s.creation_timestamp, s.labels.get(L.IS_LATEST) == "true",
                        (s.annotations.get(L.RESOURCE_HASH) or "")[:12],
                        len((s.spec or {}).get("selectedResources") or []), sorted(on.get(s.name, [])))
            for s in snapshots_of(placement)]


def snapshot_resources(*, placement: str, namespace: str, names: list[str]) -> dict[str, list[dict]]:
    """{snapshot name: its selectedResources} for the named snapshots (one query)."""
    family = family_for(namespace)
    rows = family.resource_snapshot.objects.filter(owner__name=placement, namespace=namespace, name__in=names)
    return {s.name: (s.spec or {}).get("selectedResources") or [] for s in rows}


def snapshot_name(placement: str, index) -> str:
    return f"{placement}-{index}-snapshot"


def snapshot_diff(*, placement: str, namespace: str, a, b) -> list[ObjectDiff] | None:
    """What changes going from snapshot index `a` to `b`; None when either
    snapshot does not exist (pruned, or never made)."""
    names = [snapshot_name(placement, a), snapshot_name(placement, b)]
    found = snapshot_resources(placement=placement, namespace=namespace, names=names)
    if any(n not in found for n in names):
        return None
    return resources_diff(found[names[0]], found[names[1]])


@dataclass
class ReleaseDiff:
    """What a run's snapshot changes against the placement's snapshot before it."""

    index: str  # the run's snapshot index
    previous: str  # the highest stored index below it, "" when there is none
    diff: list[ObjectDiff] = field(default_factory=list)


def release_diff(*, placement: str, namespace: str, index) -> ReleaseDiff | None:
    """Snapshot `index` against the placement's previous snapshot (the highest
    index below it that is still stored): what this release changes. The
    clusters' own bindings move during the run, so the snapshot before it is
    the one record of what they ran before. None when `index` is not a stored
    snapshot. One query."""
    try:
        number = int(index)
    except (TypeError, ValueError):
        return None
    family = family_for(namespace)
    rows = list(family.resource_snapshot.objects.filter(owner__name=placement, namespace=namespace,
                                                        index__lte=number).order_by("-index")[:2])
    if not rows or rows[0].index != number:
        return None
    resources = [(s.spec or {}).get("selectedResources") or [] for s in rows]
    previous = str(rows[1].index) if len(rows) > 1 else ""
    return ReleaseDiff(str(number), previous, resources_diff(resources[1] if previous else [], resources[0]))


@dataclass
class ClusterGroup:
    """Clusters that now run the same snapshot, and what moving them to the
    target snapshot changes."""

    current: str  # the snapshot they are bound to now, "" for nothing yet
    clusters: list[str]
    diff: list[ObjectDiff] = field(default_factory=list)
    failing: list[Failure] = field(default_factory=list)  # those whose member reports a failure


def cluster_groups(*, placement: str, namespace: str, index, clusters: list[str] | None = None) -> list[ClusterGroup]:
    """Group the placement's scheduled clusters (or just `clusters`) by the
    snapshot their binding names now, each with its diff to snapshot
    `index` and the clusters whose member reports a failure. Two queries: the bindings, then the snapshots involved."""
    family = family_for(namespace)
    bindings = family.binding.objects.filter(owner__name=placement, namespace=namespace).exclude(
        spec__state="Unscheduled")
    if clusters is not None:
        bindings = bindings.filter(target_cluster__in=clusters)
    bound, failures = {}, {}
    for cluster, snapshot, state, generation, conditions, failed_generation, attempts in bindings.values_list(
            "target_cluster", "spec__resourceSnapshotName", "spec__state", "generation", "status__conditions",
            "failed_generation", "failed_attempts"):
        bound[cluster] = snapshot
        failure = binding_failure(cluster=cluster, placement=placement, namespace=namespace, generation=generation,
                                  conditions=conditions, failed_generation=failed_generation,
                                  failed_attempts=attempts) if state == "Bound" else None
        if failure:
            failures[cluster] = failure
    by_current: dict[str, list[str]] = {}
    for cluster in clusters if clusters is not None else sorted(bound):
        by_current.setdefault(bound.get(cluster) or "", []).append(cluster)
    target = snapshot_name(placement, index)
    resources = snapshot_resources(placement=placement, namespace=namespace, names=[target, *by_current])
    return [ClusterGroup(current, names, resources_diff(resources.get(current, []), resources.get(target, [])),
                         [failures[n] for n in names if n in failures])
            for current, names in sorted(by_current.items())]
