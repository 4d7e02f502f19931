"""The Kubernetes API's entry points: /version, /api/…, /apis/…, /openapi/v3/….

Each view authenticates (a bearer token; a browser session may only read),
resolves the path to a kind, checks the role the verb needs and hands the
request to rollouts.kubeapi.resources. Every refusal is a `Status`."""

from functools import wraps

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from rollouts.api.errors import ApiError, Forbidden
from rollouts.api.kinds import KindRegistry

from . import auth, discovery, openapi, resources
from .paths import PathNotFound, Target, resolve
from .status import error_response, status_response

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def kube_view(view=None, *, public: bool = False):
    """Authenticate (unless `public`), answer every ApiError as a Status.
    CSRF-exempt: only token-authenticated requests may write (auth.authenticate)."""
    if view is None:
        return lambda view: kube_view(view, public=public)

    @csrf_exempt
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in _METHODS:
            return status_response(405, f"the server does not allow this method on the requested resource "
                                        f"({request.method})")
        try:
            auth.authenticate(request)
        except auth.Unauthorized:
            if not public:
                return status_response(401, "Unauthorized")
        try:
            return view(request, *args, **kwargs)
        except ApiError as exc:
            return error_response(exc, details=getattr(exc, "details", None))

    return wrapped


@kube_view(public=True)
def version(request):
    """/version, readable without a token as on the API server (public info:
    kubectl's version dispatcher asks for it before it sends credentials)."""
    return JsonResponse(discovery.version_info())


@kube_view
def api_root(request):
    """/api: the legacy core group's versions (or, asked for, its aggregated discovery)."""
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return _aggregated(discovery.aggregated(KindRegistry().kinds, core=True))
    return JsonResponse(discovery.api_versions(request.get_host()))


@kube_view
def apis_root(request):
    """/apis: every named group (or, asked for, their aggregated discovery)."""
    if discovery.wants_aggregated(request.headers.get("Accept", "")):
        return _aggregated(discovery.aggregated(KindRegistry().kinds, core=False))
    return JsonResponse(discovery.api_group_list(KindRegistry().kinds))


def _aggregated(body: dict) -> JsonResponse:
    """The Content-Type names the aggregated form: kubectl reads it only then."""
    return JsonResponse(body, content_type=discovery.AGGREGATED)


@kube_view
def core(request, rest: str):
    """/api/{version}/…: the core group."""
    version, _, tail = rest.partition("/")
    return _dispatch(request, "", version, tail, request.path)


@kube_view
def groups(request, rest: str):
    """/apis/{group}, /apis/{group}/{version}/…"""
    group, _, tail = rest.partition("/")
    if not tail.strip("/"):
        found = discovery.api_group(KindRegistry().kinds, group)
        if found is None:
            raise PathNotFound(request.path)
        return JsonResponse({"kind": "APIGroup", "apiVersion": "v1", **found})
    version, _, tail = tail.partition("/")
    return _dispatch(request, group, version, tail, request.path)


@kube_view
def openapi_v3(request, rest: str = ""):
    """/openapi/v3 (the index) and /openapi/v3/apis/{group}/{version}, /openapi/v3/api/v1."""
    kinds = KindRegistry().kinds
    if not rest.strip("/"):
        return JsonResponse(openapi.index(kinds))
    document = openapi.document(kinds, rest.strip("/"))
    if document is None:
        raise PathNotFound(request.path)
    return JsonResponse(document)


def _dispatch(request, group: str, version: str, tail: str, path: str):
    kinds = KindRegistry().kinds
    parts = [p for p in tail.split("/") if p]
    if not parts:
        found = discovery.resource_list(kinds, group, version)
        if found is None:
            raise PathNotFound(path)
        return JsonResponse(found)
    target = resolve(kinds, group, version, parts, path)
    list_call = not target.name
    if message := auth.refusal(request, target, list_call):
        error = Forbidden(message)
        error.details = target.details()
        raise error
    return _verb(request, target, list_call)


def _verb(request, target: Target, list_call: bool):
    actor = request.user.get_username()
    method = "GET" if request.method == "HEAD" else request.method
    if list_call:
        handlers = {"GET": resources.list_objects, "POST": lambda r, t: resources.create(r, t, actor)}
    else:
        handlers = {"GET": resources.get_object, "PUT": lambda r, t: resources.update(r, t, actor),
                    "PATCH": lambda r, t: resources.patch(r, t, actor),
                    "DELETE": lambda r, t: resources.delete(r, t, actor)}
    handler = handlers.get(method)
    if handler is None:
        return status_response(405, f"the server does not allow this method on the requested resource "
                                    f"({request.method} {target.kind.resource})")
    try:
        return handler(request, target)
    except ApiError as exc:
        return error_response(exc, details=target.details())
