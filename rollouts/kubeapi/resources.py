"""The verbs on a kind's objects: list, get, create, update, patch, delete
and the status subresource. Each parses the request, then calls the
services (rollouts.services.objects, approvals) that the CLI and the
dashboard call, so validation, approval policies, freezes and the audit log
are the same whichever door a write comes through (audited `via: kube-api`)."""

import base64
import json

import jsonpatch
from django.db import transaction
from django.http import JsonResponse

from rollouts.api import store
from rollouts.api.errors import AlreadyExists, ApiError, BadRequest, Conflict, NotFound
from rollouts.api.labels import parse_selector
from rollouts.api.last_applied import merge_patch
from rollouts.controllers.family import APPROVAL_KINDS
from rollouts.roles import client_address
from rollouts.services.approvals import approval_request_approve
from rollouts.services.objects import manifests_apply, object_delete, object_patch

from . import fields, tables, watch
from .auth import VIA
from .paths import Target

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


def _manifest(target: Target, obj) -> dict:
    manifest = store.to_manifest(obj, target.kind)
    if target.kind.is_fleet:  # served in the version asked for (v1beta1 and v1 hold the same fields here)
        manifest["apiVersion"] = target.api_version
    return manifest


def _in_version(target: Target):
    """A watch's renderer that serves a fleet kind's objects in the version
    asked for, as `_manifest` does for reads; None when nothing changes."""
    if not target.kind.is_fleet or target.api_version == target.kind.api_version:
        return None
    return lambda manifest: {**manifest, "apiVersion": target.api_version}


def _body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _warned(response: JsonResponse, warnings: list[str]) -> JsonResponse:
    """kubectl prints each `Warning: 299` header as `Warning: …`."""
    if warnings:
        response.headers["Warning"] = ", ".join(f'299 - "{w.replace(chr(34), chr(39))}"' for w in warnings)
    return response


def _dry_run(request) -> bool:
    values = request.GET.getlist("dryRun")
    if any(v != "All" for v in values):
        raise BadRequest(f"dryRun: Unsupported value: {values[0]!r}: supported values: \"All\"")
    return bool(values)


def _write(request, work):
    """Run `work()`; with dryRun=All inside a transaction that is rolled back
    (nothing stored, audited or published: events ride on the commit)."""
    if not _dry_run(request):
        return work()
    with transaction.atomic():
        result = work()
        transaction.set_rollback(True)
    return result


# Reads ---------------------------------------------------------------------------------------------


def list_objects(request, target: Target) -> JsonResponse:
    """A List (or a Table) of the kind, filtered and paged as asked."""
    params = request.GET
    as_table = tables.wants_table(request.headers.get("Accept", ""))
    if params.get("watch") in ("1", "true"):
        render = tables.watch_rows(target.kind, include_object=params.get("includeObject", "Metadata")) \
            if as_table else _in_version(target)
        return watch.watch_response(request, target.kind, target.namespace, params, render=render)
    # Before the rows: every write at or below the version is then in the list.
    version = watch.list_resource_version()
    objs = store.list_objects(target.kind, target.namespace,
                              parse_selector(params["labelSelector"]) if params.get("labelSelector") else None)
    objs = [o for o in objs if _fields_match(params.get("fieldSelector", ""), o, target)]
    objs, more = _page(objs, params)
    if as_table:
        body = tables.table(target.kind, objs, version, include_object=params.get("includeObject", "Metadata"))
    else:
        body = {"kind": f"{target.kind.kind}List", "apiVersion": target.api_version,
                "metadata": {"resourceVersion": version}, "items": [_manifest(target, o) for o in objs]}
    if more:
        body["metadata"]["continue"] = more
    return JsonResponse(body)


def _fields_match(text: str, obj, target: Target) -> bool:
    """metadata.name and metadata.namespace field selectors (=, ==, !=)."""
    for term in filter(None, (t.strip() for t in text.split(","))):
        field, op, value = _field_term(term)
        actual = {"metadata.name": obj.name, "metadata.namespace": obj.namespace}.get(field)
        if actual is None:
            raise BadRequest(f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        if (actual == value) != (op != "!="):
            return False
    return True


def _field_term(term: str) -> tuple[str, str, str]:
    for op in ("!=", "==", "="):
        if op in term:
            field, _, value = term.partition(op)
            return field.strip(), op, value.strip()
    raise BadRequest(f"fieldSelector: invalid selector: '{term}'; can't understand '{term}'")


def _page(objs: list, params) -> tuple[list, str]:
    """(this page, the continue token or ''): `limit` objects after the one
    the token names (namespace and name: the list's order)."""
    token = params.get("continue", "")
    if token:
        try:
            after = tuple(json.loads(base64.urlsafe_b64decode(token.encode())))
        except ValueError:
            raise BadRequest("continue: the continue token is not valid") from None
        objs = [o for o in objs if (o.namespace, o.name) > after]
    limit = params.get("limit", "")
    if not limit or limit == "0":
        return objs, ""
    if not limit.isdigit():
        raise BadRequest(f"limit: Invalid value: {limit!r}: must be a non-negative integer")
    page = objs[: int(limit)]
    if len(objs) <= int(limit):
        return page, ""
    last = page[-1]
    return page, base64.urlsafe_b64encode(json.dumps([last.namespace, last.name]).encode()).decode()


def get_object(request, target: Target) -> JsonResponse:
    obj = store.get(target.kind, target.name, target.namespace or "")
    if tables.wants_table(request.headers.get("Accept", "")):
        return JsonResponse(tables.table(target.kind, [obj], str(obj.resource_version)))
    return JsonResponse(_manifest(target, obj))


# Writes --------------------------------------------------------------------------------------------


def create(request, target: Target, actor: str) -> JsonResponse:
    """POST to the collection: create, AlreadyExists if the name is taken."""
    body = _body(request)
    _check_type(body, target)
    name = (body.get("metadata") or {}).get("name")
    if isinstance(name, str) and name and store.find(target.kind, name, target.namespace or ""):
        raise AlreadyExists(target.kind.resource, name)
    warnings = fields.check(target.kind, target.version, body, fields.mode_of(request.GET))
    results = _write(request, lambda: manifests_apply(docs=[body], actor=actor, namespace=target.namespace or None,
                                                      client_address=client_address(request), via=VIA))
    return _warned(JsonResponse(_manifest(target, results[0].obj), status=201), warnings)


def _check_type(body: dict, target: Target) -> None:
    body.setdefault("apiVersion", target.api_version)
    body.setdefault("kind", target.kind.kind)
    if body["kind"] != target.kind.kind:
        raise BadRequest(f"the kind of the object ({body['kind']}) does not match the kind on the URL "
                         f"({target.kind.kind})")


def update(request, target: Target, actor: str) -> JsonResponse:
    """PUT: replace the object (or its status); a stale
    metadata.resourceVersion is a Conflict."""
    body = _body(request)
    _check_type(body, target)
    given = (body.get("metadata") or {}).get("name")
    if given != target.name:
        raise BadRequest(f"the name of the object ({given}) does not match the name on the URL ({target.name})")
    if target.subresource == "status":
        ops = [{"op": "add", "path": "/status", "value": body.get("status") or {}}]
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version:
            ops.append({"op": "replace", "path": "/metadata/resourceVersion", "value": str(version)})
        return _patch(request, target, actor, "json", ops)
    store.get(target.kind, target.name, target.namespace or "")  # PUT does not create: NotFound
    warnings = fields.check(target.kind, target.version, body, fields.mode_of(request.GET))
    results = _write(request, lambda: manifests_apply(docs=[body], actor=actor, namespace=target.namespace or None,
                                                      client_address=client_address(request), via=VIA))
    return _warned(JsonResponse(_manifest(target, results[0].obj)), warnings)


def patch(request, target: Target, actor: str) -> JsonResponse:
    """PATCH by its Content-Type: merge and JSON patches; a strategic merge
    patch only for the built-in kinds (rollouts.api.strategic); server-side
    apply is not served (415)."""
    media = request.content_type
    if media == APPLY:
        raise UnsupportedMediaType("server-side apply (application/apply-patch+yaml) is not supported by Fleet UI: "
                                   "use client-side `kubectl apply` (without --server-side)")
    if media == STRATEGIC:
        if target.kind.is_fleet or target.kind.group not in _CORE_GROUPS:
            raise UnsupportedMediaType(f"the body of the request was in an unknown format - accepted media types "
                                       f"include: {JSON_PATCH}, {MERGE}, {APPLY}")
        return _patch(request, target, actor, "strategic", _body(request))
    if media not in (MERGE, JSON_PATCH):
        raise UnsupportedMediaType(f"the body of the request was in an unknown format - accepted media types "
                                   f"include: {JSON_PATCH}, {MERGE}, {STRATEGIC}")
    try:
        body = json.loads(request.body or b"null")
    except ValueError as exc:
        raise BadRequest(f"the patch is not valid JSON: {exc}") from None
    warnings = fields.check(target.kind, target.version, body, fields.mode_of(request.GET)) if media == MERGE else []
    return _warned(_patch(request, target, actor, "merge" if media == MERGE else "json", body), warnings)


# Built-in API groups whose kinds take strategic merge patches (as the API server's own types do).
_CORE_GROUPS = {"", "apps", "batch", "networking.k8s.io", "policy", "autoscaling", "rbac.authorization.k8s.io",
                "storage.k8s.io", "scheduling.k8s.io", "apiextensions.k8s.io"}


def _patch(request, target: Target, actor: str, patch_type: str, body) -> JsonResponse:
    subresource = target.subresource or None
    if subresource not in (None, "status"):
        raise NotFound(f"{target.kind.resource}/{subresource}", target.name)
    address = client_address(request)
    if subresource == "status" and target.kind.kind in APPROVAL_KINDS:
        vote = _approval_of(target, patch_type, body)
        if vote is not None:
            obj = _write(request, lambda: approval_request_approve(
                kind=target.kind, name=target.name, namespace=target.namespace or "", actor=actor,
                message=vote, client_address=address, via=VIA)[0])
            return JsonResponse(_manifest(target, obj))
    obj, _ = _write(request, lambda: object_patch(
        kind=target.kind, name=target.name, namespace=target.namespace or "", patch_type=patch_type, patch=body,
        subresource=subresource, actor=actor, client_address=address, via=VIA))
    return JsonResponse(_manifest(target, obj))


def _approval_of(target: Target, patch_type: str, body) -> str | None:
    """The message of a status patch that approves a gate (its Approved
    condition turns True), or None for any other status write. An approval
    is a person's vote (services.approvals), counted under the gate's policy."""
    current = store.to_manifest(store.get(target.kind, target.name, target.namespace or ""), target.kind)
    try:
        wanted = merge_patch(current, body) if patch_type == "merge" else jsonpatch.JsonPatch(body).apply(current)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError, ValueError):
        return None  # object_patch words the refusal
    status = wanted.get("status") if isinstance(wanted, dict) else None
    conditions = status.get("conditions") if isinstance(status, dict) else None

    def approved(conds) -> dict:
        return next((c for c in conds or [] if isinstance(c, dict) and c.get("type") == "Approved"), None) or {}

    now, was = approved(conditions if isinstance(conditions, list) else []), approved(
        (current.get("status") or {}).get("conditions"))
    if now.get("status") == "True" and was.get("status") != "True":
        return str(now.get("message") or "")
    return None


def delete(request, target: Target, actor: str) -> JsonResponse:
    """DELETE with optional preconditions (uid, resourceVersion); the object
    as it was is returned (kubectl prints `… deleted`)."""
    options = _body(request) if request.body else {}
    wanted = options.get("preconditions") or {}
    policy = options.get("propagationPolicy") or request.GET.get("propagationPolicy") or "Background"
    if policy not in ("Background", "Foreground", "Orphan"):
        raise BadRequest(f'propagationPolicy: Unsupported value: "{policy}"')

    def check(obj) -> None:
        for field, actual in (("uid", str(obj.uid)), ("resourceVersion", str(obj.resource_version))):
            if wanted.get(field) and str(wanted[field]) != actual:
                label = "UID" if field == "uid" else "ResourceVersion"
                raise _PreconditionFailed(f"Precondition failed: {label} in precondition: {wanted[field]}, "
                                          f"{label} in object meta: {actual}")

    obj = _write(request, lambda: object_delete(kind=target.kind, name=target.name,
                                                namespace=target.namespace or "", actor=actor, via=VIA,
                                                preconditions=check))
    return JsonResponse(_manifest(target, obj))


class _PreconditionFailed(Conflict):
    def __init__(self, message: str):
        ApiError.__init__(self, message)
