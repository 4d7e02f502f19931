"""kubectl's client-side apply: the last-applied annotation and the
three-way merge, as pure functions over manifests (no database).

`kubectl apply` keeps what it applied in the annotation
kubectl.kubernetes.io/last-applied-configuration. On the next apply it
merges three ways, with JSON merge patch semantics (what kubectl uses for
custom resources, which have no strategic-merge metadata):
- original: the last-applied configuration (None: never applied);
- modified: the manifest being applied now;
- current: the object as stored, which others may have changed since
  (`fleet patch`, `fleet label`, the web).
A field in original that modified dropped is deleted; a field modified sets
is set (lists are replaced whole); a field only current has (someone else
set it) is kept. Labels and annotations are merged the same way, as fields
of metadata.
"""

import copy
import json

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# What the server fills in: never part of what a person applied.
_SERVER_METADATA = (
    "creationTimestamp", "deletionTimestamp", "generation", "managedFields",
    "resourceVersion", "selfLink", "uid",
)  # fmt: skip


def applied_configuration(manifest: dict) -> str:
    """The annotation's value for `manifest`: the manifest as JSON without
    status, the server's metadata and the annotation itself (kubectl's form:
    compact JSON, keys sorted, a final newline)."""
    config = {k: copy.deepcopy(v) for k, v in manifest.items() if k != "status"}
    meta = {k: v for k, v in (config.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    meta.pop("annotations", None)
    if annotations:
        meta["annotations"] = annotations
    config["metadata"] = meta
    return json.dumps(config, sort_keys=True, separators=(",", ":")) + "\n"


def last_applied_of(manifest: dict) -> dict | None:
    """The configuration last applied to a stored object; None if it was never
    applied with an annotation (or the annotation is not a JSON object)."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    try:
        value = json.loads(annotations.get(LAST_APPLIED) or "null")
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _deletions(original: dict, modified: dict) -> dict:
    """null for every field original has and modified dropped (recursively)."""
    patch = {}
    for key, value in original.items():
        if key not in modified:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(modified[key], dict):
            if inner := _deletions(value, modified[key]):
                patch[key] = inner
    return patch


_MISSING = object()


def _changes(current, modified: dict) -> dict:
    """Every field modified sets to something current does not hold."""
    patch = {}
    for key, value in modified.items():
        held = current.get(key, _MISSING) if isinstance(current, dict) else _MISSING
        if isinstance(value, dict) and isinstance(held, dict):
            if inner := _changes(held, value):
                patch[key] = inner
        elif held is _MISSING and value is None:
            continue  # deleting what is not there
        elif held != value:
            patch[key] = copy.deepcopy(value)
    return patch


def _combined(deletions: dict, changes: dict) -> dict:
    out = dict(deletions)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _combined(out[key], value)
        else:
            out[key] = value
    return out


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def three_way_patch(original: dict | None, modified: dict, current: dict) -> dict:
    """The merge patch kubectl apply sends: deletions from original to
    modified, plus what modified changes in current."""
    deletions = _deletions(original, modified) if isinstance(original, dict) else {}
    return _combined(deletions, _changes(current, modified))


def three_way_merge(modified: dict, current: dict) -> dict:
    """The object after applying `modified` over `current` (the stored
    manifest, whose annotation says what was applied last), with the
    annotation set to `modified`'s configuration. Status is never touched."""
    config = json.loads(applied_configuration(modified))
    patch = three_way_patch(last_applied_of(current), config, current)
    patch.pop("status", None)
    merged = merge_patch(current, patch)
    meta = merged.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), LAST_APPLIED: applied_configuration(modified)}
    return merged


def without_last_applied(manifest: dict) -> dict:
    """`manifest` minus the annotation: to compare what an apply changed."""
    out = dict(manifest)
    meta = dict(out.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out
