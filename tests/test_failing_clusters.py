"""A failing cluster is shown failing with its reason (run page, members,
placement, roll-back preview), a stuck run names the cluster and the
reason, and the overview's "Needs attention" lists what is broken until the
cause is gone."""

from datetime import timedelta

import pytest

from rollouts import broadcast, clock, selectors
from rollouts import models as m
from rollouts.members.agent import members_sync
from rollouts.roles import RELEASE_MANAGERS, VIEWERS
from rollouts.selectors.attention import Problem, needs_attention
from rollouts.selectors.pages import overview_context
from tests.fleet_builders import (
    SIMULATE_FAILURE,
    advance,
    condition,
    delete,
    label_member,
    move_to,
    run,
    run_obj,
    set_state,
    settle,
    signed_in,
    since,
    stage,
    stage_status,
    staged_fleet,
    strategy,
    tick,
    tutorial_fleet,
    tutorial_run,
    tutorial_strategy,
)

pytestmark = pytest.mark.django_db

REASON = f"ApplyFailed: simulated apply failure: member member1 is labelled {SIMULATE_FAILURE}=true"


@pytest.fixture
def failing(frozen_clock):
    """member1 (labelled to fail) and member2 in one stage; the run started both."""
    staged_fleet({"prod": ["member1", "member2"]}, labels={"member1": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("prod", max_concurrency=2))
    run()
    settle()


def clusters() -> dict:
    [prod] = selectors.run_timeline(run_obj()).stages
    return {c.name: c for c in prod.clusters}


def attention() -> list:
    return overview_context()["attention"]


def test_a_cluster_whose_member_fails_to_apply_is_failing_with_the_reason_and_since_when(failing):
    member1 = clusters()["member1"]
    assert member1.state == "failing"
    assert member1.failure.text == REASON
    binding = m.ClusterResourceBinding.objects.get(target_cluster="member1")
    assert member1.failure.since == clock.parse_rfc3339(condition(binding.status, "Applied")["lastTransitionTime"])
    assert member1.message.startswith(REASON + " · since ")
    assert clusters()["member2"].state == "succeeded"


def test_each_failed_apply_of_a_generation_counts_as_one_attempt(failing):
    """The agent retries a failing binding on every pass: the count is shown
    ("· 5 attempts") on the run, members and placement pages, without a
    status write per retry."""
    tried = clusters()["member1"].failure.attempts
    assert tried >= 1
    binding = m.ClusterResourceBinding.objects.get(target_cluster="member1")
    members_sync()
    members_sync()
    assert clusters()["member1"].failure.attempts == tried + 2
    assert clusters()["member1"].message.endswith(f" UTC · {tried + 2} attempts")
    assert m.ClusterResourceBinding.objects.get(pk=binding.pk).resource_version == binding.resource_version
    vera = signed_in("vera", VIEWERS)
    for url in ("/members/", "/placements/example-placement/"):
        assert f"· {tried + 2} attempts" in vera.get(url).content.decode(), url


def test_attempts_count_again_from_one_for_a_new_generation(failing):
    binding = m.ClusterResourceBinding.objects.get(target_cluster="member1")
    assert binding.failed_generation == binding.generation and binding.failed_attempts >= 2
    m.ClusterResourceBinding.objects.filter(pk=binding.pk).update(failed_generation=binding.generation - 1)
    members_sync()
    assert m.ClusterResourceBinding.objects.get(pk=binding.pk).failed_attempts == 1


def test_the_run_badge_of_a_running_run_with_a_failing_cluster_is_failing(failing):
    timeline = selectors.run_timeline(run_obj())
    assert timeline.state == selectors.RunState.RUNNING
    assert timeline.badge == ("failing", "running · 1 failing")
    page = signed_in("vera", VIEWERS).get("/runs/example-run/").content.decode()
    assert 'class="state state-failing" id="run-state">running · 1 failing<' in page
    label_member("member1", **{SIMULATE_FAILURE: None})
    settle()
    assert selectors.run_timeline(run_obj()).badge[0] != "failing"


def test_the_sentence_of_a_run_with_a_failing_cluster_names_it_and_the_reason_as_a_problem(failing):
    timeline = selectors.run_timeline(run_obj())
    assert timeline.sentence.startswith(f"Cluster member1 is failing: {REASON} in stage prod;")
    assert timeline.problem


def test_a_stuck_run_is_a_problem_whose_sentence_names_the_cluster_and_the_reason(failing):
    started_at = condition(stage_status("example-run", "prod")["clusters"][0], "Started")["lastTransitionTime"]
    move_to(since(started_at, 301))
    tick()
    timeline = selectors.run_timeline(run_obj())
    assert timeline.state == selectors.RunState.STUCK
    assert timeline.problem
    assert timeline.sentence.startswith(f"The run is stuck: cluster member1 is failing: {REASON} in stage prod;")


def test_a_cluster_that_stops_failing_is_no_longer_failing(failing):
    label_member("member1", **{SIMULATE_FAILURE: None})
    settle()
    assert clusters()["member1"].state == "succeeded"
    assert not selectors.run_timeline(run_obj()).problem


def test_the_members_and_placement_pages_show_the_failure(failing):
    vera = signed_in("vera", VIEWERS)
    members = vera.get("/members/").content.decode()
    assert "state-failing" in members and "simulated apply failure: member member1" in members
    placement = vera.get("/placements/example-placement/").content.decode()
    assert placement.count(">failing</span>") == 1 and "ApplyFailed" in placement


def test_the_roll_back_preview_does_not_call_a_failing_cluster_already_on_the_target(failing):
    [group] = selectors.cluster_groups(placement="example-placement", namespace="", index=1)
    assert [f.cluster for f in group.failing] == ["member1"]
    rita = signed_in("rita", RELEASE_MANAGERS)
    page = rita.get("/placements/example-placement/rollout/", {"index": 1}).content.decode()
    assert "failing</span> member1: ApplyFailed" in page
    assert "Already on the target snapshot" not in page
    assert "The others are already on the target snapshot" in page


def test_needs_attention_lists_a_failing_cluster_and_empties_when_it_recovers(failing):
    [row] = attention()
    assert (row.problem, row.subject, row.reason, row.link_view) == (
        Problem.CLUSTER_FAILING, "member1 (example-placement)", REASON, "placement-detail")
    label_member("member1", **{SIMULATE_FAILURE: None})
    settle()
    assert attention() == []


def test_needs_attention_lists_a_stuck_run_and_its_failing_cluster(failing):
    advance(400)
    tick()
    problems = [(r.problem, r.subject) for r in attention()]
    assert problems == [(Problem.RUN_STUCK, "example-run"), (Problem.CLUSTER_FAILING, "member1 (example-placement)")]
    assert "member1" in attention()[0].reason


def test_a_failed_run_needs_attention_for_the_configured_hours_and_until_deleted(frozen_clock, settings):
    settings.FLEET_OVERVIEW_FAILED_RUN_HOURS = 2
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run(index="9")
    settle()
    [row] = attention()
    assert (row.problem, row.subject) == (Problem.RUN_FAILED, "example-run")
    assert row.reason.startswith("cannot continue the updateRun")
    advance(timedelta(hours=2, seconds=1).total_seconds())
    assert attention() == []
    settings.FLEET_OVERVIEW_FAILED_RUN_HOURS = 24
    assert len(attention()) == 1
    delete("clusterstagedupdaterun", "example-run")
    assert attention() == []


def test_a_run_records_when_it_finished_and_only_recent_failures_are_read(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run(index="9")
    settle()
    failed = run_obj()
    assert not failed.active and failed.finished_at is not None and failed.finished_at <= clock.now()
    set_state("example-run", "Stop")  # a spec change of a finished run changes nothing of it
    settle()
    assert run_obj().finished_at == failed.finished_at


def test_a_stopped_run_needs_attention_until_resumed(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    set_state("example-run", "Stop")
    settle()
    [row] = attention()
    assert (row.problem, row.subject, row.link_name) == (Problem.RUN_STOPPED, "example-run", "example-run")
    set_state("example-run", "Run")
    settle()
    assert attention() == []


def test_a_rejected_gate_needs_attention_with_who_and_why(frozen_clock):
    tutorial_fleet()
    tutorial_strategy()
    tutorial_run()
    settle()
    advance(61)
    settle()
    m.Event.objects.create(time=clock.now(), actor="rita", action=m.Event.Action.REJECTED,
                           object_kind="ClusterApprovalRequest", object_name="example-run-canary",
                           message="error rate up")
    [row] = attention()
    assert (row.problem, row.subject) == (Problem.RUN_REJECTED, "example-run")
    assert row.reason == "example-run-canary rejected by rita: error rate up"


def test_a_failing_hub_connection_needs_attention(db):
    m.HubConnection.objects.create(name="west", failures=3, last_error="connection refused",
                                   last_error_at=clock.now())
    m.HubConnection.objects.create(name="east", failures=0)
    [row] = needs_attention(active=[], approvals=[])
    assert (row.problem, row.subject, row.link_view) == (Problem.HUB_FAILING, "west", "hubs")
    assert row.reason == "connection refused (3 failed sessions in a row)"


def test_the_overview_shows_needs_attention_above_everything_else(failing):
    page = signed_in("vera", VIEWERS).get("/").content.decode()
    assert page.index('id="needs-attention"') < page.index('id="active-runs"')
    assert "cluster failing" in page and "member1 (example-placement)" in page


def test_the_overview_has_no_attention_block_when_nothing_is_wrong(db):
    page = signed_in("vera", VIEWERS).get("/").content.decode()
    assert 'id="needs-attention"' not in page


# Within one push ---------------------------------------------------------------------------


def test_a_members_new_failure_pushes_the_placements_active_runs_and_the_overview(
        frozen_clock, monkeypatch, django_capture_on_commit_callbacks):
    """The engine keeps retrying a failing cluster without changing the run's
    status, so the failure itself must push the run page."""
    pushed = []
    monkeypatch.setattr(broadcast, "push", pushed.append)
    staged_fleet({"prod": ["member1"]}, labels={"member1": {SIMULATE_FAILURE: "true"}})
    strategy("example-strategy", stage("prod"))
    run()
    with django_capture_on_commit_callbacks(execute=True):
        tick()  # binds member1; the agent's pass reports the failure in the same tick
    keys = [k for call in pushed for k in call]
    assert ("runs-of", "ClusterStagedUpdateRun", "", "example-placement") in keys
    assert broadcast._resolve([("runs-of", "ClusterStagedUpdateRun", "", "example-placement")]) == [
        ("run", "ClusterStagedUpdateRun", run_obj().pk)]
    pushed.clear()
    with django_capture_on_commit_callbacks(execute=True):
        members_sync()  # the same failure again: nothing new to show
    assert not any(k[0] == "runs-of" for call in pushed for k in call)


@pytest.mark.parametrize("size", [1, 6])
def test_the_overview_costs_the_same_queries_for_1_or_6_failing_clusters(frozen_clock, django_assert_num_queries,
                                                                         size):
    names = [f"member{i}" for i in range(size)]
    staged_fleet({"prod": names}, labels={n: {SIMULATE_FAILURE: "true"} for n in names})
    strategy("example-strategy", stage("prod", max_concurrency=size))
    run()
    settle()
    vera = signed_in("vera", VIEWERS)
    # The 13 of test_views_audit's overview budget, then "Needs attention":
    # failed runs, failing bindings (one UNION each over the families),
    # failing hub connections (no gate waits: no decision query): 16; the
    # past runs of the active run's placement (its ETA): 17.
    with django_assert_num_queries(17):
        page = vera.get("/").content.decode()
    assert page.count(">cluster failing</span>") == size


# Mirrored KubeFleet hubs: the placement's per-cluster statuses ------------------------------

KUBEFLEET_STATUS = {
    "conditions": [],
    "placementStatuses": [
        {"clusterName": "aks-west", "conditions": [
            {"type": "RolloutStarted", "status": "True", "reason": "RolloutStarted", "observedGeneration": 3},
            {"type": "Applied", "status": "False", "reason": "NotAllWorkHaveBeenApplied", "observedGeneration": 3,
             "message": "Failed to apply manifests, please check the `failedPlacements` status",
             "lastTransitionTime": "2026-03-02T21:30:00Z"}],
         "failedPlacements": [{"kind": "Deployment", "namespace": "web", "name": "api", "condition": {
             "type": "Applied", "status": "False", "message": "admission webhook denied the request"}}]},
        {"clusterName": "aks-east", "conditions": [
            {"type": "RolloutStarted", "status": "True", "reason": "RolloutStarted", "observedGeneration": 3},
            {"type": "Available", "status": "True", "reason": "AllWorkAreAvailable", "observedGeneration": 3}]},
        {"clusterName": "aks-stale", "conditions": [
            {"type": "RolloutStarted", "status": "True", "reason": "RolloutStarted", "observedGeneration": 4},
            {"type": "Applied", "status": "False", "reason": "ApplyFailed", "observedGeneration": 3}]},
    ],
}


def test_a_mirrored_placements_status_names_the_failing_cluster_and_the_object_that_failed():
    failures = selectors.failures.placement_status_failures(KUBEFLEET_STATUS, placement="web", namespace="")
    assert list(failures) == ["aks-west"]
    failure = failures["aks-west"]
    assert failure.text == ("NotAllWorkHaveBeenApplied: Failed to apply manifests, please check the "
                            "`failedPlacements` status (Deployment web/api: admission webhook denied the request)")
    assert failure.since == clock.parse_rfc3339("2026-03-02T21:30:00Z")


def test_the_v1_per_cluster_statuses_are_read_the_same_way():
    status = {"perClusterPlacementStatuses": KUBEFLEET_STATUS["placementStatuses"]}
    assert list(selectors.failures.placement_status_failures(status, placement="web", namespace="")) == ["aks-west"]


def test_a_run_whose_placement_has_no_local_bindings_reads_failures_from_the_placement_status(failing):
    """A mirrored run: the hub's placement status is all there is."""
    m.ClusterResourceBinding.objects.all().delete()
    placement = m.ClusterResourcePlacement.objects.get(name="example-placement")
    entries = placement.status["placementStatuses"]
    assert [e["clusterName"] for e in entries] == ["member1", "member2"]
    assert clusters()["member1"].state == "failing"
    assert clusters()["member1"].failure.text == REASON


def test_the_placement_page_of_a_placement_without_local_bindings_shows_its_status_failures(failing):
    m.ClusterResourceBinding.objects.all().delete()
    page = signed_in("vera", VIEWERS).get("/placements/example-placement/").content.decode()
    assert "reports these clusters failing" in page and "member1 <span class=\"state state-failing\">failing" in page


def test_the_members_page_shows_a_failure_only_the_placement_status_reports(failing):
    """A mirrored hub's member: no local binding, the hub's placement status says it fails."""
    m.ClusterResourceBinding.objects.all().delete()
    page = signed_in("vera", VIEWERS).get("/members/").content.decode()
    assert page.count(">failing</span>") == 1 and "simulated apply failure: member member1" in page


def test_a_stuck_run_without_a_failure_says_what_the_member_still_works_on(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 600
    staged_fleet({"prod": ["member1"]})
    strategy("example-strategy", stage("prod"))
    run()
    settle()
    advance(301)
    tick()
    timeline = selectors.run_timeline(run_obj())
    assert timeline.state == selectors.RunState.STUCK and timeline.problem
    assert timeline.sentence == (
        "The run is stuck: cluster member1 in stage prod has been updating for over 5 minutes (member1 reports "
        "Applied: ApplyPending: applying the resources); it goes on when the cluster reports its resources "
        "applied and available.")


def test_a_failing_cluster_is_logged_when_it_starts_failing_not_on_every_pass(failing, caplog):
    caplog.set_level("INFO", logger="rollouts.engine.runner")
    caplog.clear()
    for _ in range(3):
        tick()
    assert not [r for r in caplog.records if "has failed" in r.getMessage()], "logged again on each pass"
