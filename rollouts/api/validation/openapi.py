"""A CRD's OpenAPI v3 schema checked with jsonschema, as the API server's
structural schema validation does, worded as the API server words it.

The CRD schemas are OpenAPI 3.0 with Kubernetes extensions; compile() turns
one into a Draft 4 JSON Schema once (cached per schema):
- strict about unknown fields, as kubectl's default `--validate=strict`:
  every object with `properties` gets `additionalProperties: false`, unless it
  says `x-kubernetes-preserve-unknown-fields` (then anything goes) or is an
  `x-kubernetes-embedded-resource` (apiVersion, kind and metadata are allowed);
- `x-kubernetes-int-or-string` becomes the type ["integer", "string"] (the
  anyOf the CRD spells it with would only blur the message);
- `nullable` adds "null"; `x-kubernetes-list-type: set` is uniqueItems and
  `map` checks its `x-kubernetes-list-map-keys` are unique;
- `format` and `description` are not checked (the API server ignores most
  formats too).

prepare() does what the API server does before it validates: drops nulls from
non-nullable fields (it prunes them) and applies every `default` of fields
that are absent inside objects that are present. It returns a copy: the stored
manifest is not changed (Fleet UI stores what was applied).
"""

import copy
import json

from jsonschema import Draft4Validator, validators
from jsonschema.exceptions import ValidationError

from .nodes import Causes, child, invalid, show

_CHECKED = (
    "enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "minItems", "maxItems", "required", "multipleOf",
)  # fmt: skip
_EMBEDDED_FIELDS = ("apiVersion", "kind", "metadata")


# --- compiling a CRD schema ---------------------------------------------------------


def _type_of_node(node: dict):
    if node.get("x-kubernetes-int-or-string"):
        kinds = ["integer", "string"]
    elif "type" in node:
        kinds = [node["type"]]
    else:
        return None
    return [*kinds, "null"] if node.get("nullable") else (kinds if len(kinds) > 1 else kinds[0])


def _convert(node: dict) -> dict:
    """One CRD schema node as JSON Schema (recursively)."""
    out = {key: node[key] for key in _CHECKED if key in node}
    if (kind := _type_of_node(node)) is not None:
        out["type"] = kind
    if "properties" in node:
        out["properties"] = {name: _convert(sub) for name, sub in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _convert(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _convert(extra)
    elif node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        if extra is not True:
            out["additionalProperties"] = False
            if node.get("x-kubernetes-embedded-resource"):
                out.setdefault("properties", {}).update({f: {} for f in _EMBEDDED_FIELDS})
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if node.get("x-kubernetes-list-type") == "map" and node.get("x-kubernetes-list-map-keys"):
        out["x-list-map-keys"] = list(node["x-kubernetes-list-map-keys"])
    return out


def _list_map_keys(validator, keys, instance, schema):
    """x-kubernetes-list-type: map: one item per combination of its keys."""
    if not validator.is_type(instance, "array"):
        return
    seen = set()
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = json.dumps({name: item.get(name) for name in keys}, sort_keys=True)
        if key in seen:
            yield ValidationError(f"Duplicate value: {key}", path=[index], validator_value=keys)
        seen.add(key)


_Validator = validators.extend(Draft4Validator, {"x-list-map-keys": _list_map_keys})


_COMPILED: dict[int, tuple] = {}


def compile(schema: dict):
    """(validator, converted schema) for a CRD schema, cached: the schemas come
    from api.crds, which keeps them for the life of the process."""
    found = _COMPILED.get(id(schema))
    if found is None or found[0] is not schema:
        converted = _convert(schema)
        found = _COMPILED[id(schema)] = (schema, _Validator(converted), converted)
    return found[1], found[2]


# --- preparing the instance ---------------------------------------------------------


def prepare(value, node: dict, skip_defaults: frozenset[str] = frozenset(), path: str = ""):
    """A copy of `value` with nulls pruned and defaults applied, as the API server
    does before validation. Paths in `skip_defaults` (e.g. "spec.state") keep
    their absence."""
    if isinstance(value, dict) and isinstance(node, dict):
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        out = {}
        for name, item in value.items():
            sub = props.get(name, extra if isinstance(extra, dict) else {})
            if item is None and not sub.get("nullable"):
                continue
            out[name] = prepare(item, sub, skip_defaults, child(path, name) if name in props else "")
        for name, sub in props.items():
            where = child(path, name)
            if name not in out and "default" in sub and where not in skip_defaults:
                out[name] = prepare(copy.deepcopy(sub["default"]), sub, skip_defaults, where)
        return out
    if isinstance(value, list) and isinstance(node, dict) and isinstance(node.get("items"), dict):
        return [prepare(item, node["items"], skip_defaults, "") for item in value]
    return copy.deepcopy(value)


# --- errors, as the API server words them --------------------------------------------


def path_text(schema: dict, steps) -> str:
    """The API server's path: `spec.stages[0].name`, `...matchLabels[environment]`."""
    text, node = "", schema
    for step in steps:
        if isinstance(step, int):
            text, node = f"{text}[{step}]", (node or {}).get("items") or {}
            continue
        props = (node or {}).get("properties") or {}
        if step in props:
            text, node = child(text, step), props[step]
        else:
            text = f"{text}[{step}]" if text else child(text, step)
            extra = (node or {}).get("additionalProperties")
            node = extra if isinstance(extra, dict) else {}
    return text


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return next((n for t, n in names.items() if isinstance(value, t)), "null")


def _expected(kind) -> str:
    if isinstance(kind, list):
        shown = [k for k in kind if k != "null"]
        return " or ".join(shown)
    return kind


def _messages(error: ValidationError, path: str, schema: dict) -> Causes:
    """The causes one jsonschema error stands for."""
    check, value, limit = error.validator, error.instance, error.validator_value
    if check == "type":
        expected = _expected(limit)
        return [(path, f'Invalid value: "{_json_type(value)}": {path} in body must be of type {expected}')]
    if check == "enum":
        supported = ", ".join(json.dumps(v) for v in limit)
        return [(path, f"Unsupported value: {show(value)}: supported values: {supported}")]
    if check == "required":
        return [(child(path, name), "Required value") for name in limit if name not in value]
    if check == "additionalProperties":
        known = set(error.schema.get("properties") or {})
        return [(child(path, n), f'unknown field "{child(path, n)}"') for n in value if n not in known]
    if check == "pattern":
        return [(path, invalid(value, f"{path} in body should match '{limit}'"))]
    if check == "minimum":
        return [(path, invalid(value, f"{path} in body should be greater than or equal to {limit}"))]
    if check == "maximum":
        return [(path, invalid(value, f"{path} in body should be less than or equal to {limit}"))]
    if check == "maxLength":
        return [(path, f"Too long: may not be more than {limit} characters")]
    if check == "minLength":
        return [(path, invalid(value, f"{path} in body should be at least {limit} chars long"))]
    if check == "maxItems":
        return [(path, f"Too many: {len(value)}: must have at most {limit} items")]
    if check == "minItems":
        return [(path, invalid(len(value), f"{path} in body should have at least {limit} items"))]
    if check == "uniqueItems":
        return [(path, "Duplicate value: the list holds an item twice")]
    if check == "x-list-map-keys":
        return [(path, error.message)]
    return [(path, invalid(value, error.message))]


def check(schema: dict, instance, causes: Causes) -> list[str]:
    """Append every schema problem of `instance` (already prepared) to causes.

    Returns the paths that have problems, so rules that rely on types can skip
    them."""
    validator, converted = compile(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: _sort_key(e.absolute_path))
    typed = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    bad: list[str] = []
    for error in errors:
        steps = tuple(error.absolute_path)
        if error.validator != "type" and steps in typed:
            continue  # a wrong type says it all; its enum or pattern would only repeat it
        path = path_text(converted, steps)
        for cause in _messages(error, path, converted):
            if cause not in causes:
                causes.append(cause)
                bad.append(cause[0])
    return bad


def _sort_key(steps) -> tuple:
    # Paths in document order of their fields is not known here; sorting by
    # the path text keeps messages stable between runs.
    return tuple((0, s, "") if isinstance(s, int) else (1, 0, s) for s in steps)
