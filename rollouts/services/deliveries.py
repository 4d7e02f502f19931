"""Sending deliveries: one attempt at a time, claimed with compare-and-set.

`delivery_send(delivery_id=…)`:
1. Claim: move the row's next_attempt_at a lease ahead and count the
   attempt, only where it is still pending and due. Zero rows: another
   sender has it (or it is not due): stop.
2. Send through the channel (HTTP POST with timeouts, or Django's email
   backend), outside any transaction.
3. Record the outcome: delivered; or, for a temporary failure (a timeout, a
   connection error, HTTP 5xx, 408 or 429, an SMTP 4xx or an unreachable SMTP
   server), the next attempt after a jittered exponential backoff until
   retry_until; or failed for good (any other 4xx, a redirect, a refused
   address). A sender that dies mid-send leaves the row due again when the
   lease ends: at-least-once, and the idempotency key lets the receiver
   drop a repeat.

Nothing here logs a target URL (a Slack or Teams URL is a token), a secret
or a response body: errors are status codes and exception class names.
"""

import logging
import random
import smtplib
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F

from rollouts import clock
from rollouts import models as m
from rollouts.selectors.notices import absolute_url

from . import events, notify_formats
from .notifications import KIND

log = logging.getLogger(__name__)
Delivery = m.Delivery
Channel = m.Subscription.Channel
LEASE = timedelta(minutes=2)  # longer than any one attempt (timeouts are seconds)
BACKOFF_FIRST_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 3600.0
_RETRIED_HTTP = {408, 425, 429}
_local = threading.local()  # one requests.Session per sending thread: pooled connections, less setup


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


@dataclass(frozen=True)
class Outcome:
    """One attempt's result. `temporary` failures are tried again."""

    ok: bool
    status: int | None = None
    error: str = ""
    temporary: bool = False


def backoff_seconds(attempts: int, *, rng=random.random) -> float:
    """Seconds before attempt `attempts + 1`: 10 s doubling per attempt, at
    most an hour, times a random 0.5-1.0 so receivers that came back are
    not hit by every sender at once."""
    base = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** max(0, attempts - 1))
    return base * (0.5 + rng() / 2)


def deliveries_due(*, limit: int = 100) -> list[int]:
    """Ids of pending deliveries whose next attempt is due, oldest first."""
    return list(Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=clock.precise_now())
                .order_by("next_attempt_at").values_list("id", flat=True)[:limit])


def delivery_send(*, delivery_id: int) -> Delivery | None:
    """Try one delivery once (see the module docstring). Returns the row as
    recorded, or None when another sender holds it or it is not due."""
    now = clock.precise_now()
    claimed = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.PENDING,
                                      next_attempt_at__lte=now).update(next_attempt_at=now + LEASE,
                                                                      attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("subscription").get(pk=delivery_id)
    started = time.monotonic()
    try:
        outcome = send(delivery)
    except Exception as exc:  # a bug in a format or a backend: recorded, retried, never raised to the caller
        log.warning("notification %s: %s", delivery.pk, type(exc).__name__)
        outcome = Outcome(False, error=f"could not send: {type(exc).__name__}", temporary=True)
    _record(delivery, outcome, elapsed_ms=int((time.monotonic() - started) * 1000))
    return delivery


def _record(delivery: Delivery, outcome: Outcome, *, elapsed_ms: int) -> None:
    now = clock.precise_now()
    delivery.last_status, delivery.response_ms = outcome.status, elapsed_ms
    if outcome.ok:
        delivery.status, delivery.delivered_at, delivery.last_error = Delivery.Status.DELIVERED, now, ""
    elif outcome.temporary and now < delivery.retry_until:
        delivery.next_attempt_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
        delivery.last_error = outcome.error
    else:
        delivery.status = Delivery.Status.FAILED
        delivery.last_error = outcome.error + (" (gave up: retried until the retry window ended)"
                                               if outcome.temporary else " (not retried)")
    Delivery.objects.filter(pk=delivery.pk).update(
        status=delivery.status, next_attempt_at=delivery.next_attempt_at, last_error=delivery.last_error,
        last_status=delivery.last_status, response_ms=delivery.response_ms, delivered_at=delivery.delivered_at)
    if not outcome.ok:
        log.info("notification %s to subscription %s: attempt %d failed: %s", delivery.pk,
                 delivery.subscription.name, delivery.attempts, outcome.error)


def send(delivery: Delivery) -> Outcome:
    """One attempt over the subscription's channel."""
    channel = delivery.subscription.channel
    if channel == Channel.EMAIL:
        return _send_email(delivery)
    if channel == Channel.SLACK:
        return _post(delivery, notify_formats.encode(notify_formats.slack_body(delivery)), {})
    if channel == Channel.TEAMS:
        return _post(delivery, notify_formats.encode(notify_formats.teams_body(delivery)), {})
    body = notify_formats.encode(notify_formats.webhook_body(delivery))
    timestamp = int(time.time())
    headers = {"X-Fleet-Event": delivery.kind, "X-Fleet-Delivery": delivery.key,
               "X-Fleet-Timestamp": str(timestamp)}
    secret = delivery.subscription.secret()
    if secret:
        headers["X-Fleet-Signature"] = notify_formats.signature(secret, timestamp, body)
    return _post(delivery, body, headers)


def _post(delivery: Delivery, body: bytes, headers: dict) -> Outcome:
    timeout = settings.FLEET_NOTIFY_TIMEOUT_SECONDS
    try:
        response = _session().post(delivery.subscription.target, data=body, timeout=(timeout, timeout),
                                 allow_redirects=False,
                                 headers={"Content-Type": "application/json", "User-Agent": "FleetUI-Notifications/1",
                                          **headers})
        response.close()
    except requests.Timeout:
        return Outcome(False, error=f"no answer within {timeout:g} s", temporary=True)
    except requests.RequestException as exc:  # connection refused or reset, DNS: class name only (no URL)
        return Outcome(False, error=f"connection failed ({type(exc).__name__})", temporary=True)
    code = response.status_code
    if 200 <= code < 300:
        return Outcome(True, status=code)
    temporary = code >= 500 or code in _RETRIED_HTTP
    return Outcome(False, status=code, error=f"HTTP {code}", temporary=temporary)


def _send_email(delivery: Delivery) -> Outcome:
    subject, text = notify_formats.email_message(delivery)
    message = EmailMessage(subject, text, settings.DEFAULT_FROM_EMAIL, [delivery.subscription.target],
                           headers={"X-Fleet-Delivery": delivery.key, "X-Fleet-Event": delivery.kind})
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        return Outcome(False, error=f"refused by the mail server ({type(exc).__name__})")
    except smtplib.SMTPResponseException as exc:
        return Outcome(False, status=exc.smtp_code, error=f"SMTP {exc.smtp_code}", temporary=exc.smtp_code < 500)
    except (smtplib.SMTPException, OSError) as exc:  # unreachable, timed out, dropped
        return Outcome(False, error=f"mail server unreachable ({type(exc).__name__})", temporary=True)
    return Outcome(True)


def delivery_resend(*, delivery: Delivery, actor: str, via: str = "") -> Delivery:
    """"Send again": make the delivery pending and due now, with a fresh
    retry window; an audit Event says who asked. The sender picks it up."""
    now = clock.precise_now()
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.PENDING, next_attempt_at=now, delivered_at=None,
            retry_until=now + timedelta(hours=settings.FLEET_NOTIFY_RETRY_HOURS))
        events.record(actor=actor, action=m.Event.Action.CONFIGURED, kind_name=KIND,
                      name=delivery.subscription.name, reason="DeliveryResent",
                      details={"delivery": delivery.pk, "key": delivery.key, **({"via": via} if via else {})})
    delivery.refresh_from_db()
    return delivery


def delivery_test(*, subscription: m.Subscription, actor: str) -> Delivery:
    """Send a test message to `subscription` now (one attempt, in this
    process) and return the delivery as recorded: the log shows it like any
    other, and a failed one is retried like any other."""
    now = clock.precise_now()
    delivery = Delivery.objects.create(
        subscription=subscription, key=f"test:{uuid.uuid4()}", kind=m.Subscription.EventKind.TEST,
        payload={"summary": f"Test message from Fleet UI to {subscription.name}, sent by {actor}",
                 "occurredAt": clock.rfc3339(now), "links": {"overview": absolute_url("overview", "")}},
        next_attempt_at=now, created_at=now, retry_until=now + timedelta(hours=settings.FLEET_NOTIFY_RETRY_HOURS))
    return delivery_send(delivery_id=delivery.pk) or delivery
