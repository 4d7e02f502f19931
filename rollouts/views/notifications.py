"""Notifications: a person's subscriptions (their settings page), the team
channels for admins, and the delivery log with "Send again" for admins.
Every write goes through services.notifications / services.deliveries, as
`fleet notifications` does, so both write the same audit Events."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from rollouts import models as m
from rollouts import notifier, roles
from rollouts.api.errors import ApiError
from rollouts.selectors import notifications as reads
from rollouts.services.deliveries import delivery_resend, delivery_test
from rollouts.services.notifications import subscription_create, subscription_delete

from .helpers import notify_or_redirect, page

Subscription = m.Subscription


def _is_admin(user) -> bool:
    return user.has_perm(roles.ADMINISTER)


def _settings_context(request, **extra) -> dict:
    admin = _is_admin(request.user)
    return {"subscriptions": reads.subscription_rows(user=request.user, include_team=admin), "is_admin": admin,
            "channels": Subscription.Channel.choices,
            "event_kinds": [c for c in Subscription.EventKind.choices if c[0] != Subscription.EventKind.TEST],
            "form": {}, **extra}


@roles.requires(roles.VIEW)
def notification_settings(request):
    """GET: the person's subscriptions (and, for admins, the team channels).
    POST: subscribe; a webhook's secret is shown on the page this once (not
    flashed: messages live in the session)."""
    if request.method != "POST":
        return page(request, "rollouts/notification_settings.html", _settings_context(request))
    post = request.POST
    team = post.get("team") == "on"
    if team and not _is_admin(request.user):
        raise PermissionDenied("only admins make team channels")
    try:
        sub, secret = subscription_create(
            name=post.get("name", ""), channel=post.get("channel", ""), target=post.get("target", ""),
            owner=None if team else request.user, placement=post.get("placement", ""),
            label_selector=post.get("label_selector", ""), run_name=post.get("run_name", ""),
            events_=post.getlist("events"), actor=request.user.get_username(), via="web")
    except ApiError as exc:
        return page(request, "rollouts/notification_settings.html",
                    _settings_context(request, error=str(exc), form=post), status=400)
    return page(request, "rollouts/notification_settings.html",
                _settings_context(request, created=sub, secret=secret), status=201)


def _subscription_or_404(request, pk: int):
    found = reads.subscription_for(pk=pk, user=request.user, admin=_is_admin(request.user))
    if found is None:
        raise Http404("no such subscription of yours")
    return found


@require_POST
@roles.requires(roles.VIEW)
def notification_delete(request, pk: int):
    sub = _subscription_or_404(request, pk)
    subscription_delete(subscription=sub, actor=request.user.get_username(), via="web")
    return notify_or_redirect(request, "success", f"Subscription {sub.name} deleted.",
                              reverse("rollouts:notifications"), lambda ctx: redirect("rollouts:notifications"))


@require_POST
@roles.requires(roles.VIEW)
def notification_test(request, pk: int):
    """Send a test message now and say how it went."""
    sub = _subscription_or_404(request, pk)
    delivery = delivery_test(subscription=sub, actor=request.user.get_username())
    if delivery.status == m.Delivery.Status.DELIVERED:
        level, text = "success", f"Test message delivered to {sub.name} in {delivery.response_ms} ms."
    else:
        level, text = "error", f"Test message to {sub.name} not delivered: {delivery.last_error}"
    return notify_or_redirect(request, level, text, reverse("rollouts:notifications"),
                              lambda ctx: redirect("rollouts:notifications"))


@roles.requires(roles.ADMINISTER)
def delivery_log(request):
    """Every delivery, newest first: status, attempts, last error, response time."""
    try:
        subscription_pk = int(request.GET.get("subscription") or 0)
    except ValueError:
        subscription_pk = 0
    status = request.GET.get("status", "")
    rows = reads.delivery_log(subscription_pk=subscription_pk, status=status)
    return page(request, "rollouts/delivery_log.html",
                {"deliveries": rows, "status": status, "statuses": m.Delivery.Status.values})


@require_POST
@roles.requires(roles.ADMINISTER)
def delivery_send_again(request, pk: int):
    delivery = m.Delivery.objects.select_related("subscription").filter(pk=pk).first()
    if delivery is None:
        raise Http404("no such delivery")
    delivery_resend(delivery=delivery, actor=request.user.get_username(), via="web")
    notifier.send_soon([delivery.pk])
    return notify_or_redirect(request, "success", f"Delivery {pk} will be sent again now.",
                              reverse("rollouts:deliveries"), lambda ctx: redirect("rollouts:deliveries"))
