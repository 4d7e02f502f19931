"""`Table` output (Accept: application/json;as=Table;v=v1;g=meta.k8s.io):
the rows kubectl prints for `kubectl get`, with the columns and cells `fleet
get` prints (rollouts.api.columns, rollouts.cli.printers), so both show the
seed tutorial's tables. Date cells are ages, as the API server's table
convertor sends them."""

import re
from collections.abc import Callable

from django.utils.dateparse import parse_datetime

from rollouts import clock
from rollouts import models as m
from rollouts.api import columns, store
from rollouts.api.kinds import Kind
from rollouts.cli import printers

TABLE_MEDIA = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_MEDIA in accept.replace(" ", "")


def _column(name: str, priority: int, *, fmt: str = "", type_: str = "string") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}


def table(kind: Kind, objs: list, resource_version: str, *, include_object: str = "Metadata",
          manifests: list[dict] | None = None) -> dict:
    """The Table of `objs` (whose `manifests`, when known, the rows carry).
    Wide-only columns have priority 1 (`-o wide`); each row carries the
    object's metadata for --show-labels and -A."""
    shown = columns.columns_for(kind)
    if not kind.is_fleet and all(c.json_path == columns.CREATED for c in shown):
        shown = applied_crd_columns(kind) + shown
    definitions = [_column("Name", 0, fmt="name")] + [
        _column(c.name, min(c.priority, 1), type_=c.type) for c in shown]
    now = clock.precise_now()
    rows = [{"cells": [obj.name] + [printers.cell(c, obj, columns.printed(obj), now) for c in shown],
             "object": _row_object(kind, obj, include_object, manifest)}
            for obj, manifest in zip(objs, manifests or [None] * len(objs), strict=True)]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}


def _row_object(kind: Kind, obj, include_object: str, manifest: dict | None) -> dict | None:
    if include_object == "None":
        return None
    manifest = manifest or store.to_manifest(obj, kind)
    if include_object == "Object":
        return manifest
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": manifest["metadata"]}


def watch_rows(kind: Kind, *, include_object: str = "Metadata") -> Callable[[dict], dict]:
    """The renderer of a watch asked for as a Table (`kubectl get -w`): each
    event's object becomes a Table of one row, its column definitions
    included (kubectl prints the header again only when they change). It
    works from the event's manifest alone, so a deleted object renders too."""
    def render(manifest: dict) -> dict:
        return table(kind, [_object_of(kind, manifest)], manifest["metadata"]["resourceVersion"],
                     include_object=include_object, manifests=[manifest])
    return render


def _object_of(kind: Kind, manifest: dict):
    """An unsaved model object holding what the printer columns read."""
    meta = manifest["metadata"]
    obj = kind.model(name=meta["name"], namespace=meta.get("namespace", ""), uid=meta["uid"],
                     creation_timestamp=parse_datetime(meta["creationTimestamp"]),
                     labels=dict(meta.get("labels") or {}), annotations=dict(meta.get("annotations") or {}),
                     generation=int(meta.get("generation") or 0), resource_version=int(meta["resourceVersion"]))
    if kind.model is m.HubResource:
        obj.content = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata")}
    else:
        obj.spec, obj.status = manifest.get("spec") or {}, manifest.get("status") or {}
    return obj


# `.a.b`, `.a[0]` and `.a[?(@.k=="v")].b`: the JSONPath subset printer columns use.
_STEP = re.compile(r'\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_-]+)==["\']([^"\']*)["\']\)\]')


def applied_crd_columns(kind: Kind) -> list[columns.Column]:
    """The additionalPrinterColumns of the CRD applied to the hub for `kind`
    (Age excepted: every table has it); [] when it declares none."""
    crd = m.HubResource.objects.filter(api_group="apiextensions.k8s.io", kind="CustomResourceDefinition",
                                       name=f"{kind.plural}.{kind.group}").first()
    versions = ((crd.content if crd else {}).get("spec") or {}).get("versions") or []
    entry = next((v for v in versions if isinstance(v, dict) and v.get("name") == kind.version), {})
    return [columns.Column(str(c.get("name", "")), str(c.get("type") or "string"), int(bool(c.get("priority"))), "",
                           _cell(str(c.get("jsonPath", ""))))
            for c in entry.get("additionalPrinterColumns") or []
            if isinstance(c, dict) and c.get("jsonPath") != columns.CREATED]


def _cell(path: str):
    def value(obj, _manifest) -> str:
        found = json_path({**(obj.content or {}), "metadata": {"name": obj.name, "labels": obj.labels,
                                                               "annotations": obj.annotations}}, path)
        return "" if found is None else str(found)

    return value


def json_path(data, path: str):
    """The value at `path` (the printer-column subset of JSONPath), or None."""
    at, rest = data, path
    while rest:
        step = _STEP.match(rest)
        if step is None:
            return None
        key, index, field, wanted = step.groups()
        rest = rest[step.end():]
        if key is not None:
            at = at.get(key) if isinstance(at, dict) else None
        elif index is not None:
            at = at[int(index)] if isinstance(at, list) and int(index) < len(at) else None
        else:
            at = next((i for i in at if isinstance(i, dict) and str(i.get(field)) == wanted), None) \
                if isinstance(at, list) else None
        if at is None:
            return None
    return at
