"""Reads for a watch: the hub's state of one kind, and what changed in it
between two hub revisions (rows written, tombstones of rows deleted).

Each function is one short, indexed read; the caller (rollouts/kubeapi/
watch.py) reads the horizon first and the rows after it, as
rollouts/models/revisions.py requires.
"""

from dataclasses import dataclass

from django.utils.dateparse import parse_datetime

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
from rollouts.api.kinds import Kind
from rollouts.api.labels import selector_matches
from rollouts.models import revisions

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True)
class Filter:
    """What a watch asked for: a namespace (None: all), a LabelSelector
    ({} matches all) and `metadata.name` / `metadata.namespace` field
    requirements as (field, wanted, equal) triples."""

    namespace: str | None = None
    labels: dict | None = None
    fields: tuple[tuple[str, str, bool], ...] = ()

    def matches(self, manifest: dict) -> bool:
        meta = manifest["metadata"]
        if self.labels and not selector_matches(self.labels, meta.get("labels") or {}):
            return False
        found = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}
        return all((found[field] == wanted) == equal for field, wanted, equal in self.fields)


@dataclass(frozen=True)
class Change:
    """One watch event: its type, the object's revision, the object (as
    served, or as a renderer made it: a Table row for kubectl) and its uid."""

    type: str
    resource_version: int
    object: dict
    uid: str = ""

    @classmethod
    def of(cls, type_: str, manifest: dict) -> "Change":
        return cls(type_, int(manifest["metadata"]["resourceVersion"]), manifest, manifest["metadata"]["uid"])


def hub_revision() -> int:
    """The horizon: every write at or below it is visible to a later read."""
    return revisions.horizon()


def compacted_revision(*, compact: bool = False) -> int:
    """The oldest revision a watch may start from; with `compact`, forget
    old tombstones first (a watch's start is a cheap moment to do it)."""
    return revisions.tombstones_compact(now=clock.now()) if compact else revisions.compacted_revision()


def current_state(kind: Kind, wanted: Filter) -> list[Change]:
    """Every object of the kind that passes the filter, as ADDED events."""
    found = [store.to_manifest(obj, kind) for obj in store.query(kind, wanted.namespace).order_by("namespace", "name")]
    return [Change.of(ADDED, man) for man in found if wanted.matches(man)]


def changes_between(kind: Kind, wanted: Filter, after: int, upto: int) -> list[Change]:
    """Writes and deletions of the kind with after < revision <= upto, in
    revision order (two indexed queries). An object written several times
    in that window is seen once, at its last write."""
    if upto <= after:
        return []
    rows = store.query(kind, wanted.namespace).filter(resource_version__gt=after, resource_version__lte=upto)
    found = [Change.of(MODIFIED, store.to_manifest(obj, kind)) for obj in rows]
    found += [Change.of(DELETED, _last_body(stone, kind)) for stone in _tombstones(kind, wanted.namespace, after, upto)]
    return sorted((c for c in found if wanted.matches(c.object)), key=lambda c: c.resource_version)


def _tombstones(kind: Kind, namespace: str | None, after: int, upto: int):
    stones = m.Tombstone.objects.filter(model=kind.model._meta.label, resource_version__gt=after,
                                        resource_version__lte=upto)
    if kind.model is m.HubResource:
        stones = stones.filter(api_group=kind.group, kind=kind.kind)
    if namespace is not None and kind.namespaced:
        stones = stones.filter(namespace=namespace)
    return stones


def _last_body(stone, kind: Kind) -> dict:
    """The deleted object as it was, at the revision of its deletion."""
    model = kind.model
    values = dict(stone.row)
    for field in model._meta.concrete_fields:
        if field.attname in values and values[field.attname] is not None and field.get_internal_type() == "DateTimeField":
            values[field.attname] = parse_datetime(values[field.attname])
    obj = model(**{k: v for k, v in values.items() if k in {f.attname for f in model._meta.concrete_fields}})
    obj.resource_version = stone.resource_version
    return store.to_manifest(obj, kind)
