"""Counters for rate limits that many processes share (the login limit, the
throttle of repeated `denied` audit rows).

A counter's window starts with its first hit and lasts the limit's window;
the next hit after that starts a new window. Rows are read and written under
a row lock (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's write transaction
is exclusive already), so a check and its increment are one step however
many web processes take attempts at once (rollouts.services.logins).
"""

from django.db import models


class RateCounter(models.Model):
    """How many hits one key had in the current window.

    scope: which limit (Scope). key: whose hits (a client address, a user
    name, or a denial's reason and actor). window_start: the first hit of the
    current window. count: hits in it (for the login limit: attempts being
    checked or failed).
    """

    class Scope(models.TextChoices):
        LOGIN_ADDRESS = "login-address"
        LOGIN_USER = "login-user"
        DENIED = "denied"

    scope = models.CharField(max_length=32, choices=Scope.choices)
    key = models.CharField(max_length=512)
    window_start = models.DateTimeField(db_index=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="ratecounter_scope_key")]

    def __str__(self):
        return f"{self.scope} {self.key}: {self.count} since {self.window_start:%Y-%m-%dT%H:%M:%S}"
