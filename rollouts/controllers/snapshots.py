"""Resource snapshots: what a placement selects, frozen and numbered.

Every change of the selected objects makes the next snapshot (legacy
behaviour, as in the user's tutorial, also for External placements).
Identical content makes none."""

import hashlib
import json

from django.db.models import Q

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.api.labels import selector_matches
from rollouts.mirror.marks import local_only

from . import labels as L

_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink",
                  "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Namespaces and CRDs first, so a member can apply the list in order.
_KIND_ORDER = {"Namespace": 0, "CustomResourceDefinition": 1}


def clean_manifest(obj: m.HubResource) -> dict:
    """A hub object as a snapshot holds it: no server fields, no status."""
    meta = {"name": obj.name}
    if obj.namespace:
        meta["namespace"] = obj.namespace
    if obj.labels:
        meta["labels"] = dict(sorted(obj.labels.items()))
    annotations = {k: v for k, v in (obj.annotations or {}).items() if k != _LAST_APPLIED}
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    api_version = f"{obj.api_group}/{obj.api_version_name}" if obj.api_group else obj.api_version_name
    return {"apiVersion": api_version, "kind": obj.kind, "metadata": meta, **obj.content}


def _selector_query(selector: dict, namespaced_placement_ns: str | None) -> Q:
    query = Q(api_group=selector.get("group") or "", kind=selector.get("kind") or "")
    query &= Q(namespace=namespaced_placement_ns or "")
    if selector.get("name"):
        query &= Q(name=selector["name"])
    return query


def select_resources(placement) -> list[m.HubResource]:
    """The hub objects a placement selects, in apply order (one or two queries).

    A selected Namespace brings everything inside it."""
    selectors = (placement.spec or {}).get("resourceSelectors") or []
    if not selectors:
        return []
    ns = placement.namespace if placement.NAMESPACED else None
    query = Q()
    for selector in selectors:
        query |= _selector_query(selector, ns)
    chosen = [
        obj
        for obj in m.HubResource.objects.filter(query)
        if any(_matches(sel, obj, ns, selector_matches) for sel in selectors)
    ]
    namespaces = [o.name for o in chosen if o.kind == "Namespace" and not o.api_group]
    if namespaces:
        chosen += list(m.HubResource.objects.filter(namespace__in=namespaces))
    unique = {o.pk: o for o in chosen}.values()
    return sorted(unique, key=lambda o: (_KIND_ORDER.get(o.kind, 2), o.api_group, o.kind, o.namespace, o.name))


def _matches(selector: dict, obj, ns, selector_matches) -> bool:
    if (selector.get("group") or "") != obj.api_group or selector.get("kind") != obj.kind:
        return False
    if obj.namespace != (ns or ""):
        return False
    if selector.get("name"):
        return selector["name"] == obj.name
    if selector.get("labelSelector") is not None:
        return selector_matches(selector["labelSelector"], obj.labels)
    return True


def may_select(placement, resource) -> bool:
    """Whether a change to `resource` (a HubResource, written or deleted) can
    change what `placement` selects: a selector of its group, kind and name
    (labels are not looked at: a label change can add it or drop it), or,
    for an object inside a namespace, a selector of that Namespace."""
    ns = placement.namespace if placement.NAMESPACED else ""
    for selector in (placement.spec or {}).get("resourceSelectors") or []:
        group, kind, name = selector.get("group") or "", selector.get("kind"), selector.get("name")
        if (group, kind) == (resource.api_group, resource.kind) and resource.namespace == ns and (
                not name or name == resource.name):
            return True
        if (group, kind) == ("", "Namespace") and resource.namespace and not ns and (
                not name or name == resource.namespace):
            return True
    return False


def resource_hash(selected: list[dict]) -> str:
    canonical = json.dumps(selected, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def snapshot_resources(placement, family) -> object | None:
    """Make the next resource snapshot if the selection changed.

    Returns the latest snapshot (new or existing), None when none exists and
    nothing is selected yet."""
    selected = [clean_manifest(o) for o in select_resources(placement)]
    digest = resource_hash(selected)
    snapshots = list(family.resource_snapshot.objects.filter(owner=placement).order_by("index"))
    latest = next((s for s in reversed(snapshots) if s.labels.get(L.IS_LATEST) == "true"), None)
    if latest is None and snapshots:
        latest = snapshots[-1]  # none labelled latest: the highest index counts
    if latest is not None and latest.annotations.get(L.RESOURCE_HASH) == digest:
        return latest
    for old in snapshots:
        if old.labels.get(L.IS_LATEST) != "false":
            old.labels = {**old.labels, L.IS_LATEST: "false"}
            store.save(old)
    index = snapshots[-1].index + 1 if snapshots else 0
    snapshot = family.resource_snapshot(
        name=f"{placement.name}-{index}-snapshot",
        namespace=placement.namespace,
        owner=placement,
        index=index,
        creation_timestamp=clock.now(),
        labels={L.IS_LATEST: "true", L.PARENT_CRP: placement.name, L.RESOURCE_INDEX: str(index)},
        annotations={
            L.NUMBER_OF_ENVELOPED_OBJECTS: "0",
            L.NUMBER_OF_RESOURCE_SNAPSHOTS: "1",
            L.RESOURCE_HASH: digest,
        },
        spec={"selectedResources": selected},
    )
    snapshot.save(force_insert=True)
    _prune(placement, family, snapshots + [snapshot])
    return snapshot


def _indices_in_use(placement, family) -> set[str]:
    """Snapshot indices an unfinished run still needs."""
    runs = local_only(family.run.objects.filter(active=True, namespace=placement.namespace))
    used = set()
    for run in runs:
        if (run.spec or {}).get("placementName") != placement.name:
            continue
        used.add(str((run.spec or {}).get("resourceSnapshotIndex") or ""))
        used.add(str((run.status or {}).get("resourceSnapshotIndexUsed") or ""))
    return used


def _prune(placement, family, snapshots: list) -> None:
    limit = int((placement.spec or {}).get("revisionHistoryLimit") or 10)
    if len(snapshots) <= limit:
        return
    in_use = _indices_in_use(placement, family)
    for old in snapshots[: len(snapshots) - limit]:
        if str(old.index) not in in_use:
            old.delete()
