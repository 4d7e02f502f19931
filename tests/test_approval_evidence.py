"""The Approve dialog's evidence: what the release changes (against the
placement's snapshot before it), what the finished stage did, who started
the run, who approved so far, and what approving lets through; the run
page's banner carries the Approve… link; the dialog's queries do not grow
with the number of clusters."""

import json

import pytest
import yaml
from django.contrib.auth.models import Group

from rollouts import models as m
from rollouts import selectors
from rollouts.roles import RELEASE_MANAGERS, VIEWERS, user_create
from tests.fleet_builders import (
    APPROVAL,
    TUTORIAL_STRATEGY,
    approval_request,
    approve,
    condition,
    run,
    settle,
    signed_in,
    stage,
    staged_fleet,
    strategy,
    timed_wait,
    tutorial_waiting_at_canary,
)

pytestmark = pytest.mark.django_db

# The dialog of a gate with a next stage: session and user, the request, the
# run, the policies in scope, the latest decision, the next clusters'
# bindings and snapshots, the release diff, the placement's status, the
# `created` Event, the gate's health check, the freezes holding now
# (break-glass instead of Approve)… the same for 3 clusters as for 30.
QUERIES = 16


@pytest.fixture
def last_gate(frozen_clock):
    """The tutorial's run waiting at canary's approval, after the last stage."""
    tutorial_waiting_at_canary()
    return selectors.approval_review(approval_request("example-run-canary"))


def test_the_last_gate_shows_what_the_release_changes_against_the_previous_snapshot(last_gate):
    release = last_gate.release
    assert (release.index, release.previous) == ("1", "0")
    [change] = release.diff
    assert change.change == "changed"
    assert [(f.path, f.before, f.after) for f in change.fields] == [("data.key", '"value1"', '"value2"')]


def test_the_last_gate_lets_the_run_finish(last_gate):
    assert (last_gate.next_stage, last_gate.next_clusters, last_gate.groups) == ("", 0, [])


def test_the_last_gate_shows_what_its_stage_did_cluster_by_cluster(last_gate):
    finished = last_gate.finished
    assert (finished.name, finished.state, finished.done) == ("canary", "waiting", 2)
    assert [c.name for c in finished.clusters] == ["member3", "member1"]  # update order
    for c in finished.clusters:
        assert c.state == "succeeded" and c.started and c.ended and c.duration
        assert c.failure is None and c.available


def test_the_review_names_who_started_the_run_and_when(last_gate):
    assert last_gate.started_by == "olivia"
    assert last_gate.started_at is not None


def test_a_before_stage_gate_shows_the_stage_before_it_and_lets_its_own_stage_through(frozen_clock):
    staged_fleet({"staging": ["member2"], "prod": ["member1", "member3"]})
    strategy("gated", stage("staging"), stage("prod", before=[APPROVAL]))
    run(index="1", strategy_name="gated")
    settle()
    [request] = [r for r in selectors.approval_list() if r.stage == "prod"]
    review = selectors.approval_review(approval_request(request.name))
    assert review.finished.name == "staging" and [c.name for c in review.finished.clusters] == ["member2"]
    assert (review.next_stage, review.next_clusters) == ("prod", 2)
    assert (review.release.index, review.release.previous) == ("1", "0")


def test_the_review_lists_every_stage_approving_lets_through_and_where_the_run_stops_next(frozen_clock):
    staged_fleet({"staging": ["member2"], "canary": ["member1"], "eu": ["member3"], "us": ["member4"],
                  "prod": ["member5"]})
    strategy("gated", stage("staging", after=[APPROVAL]), stage("canary", after=[timed_wait("1m")]), stage("eu"),
             stage("us", after=[APPROVAL]), stage("prod"))
    run(index="1", strategy_name="gated")
    settle()
    [request] = [r for r in selectors.approval_list() if r.stage == "staging"]
    review = selectors.approval_review(approval_request(request.name))
    assert (review.next_stage, review.next_clusters) == ("canary", 1)
    assert [(s.name, s.clusters, s.waits) for s in review.later] == [("eu", ["member3"], ""), ("us", ["member4"], "")]
    assert review.stops_at == "the Approval after stage us"


def test_an_after_stage_gate_before_a_gated_stage_lets_nothing_through(frozen_clock):
    staged_fleet({"staging": ["member2"], "prod": ["member1"]})
    strategy("gated", stage("staging", after=[APPROVAL]), stage("prod", before=[APPROVAL]))
    run(index="1", strategy_name="gated")
    settle()
    [request] = [r for r in selectors.approval_list() if r.stage == "staging"]
    review = selectors.approval_review(approval_request(request.name))
    assert (review.next_stage, review.later, review.stops_at) == ("", [], "the Approval before stage prod")


def test_a_before_stage_gate_on_the_first_stage_has_no_finished_stage(frozen_clock):
    staged_fleet({"prod": ["member1"]})
    strategy("gated", stage("prod", before=[APPROVAL]))
    run(index="0", strategy_name="gated")
    settle()
    [request] = selectors.approval_list()
    review = selectors.approval_review(approval_request(request.name))
    assert review.finished is None
    assert (review.release.index, review.release.previous) == ("0", "")
    assert review.release.diff and {d.change for d in review.release.diff} == {"added"}


def test_the_dialog_shows_the_evidence(last_gate):
    rita = signed_in("rita", RELEASE_MANAGERS)
    dialog = rita.get("/approvals/example-run-canary/", HTTP_HX_REQUEST="true").content.decode()
    assert 'class="dialog-heading"' in dialog
    assert "Run started by <strong>olivia</strong>" in dialog
    assert "Snapshot 1 compared with snapshot 0, the placement's snapshot before it" in dialog
    assert "What stage canary did" in dialog and "member3" in dialog and ">available<" in dialog
    assert "approving lets the run finish" in dialog


def test_the_run_banner_carries_approve_for_a_release_manager_not_a_viewer(last_gate):
    rita = signed_in("rita", RELEASE_MANAGERS)
    page = rita.get("/runs/example-run/").content.decode()
    assert 'id="banner-approve" href="/approvals/example-run-canary/"' in page
    vera = signed_in("vera", VIEWERS)
    assert 'id="banner-approve"' not in vera.get("/runs/example-run/").content.decode()


def _gated_fleet(count: int, client) -> None:
    """`count` clusters, a third in staging (gated after), the rest in prod."""
    clusters = [f"member{i}" for i in range(1, count + 1)]
    staged_fleet({"staging": clusters[: count // 3], "prod": clusters[count // 3:]})
    strategy("gated", stage("staging", after=[APPROVAL]), stage("prod"))
    run(index="1", strategy_name="gated")
    settle()
    client.get("/approvals/example-run-staging/", HTTP_HX_REQUEST="true")  # warm the session and caches


@pytest.mark.parametrize("count", [3, 30])
def test_the_dialog_queries_do_not_grow_with_the_clusters(count, frozen_clock, django_assert_num_queries):
    rita = signed_in("rita", RELEASE_MANAGERS)
    _gated_fleet(count, rita)
    with django_assert_num_queries(QUERIES):
        response = rita.get("/approvals/example-run-staging/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "What stage staging did" in response.content.decode()



def test_a_finished_cluster_failing_now_is_shown_with_its_reason(last_gate):
    """member3 updated in canary; its member now reports Applied=False."""
    placement = m.ClusterResourcePlacement.objects.get(name="example-placement")
    for entry in placement.status["placementStatuses"]:
        if entry["clusterName"] == "member3":
            generation = condition(entry, "RolloutStarted")["observedGeneration"]
            entry["conditions"] = [c for c in entry["conditions"] if c["type"] not in ("Applied", "Available")] + [
                {"type": "Applied", "status": "False", "reason": "ApplyFailed", "message": "quota exceeded",
                 "observedGeneration": generation}]
    placement.save()
    views = {c.name: c for c in selectors.approval_review(approval_request("example-run-canary")).finished.clusters}
    assert views["member3"].state == "succeeded" and not views["member3"].available
    assert views["member3"].failure.text == "ApplyFailed: quota exceeded"
    assert views["member1"].failure is None and views["member1"].available


def test_a_quorum_gate_names_who_approved_so_far(frozen_clock):
    sre = Group.objects.create(name="sre")
    for name in ("alice", "bob"):
        user_create(username=name, role=RELEASE_MANAGERS)[0].groups.add(sre)
    doc = yaml.safe_load(TUTORIAL_STRATEGY)
    doc["metadata"]["annotations"] = {"fleetui.io/approval-policy": json.dumps(
        {"stages": {"canary": {"after": {"groups": ["sre"], "quorum": 2}}}})}
    tutorial_waiting_at_canary(doc)
    approve("example-run-canary", actor="alice")
    review = selectors.approval_review(approval_request("example-run-canary"))
    assert review.others_approved == ["alice"] and not review.standing.met
    dialog = signed_in("bob2", RELEASE_MANAGERS).get("/approvals/example-run-canary/",
                                                     HTTP_HX_REQUEST="true").content.decode()
    assert "Approved so far by alice." in dialog
