"""A minimal list + watch route for Fleet kinds, for tests and until the
HTTP API (h20-api's rollouts/kubeapi views) serves these URLs with
authentication: `/apis/{group}/{version}[/namespaces/{ns}]/{plural}`.

UNAUTHENTICATED: wired only when FLEET_KUBEAPI_WATCH_PREVIEW is set
(fleetui/urls.py); the lead replaces it with h20-api's list view, which
calls the same `watch_response` and `list_resource_version`.
"""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from rollouts.api import store
from rollouts.api.kinds import KindRegistry

from .watch import list_resource_version, status_response, watch_response


@require_GET
def list_or_watch(request, group: str, version: str, plural: str, namespace: str | None = None):
    """The kind's list (metadata.resourceVersion: the hub revision), or its watch."""
    kind = next((k for k in KindRegistry().kinds if (k.group, k.plural) == (group, plural)
                 and version in (k.served_versions or (k.version,))), None)
    if kind is None:
        return status_response(404, "NotFound", f"the server could not find the requested resource ({plural}.{group})")
    if request.GET.get("watch") in ("1", "true"):
        return watch_response(request, kind, namespace, request.GET)
    revision = list_resource_version()  # before the rows (watch.list_resource_version)
    items = [store.to_manifest(obj, kind) for obj in store.list_objects(kind, namespace)]
    return JsonResponse({"apiVersion": f"{group}/{version}", "kind": f"{kind.kind}List",
                         "metadata": {"resourceVersion": revision}, "items": items})


urlpatterns = [
    path("apis/<str:group>/<str:version>/<str:plural>", list_or_watch),
    path("apis/<str:group>/<str:version>/namespaces/<str:namespace>/<str:plural>", list_or_watch),
]
