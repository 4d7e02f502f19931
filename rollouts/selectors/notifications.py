"""Reads for the notification pages: a person's subscriptions, the team
channels, and the delivery log."""

from django.db.models import Count, Max, Q

from rollouts import models as m
from rollouts.services.notifications import target_display

Delivery = m.Delivery


def _with_log_summary(queryset):
    """Each subscription with its delivery counts and last attempt: one query."""
    return queryset.select_related("owner").annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.DELIVERED)),
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
        failed=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
        last_owed=Max("deliveries__created_at"))


def subscription_rows(*, user, include_team: bool) -> list:
    """The person's own subscriptions, then (for admins) the team channels;
    each with `shown_target` (no URL token) and its log summary."""
    mine = Q(owner=user)
    rows = list(_with_log_summary(m.Subscription.objects.filter(mine | Q(owner__isnull=True) if include_team
                                                                 else mine)).order_by("owner_id", "name"))
    for row in rows:
        row.shown_target = target_display(row.channel, row.target)
    return rows


def subscription_for(*, pk: int, user, admin: bool):
    """The subscription `user` may manage (theirs; a team channel for an
    admin), or None."""
    allowed = Q(owner=user) | Q(owner__isnull=True) if admin else Q(owner=user)
    return m.Subscription.objects.filter(allowed, pk=pk).select_related("owner").first()


def delivery_log(*, subscription_pk: int | None = None, status: str = "", limit: int = 200) -> list:
    """The latest deliveries, newest first, with their subscription (one query)."""
    rows = Delivery.objects.select_related("subscription", "subscription__owner").order_by("-id")
    if subscription_pk:
        rows = rows.filter(subscription_id=subscription_pk)
    if status in Delivery.Status.values:
        rows = rows.filter(status=status)
    found = list(rows[:limit])
    for row in found:
        row.shown_target = target_display(row.subscription.channel, row.subscription.target)
    return found
