"""Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`) for
kinds with a CRD schema: fields the schema does not know are refused
(Strict, kubectl's default), dropped with a warning (Warn), or dropped
silently (Ignore), as the API server prunes a custom resource's unknown
fields. Built-in kinds keep every field (their schemas are not vendored)."""

from rollouts.api.errors import BadRequest
from rollouts.api.kinds import Kind

from . import crds

MODES = ("Strict", "Warn", "Ignore")
_ENVELOPE = ("apiVersion", "kind", "metadata")


class UnknownFields(BadRequest):
    pass


def mode_of(params) -> str:
    """The request's fieldValidation (Warn when not given, as the API server)."""
    mode = params.get("fieldValidation") or "Warn"
    if mode not in MODES:
        raise BadRequest(f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", "Strict", "Warn"')
    return mode


def check(kind: Kind, version: str, body, mode: str) -> list[str]:
    """Prune `body` (an object, or a merge patch of one) of fields its CRD
    schema does not know; UnknownFields under Strict. Returns the warnings
    to send (Warn), else []."""
    schema = crds.schema(kind.group, kind.kind, version) if kind.is_fleet else None
    if schema is None or not isinstance(body, dict):
        return []
    found: list[str] = []
    for key, value in list(body.items()):
        if key in _ENVELOPE or key == "status":
            continue
        _walk(schema, body, key, value, key, found)
    if found and mode == "Strict":
        names = ", ".join(f'unknown field "{path}"' for path in found)
        raise UnknownFields(f"{kind.kind} in version \"{version}\" cannot be handled as a {kind.kind}: "
                            f"strict decoding error: {names}")
    return [f'unknown field "{path}"' for path in found] if mode == "Warn" else []


def _walk(parent_schema: dict, parent: dict, key: str, value, path: str, found: list[str]) -> None:
    """Look at `parent[key]` against `parent_schema`; drop it when unknown."""
    if parent_schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    properties = parent_schema.get("properties")
    extra = parent_schema.get("additionalProperties")
    if properties is not None and key in properties:
        schema = properties[key]
    elif isinstance(extra, dict):
        schema = extra
    elif properties is not None or extra is False:
        found.append(path)
        del parent[key]
        return
    else:
        return
    _descend(schema, value, path, found)


def _descend(schema: dict, value, path: str, found: list[str]) -> None:
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        for key, item in list(value.items()):
            if item is not None:  # a merge patch's deletion
                _walk(schema, value, key, item, f"{path}.{key}", found)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _descend(schema["items"], item, f"{path}[{index}]", found)
