from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from rollouts.kubeapi import watch_preview
from rollouts.views.metrics import metrics_view


def favicon(request):
    """Browsers ask for /favicon.ico where a page names no icon (the Django
    admin's pages): the current hashed icon, not cached as permanent."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon),
    path("metrics", metrics_view, name="metrics"),
    path("", include("rollouts.urls")),
]
if settings.FLEET_KUBEAPI_WATCH_PREVIEW:
    urlpatterns = watch_preview.urlpatterns + urlpatterns
