"""Staged update strategies, runs and approval requests."""

from django.db import models
from django.db.models import CharField, F, Func, OuterRef, Subquery, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Concat

from .base import FleetObject
from .placement import _unique_name


class ClusterStagedUpdateStrategy(FleetObject):
    """Groups clusters into ordered stages with optional gates (no status)."""

    KIND = "ClusterStagedUpdateStrategy"
    PLURAL = "clusterstagedupdatestrategies"
    SHORT_NAMES = ("csus",)

    class Meta(FleetObject.Meta):
        constraints = _unique_name("csus")


class StagedUpdateStrategy(FleetObject):
    KIND = "StagedUpdateStrategy"
    PLURAL = "stagedupdatestrategies"
    SHORT_NAMES = ("sus",)
    NAMESPACED = True

    class Meta(FleetObject.Meta):
        constraints = _unique_name("sus")


class UpdateRunQuerySet(models.QuerySet):
    def with_past_runs_mark(self):
        """Annotate each run with the mark of its placement's finished runs:
        `past_runs_count`, how many there are, and `past_runs_last`, the uid and
        resourceVersion of the one written last (None without one).
        ResourceVersions grow with every write hub-wide, so a run finishing,
        rewritten or deleted changes the mark, and what the ETA learned from
        those runs (selectors.history) is remembered under it instead of read
        again: a push of a run page asks no query for them. For one run at a
        time: the subqueries run per row."""
        finished = (self.model.objects.filter(namespace=OuterRef("namespace"), active=False)
                    .annotate(placement_name=KT("spec__placementName"))
                    .filter(placement_name=OuterRef("placement_name")).order_by())
        count = finished.annotate(n=Func(F("pk"), function="COUNT")).values("n")
        last = (finished.order_by("-resource_version")
                .annotate(last=Concat(Cast("uid", CharField()), Value("@"), Cast("resource_version", CharField())))
                .values("last")[:1])
        return self.annotate(placement_name=KT("spec__placementName"), past_runs_count=Subquery(count),
                             past_runs_last=Subquery(last, output_field=CharField()))


class UpdateRun(FleetObject):
    """Shared by both run kinds. `active` is a denormalized flag the engine
    keeps: False once the run reached a terminal condition, so the engine's
    pass over active runs never reads finished ones."""

    active = models.BooleanField(default=True, db_index=True)
    # When the engine wants to look at this run again (a TimedWait ending, a
    # poll of clusters in flight): the beat task advances runs that are due.
    # Engine bookkeeping, not API state: written without a resourceVersion bump.
    wake_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # When the run stopped being active (its terminal condition's time), so
    # "failed in the last hours" reads recent runs only, whatever the history.
    finished_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta(FleetObject.Meta):
        abstract = True


class ClusterStagedUpdateRun(UpdateRun):
    objects = UpdateRunQuerySet.as_manager()

    KIND = "ClusterStagedUpdateRun"
    PLURAL = "clusterstagedupdateruns"
    SHORT_NAMES = ("csur",)

    class Meta(FleetObject.Meta):
        constraints = _unique_name("csur")


class StagedUpdateRun(UpdateRun):
    objects = UpdateRunQuerySet.as_manager()

    KIND = "StagedUpdateRun"
    PLURAL = "stagedupdateruns"
    SHORT_NAMES = ("sur",)
    NAMESPACED = True

    class Meta(FleetObject.Meta):
        constraints = _unique_name("sur")


class ClusterApprovalRequest(FleetObject):
    """A gate a person approves: created by a run as `<run>-<stage>`."""

    KIND = "ClusterApprovalRequest"
    PLURAL = "clusterapprovalrequests"
    SHORT_NAMES = ("careq",)

    class Meta(FleetObject.Meta):
        constraints = _unique_name("careq")


class ApprovalRequest(FleetObject):
    KIND = "ApprovalRequest"
    PLURAL = "approvalrequests"
    SHORT_NAMES = ("areq",)
    NAMESPACED = True

    class Meta(FleetObject.Meta):
        constraints = _unique_name("areq")
