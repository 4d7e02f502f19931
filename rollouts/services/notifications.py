"""Notification subscriptions (audited writes) and the deliveries they are owed.

Subscriptions: `subscription_create`, `subscription_update`,
`subscription_delete`: the settings page, the admin and `fleet
notifications` call these, so each writes the same audit Event.

Deliveries: `deliveries_create(notices)` turns the notices of a committed
batch into Delivery rows, at most one per (subscription, notice key) however
often it is called; the sender (services/deliveries.py) works from the rows.
"""

import re
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction

from rollouts import clock
from rollouts import models as m
from rollouts.api.errors import BadRequest
from rollouts.api.labels import parse_selector, selector_matches

from . import events

Subscription = m.Subscription
KIND = "NotificationSubscription"  # the audit log's object kind
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,98}[a-z0-9])?$")
_FREEZE_KINDS = {Subscription.EventKind.FREEZE_STARTED, Subscription.EventKind.FREEZE_ENDED}


# Subscriptions --------------------------------------------------------------------


def target_display(channel: str, target: str) -> str:
    """The target as pages, logs and the audit log show it: an email address
    whole, a URL as scheme://host/… (a Slack or Teams webhook URL is itself a
    secret: its path is the token)."""
    if channel == Subscription.Channel.EMAIL:
        return target
    parts = urlsplit(target)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else f"{parts.scheme}://{parts.netloc}"


def subscription_check(*, name: str, channel: str, target: str, placement: str, label_selector: str, run_name: str,
           events_: list) -> dict:
    """The fields checked; BadRequest names the field that is wrong."""
    name, target = (name or "").strip(), (target or "").strip()
    if not _NAME.match(name):
        raise BadRequest("name: use 1-100 lower-case letters, digits, '.', '_' or '-' (starting and ending "
                         "with a letter or digit)")
    if channel not in Subscription.Channel.values:
        raise BadRequest(f"channel: must be one of {', '.join(Subscription.Channel.values)}")
    if channel == Subscription.Channel.EMAIL:
        try:
            validate_email(target)
        except ValidationError:
            raise BadRequest(f"target: {target!r} is not an email address") from None
    else:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(target) > 2000:
            raise BadRequest("target: must be an http:// or https:// URL (at most 2000 characters)")
    unknown = [e for e in events_ if e not in Subscription.EventKind.values]
    if unknown:
        raise BadRequest(f"events: unknown {', '.join(map(str, unknown))}; choose from "
                         f"{', '.join(Subscription.EventKind.values)}")
    parse_selector(label_selector or "")  # BadRequest("unable to parse requirement…")
    return {"name": name, "channel": channel, "target": target, "placement": (placement or "").strip(),
            "label_selector": (label_selector or "").strip(), "run_name": (run_name or "").strip(),
            "events": list(dict.fromkeys(events_))}


def _audit_details(sub: Subscription, via: str = "") -> dict:
    details = {"owner": sub.owner.get_username() if sub.owner_id else "(team)", "channel": sub.channel,
               "target": target_display(sub.channel, sub.target), "placement": sub.placement,
               "labelSelector": sub.label_selector, "run": sub.run_name, "events": sub.events,
               "enabled": sub.enabled}
    return {**details, "via": via} if via else details


def subscription_create(*, name: str, channel: str, target: str, owner=None, placement: str = "",
                        label_selector: str = "", run_name: str = "", events_: list | None = None,
                        actor: str, via: str = "") -> tuple[Subscription, str]:
    """Create a subscription: `owner` a user (theirs) or None (a team channel;
    the caller checks the person is an admin). Returns (subscription, secret):
    a webhook's new signing secret, to show once (it is stored encrypted),
    "" for other channels. Appends a `created` audit Event."""
    fields = subscription_check(name=name, channel=channel, target=target, placement=placement,
                    label_selector=label_selector, run_name=run_name, events_=list(events_ or []))
    secret = secrets.token_urlsafe(32) if fields["channel"] == Subscription.Channel.WEBHOOK else ""
    sub = Subscription(owner=owner, created_by=actor, **fields)
    sub.set_secret(secret)
    try:
        with transaction.atomic():
            sub.save()
            events.record(actor=actor, action=m.Event.Action.CREATED, kind_name=KIND, name=sub.name,
                          reason="SubscriptionCreated", details=_audit_details(sub, via))
    except IntegrityError:
        raise BadRequest(f"name: a subscription named {fields['name']} exists already") from None
    return sub, secret


def subscription_update(*, subscription: Subscription, actor: str, via: str = "", **changes) -> Subscription:
    """Change a subscription's target, filters, events or enabled flag;
    appends a `configured` audit Event with what it was and is."""
    current = {"name": subscription.name, "channel": subscription.channel, "target": subscription.target,
               "placement": subscription.placement, "label_selector": subscription.label_selector,
               "run_name": subscription.run_name, "events_": subscription.events}
    current.update({k: v for k, v in changes.items() if k != "enabled"})
    fields = subscription_check(**current)
    before = _audit_details(subscription)
    for key, value in fields.items():
        setattr(subscription, key, value)
    if "enabled" in changes:
        subscription.enabled = bool(changes["enabled"])
    with transaction.atomic():
        subscription.save()
        after = _audit_details(subscription, via)
        events.record(actor=actor, action=m.Event.Action.CONFIGURED, kind_name=KIND, name=subscription.name,
                      reason="SubscriptionChanged",
                      details={"changes": {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}})
    return subscription


def subscription_delete(*, subscription: Subscription, actor: str, via: str = "") -> None:
    """Delete a subscription and its delivery log; a `deleted` audit Event."""
    with transaction.atomic():
        details = _audit_details(subscription, via)
        subscription.delete()
        events.record(actor=actor, action=m.Event.Action.DELETED, kind_name=KIND, name=subscription.name,
                      reason="SubscriptionDeleted", details=details)


# Deliveries ----------------------------------------------------------------------


def subscriptions_exist() -> bool:
    """Whether anyone listens at all: one cheap query that keeps a fleet
    without subscriptions from reading anything more after a commit."""
    return Subscription.objects.filter(enabled=True).exists()


def matches(sub: Subscription, notice, selector: dict | None) -> bool:
    """Whether `sub` wants `notice`. A freeze concerns the whole line: its
    notices ignore the placement, run and label filters."""
    if sub.events and notice.kind not in sub.events:
        return False
    if notice.kind in _FREEZE_KINDS:
        return True
    if sub.placement and sub.placement != notice.placement:
        return False
    if sub.run_name and sub.run_name != notice.run:
        return False
    return selector is None or selector_matches(selector, notice.placement_labels)


def _heard(sub: Subscription, notice) -> bool:
    """A subscription hears of what happened after it was made (a run that
    finished last week is not news to a subscription made today)."""
    try:
        occurred = clock.parse_rfc3339(notice.occurred_at) if notice.occurred_at else None
    except ValueError:
        occurred = None
    return occurred is None or occurred >= sub.created_at.replace(microsecond=0)


def deliveries_create(notices: list) -> list[int]:
    """Owe each matching subscription one Delivery per notice (idempotent:
    a (subscription, key) pair that exists is skipped). Returns the ids of
    the deliveries now due and never tried, for the sender. Three queries."""
    subs = list(Subscription.objects.filter(enabled=True))
    if not subs or not notices:
        return []
    selectors = {s.pk: parse_selector(s.label_selector) if s.label_selector else None for s in subs}
    rows = []
    for notice in notices:
        wanted = [s for s in subs if matches(s, notice, selectors[s.pk]) and _heard(s, notice)]
        if wanted:
            payload = _PAYLOAD.get_db_prep_save({**notice.payload, "occurredAt": notice.occurred_at}, connection)
            rows += [(s.pk, notice.key, notice.kind, payload) for s in wanted]
    if not rows:
        return []
    _insert_ignoring_duplicates(rows)
    return list(m.Delivery.objects.filter(key__in={r[1] for r in rows}, status=m.Delivery.Status.PENDING,
                                          attempts=0).values_list("id", flat=True))


_PAYLOAD = m.Delivery._meta.get_field("payload")
_COLUMNS = ("subscription_id", "key", "kind", "payload", "status", "attempts", "last_error", "next_attempt_at",
            "created_at", "retry_until")


def _insert_ignoring_duplicates(rows: list[tuple]) -> None:
    """One INSERT … ON CONFLICT DO NOTHING for every row (SQLite and
    PostgreSQL): the ORM's bulk_create prepares each value of each row in
    Python, ten times the cost for a hundred subscriptions, and this runs
    after every commit that owes something."""
    now = clock.precise_now()
    when = [m.Delivery._meta.get_field(f).get_db_prep_save(value, connection) for f, value in (
        ("next_attempt_at", now), ("created_at", now),
        ("retry_until", now + timedelta(hours=settings.FLEET_NOTIFY_RETRY_HOURS)))]
    quote = connection.ops.quote_name
    sql = (f"INSERT INTO {quote(m.Delivery._meta.db_table)} ({', '.join(quote(c) for c in _COLUMNS)}) "
           f"VALUES ({', '.join(['%s'] * len(_COLUMNS))}) ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.executemany(sql, [(*row, m.Delivery.Status.PENDING.value, 0, "", *when) for row in rows])
