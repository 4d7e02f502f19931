"""The dashboard's reads: a run's state in one word, snapshot diffs, the
sentence that says what a run waits for, and the approval review."""

import pytest

from rollouts import selectors
from rollouts.selectors import RunState, resources_diff, run_state
from tests.fleet_builders import (
    APPROVAL,
    advance,
    apply,
    approval_request,
    approve,
    run,
    run_obj,
    set_state,
    settle,
    stage,
    staged_fleet,
    strategy,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)

pytestmark = pytest.mark.django_db


def cond(type_, status, reason=""):
    return {"type": type_, "status": status, "reason": reason}


INIT = cond("Initialized", "True", "UpdateRunInitializedSuccessfully")


@pytest.mark.parametrize("spec_state, conditions, expected", [
    pytest.param(None, [], RunState.PENDING, id="nothing-yet"),
    pytest.param(None, [cond("Initialized", "False", "UpdateRunInitializedFailed")], RunState.FAILED, id="init-failed"),
    pytest.param("Initialize", [INIT], RunState.INITIALIZED, id="idle-in-initialize"),
    pytest.param("Run", [INIT], RunState.PENDING, id="initialized-not-started"),
    pytest.param("Run", [INIT, cond("Progressing", "True", "UpdateRunProgressing")], RunState.RUNNING, id="running"),
    pytest.param("Run", [INIT, cond("Progressing", "False", "UpdateRunWaiting")], RunState.WAITING, id="waiting"),
    pytest.param("Stop", [INIT, cond("Progressing", "Unknown", "UpdateRunStopping")], RunState.STOPPING,
                 id="stopping"),
    pytest.param("Stop", [INIT, cond("Progressing", "False", "UpdateRunStopped")], RunState.STOPPED, id="stopped"),
    pytest.param("Run", [INIT, cond("Progressing", "False", "UpdateRunStuck")], RunState.STUCK, id="stuck"),
    pytest.param("Run", [INIT, cond("Progressing", "False", "UpdateRunSucceeded"),
                         cond("Succeeded", "True", "UpdateRunSucceeded")], RunState.SUCCEEDED, id="succeeded"),
    pytest.param("Stop", [INIT, cond("Progressing", "False", "UpdateRunFailed"),
                          cond("Succeeded", "False", "UpdateRunFailed")], RunState.FAILED, id="failed"),
])
def test_run_state_is_read_from_the_conditions(spec_state, conditions, expected):
    assert run_state(spec_state, conditions) == expected


def cm(value, name="test-cm", **extra):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"},
            "data": {"key": value, **extra}}


def test_a_diff_lists_changed_added_and_removed_objects_field_by_field():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    diff = resources_diff([ns, cm("value1"), cm("x", name="gone")], [ns, cm("value2", extra="1"), cm("y", name="new")])
    assert [(d.label, d.change) for d in diff] == [
        ("ConfigMap ns/gone", "removed"), ("ConfigMap ns/new", "added"), ("ConfigMap ns/test-cm", "changed")]
    assert [(f.path, f.before, f.after) for f in diff[2].fields] == [
        ("data.extra", "", '"1"'), ("data.key", '"value1"', '"value2"')]


def test_identical_snapshots_have_no_diff():
    assert resources_diff([cm("a")], [cm("a")]) == []



@pytest.fixture
def tutorial(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()


def sentence(name="example-run") -> str:
    return selectors.run_timeline(run_obj(name)).sentence


def test_the_sentence_follows_the_tutorial_run(tutorial):
    assert sentence() == "The engine has not initialized this run yet; it starts as soon as the engine picks it up."
    settle()
    assert sentence().startswith("The run is waiting for the timed wait (59s left, until 21:28:01 UTC) after "
                                 "stage staging; once done, stage canary starts.")
    advance(61)
    settle()
    assert sentence() == ("The run is waiting for approval of example-run-canary after stage canary; once done, "
                          "the run moves to the deletion stage and finishes.")
    approve("example-run-canary")
    settle()
    assert sentence() == "The run finished: every stage succeeded and nothing more will happen."


def test_the_sentence_of_a_stopped_run_says_resume_goes_on(tutorial):
    settle()
    set_state("example-run", "Stop")
    settle()
    assert sentence() == ("The run is stopped at stage staging; Resume sets its state back to Run and it goes on "
                          "from there.")


def test_the_sentence_of_a_failed_run_gives_the_reason(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run(index="9")
    settle()
    assert sentence().startswith("The run failed (cannot continue the updateRun: ")
    assert sentence().endswith("nothing more will happen, so start a new run to go on.")


def test_the_timeline_shows_the_approver_and_the_comment(tutorial):
    settle()
    advance(61)
    settle()
    approve("example-run-canary", actor="rita", message="ship it")
    task = selectors.run_timeline(run_obj()).stages[1].after[0]
    assert (task.state, task.approved_by, task.comment) == ("approved (not accepted yet)", "rita", "ship it")
    settle()
    task = selectors.run_timeline(run_obj()).stages[1].after[0]
    assert task.state == "approved and accepted" and not task.can_approve


def test_the_approval_review_diffs_what_the_next_clusters_run_now(frozen_clock):
    """staging waits for approval; canary's clusters run snapshot 0 and would get 1."""
    staged_fleet({"staging": ["member2"], "canary": ["member1", "member3"]})
    strategy("plain", stage("staging"), stage("canary"))
    run("first", index="0", strategy_name="plain")
    settle()
    strategy("gated", stage("staging", after=[APPROVAL]), stage("canary"))
    run("second", index="1", strategy_name="gated")
    settle()
    review = selectors.approval_review(approval_request("second-staging"))
    assert (review.snapshot_index, review.next_stage, review.next_clusters) == ("1", "canary", 2)
    [group] = review.groups
    assert (group.current, group.clusters) == ("example-placement-0-snapshot", ["member1", "member3"])
    [change] = group.diff
    assert [(f.path, f.before, f.after) for f in change.fields] == [("data.key", '"value1"', '"value2"')]


def test_the_inbox_holds_only_unapproved_requests_of_active_runs_oldest_first(tutorial):
    settle()
    advance(61)
    settle()
    tutorial_run("example-run-2", index="0")
    settle()
    advance(61)
    settle()
    assert [r.name for r in selectors.approvals_pending()] == ["example-run-canary", "example-run-2-canary"]
    approve("example-run-canary")
    assert [r.name for r in selectors.approvals_pending()] == ["example-run-2-canary"]


def test_strategies_show_the_clusters_each_stage_selects_now_in_update_order(tutorial):
    [view] = selectors.strategies_list()
    assert [(s.name, s.clusters) for s in view.stages] == [("staging", ["member2"]),
                                                           ("canary", ["member3", "member1"])]
    apply({"apiVersion": "cluster.kubernetes-fleet.io/v1beta1", "kind": "MemberCluster",
           "metadata": {"name": "member0", "labels": {"environment": "canary", "order": "0"}}, "spec": {}})
    assert selectors.strategies_list()[0].stages[1].clusters == ["member0", "member3", "member1"]
