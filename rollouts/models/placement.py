"""Member clusters, placements and what the placement controllers derive from
them: scheduling policy snapshots, resource snapshots and bindings."""

import json

from django.db import connections, models

from .base import FleetObject

# Where a placement's status lists its clusters: ours and KubeFleet v1beta1
# (placementStatuses), KubeFleet v1 (perClusterPlacementStatuses).
PER_CLUSTER_KEYS = ("placementStatuses", "perClusterPlacementStatuses")


def _unique_name(cls_name: str) -> list:
    return [models.UniqueConstraint(fields=["namespace", "name"], name=f"{cls_name}_unique_name")]


class MemberCluster(FleetObject):
    """A member cluster (`cluster.kubernetes-fleet.io/v1beta1`). Stage selectors
    and `sortingLabelKey` read its labels."""

    API_GROUP = "cluster.kubernetes-fleet.io"
    KIND = "MemberCluster"
    PLURAL = "memberclusters"
    SHORT_NAMES = ("cluster",)

    class Meta(FleetObject.Meta):
        constraints = _unique_name("membercluster")


# One placement's per-cluster status entries naming given clusters, picked out
# by the database: (the status's entries under key %s, their cluster's name
# matches one of %s, the entry as JSON text), per vendor.
_CLUSTER_ENTRIES = {
    "postgresql": ("jsonb_array_elements(p.status -> %s) e", "e.value ->> 'clusterName' = ANY(%s)", "e.value::text"),
    "sqlite": ("json_each(p.status, '$.' || %s) e",
               "json_extract(e.value, '$.clusterName') IN (SELECT value FROM json_each(%s))", "e.value"),
}


class PlacementQuerySet(models.QuerySet):
    def cluster_statuses(self, name: str, namespace: str, clusters: list[str]) -> list[dict]:
        """The entries of placement `name`'s per-cluster status for these
        clusters only, in one query (none without clusters). The database
        picks them out: a placement of 1,000 clusters has a status of ~0.5 MB,
        and a run page's push needs the entries of the few updating now."""
        if not clusters:
            return []
        connection = connections[self.db]
        elements, matches, value = _CLUSTER_ENTRIES[connection.vendor]
        names = list(clusters) if connection.vendor == "postgresql" else json.dumps(list(clusters))
        sql = " UNION ALL ".join(f"SELECT {value} FROM {self.model._meta.db_table} p, {elements} "
                                 f"WHERE p.name = %s AND p.namespace = %s AND {matches}" for _ in PER_CLUSTER_KEYS)
        with connection.cursor() as cursor:
            cursor.execute(sql, [param for key in PER_CLUSTER_KEYS for param in (key, name, namespace, names)])
            return [json.loads(text) for text, in cursor.fetchall()]


class ClusterResourcePlacement(FleetObject):
    """Selects cluster-scoped hub resources (a Namespace brings its contents)
    and member clusters."""

    objects = PlacementQuerySet.as_manager()

    KIND = "ClusterResourcePlacement"
    PLURAL = "clusterresourceplacements"
    SHORT_NAMES = ("crp",)

    class Meta(FleetObject.Meta):
        constraints = _unique_name("crp")


class ResourcePlacement(FleetObject):
    """The namespaced placement: selects resources in its own namespace."""

    objects = PlacementQuerySet.as_manager()

    KIND = "ResourcePlacement"
    PLURAL = "resourceplacements"
    SHORT_NAMES = ("rp",)
    NAMESPACED = True

    class Meta(FleetObject.Meta):
        constraints = _unique_name("rp")


def _apply_pending() -> models.GeneratedField:
    """Whether the member agent has work on a binding (bound, its generation
    not yet applied), kept by the database itself in an indexed column, so
    the agent's pass reads those bindings directly however many are done.
    A column, not a partial index on the JSON: SQLite uses a partial index
    only when the query repeats its predicate literally, and Django sends
    the JSON path as a bound parameter."""
    return models.GeneratedField(
        expression=models.Case(
            models.When(models.Q(spec__state="Bound") & ~models.Q(applied_generation=models.F("generation")),
                        then=models.Value(True)),
            default=models.Value(False)),
        output_field=models.BooleanField(), db_persist=True)


def _apply_pending_index(prefix: str) -> models.Index:
    """Only the bindings with work, in id order. Partial on the bare column:
    `filter(apply_pending=True)` compiles to that very predicate, which both
    databases match (a plain index on a boolean SQLite would not use)."""
    return models.Index(fields=["id"], name=f"{prefix}_apply_pending", condition=models.Q(apply_pending=True))


class PlacementChild(FleetObject):
    """An object owned by a placement; deleting the placement deletes it."""

    class Meta(FleetObject.Meta):
        abstract = True

    @property
    def owner_references(self) -> list[dict]:
        owner = self.owner
        return [
            {
                "apiVersion": owner.api_version(),
                "blockOwnerDeletion": True,
                "controller": True,
                "kind": owner.KIND,
                "name": owner.name,
                "uid": str(owner.uid),
            }
        ]


class ClusterSchedulingPolicySnapshot(PlacementChild):
    """An immutable copy of a placement's policy, `<placement>-<index>`."""

    KIND = "ClusterSchedulingPolicySnapshot"
    PLURAL = "clusterschedulingpolicysnapshots"
    SHORT_NAMES = ("csps",)
    owner = models.ForeignKey(ClusterResourcePlacement, on_delete=models.CASCADE, related_name="policy_snapshots")
    index = models.IntegerField()

    class Meta(FleetObject.Meta):
        constraints = _unique_name("csps")


class SchedulingPolicySnapshot(PlacementChild):
    KIND = "SchedulingPolicySnapshot"
    PLURAL = "schedulingpolicysnapshots"
    SHORT_NAMES = ("sps",)
    NAMESPACED = True
    owner = models.ForeignKey(ResourcePlacement, on_delete=models.CASCADE, related_name="policy_snapshots")
    index = models.IntegerField()

    class Meta(FleetObject.Meta):
        constraints = _unique_name("sps")


class ClusterResourceSnapshot(PlacementChild):
    """An immutable copy of what a placement selects, `<placement>-<index>-snapshot`."""

    KIND = "ClusterResourceSnapshot"
    PLURAL = "clusterresourcesnapshots"
    SHORT_NAMES = ("crs",)
    owner = models.ForeignKey(ClusterResourcePlacement, on_delete=models.CASCADE, related_name="resource_snapshots")
    index = models.IntegerField()

    class Meta(FleetObject.Meta):
        constraints = _unique_name("crs")


class ResourceSnapshot(PlacementChild):
    KIND = "ResourceSnapshot"
    PLURAL = "resourcesnapshots"
    SHORT_NAMES = ("rs",)
    NAMESPACED = True
    owner = models.ForeignKey(ResourcePlacement, on_delete=models.CASCADE, related_name="resource_snapshots")
    index = models.IntegerField()

    class Meta(FleetObject.Meta):
        constraints = _unique_name("rs")


class ClusterResourceBinding(PlacementChild):
    """One per (placement, target cluster): what that cluster should run."""

    KIND = "ClusterResourceBinding"
    PLURAL = "clusterresourcebindings"
    SHORT_NAMES = ("crb",)
    owner = models.ForeignKey(ClusterResourcePlacement, on_delete=models.CASCADE, related_name="bindings")
    target_cluster = models.CharField(max_length=253, db_index=True)
    # The generation the member agent last applied successfully, so its pass
    # reads only bindings with work to do (derivable from status, kept for apply_pending).
    applied_generation = models.BigIntegerField(default=0)
    # How many times the member agent tried the generation `failed_generation`
    # and failed: "failing, 4 attempts". Hub bookkeeping, not API state.
    failed_generation = models.BigIntegerField(default=0)
    failed_attempts = models.PositiveIntegerField(default=0)
    apply_pending = _apply_pending()

    class Meta(FleetObject.Meta):
        constraints = _unique_name("crb")
        indexes = [_apply_pending_index("crb")]


class ResourceBinding(PlacementChild):
    KIND = "ResourceBinding"
    PLURAL = "resourcebindings"
    SHORT_NAMES = ("rb",)
    NAMESPACED = True
    owner = models.ForeignKey(ResourcePlacement, on_delete=models.CASCADE, related_name="bindings")
    target_cluster = models.CharField(max_length=253, db_index=True)
    # The generation the member agent last applied successfully, so its pass
    # reads only bindings with work to do (derivable from status, kept for apply_pending).
    applied_generation = models.BigIntegerField(default=0)
    # How many times the member agent tried the generation `failed_generation`
    # and failed: "failing, 4 attempts". Hub bookkeeping, not API state.
    failed_generation = models.BigIntegerField(default=0)
    failed_attempts = models.PositiveIntegerField(default=0)
    apply_pending = _apply_pending()

    class Meta(FleetObject.Meta):
        constraints = _unique_name("rb")
        indexes = [_apply_pending_index("rb")]
