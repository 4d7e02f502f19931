"""A person's dashboard preferences (product-only: nothing in KubeFleet)."""

from django.conf import settings
from django.db import models


class UserPreference(models.Model):
    """One row per user who changed a preference; no row means the defaults.

    theme: light or dark, set by the nav's toggle; auto (the default)
    follows the browser's prefers-color-scheme. Loaded into the session at
    sign-in (rollouts.signals), so pages read it without a query."""

    class Theme(models.TextChoices):
        AUTO = "auto"
        LIGHT = "light"
        DARK = "dark"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fleet_preference")
    theme = models.CharField(max_length=8, choices=Theme.choices, default=Theme.AUTO)
    updated = models.DateTimeField(auto_now=True)
