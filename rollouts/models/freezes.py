"""Freezes: "no rollouts now", across every run at once (docs/freezes.md).

Product-only rows (KubeFleet has no freeze): written by services.freezes,
read by the engine's world (one query per tick) and by every page's banner.
"""

from datetime import datetime

from django.db import models

from rollouts import freeze_windows


class Freeze(models.Model):
    """A declared freeze.

    name: its handle (`fleet freeze end NAME`), unique among all freezes.
    reason: why, shown on every banner and on each run it holds.
    declared_by: who declared it (a user name).
    starts_at: when it starts holding (the declaration time for "now").
    ends_at: when it stops by itself; null: open-ended, until someone ends it.
    windows/time_zone: a recurring freeze holds only inside these weekly
        windows (freeze_windows), wall clock in time_zone; blank: always.
    selector: placements' labels it holds (`env=prod`), as the string typed
        and as a LabelSelector (selector_object); blank: every placement.
    active: whether it held the line when last looked at (by the service or
        the tick): a change of this column is a FreezeChanged, published once.
    ended_at/ended_by: someone ended it early; it never holds again.
    """

    name = models.SlugField(max_length=63, unique=True)
    reason = models.TextField()
    declared_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until someone ends it.")
    windows = models.CharField(max_length=500, blank=True, default="",
                               help_text="Weekly windows, e.g. 'Sat 00:00-Mon 06:00'; empty: the whole time.")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA time zone of the windows.")
    selector = models.CharField(max_length=1000, blank=True, default="",
                                help_text="Placement labels, e.g. env=prod; empty: every placement.")
    selector_object = models.JSONField(default=dict, blank=True, editable=False)
    active = models.BooleanField(default=False, editable=False)
    ended_at = models.DateTimeField(null=True, blank=True, editable=False)
    ended_by = models.CharField(max_length=150, blank=True, default="", editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["ended_at", "starts_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def recurring(self) -> bool:
        return bool(self.windows)

    def holds_at(self, moment: datetime) -> bool:
        """Whether the freeze holds the line at `moment` (pure: no query)."""
        if self.ended_at is not None or moment < self.starts_at:
            return False
        if self.ends_at is not None and moment >= self.ends_at:
            return False
        if not self.windows:
            return True
        return freeze_windows.in_windows(freeze_windows.parse_windows(self.windows),
                                         freeze_windows.zone(self.time_zone), moment)

    def next_change(self, moment: datetime) -> datetime | None:
        """The next instant after `moment` at which holds_at changes, or None."""
        if self.ended_at is not None or (self.ends_at is not None and moment >= self.ends_at):
            return None
        if moment < self.starts_at:
            return self.starts_at
        edge = None
        if self.windows:
            edge = freeze_windows.next_change(freeze_windows.parse_windows(self.windows),
                                              freeze_windows.zone(self.time_zone), moment)
        if self.ends_at is not None and (edge is None or self.ends_at < edge):
            return self.ends_at
        return edge


class FreezeStop(models.Model):
    """A mirrored hub's run that a freeze stopped (spec.state Stop): only
    these are resumed when the freeze stops holding, never a run a person
    stopped."""

    freeze = models.ForeignKey(Freeze, on_delete=models.CASCADE, related_name="stops")
    run_kind = models.CharField(max_length=63)
    run_namespace = models.CharField(max_length=253, blank=True, default="")
    run_name = models.CharField(max_length=253)
    stopped_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["freeze", "run_kind", "run_namespace", "run_name"],
                                               name="freezestop_unique_run")]


class BreakGlass(models.Model):
    """An approval asked for during a freeze: the first person's request and
    reason, then a second, different person's confirmation, which approves
    the gate. Both are recorded here and in the audit log."""

    request_kind = models.CharField(max_length=63)
    request_namespace = models.CharField(max_length=253, blank=True, default="")
    request_name = models.CharField(max_length=253)
    run_name = models.CharField(max_length=253, blank=True, default="")
    freeze_name = models.CharField(max_length=63)
    requested_by = models.CharField(max_length=150)
    reason = models.TextField()
    requested_at = models.DateTimeField()
    confirmed_by = models.CharField(max_length=150, blank=True, default="")
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        verbose_name_plural = "break-glass approvals"
        indexes = [models.Index(fields=["request_kind", "request_namespace", "request_name"])]
