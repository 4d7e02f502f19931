from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from rollouts.kubeapi import views as kubeapi
from rollouts.views.metrics import metrics_view


def favicon(request):
    """Browsers ask for /favicon.ico where a page names no icon (the Django
    admin's pages): the current hashed icon, not cached as permanent."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon),
    path("metrics", metrics_view, name="metrics"),
    # The Kubernetes-compatible API for kubectl (docs/kube-api.md).
    path("version", kubeapi.version, name="kube-version"),
    path("api", kubeapi.api_root, name="kube-api"),
    path("api/<path:rest>", kubeapi.core, name="kube-core"),
    path("apis", kubeapi.apis_root, name="kube-apis"),
    path("apis/<path:rest>", kubeapi.groups, name="kube-groups"),
    path("openapi/v3", kubeapi.openapi_v3, name="kube-openapi"),
    path("openapi/v3/<path:rest>", kubeapi.openapi_v3, name="kube-openapi-doc"),
    path("", include("rollouts.urls")),
]
