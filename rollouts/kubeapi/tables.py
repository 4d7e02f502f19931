"""`Table` output (Accept: application/json;as=Table;v=v1;g=meta.k8s.io):
the rows kubectl prints for `kubectl get`, with the columns `fleet get`
prints (rollouts.cli.printers), so both show the seed tutorial's tables."""

import re
from collections.abc import Callable

from django.utils.dateparse import parse_datetime

from rollouts import clock
from rollouts import models as m
from rollouts.api import store
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
    before, after = printers.printer_columns(kind)
    if not (before or after) and not kind.is_fleet:
        before = applied_crd_columns(kind)
    columns = ([_column("Name", 0, fmt="name")] + [_column(h, int(w)) for h, w, _ in before]
               + [_column("Age", 0, type_="date")] + [_column(h, int(w)) for h, w, _ in after])
    now = clock.precise_now()
    rows = [{"cells": [obj.name] + [fn(obj) for _, _, fn in before] + [printers.age(obj.creation_timestamp, now)]
             + [fn(obj) for _, _, fn in after], "object": _row_object(kind, obj, include_object, manifest)}
            for obj, manifest in zip(objs, manifests or [None] * len(objs), strict=True)]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}


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


def applied_crd_columns(kind: Kind) -> list:
    """The additionalPrinterColumns of the CRD applied to the hub for `kind`
    (Age excepted: every table has it), as printers' (header, wide-only,
    value) columns; [] when it declares none."""
    crd = m.HubResource.objects.filter(api_group="apiextensions.k8s.io", kind="CustomResourceDefinition",
                                       name=f"{kind.plural}.{kind.group}").first()
    versions = ((crd.content if crd else {}).get("spec") or {}).get("versions") or []
    entry = next((v for v in versions if isinstance(v, dict) and v.get("name") == kind.version), {})
    return [(str(c.get("name", "")).upper(), bool(c.get("priority")), _cell(str(c.get("jsonPath", ""))))
            for c in entry.get("additionalPrinterColumns") or []
            if isinstance(c, dict) and c.get("jsonPath") != ".metadata.creationTimestamp"]


def _cell(path: str):
    def value(obj) -> str:
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
