"""What changed between two JSON documents, leaf by leaf: the one diff under
the audit log's `changes` (services/events.py) and the snapshot diffs the
dashboard shows (selectors/snapshots.py)."""

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
