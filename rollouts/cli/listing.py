"""What `fleet get` shows: hub objects, or what a member cluster holds,
rendered as a table, names, YAML or JSON."""

import copy
from dataclasses import dataclass, field

from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import ApiError, NotFound
from rollouts.api.kinds import Kind
from rollouts.api.labels import selector_matches

from . import printers


@dataclass
class Listing:
    """The objects of one kind that a `get` found, and the names it did not."""

    kind: Kind
    objs: list
    on_member: bool = False
    missing: list[ApiError] = field(default_factory=list)

    def manifests(self) -> list[dict]:
        if self.on_member:
            return [copy.deepcopy(o.manifest) for o in self.objs]
        return [store.to_manifest(o, self.kind) for o in self.objs]


def hub_listing(
    kind: Kind, names: list[str], namespace: str | None, selector: dict | None
) -> Listing:
    """Hub objects of a kind: the named ones, or all matching the selector.

    namespace None means all namespaces (only without names)."""
    if not names:
        return Listing(kind, store.list_objects(kind, namespace, selector))
    found, missing = [], []
    for name in names:
        obj = store.find(kind, name, namespace or "")
        if obj is None:
            missing.append(NotFound(kind.resource, name))
        else:
            found.append(obj)
    return Listing(kind, found, missing=missing)


def member_listing(
    cluster: str, kind: Kind, names: list[str], namespace: str | None, selector: dict | None
) -> Listing:
    """What the member cluster holds of a kind, as the simulated member stores it."""
    rows = m.MemberObject.objects.filter(cluster=cluster, api_group=kind.group, kind=kind.kind)
    if kind.namespaced and namespace is not None:
        rows = rows.filter(namespace=namespace)
    objs = list(rows.order_by("namespace", "name"))
    if selector is not None:
        objs = [o for o in objs if selector_matches(selector, _member_labels(o))]
    if not names:
        return Listing(kind, objs, on_member=True)
    by_name = {o.name: o for o in objs}
    found = [by_name[n] for n in names if n in by_name]
    missing = [NotFound(kind.resource, n) for n in names if n not in by_name]
    return Listing(kind, found, on_member=True, missing=missing)


def _member_labels(obj: m.MemberObject) -> dict:
    return ((obj.manifest or {}).get("metadata") or {}).get("labels") or {}


def render(
    listings: list[Listing], *, output: str, show_labels: bool, all_namespaces: bool, single: bool
) -> str:
    """The text `get` prints on stdout ('' when there is nothing to print)."""
    if output in ("yaml", "json"):
        items = [item for listing in listings for item in listing.manifests()]
        if single and not items:
            return ""  # the one object asked for is missing: only the error is printed
        return printers.manifest_list_output(items, output, single=single)
    if output == "name":
        return "\n".join(printers.object_name(x.kind, o) for x in listings for o in x.objs)
    tables = [
        _table(x, wide=output == "wide", show_labels=show_labels, all_namespaces=all_namespaces)
        for x in listings
        if x.objs
    ]
    return "\n\n".join(tables)


def _table(listing: Listing, *, wide: bool, show_labels: bool, all_namespaces: bool) -> str:
    # kubectl shows a NAMESPACE column only for namespaced kinds.
    with_namespace = all_namespaces and listing.kind.namespaced
    if listing.on_member:
        return printers.member_objects_table(listing.objs, all_namespaces=with_namespace)
    return printers.table(
        listing.kind,
        listing.objs,
        wide=wide,
        show_labels=show_labels,
        all_namespaces=with_namespace,
    )
