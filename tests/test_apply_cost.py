"""Writing a run, an approval or a strategy costs the same whether the hub
has 1 placement or 20: only a placement's children written directly
reconcile every placement, a placement's own write only itself, a hub
resource the placements that may select it, and a member the placements
that may choose it or had chosen it (issue 19)."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts.services.approvals import approval_request_approve
from tests.fleet_builders import (
    APPROVAL,
    add_members,
    apply,
    delete,
    kind,
    label_member,
    member,
    placement,
    run,
    settle,
    stage,
    staged_fleet,
    strategy,
    workload,
)

pytestmark = pytest.mark.django_db


def hub_with(placements: int) -> None:
    staged_fleet({"staging": ["member1"], "prod": ["member2"]})
    for i in range(1, placements):  # each on clusters of a team of its own
        placement(f"other-{i}", policy={"placementType": "PickAll", "affinity": {"clusterAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"clusterSelectorTerms": [
                {"labelSelector": {"matchLabels": {"team": f"team-{i}"}}}]}}}})
    strategy("example-strategy", stage("staging", after=[APPROVAL]), stage("prod"))
    settle()


def queries(write) -> int:
    with CaptureQueriesContext(connection) as captured:
        write()
    return len(captured)


def costs(placements: int) -> dict:
    hub_with(placements)
    found = {"run": queries(lambda: run(index="1")),
             "strategy": queries(lambda: strategy("example-strategy", stage("staging", after=[APPROVAL]),
                                                  stage("prod", max_concurrency=2)))}
    settle()
    found["approval"] = queries(lambda: approval_request_approve(
        kind=kind("careq"), name="example-run-staging", namespace="", actor="rita"))
    found["placement"] = queries(lambda: apply({
        "apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterResourcePlacement",
        "metadata": {"name": "other-new"},
        "spec": {"resourceSelectors": [{"group": "", "kind": "Namespace", "name": "test-namespace",
                                        "version": "v1"}], "policy": {"placementType": "PickAll"},
                 "strategy": {"type": "External"}}}))
    found["resources"] = queries(lambda: apply([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "team-b"},
         "data": {"k": "v"}}]))
    # A member that only the staged placement chooses, then its label change.
    found["member"] = queries(lambda: add_members(member("member9", stage="prod")))
    found["member labels"] = queries(lambda: label_member("member9", stage="staging"))
    found["member deleted"] = queries(lambda: delete("MemberCluster", "member9"))
    return found


@pytest.mark.parametrize("write", ["run", "strategy", "approval", "placement", "resources", "member", "member labels",
                                   "member deleted"])
def test_a_write_costs_the_same_queries_with_1_or_20_placements(write, frozen_clock):
    small = costs(1)[write]
    call_command("flush", interactive=False, verbosity=0)  # the second hub starts empty
    large = costs(20)[write]
    assert large == small, f"{write}: {small} queries with 1 placement, {large} with 20"


def rolling_update_placement_queries(clusters: int) -> int:
    """Queries of creating a RollingUpdate placement that binds `clusters` members at once."""
    add_members(*(member(f"member{i:02d}") for i in range(clusters)))
    workload()
    return queries(lambda: placement("rolling", strategy_type="RollingUpdate"))


def test_a_rolling_update_placement_costs_the_same_queries_for_2_or_40_clusters(frozen_clock):
    # Its bindings are inserted together and bound in one statement: 40
    # clusters were 80 saves more than 2 clusters before (issue 19: a
    # placement of 100 clusters in < 1 s while rollouts run).
    small = rolling_update_placement_queries(2)
    call_command("flush", interactive=False, verbosity=0)
    large = rolling_update_placement_queries(40)
    assert large == small, f"{small} queries for 2 clusters, {large} for 40"
