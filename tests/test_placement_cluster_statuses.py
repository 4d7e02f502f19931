"""A placement's per-cluster status entries for a few clusters, picked out by
the database (models.placement.PlacementQuerySet.cluster_statuses): what a
run page's push reads of a 1,000-cluster placement's ~0.5 MB status. The same
checks on SQLite (in process) and on PostgreSQL (a manage.py process)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import clock
from rollouts import models as m

from .real_services import check_on_postgresql


def entry(cluster: str, reason: str = "AllWorkAreAvailable") -> dict:
    return {"clusterName": cluster, "conditions": [{"type": "Available", "status": "True", "reason": reason}]}


def check_cluster_statuses() -> None:
    """Placements of both kinds, both status layouts; raises AssertionError."""
    odd, now = 'o\'dd "name" ünïcode', clock.now()
    m.ClusterResourcePlacement.objects.create(name="p", creation_timestamp=now, status={
        "placementStatuses": [entry(f"m{i}") for i in range(5)] + [entry(odd)]})
    m.ClusterResourcePlacement.objects.create(name="v1", creation_timestamp=now, status={"perClusterPlacementStatuses": [entry("m1", "v1")]})
    m.ClusterResourcePlacement.objects.create(name="empty", creation_timestamp=now, status={})
    m.ResourcePlacement.objects.create(name="p", namespace="team-a", creation_timestamp=now,
                                       status={"placementStatuses": [entry("m1", "ns")]})

    def names(model, name, clusters, namespace=""):
        return sorted(e["clusterName"] for e in model.objects.cluster_statuses(name, namespace, clusters))

    assert names(m.ClusterResourcePlacement, "p", ["m1", "m3", "nowhere"]) == ["m1", "m3"]
    assert names(m.ClusterResourcePlacement, "p", [odd]) == [odd]
    assert m.ClusterResourcePlacement.objects.cluster_statuses("p", "", ["m4"]) == [entry("m4")]  # the whole entry
    assert m.ClusterResourcePlacement.objects.cluster_statuses("v1", "", ["m1"]) == [entry("m1", "v1")]
    assert m.ClusterResourcePlacement.objects.cluster_statuses("empty", "", ["m1"]) == []
    assert m.ClusterResourcePlacement.objects.cluster_statuses("missing", "", ["m1"]) == []
    assert m.ResourcePlacement.objects.cluster_statuses("p", "team-a", ["m1", "m2"]) == [entry("m1", "ns")]
    assert m.ResourcePlacement.objects.cluster_statuses("p", "team-b", ["m1"]) == []
    many = [f"m{i}" for i in range(2000)]  # more names than SQLite allows parameters in older builds
    assert names(m.ClusterResourcePlacement, "p", many) == [f"m{i}" for i in range(5)]


@pytest.mark.django_db
def test_the_database_picks_the_entries_of_the_named_clusters_on_sqlite():
    check_cluster_statuses()


@pytest.mark.django_db
def test_no_cluster_no_query():
    with CaptureQueriesContext(connection) as queries:
        assert m.ClusterResourcePlacement.objects.cluster_statuses("p", "", []) == []
    assert not queries.captured_queries


@pytest.mark.slow
def test_the_database_picks_the_entries_of_the_named_clusters_on_postgresql():
    check_on_postgresql("tests.test_placement_cluster_statuses", "check_cluster_statuses")
