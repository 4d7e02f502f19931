"""Per-user API tokens for Kubernetes clients (kubectl) talking to the hub's
Kubernetes-compatible API (docs/kube-api.md). Product-only: KubeFleet's hub
is a real API server with its own authentication."""

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """One bearer token of one person. The secret is shown once, when made,
    and only its sha256 is kept: a leaked database names no usable token.

    prefix: the first characters of the token, to tell tokens apart in lists
    and to find the row before comparing hashes. last_used is written at
    most once a minute per token (a busy kubectl must not write per call).
    revoked: set once; a revoked token is never accepted again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    hashed_secret = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField()
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="api_token_unique_name_per_user")]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked is None
