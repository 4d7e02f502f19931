"""Notifications: who wants to hear about what (Subscription), and each
message owed to one of them (Delivery). docs/notifications.md tells the story.

A Delivery row is the durable part: it is written after the change that
caused it committed, once per (subscription, event key), and the sender works
from these rows until each is delivered or given up. A webhook's signing
secret is stored encrypted with the FLEET_CREDENTIALS_KEY keys (as stored
kubeconfigs are), because the sender must sign with it; it is shown once.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

from rollouts import clock

from .connections import credential_keys


def _fernet() -> MultiFernet:
    # Its own derivation (a different prefix than kubeconfigs'): the same
    # keys never produce the same Fernet key for two purposes.
    return MultiFernet([Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"fleetui-notify:{key}".encode()).digest()))
                        for key in credential_keys()])


class Subscription(models.Model):
    """Someone who wants to hear about some changes, and how.

    name: how people and `fleet notifications` name it (unique per owner; team
        channels share one namespace).
    owner: the person it belongs to; NULL for a team channel an admin made.
    channel/target: webhook, slack or teams with an https/http URL, or email
        with an address.
    placement/run_name: only events of this placement / run ("" = any).
    label_selector: only events whose placement's labels match it ("" = any;
        kubectl syntax, `env=prod,tier in (web,api)`).
    events: the event kinds wanted (EventKind values); empty means all.
    secret_encrypted: the webhook's HMAC secret, Fernet-encrypted.
    """

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        SLACK = "slack"
        TEAMS = "teams"
        EMAIL = "email"

    class EventKind(models.TextChoices):
        GATE_OPENED = "gate-opened", "gate opened"
        APPROVED = "approved", "approval given"
        REJECTED = "rejected", "approval rejected"
        CLUSTER_FAILING = "cluster-failing", "cluster failing"
        RUN_STUCK = "run-stuck", "run stuck"
        RUN_FAILED = "run-failed", "run failed"
        RUN_STOPPED = "run-stopped", "run stopped"
        RUN_SUCCEEDED = "run-succeeded", "run succeeded"
        FREEZE_STARTED = "freeze-started", "freeze started"
        FREEZE_ENDED = "freeze-ended", "freeze ended"
        TEST = "test", "test message"  # `fleet notifications test`, the settings page's Test

    name = models.CharField(max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="notification_subscriptions")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    target = models.CharField(max_length=2000)
    placement = models.CharField(max_length=253, blank=True, default="")
    label_selector = models.CharField(max_length=1000, blank=True, default="")
    run_name = models.CharField(max_length=253, blank=True, default="")
    events = models.JSONField(default=list, blank=True)
    secret_encrypted = models.TextField(blank=True, default="", editable=False)
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    # The hub clock (rollouts.clock), as the events it is compared with.
    created_at = models.DateTimeField(default=clock.precise_now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="subscription_owner_name"),
            models.UniqueConstraint(fields=["name"], condition=models.Q(owner__isnull=True),
                                    name="subscription_team_name"),
        ]

    def __str__(self):
        return f"{self.name} ({self.channel})" if self.owner_id is None else f"{self.name} ({self.channel}, personal)"

    @property
    def is_team(self) -> bool:
        return self.owner_id is None

    def set_secret(self, secret: str) -> None:
        """Store the webhook's signing secret (the caller saves)."""
        self.secret_encrypted = _fernet().encrypt(secret.encode()).decode() if secret else ""

    def secret(self) -> str:
        """The plain secret, for signing only; "" when none or unreadable
        (a rotated-away key: the admin creates the subscription again)."""
        if not self.secret_encrypted:
            return ""
        try:
            return _fernet().decrypt(self.secret_encrypted.encode()).decode()
        except InvalidToken:
            return ""


class Delivery(models.Model):
    """One message owed to one subscription for one event.

    key: the event's idempotency key (the same for every subscription; the
        receiver dedupes on it); unique with the subscription, so an event
        derived twice (two processes, a retried reaction) is owed once.
    kind: the event kind (Subscription.EventKind).
    payload: the event's facts and deep links, channel-neutral; rendered for
        the channel when sent (rollouts/services/notify_formats.py).
    status: PENDING until delivered (DELIVERED) or given up (FAILED).
    attempts: sends tried so far.
    next_attempt_at: when the sender may try next; a sender claims a row by
        moving it forward (compare-and-set), so two senders never send the
        same row at once, and a sender that died leaves it due again.
    last_error/last_status: the last attempt's outcome (no secrets in it).
    response_ms: how long the last attempt took.
    retry_until: failures after this time give up (FLEET_NOTIFY_RETRY_HOURS
        after it was owed, or after an admin's "send again").
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=400)
    kind = models.CharField(max_length=32, choices=Subscription.EventKind.choices)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    last_status = models.PositiveIntegerField(null=True, blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    retry_until = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["subscription", "key"], name="delivery_subscription_key")]
        indexes = [models.Index(fields=["next_attempt_at"], condition=models.Q(status="pending"),
                                name="delivery_due")]

    def __str__(self):
        return f"{self.kind} {self.key} to {self.subscription_id}: {self.status}"
