"""Query budgets: a pass over a run costs the same number of queries whatever
the number of clusters (issue: no N+1 in a tick)."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.family import CLUSTER
from rollouts.engine import runner
from rollouts.members.agent import members_sync
from rollouts.services.objects import manifests_apply

pytestmark = pytest.mark.django_db


def _fleet(size: int) -> None:
    members = [{"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
                "metadata": {"name": f"m{i:03d}", "labels": {"ring": str(i % 2)}}} for i in range(size)]
    hub = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement", "metadata": {"name": "app"},
         "spec": {"resourceSelectors": [{"group": "", "version": "v1", "kind": "Namespace", "name": "app"}],
                  "strategy": {"type": "External"}}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateStrategy", "metadata": {"name": "rings"},
         "spec": {"stages": [{"name": f"ring{r}", "labelSelector": {"matchLabels": {"ring": str(r)}}, "maxConcurrency": "100%",
                              "afterStageTasks": [{"type": "Approval"}]} for r in (0, 1)]}},
        {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun", "metadata": {"name": "run"},
         "spec": {"placementName": "app", "resourceSnapshotIndex": "0", "stagedRolloutStrategyName": "rings"}},
    ]
    manifests_apply(docs=members + hub, actor="test")


def _queries_of_each_advance(size: int) -> list[int]:
    """Queries of: the first advance (initialize, bind a whole stage), then the
    advance after the member agent applied it (finish the stage, create the
    approval request)."""
    with clock.frozen(datetime(2026, 1, 1, tzinfo=UTC)):
        _fleet(size)
        pk = m.ClusterStagedUpdateRun.objects.get(name="run").pk
        counts = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                runner.run_advance(family=CLUSTER, pk=pk)
            counts.append(len(ctx.captured_queries))
            members_sync()
    run = m.ClusterStagedUpdateRun.objects.get(name="run")
    assert m.ClusterApprovalRequest.objects.filter(name="run-ring0").exists(), run.status
    return counts


def test_advancing_a_run_costs_the_same_queries_for_4_and_40_clusters():
    # First advance: lock the run; read placement, policy snapshots, bindings,
    # member labels, strategy, resource snapshots; one pass binds the stage
    # (lock + one bulk update + one events insert), saves the run and its
    # transition events; a second pass finds nothing more to do; the placement
    # status is refreshed once.
    small = _queries_of_each_advance(4)
    m.ClusterStagedUpdateRun.objects.all().delete()
    m.ClusterApprovalRequest.objects.all().delete()
    m.ClusterResourcePlacement.objects.all().delete()
    m.MemberCluster.objects.all().delete()
    m.HubResource.objects.all().delete()
    m.ClusterStagedUpdateStrategy.objects.all().delete()
    large = _queries_of_each_advance(40)
    assert small == large
    assert max(small) <= 40


def _placements_built_by_a_member_sync(size: int) -> tuple[int, int]:
    """(placement instances built, queries) while the member agent applies
    the first stage of a run over `size` members."""
    built = []

    def count(sender, **kwargs):
        built.append(sender)

    with clock.frozen(datetime(2026, 1, 1, tzinfo=UTC)):
        _fleet(size)
        runner.run_advance(family=CLUSTER, pk=m.ClusterStagedUpdateRun.objects.get(name="run").pk)
        post_init.connect(count, sender=m.ClusterResourcePlacement)
        try:
            with CaptureQueriesContext(connection) as ctx:
                members_sync()
        finally:
            post_init.disconnect(count, sender=m.ClusterResourcePlacement)
    assert m.ClusterResourceBinding.objects.filter(applied_generation__gt=0).count() == size // 2
    return len(built), len(ctx.captured_queries)


def test_a_member_sync_builds_its_placement_once_not_once_for_each_binding():
    # The pending bindings, then their one placement (name and namespace),
    # not a joined copy of it in every binding; the refresh reads it again.
    small = _placements_built_by_a_member_sync(4)
    m.ClusterStagedUpdateRun.objects.all().delete()
    m.ClusterResourcePlacement.objects.all().delete()
    m.MemberCluster.objects.all().delete()
    m.HubResource.objects.all().delete()
    m.ClusterStagedUpdateStrategy.objects.all().delete()
    large = _placements_built_by_a_member_sync(40)
    assert small == large
    assert small[0] == 2
