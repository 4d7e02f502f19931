"""Strategic merge patches of the built-in kinds, as kubectl sends them for
`kubectl apply`, `edit`, `label` and `patch` (the default --type).

A strategic merge patch is a JSON merge patch in which some lists merge by a
key instead of being replaced (a Deployment's containers by `name`), with
directives: `$patch: delete|replace|merge`, `$setElementOrder/<list>`,
`$deleteFromPrimitiveList/<list>` and `$retainKeys`. The API server reads the
merge keys from its Go types; here they are the fields of the workload kinds
below (`MERGE_KEYS`). A list of objects with a directive inside it that is not
one of them is refused (UnsupportedPatch) rather than misread; any other list
is replaced, as in a merge patch."""

import copy

from .errors import ApiError

# List field → the key its elements merge by (Kubernetes' patchMergeKey tags).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath", "imagePullSecrets": "name",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
    "ownerReferences": "uid", "conditions": "type",
}
# Lists of values that merge as sets (patchStrategy merge on a primitive list).
SET_LISTS = ("finalizers",)
# `ports` merges by containerPort inside a container, by port in a Service.
_PORT_KEYS = ("containerPort", "port")
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


class UnsupportedPatch(ApiError):
    """A directive this implementation cannot apply faithfully (415, as the
    API server answers a patch type it does not take); the message names where."""

    code = 415
    reason = "UnsupportedMediaType"

    def __init__(self, what: str):
        super().__init__(f"strategic merge patch: {what} is not supported by Fleet UI: send a merge patch "
                         "(kubectl patch --type=merge) or replace the object (kubectl replace)")


def strategic_merge(target, patch, path: str = ""):
    """`target` with the strategic merge patch applied (neither is changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    mode = patch.get("$patch", "merge")
    if mode == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if mode != "merge":
        raise UnsupportedPatch(f"$patch: {mode!r} at {path or '.'}")
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, key, f"{path}.{key}")
        else:
            result[key] = strategic_merge(result.get(key), value, f"{path}.{key}")
    _apply_directives(result, patch, path)
    return result


def _apply_directives(result: dict, patch: dict, path: str) -> None:
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVES):
            field = key[len(_DELETE_PRIMITIVES):]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
        elif key.startswith(_ORDER):
            field = key[len(_ORDER):]
            if isinstance(result.get(field), list):
                result[field] = _ordered(result[field], value or [], _merge_key(field, result[field], path))
        elif key == "$retainKeys":
            for name in [k for k in result if k not in (value or [])]:
                del result[name]
        elif key.startswith("$") and key != "$patch":
            raise UnsupportedPatch(f"directive {key!r} at {path or '.'}")


def _merge_key(field: str, items: list, path: str) -> str | None:
    if field == "ports":
        return next((k for k in _PORT_KEYS if any(isinstance(i, dict) and k in i for i in items)), None)
    return MERGE_KEYS.get(field)


def _merge_list(current, patch: list, field: str, path: str) -> list:
    """Merge by key where the field has one, else replace (directives refused)."""
    if field in SET_LISTS and isinstance(current, list):
        return current + [v for v in patch if v not in current]
    key = _merge_key(field, patch, path)
    if key is None or not all(isinstance(i, dict) for i in patch):
        if any(isinstance(i, dict) and any(k.startswith("$") for k in i) for i in patch):
            raise UnsupportedPatch(f"a merge directive in the list {path}, which has no known merge key")
        return copy.deepcopy(patch)
    merged = [copy.deepcopy(i) for i in (current if isinstance(current, list) else [])]
    for item in patch:
        found = next((n for n, old in enumerate(merged) if isinstance(old, dict) and old.get(key) == item.get(key)),
                     None)
        if item.get("$patch") == "delete":
            if found is not None:
                del merged[found]
        elif found is None:
            merged.append(strategic_merge({}, item, f"{path}[{key}={item.get(key)}]"))
        else:
            merged[found] = strategic_merge(merged[found], item, f"{path}[{key}={item.get(key)}]")
    return merged


def _ordered(items: list, order: list, key: str | None) -> list:
    """`items` in the order `$setElementOrder` gives; others after, as they were."""
    def ident(item):
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [ident(o) for o in order]
    ranked = sorted(range(len(items)), key=lambda n: (wanted.index(ident(items[n])) if ident(items[n]) in wanted
                                                      else len(wanted), n))
    return [items[n] for n in ranked]
