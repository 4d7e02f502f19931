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
import functools
import json

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


def _duplicate_keys(instance: list, keys: list[str]):
    """(index, shown key) of each item of a list map whose keys an earlier item has."""
    seen = set()
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = json.dumps({name: item.get(name) for name in keys}, sort_keys=True)
        if key in seen:
            yield index, key
        seen.add(key)


@functools.cache
def _validator_class():
    """Draft 4 plus x-list-map-keys. jsonschema is imported here, on the first
    validation: it costs about 0.1 s, which `manage.py` need not pay to start."""
    from jsonschema import Draft4Validator, validators
    from jsonschema.exceptions import ValidationError

    def list_map_keys(validator, keys, instance, schema):
        if validator.is_type(instance, "array"):
            for index, key in _duplicate_keys(instance, keys):
                yield ValidationError(f"Duplicate value: {key}", path=[index], validator_value=keys)

    return validators.extend(Draft4Validator, {"x-list-map-keys": list_map_keys})


_COMPILED: dict[int, tuple] = {}


def compile(schema: dict):
    """(validator, converted schema) for a CRD schema, cached: the schemas come
    from api.crds, which keeps them for the life of the process."""
    found = _COMPILED.get(id(schema))
    if found is None or found[0] is not schema:
        converted = _convert(schema)
        found = _COMPILED[id(schema)] = (schema, _validator_class()(converted), converted)
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


def _unknown_fields(error, path: str) -> Causes:
    known = set(error.schema.get("properties") or {})
    return [(child(path, n), f'unknown field "{child(path, n)}"') for n in error.instance if n not in known]


def _required(error, path: str) -> Causes:
    return [(child(path, name), "Required value") for name in error.validator_value if name not in error.instance]


def _bound(text: str):
    def message(error, path: str) -> Causes:
        return [(path, invalid(error.instance, f"{path} in body should {text} {error.validator_value}"))]

    return message


# jsonschema keyword -> the API server's causes for (error, path).
_WORDING = {
    "type": lambda e, p: [
        (p, f'Invalid value: "{_json_type(e.instance)}": {p} in body must be of type {_expected(e.validator_value)}')
    ],
    "enum": lambda e, p: [
        (p, f"Unsupported value: {show(e.instance)}: supported values: {', '.join(json.dumps(v) for v in e.validator_value)}")
    ],
    "required": _required,
    "additionalProperties": _unknown_fields,
    "pattern": lambda e, p: [(p, invalid(e.instance, f"{p} in body should match '{e.validator_value}'"))],
    "minimum": _bound("be greater than or equal to"),
    "maximum": _bound("be less than or equal to"),
    "maxLength": lambda e, p: [(p, f"Too long: may not be more than {e.validator_value} characters")],
    "minLength": lambda e, p: [(p, invalid(e.instance, f"{p} in body should be at least {e.validator_value} chars long"))],
    "maxItems": lambda e, p: [(p, f"Too many: {len(e.instance)}: must have at most {e.validator_value} items")],
    "minItems": lambda e, p: [
        (p, invalid(len(e.instance), f"{p} in body should have at least {e.validator_value} items"))
    ],
    "uniqueItems": lambda e, p: [(p, "Duplicate value: the list holds an item twice")],
    "x-list-map-keys": lambda e, p: [(p, e.message)],
}


def _messages(error, path: str) -> Causes:
    """The causes one jsonschema error stands for."""
    wording = _WORDING.get(error.validator)
    return wording(error, path) if wording else [(path, invalid(error.instance, error.message))]


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
        for cause in _messages(error, path):
            if cause not in causes:
                causes.append(cause)
                bad.append(cause[0])
    return bad


def _sort_key(steps) -> tuple:
    # Paths in document order of their fields is not known here; sorting by
    # the path text keeps messages stable between runs.
    return tuple((0, s, "") if isinstance(s, int) else (1, 0, s) for s in steps)
