"""What a gate's health check last found: one row per approval request."""

from django.db import models


class HealthCheck(models.Model):
    """The latest evaluation of a gate's health gate (the strategy's
    `fleetui.io/health-gate` annotation, docs/health-gates.md), overwritten
    at each check; what it did about it is in the audit log.

    request_kind/request_namespace/request_name: the approval request (the gate).
    run/run_uid/stage/gate: the gate it stands for; a row of another run uid
        (the run was deleted and made again) starts over.
    mode: evidence, auto-approve or auto-reject, as declared at the check.
    verdict: soaking, healthy, failing or unknown (engine.health.Verdict).
    outcome: what the check did once: approved, rejected, or refused (an
        approval policy governs the gate, so people decide); "" for nothing.
    message: one line: the values, or why the check could not tell.
    results: per query: name, expr (as sent), rule, verdict, value, reason,
        graph link, and the samples of its series over the window (a few
        dozen points each) for the sparkline.
    prometheus_url/window_seconds: where and over how long it looked.
    checked_at: when the last check finished; next_at: when the next is due
        (also the claim: a checker moves it forward by compare-and-set
        before it asks Prometheus, so two workers never check one gate at once).
    queued_until: Celery mode: a check task is on the `health` queue for it;
        beat's lister sends no other until the check clears it or this
        passes (a lost task, or no `health` worker: one message a minute,
        not one a second).
    """

    class Verdict(models.TextChoices):
        SOAKING = "soaking"
        HEALTHY = "healthy"
        FAILING = "failing"
        UNKNOWN = "unknown"

    class Outcome(models.TextChoices):
        NONE = "", "nothing"
        APPROVED = "approved"
        REJECTED = "rejected"
        REFUSED = "refused", "refused by an approval policy"

    request_kind = models.CharField(max_length=63)
    request_namespace = models.CharField(max_length=253, blank=True, default="")
    request_name = models.CharField(max_length=253)
    # Blank until the first check: beat's lister makes the row to mark it queued.
    run = models.CharField(max_length=253, blank=True, default="")
    run_uid = models.CharField(max_length=64, blank=True, default="")
    stage = models.CharField(max_length=63, blank=True, default="")
    gate = models.CharField(max_length=8, blank=True, default="")
    mode = models.CharField(max_length=16, blank=True, default="")
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.UNKNOWN)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True, default=Outcome.NONE)
    message = models.TextField(blank=True, default="")
    results = models.JSONField(default=list, blank=True)
    prometheus_url = models.CharField(max_length=1000, blank=True, default="")
    window_seconds = models.FloatField(default=0)
    checked_at = models.DateTimeField(null=True, blank=True)
    next_at = models.DateTimeField(db_index=True)
    queued_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request_kind", "request_namespace", "request_name"],
                                               name="healthcheck_one_per_request")]

    def __str__(self):
        return f"{self.request_name}: {self.verdict}"
