"""The dashboard's URLs. Cluster-scoped objects are addressed by name;
namespaced ones under ns/<namespace>/ with the same view."""

from django.contrib.auth import views as auth_views
from django.urls import path

from .views import (
    accounts,
    approvals,
    audit,
    fleet,
    freezes,
    history,
    notifications,
    overview,
    preferences,
    runs,
    sso,
    tokens,
)

app_name = "rollouts"


def by_name(route: str, view, name: str) -> list:
    """The cluster-scoped route and its namespaced twin (`ns-<name>`)."""
    return [path(route, view, name=name), path(f"ns/<str:namespace>/{route}", view, name=f"ns-{name}")]


urlpatterns = [
    path("", overview.overview, name="overview"),
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path("accounts/oidc/authenticate/", sso.AuthenticateView.as_view(), name="oidc-authenticate"),
    path("accounts/oidc/callback/", sso.CallbackView.as_view(), name="oidc-callback"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="rollouts:login"), name="logout"),
    path("accounts/theme/", preferences.theme_set, name="theme"),
    path("runs/", runs.run_list, name="runs"),
    *by_name("runs/<str:name>/", runs.run_detail, "run-detail"),
    *by_name("runs/<str:name>/stop/", runs.run_stop, "run-stop"),
    *by_name("runs/<str:name>/resume/", runs.run_resume, "run-resume"),
    *by_name("runs/<str:name>/time/", history.run_time, "run-time"),
    path("approvals/", approvals.approval_list, name="approvals"),
    *by_name("approvals/<str:name>/", approvals.approval_detail, "approval-detail"),
    *by_name("approvals/<str:name>/approve/", approvals.approval_approve, "approval-approve"),
    *by_name("approvals/<str:name>/reject/", approvals.approval_reject, "approval-reject"),
    *by_name("approvals/<str:name>/break-glass/", freezes.approval_break_glass_view, "approval-break-glass"),
    path("freezes/", freezes.freeze_list, name="freezes"),
    path("freezes/create/", freezes.freeze_create, name="freeze-create"),
    path("freezes/<slug:name>/end/", freezes.freeze_end, name="freeze-end"),
    path("placements/", fleet.placement_list, name="placements"),
    *by_name("placements/<str:name>/", fleet.placement_detail, "placement-detail"),
    *by_name("placements/<str:name>/rollout/", fleet.placement_rollout, "placement-rollout"),
    *by_name("placements/<str:name>/history/", history.placement_history, "placement-history"),
    path("strategies/", fleet.strategy_list, name="strategies"),
    path("members/", fleet.member_list, name="members"),
    path("hubs/", fleet.hub_list, name="hubs"),
    path("audit/", audit.audit_log, name="audit"),
    path("settings/notifications/", notifications.notification_settings, name="notifications"),
    path("settings/notifications/<int:pk>/delete/", notifications.notification_delete, name="notification-delete"),
    path("settings/notifications/<int:pk>/test/", notifications.notification_test, name="notification-test"),
    path("settings/tokens/", tokens.token_settings, name="tokens"),
    path("settings/tokens/<int:pk>/revoke/", tokens.token_revoke_view, name="token-revoke"),
    path("notifications/deliveries/", notifications.delivery_log, name="deliveries"),
    path("notifications/deliveries/<int:pk>/send-again/", notifications.delivery_send_again,
         name="delivery-send-again"),
    path("audit/export.csv", audit.audit_export, {"fmt": "csv"}, name="audit-export-csv"),
    path("audit/export.json", audit.audit_export, {"fmt": "json"}, name="audit-export-json"),
]
