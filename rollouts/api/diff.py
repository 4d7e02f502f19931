"""What changed between two JSON documents, leaf by leaf: the one diff under
the audit log's `changes` (services/events.py) and the snapshot diffs the
dashboard shows (selectors/snapshots.py); and, in JSON-pointer paths, what a
member's object differs in from the hub's manifest (the ReportDiff apply
strategy's `observedDiffs`, members/)."""

import json

MISSING = object()  # a path one side does not have


def leaves(value, path: str = "") -> dict:
    """{dotted path: value} of every leaf; a list, a scalar and an empty
    object are each one leaf."""
    if isinstance(value, dict) and value:
        out = {}
        for key, item in value.items():
            out.update(leaves(item, f"{path}.{key}" if path else str(key)))
        return out
    return {path: value}


def changed_leaves(before, after) -> dict[str, tuple]:
    """{path: (before, after)} for every leaf that differs or exists on one
    side only (that side's value is MISSING), in path order. An empty object
    that the other side fills (`{}` against `{"a": 1}`) is not a change of its
    own: its new leaves are."""
    a, b = leaves(before), leaves(after)
    changed = {}
    for path in sorted(a.keys() | b.keys()):
        old, new = a.get(path, MISSING), b.get(path, MISSING)
        if old != new and not (_filled(path, old, b) or _filled(path, new, a)):
            changed[path] = (old, new)
    return changed


def _filled(path: str, value, other: dict) -> bool:
    """Whether `value` is an empty object at `path` that `other` has leaves under."""
    if value != {}:
        return False
    prefix = f"{path}." if path else ""
    return any(key.startswith(prefix) and key != path for key in other)


# ReportDiff ---------------------------------------------------------------------------

WHOLE_OBJECT = "(the whole object)"  # KubeFleet's placeholder for an object the member does not have
# What the member's API server adds to an object: never a difference of the manifest's.
_SERVER_FIELDS = {"/status", "/metadata/uid", "/metadata/resourceVersion", "/metadata/generation",
                  "/metadata/creationTimestamp", "/metadata/managedFields", "/metadata/selfLink",
                  "/metadata/ownerReferences", "/metadata/finalizers", "/metadata/deletionTimestamp"}


def _escape(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def pointer_leaves(value, path: str = "") -> dict:
    """{JSON pointer: value} of every leaf, into objects and lists alike
    (`/spec/template/spec/containers/0/image`)."""
    if isinstance(value, dict) and value:
        items = ((f"{path}/{_escape(k)}", v) for k, v in value.items())
    elif isinstance(value, list) and value:
        items = ((f"{path}/{i}", v) for i, v in enumerate(value))
    else:
        return {path or "/": value}
    out = {}
    for sub, item in items:
        out.update(pointer_leaves(item, sub))
    return out


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _server_field(path: str) -> bool:
    return any(path == f or path.startswith(f + "/") for f in _SERVER_FIELDS)


def observed_diffs(hub: dict, member: dict | None, *, full: bool = False,
                   normalized: dict | None = None) -> list[dict]:
    """KubeFleet's `observedDiffs` of a member's object against the hub's
    manifest: [{path, valueInMember, valueInHub}], a side left out where that
    side has no value. PartialComparison (the default) looks only at the
    fields the manifest sets; FullComparison (`full`) also reports fields only
    the member has, except what its API server adds. A missing object is one
    difference at "/". `normalized` is the manifest as the member's API
    server would store it (a dry-run apply's answer): its values are the
    hub's at the manifest's paths, so `1000m` and `1` are the same CPU."""
    if member is None:
        return [{"path": "/", "valueInHub": WHOLE_OBJECT}]
    theirs, ours = pointer_leaves(member), pointer_leaves(hub)
    if normalized is not None:
        server = pointer_leaves(normalized)
        ours = {path: server.get(path, value) for path, value in ours.items()}
    paths = ours.keys() | ({p for p in theirs if not _server_field(p)} if full else set())
    diffs = []
    for path in sorted(paths):
        in_hub, in_member = ours.get(path, MISSING), theirs.get(path, MISSING)
        if in_hub == in_member or (in_hub in ({}, []) and any(p.startswith(path + "/") for p in theirs)):
            continue  # equal, or an empty object or list the member fills in
        diff = {"path": path}
        if in_member is not MISSING:
            diff["valueInMember"] = _text(in_member)
        if in_hub is not MISSING:
            diff["valueInHub"] = _text(in_hub)
        diffs.append(diff)
    return diffs
