"""Staged update strategies, runs and approval requests."""

from django.db import models

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
    KIND = "ClusterStagedUpdateRun"
    PLURAL = "clusterstagedupdateruns"
    SHORT_NAMES = ("csur",)

    class Meta(FleetObject.Meta):
        constraints = _unique_name("csur")


class StagedUpdateRun(UpdateRun):
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
