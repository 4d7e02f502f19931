"""`Table` output (Accept: application/json;as=Table;v=v1;g=meta.k8s.io):
the rows kubectl prints for `kubectl get`, with the columns `fleet get`
prints (rollouts.cli.printers), so both show the seed tutorial's tables."""

from rollouts import clock
from rollouts.api import store
from rollouts.api.kinds import Kind
from rollouts.cli import printers

TABLE_MEDIA = "as=Table"


def wants_table(accept: str) -> bool:
    return TABLE_MEDIA in accept.replace(" ", "")


def _column(name: str, priority: int, *, fmt: str = "", type_: str = "string") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}


def table(kind: Kind, objs: list, resource_version: str, *, include_object: str = "Metadata") -> dict:
    """The Table of `objs`. Wide-only columns have priority 1 (`-o wide`);
    each row carries the object's metadata for --show-labels and -A."""
    before, after = printers.printer_columns(kind)
    columns = ([_column("Name", 0, fmt="name")] + [_column(h, int(w)) for h, w, _ in before]
               + [_column("Age", 0, type_="date")] + [_column(h, int(w)) for h, w, _ in after])
    now = clock.precise_now()
    rows = [{"cells": [obj.name] + [fn(obj) for _, _, fn in before] + [printers.age(obj.creation_timestamp, now)]
             + [fn(obj) for _, _, fn in after], "object": _row_object(kind, obj, include_object)}
            for obj in objs]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": rows}


def _row_object(kind: Kind, obj, include_object: str) -> dict | None:
    if include_object == "None":
        return None
    manifest = store.to_manifest(obj, kind)
    if include_object == "Object":
        return manifest
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": manifest["metadata"]}
