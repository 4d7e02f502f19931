"""The pre-flight of an update run (issue 15 item 5): the plan read without
writing, the refusal before a run is created, and `fleet apply
--dry-run=server`."""

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import models as m
from rollouts.roles import RELEASE_MANAGERS
from rollouts.selectors.preflight import run_plan
from rollouts.services.runs import RunRefused, run_start
from tests.fleet_builders import (
    OPERATOR,
    placement,
    signed_in,
    stage,
    staged_fleet,
    strategy,
    tutorial_fleet,
    tutorial_strategy,
    workload,
)
from tests.fleet_builders import fleet as members

pytestmark = pytest.mark.django_db

RUN = {"apiVersion": "placement.kubernetes-fleet.io/v1beta1", "kind": "ClusterStagedUpdateRun",
       "metadata": {"name": "example-run"},
       "spec": {"placementName": "example-placement", "resourceSnapshotIndex": "1",
                "stagedRolloutStrategyName": "example-strategy"}}


def plan_of(strategy_name="example-strategy", index="1"):
    return run_plan(placement="example-placement", namespace="", strategy=strategy_name, snapshot_index=index)


def test_the_tutorial_plan_is_staging_then_canary_in_sorting_label_order():
    tutorial_fleet()
    tutorial_strategy()
    plan = plan_of()
    assert [(s.name, s.clusters) for s in plan.stages] == [("staging", ["member2"]),
                                                          ("canary", ["member3", "member1"])]
    assert plan.unstaged == [] and plan.problems == [] and plan.ok
    # No run has bound them yet: all three get everything in snapshot 1.
    assert [(g.current, g.clusters) for g in plan.groups] == [("", ["member1", "member2", "member3"])]
    assert plan.groups[0].diff


def test_a_strategy_leaving_a_scheduled_cluster_in_no_stage_is_a_problem_naming_it():
    staged_fleet({"canary": ["member1"], "prod": ["member2"], "other": ["member9"]})
    strategy("example-strategy", stage("canary"), stage("prod"))
    plan = plan_of()
    assert [(s.name, s.clusters) for s in plan.stages] == [("canary", ["member1"]), ("prod", ["member2"])]
    assert plan.unstaged == ["member9"]
    assert plan.problems == ["some clusters are not placed in any stage, total 1, showing up to 10: member9"]


def test_a_plan_reports_what_initialization_refuses_in_plain_words_and_still_shows_the_stages():
    staged_fleet({"prod": ["member1", "member2"]}, labels={"member1": {"order": "1"}})
    strategy("example-strategy", stage("prod", sort="order"))
    plan = plan_of()
    assert plan.problems == ["the sorting label `order:` on cluster `member2` is not valid"]
    assert [(s.name, s.clusters) for s in plan.stages] == [("prod", ["member1", "member2"])]


def test_a_missing_strategy_is_a_problem():
    tutorial_fleet()
    assert plan_of("nope").problems[0] == "referenced updateStrategy `nope` not found"


def test_the_plan_writes_nothing():
    tutorial_fleet()
    tutorial_strategy()
    with CaptureQueriesContext(connection) as queries:
        plan_of()
    assert not [q for q in queries.captured_queries
                if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def _plan_queries(count: int) -> int:
    members(count, stage="prod")
    workload("value1")
    placement()
    workload("value2")
    strategy("example-strategy", stage("prod"))
    with CaptureQueriesContext(connection) as queries:
        plan = plan_of()
    assert len(plan.stages[0].clusters) == count
    return len(queries.captured_queries)


def test_the_plan_query_count_does_not_grow_with_members():
    small = _plan_queries(3)
    m.MemberCluster.objects.all().delete()
    m.ClusterResourcePlacement.objects.all().delete()
    m.ClusterStagedUpdateStrategy.objects.all().delete()
    assert _plan_queries(30) == small


def test_starting_a_run_whose_strategy_leaves_clusters_in_no_stage_is_refused_and_creates_nothing():
    staged_fleet({"canary": ["member1"], "prod": ["member2"], "other": ["member9"]})
    strategy("example-strategy", stage("canary"), stage("prod"))
    with pytest.raises(RunRefused) as refused:
        run_start(placement="example-placement", strategy="example-strategy", index="1", actor=OPERATOR)
    assert str(refused.value) == ('cannot start a run of strategy "example-strategy" over placement '
                                  '"example-placement": some clusters are not placed in any stage, total 1, '
                                  "showing up to 10: member9")
    assert not m.ClusterStagedUpdateRun.objects.exists()


def test_starting_the_tutorial_run_passes_the_preflight():
    tutorial_fleet()
    tutorial_strategy()
    run = run_start(placement="example-placement", strategy="example-strategy", index="1", actor=OPERATOR)
    assert m.ClusterStagedUpdateRun.objects.filter(name=run.name).exists()


def test_server_dry_run_of_a_run_prints_its_plan_and_creates_nothing(fleet):
    tutorial_fleet()
    tutorial_strategy()
    events = m.Event.objects.count()
    code, out, err = fleet("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(RUN))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "clusterstagedupdaterun.placement.kubernetes-fleet.io/example-run created (server dry run)",
        "plan: placement example-placement, strategy example-strategy, snapshot 1",
        "  stage 1 staging: member2",
        "  stage 2 canary: member3, member1",
        "  now on nothing: member1, member2, member3 (2 objects change)",
    ]
    assert not m.ClusterStagedUpdateRun.objects.exists()
    assert m.Event.objects.count() == events


def test_server_dry_run_of_a_run_names_clusters_in_no_stage_and_the_problem(fleet):
    staged_fleet({"canary": ["member1"], "other": ["member9"]})
    strategy("example-strategy", stage("canary"))
    code, out, _ = fleet("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(RUN))
    assert code == 0
    assert "  in no stage: member9" in out.splitlines()
    assert ("  problem: some clusters are not placed in any stage, total 1, showing up to 10: member9"
            in out.splitlines())
    assert not m.ClusterStagedUpdateRun.objects.exists()


def test_server_dry_run_of_other_kinds_validates_and_changes_nothing(fleet):
    doc = {"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
           "metadata": {"name": "member7"}, "spec": {}}
    code, out, err = fleet("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc))
    assert (code, out.strip(), err) == (0, "membercluster.cluster.kubernetes-fleet.io/member7 created (server dry run)",
                                        "")
    assert not m.MemberCluster.objects.exists()
    bad = {**doc, "metadata": {"name": "Bad_Name"}}
    code, out, err = fleet("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(bad))
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1


# The rollout page --------------------------------------------------------------------------------


@pytest.fixture
def rita():
    return signed_in("rita", RELEASE_MANAGERS)


def test_the_rollout_page_shows_the_plan_and_defaults_to_the_strategy_last_used(rita):
    tutorial_fleet()
    tutorial_strategy()
    strategy("another-strategy", stage("everyone", selector={}))
    run_start(placement="example-placement", strategy="example-strategy", index="1", actor=OPERATOR)
    page = rita.get("/placements/example-placement/rollout/?index=1").content.decode()
    assert '<option value="example-strategy" selected>' in page
    assert "<li><strong>staging</strong>: member2</li>" in page
    assert "<li><strong>canary</strong>: member3, member1</li>" in page
    assert "would not start" not in page


def test_the_rollout_page_refuses_a_strategy_leaving_clusters_in_no_stage_in_plain_words(rita):
    staged_fleet({"canary": ["member1"], "other": ["member9"]})
    strategy("example-strategy", stage("canary"))
    page = rita.get("/placements/example-placement/rollout/?index=1&strategy=example-strategy").content.decode()
    assert "This run would not start" in page and "In no stage: <strong>member9</strong>" in page
    response = rita.post("/placements/example-placement/rollout/", {"index": "1", "strategy": "example-strategy"})
    assert response.status_code == 400
    assert "some clusters are not placed in any stage, total 1, showing up to 10: member9" in response.content.decode()
    assert not m.ClusterStagedUpdateRun.objects.exists()


def test_the_person_names_the_run_on_the_rollout_page(rita):
    tutorial_fleet()
    tutorial_strategy()
    response = rita.post("/placements/example-placement/rollout/",
                         {"index": "1", "strategy": "example-strategy", "name": "friday-release"})
    assert response.status_code == 302 and response["Location"] == "/runs/friday-release/"
    assert m.Event.objects.filter(action="created", actor="rita", object_name="friday-release").exists()


def test_choosing_another_strategy_with_htmx_returns_only_the_preflight(rita):
    tutorial_fleet()
    tutorial_strategy()
    strategy("canary-only", stage("canary", selector={"matchLabels": {"environment": "canary"}}))
    fragment = rita.get("/placements/example-placement/rollout/", {"index": "1", "strategy": "canary-only"},
                        HTTP_HX_REQUEST="true").content.decode()
    assert fragment.strip().startswith('<div id="preflight">') and "<h1" not in fragment
    assert "In no stage: <strong>member2</strong>" in fragment
    assert '<input type="hidden" name="strategy" value="canary-only">' in fragment
