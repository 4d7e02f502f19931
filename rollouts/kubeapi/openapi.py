"""OpenAPI v3: the index (/openapi/v3) and one document per group-version
(/openapi/v3/apis/{group}/{version}, /openapi/v3/api/v1).

kubectl reads them for two things. `kubectl apply` looks for the PATCH
operation of the object's kind (matched by its x-kubernetes-group-version-kind)
and, when it lists the `fieldValidation` parameter, leaves validation to the
server (`fieldValidation=Strict`) instead of validating against OpenAPI v2,
which is not served. `kubectl explain` reads the kind's schema from the
components: the vendored CRD's openAPIV3Schema for fleet kinds, an open
object for the others. The PATCH operations offer no strategic merge patch,
so kubectl computes a JSON merge patch for custom resources and its own
strategic merge patch for the built-in kinds."""

import hashlib
import json
from functools import cache

from rollouts.api.kinds import Kind

from . import crds
from .discovery import KUBE_VERSION, served_versions

_PATCH_TYPES = ("application/merge-patch+json", "application/json-patch+json")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


def _group_versions(kinds: list[Kind]) -> dict[tuple[str, str], list[Kind]]:
    found: dict[tuple[str, str], list[Kind]] = {}
    for kind in kinds:
        for version in served_versions(kind):
            found.setdefault((kind.group, version), []).append(kind)
    return found


def _api_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index(kinds: list[Kind]) -> dict:
    """The paths index; each URL carries a hash of what its document
    describes, so kubectl's cache refetches only what changed."""
    paths = {}
    for (group, version), members in sorted(_group_versions(kinds).items()):
        digest = hashlib.sha256(repr(sorted((k.kind, k.plural, k.namespaced) for k in members)).encode())
        path = _api_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.hexdigest()[:32].upper()}"}
    return {"paths": paths}


def document(kinds: list[Kind], path: str) -> dict | None:
    """The OpenAPI v3 document of the group-version at `path`, or None."""
    for (group, version), members in _group_versions(kinds).items():
        if _api_path(group, version) == path:
            return _document(group, version, tuple(sorted(members, key=lambda k: k.plural)))
    return None


@cache
def _document(group: str, version: str, members: tuple[Kind, ...]) -> dict:
    paths, schemas = {}, {}
    for kind in members:
        name = _schema_name(kind, version)
        schemas[name] = _schema(kind, version)
        paths.update(_paths(kind, group, version, name))
    return {"openapi": "3.0.0", "info": {"title": "Fleet UI", "version": KUBE_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}


def _schema_name(kind: Kind, version: str) -> str:
    """Reverse-domain name, as the API server names its schemas."""
    group = ".".join(reversed(kind.group.split("."))) if kind.group else "io.k8s.api.core"
    return f"{group}.{version}.{kind.kind}"


def _gvk(kind: Kind, version: str) -> dict:
    return {"group": kind.group, "kind": kind.kind, "version": version}


def _schema(kind: Kind, version: str) -> dict:
    found = crds.schema(kind.group, kind.kind, version)
    schema = json.loads(json.dumps(found)) if found else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "description": f"{kind.kind} as the hub stores it (any fields).",
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                       "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    schema["x-kubernetes-group-version-kind"] = [_gvk(kind, version)]
    return schema


def _paths(kind: Kind, group: str, version: str, schema_name: str) -> dict:
    base = "/" + _api_path(group, version) + ("/namespaces/{namespace}" if kind.namespaced else "")
    ref = {"$ref": f"#/components/schemas/{schema_name}"}
    item = {"description": f"a {kind.kind}",
            "get": _operation(kind, version, "get", ref),
            "put": _operation(kind, version, "put", ref, body={"application/json": {"schema": ref}}),
            "patch": _operation(kind, version, "patch", ref, body={t: {"schema": {"type": "object"}}
                                                                   for t in _PATCH_TYPES}),
            "delete": _operation(kind, version, "delete", ref)}
    collection = {"get": _operation(kind, version, "list", ref),
                  "post": _operation(kind, version, "post", ref, body={"application/json": {"schema": ref}})}
    paths = {f"{base}/{kind.plural}": collection, f"{base}/{kind.plural}/{{name}}": item}
    if kind.is_fleet and crds.has_status(kind.group, kind.kind, version):
        paths[f"{base}/{kind.plural}/{{name}}/status"] = {
            "get": _operation(kind, version, "get", ref),
            "patch": _operation(kind, version, "patch", ref, body={t: {"schema": {"type": "object"}}
                                                                   for t in _PATCH_TYPES})}
    return paths


def _operation(kind: Kind, version: str, verb: str, ref: dict, *, body: dict | None = None) -> dict:
    operation = {"x-kubernetes-group-version-kind": _gvk(kind, version), "x-kubernetes-action": verb,
                 "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}}
    if body is not None:
        operation["requestBody"] = {"content": body}
        operation["parameters"] = [{"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                                   for p in _WRITE_PARAMS]
    return operation
