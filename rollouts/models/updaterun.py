"""Staged update strategies, runs and approval requests."""

import json

from django.db import connections, models

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


# The finished runs of some placements, grouped by (namespace, placement):
# the placement's name as text, and the test that it is one of %s, per vendor.
_PLACEMENT_OF_RUN = {
    "postgresql": ("spec ->> 'placementName'", "spec ->> 'placementName' = ANY(%s)", "uid::text"),
    "sqlite": ("json_extract(spec, '$.placementName')",
               "json_extract(spec, '$.placementName') IN (SELECT value FROM json_each(%s))", "uid"),
}


class UpdateRunQuerySet(models.QuerySet):
    def past_runs_marks(self, placements: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
        """{(namespace, placement): the mark of its finished runs}, in one small
        query: how many there are, the highest resourceVersion and the highest
        uid among them. ResourceVersions grow with every write hub-wide, so a
        run finishing, rewritten or deleted changes its placement's mark;
        what the ETA learned from those runs (selectors.history) is remembered
        under it instead of read again. A placement without a finished run is
        left out."""
        if not placements:
            return {}
        connection = connections[self.db]
        placement, matches, uid = _PLACEMENT_OF_RUN[connection.vendor]
        names = sorted({name for _, name in placements})
        sql = (f"SELECT namespace, {placement}, COUNT(*), MAX(resource_version), MAX({uid}) "
               f"FROM {self.model._meta.db_table} WHERE NOT active AND {matches} GROUP BY 1, 2")
        with connection.cursor() as cursor:
            cursor.execute(sql, [names if connection.vendor == "postgresql" else json.dumps(names)])
            rows = cursor.fetchall()
        return {(namespace, name): tuple(mark) for namespace, name, *mark in rows if (namespace, name) in placements}


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
