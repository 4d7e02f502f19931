"""The ReportDiff apply strategy (§4.8 step 7): members change nothing, each
binding reports DiffReported with KubeFleet's `diffedPlacements`, and the
clusters succeed on that."""

import pytest

from rollouts import models as m
from rollouts.api.diff import WHOLE_OBJECT, observed_diffs
from tests.fleet_builders import (
    condition,
    patch,
    placement_obj,
    run,
    run_conditions,
    settle,
    stage,
    staged_fleet,
    strategy,
)

pytestmark = pytest.mark.django_db

RUN_SUCCEEDED = {"Initialized": ("True", "UpdateRunInitializedSuccessfully"),
                 "Progressing": ("False", "UpdateRunSucceeded"), "Succeeded": ("True", "UpdateRunSucceeded")}


def report_diff(comparison: str = "PartialComparison") -> None:
    patch("clusterresourceplacement", "example-placement",
          {"spec": {"strategy": {"applyStrategy": {"type": "ReportDiff", "comparisonOption": comparison}}}})


def held(cluster: str) -> dict:
    return {o.name: o.manifest.get("data") for o in m.MemberObject.objects.filter(cluster=cluster)}


def binding(cluster: str):
    return m.ClusterResourceBinding.objects.get(target_cluster=cluster)


@pytest.fixture
def rolled_out_value1(frozen_clock):
    """member1 and member2 run snapshot 0 (value1), applied."""
    staged_fleet({"prod": ["member1", "member2"]})
    strategy("example-strategy", stage("prod", max_concurrency=2))
    run("first", index="0")
    settle()
    assert held("member1")["test-cm"] == {"key": "value1"}


def test_a_report_diff_run_changes_nothing_reports_the_differences_and_succeeds(rolled_out_value1):
    report_diff()
    run("diff", index="1")
    settle()
    assert run_conditions("diff") == RUN_SUCCEEDED
    assert held("member1")["test-cm"] == {"key": "value1"}, "nothing is applied"
    reported = condition(binding("member1").status, "DiffReported")
    assert (reported["status"], reported["reason"]) == ("True", "DiffReportingCompleted")
    assert reported["observedGeneration"] == binding("member1").generation
    [diffed] = binding("member1").status["diffedPlacements"]
    assert {k: diffed[k] for k in ("group", "version", "kind", "namespace", "name")} == {
        "group": "", "version": "v1", "kind": "ConfigMap", "namespace": "test-namespace", "name": "test-cm"}
    assert diffed["observedDiffs"] == [{"path": "/data/key", "valueInMember": "value1", "valueInHub": "value2"}]
    assert diffed["observationTime"] and diffed["firstDiffedObservedTime"]
    entry = next(e for e in placement_obj().status["placementStatuses"] if e["clusterName"] == "member1")
    assert entry["diffedPlacements"] == binding("member1").status["diffedPlacements"]
    types = [c["type"] for c in placement_obj().status["conditions"]]
    assert "ClusterResourcePlacementDiffReported" in types and "ClusterResourcePlacementApplied" not in types


def test_an_object_the_member_does_not_hold_is_one_difference_at_the_root(frozen_clock):
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod"))
    report_diff()
    run(index="1")
    settle()
    assert run_conditions("example-run") == RUN_SUCCEEDED
    assert held("member1") == {}
    diffs = {d["kind"]: d["observedDiffs"] for d in binding("member1").status["diffedPlacements"]}
    assert diffs == {"Namespace": [{"path": "/", "valueInHub": WHOLE_OBJECT}],
                     "ConfigMap": [{"path": "/", "valueInHub": WHOLE_OBJECT}]}


def test_no_differences_report_completed_with_no_diffed_placements(rolled_out_value1):
    report_diff()
    run("same", index="0")
    settle()
    assert run_conditions("same") == RUN_SUCCEEDED
    assert "diffedPlacements" not in binding("member1").status
    assert condition(binding("member1").status, "DiffReported")["message"] == "no differences in 2 objects"


def test_partial_comparison_looks_only_at_the_manifests_fields_full_at_the_members_too():
    hub = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {}},
           "data": {"a": "1", "list": [1, 2]}}
    member = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "cm", "uid": "u-1", "resourceVersion": "9", "labels": {"team": "x"}},
              "data": {"a": "2", "extra": "y", "list": [1, 3]}, "status": {"ok": True}}
    assert observed_diffs(hub, member) == [
        {"path": "/data/a", "valueInMember": "2", "valueInHub": "1"},
        {"path": "/data/list/1", "valueInMember": "3", "valueInHub": "2"}]
    assert observed_diffs(hub, member, full=True) == [
        {"path": "/data/a", "valueInMember": "2", "valueInHub": "1"},
        {"path": "/data/extra", "valueInMember": "y"},
        {"path": "/data/list/1", "valueInMember": "3", "valueInHub": "2"},
        {"path": "/metadata/labels/team", "valueInMember": "x"}]
    assert observed_diffs({"metadata": {"name": "a/b~c"}}, {"metadata": {"name": "x"}}) == [
        {"path": "/metadata/name", "valueInMember": "x", "valueInHub": "a/b~c"}]
    assert observed_diffs({"data": {"a/b": "1"}}, {"data": {}}) == [{"path": "/data/a~1b", "valueInHub": "1"}]
