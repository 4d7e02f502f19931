"""The ETA math, the slow-stage rule and the time view's geometry, on plain
RunRecords: no database, no clock (selectors/eta.py, comparison.py,
timeview.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from rollouts.selectors.comparison import is_slow, stage_comparison
from rollouts.selectors.eta import (
    Eta,
    cluster_phase_seconds,
    estimate,
    learn,
    minutes_text,
    pace,
    time_left,
    trimmed_mean,
)
from rollouts.selectors.records import ClusterSpan, GateSpan, RunRecord, StageRecord, run_record
from rollouts.selectors.timeview import lanes, layout

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cluster(name: str, start: float | None = None, end: float | None = None) -> ClusterSpan:
    return ClusterSpan(name, at(start) if start is not None else None, at(end) if end is not None else None)


def stage(name: str, clusters, *, concurrency: int = 1, gates=(), succeeded: bool = False) -> StageRecord:
    starts = [c.started for c in clusters if c.started]
    return StageRecord(name, concurrency, min(starts) if starts else None, None, tuple(clusters), tuple(gates),
                       succeeded=succeeded)


def finished_run(name: str, per_cluster: dict[str, list[float]], *, index: int = 1) -> RunRecord:
    """A past run whose stage clusters took the given seconds, one after another."""
    stages, t = [], 0.0
    for stage_name, times in per_cluster.items():
        clusters = []
        for i, seconds in enumerate(times):
            clusters.append(cluster(f"{stage_name}-{i}", t, t + seconds))
            t += seconds
        stages.append(stage(stage_name, clusters, succeeded=True))
    return RunRecord(name, index, T0, at(t), tuple(stages), "succeeded")


# The list scheduling of one stage ---------------------------------------------------


@pytest.mark.parametrize(("in_flight", "pending", "slots", "each", "expected"), [
    pytest.param([], 4, 1, 60, 240, id="one-at-a-time"),
    pytest.param([], 4, 2, 60, 120, id="two-slots-two-waves"),
    pytest.param([], 5, 2, 60, 180, id="odd-count-adds-a-wave"),
    pytest.param([30], 2, 2, 60, 90, id="a-slot-frees-after-the-one-in-flight"),
    pytest.param([0, 0], 0, 2, 60, 0, id="overdue-clusters-count-zero"),
    pytest.param([], 0, 3, 60, 0, id="nothing-left"),
    pytest.param([], 3, 0, 10, 30, id="zero-slots-count-as-one"),
])
def test_a_stage_runs_its_clusters_in_order_at_most_its_concurrency_at_once(in_flight, pending, slots, each, expected):
    assert cluster_phase_seconds(in_flight, pending, slots, each) == expected


# The estimate ------------------------------------------------------------------------------


HISTORY = [finished_run("past", {"staging": [60], "canary": [120, 120]})]


def test_without_a_past_run_there_is_no_estimate_yet():
    run = RunRecord("now", 2, T0, None, (stage("staging", [cluster("a")]),))
    eta = estimate(run, [], now=T0)
    assert eta.seconds is None and eta.text == "no estimate yet"


def test_each_stage_uses_its_own_past_times():
    run = RunRecord("now", 2, T0, None, (stage("staging", [cluster("a")]), stage("canary", [cluster("b"), cluster("c")])))
    assert estimate(run, HISTORY, now=T0).seconds == 60 + 240


def test_a_stage_no_past_run_had_runs_its_clusters_at_every_past_clusters_typical_time():
    run = RunRecord("now", 2, T0, None, (stage("prod", [cluster("a"), cluster("b")], concurrency=2),))
    assert estimate(run, HISTORY, now=T0).seconds == 100  # the mean of 60, 120, 120; both at once


def test_a_stage_not_started_takes_its_past_time_per_wave_times_its_waves():
    # canary took 240 s for two waves (one at a time): 120 s a wave; now four clusters two at a time
    run = RunRecord("now", 2, T0, None, (stage("canary", [cluster(n) for n in "abcd"], concurrency=2),))
    assert estimate(run, HISTORY, now=T0).seconds == 240


def test_a_typical_time_leaves_out_the_slowest_and_fastest_tenth():
    assert trimmed_mean([1] + [10] * 8 + [1000]) == 10
    assert trimmed_mean([10, 20]) == 15


def test_a_run_slower_than_usual_is_expected_to_stay_slower():
    done = [cluster(n, i * 120, i * 120 + 120) for i, n in enumerate("abc")]  # 120 s where 60 s was usual
    run = RunRecord("now", 2, T0, None, (stage("staging", [*done, cluster("d")]),))
    assert pace(run, learn(HISTORY)) == 2.0
    assert estimate(run, HISTORY, now=at(360)).seconds == 120


def test_the_pace_is_kept_between_half_and_double():
    done = [cluster(n, 0, 600) for n in "abc"]
    run = RunRecord("now", 2, T0, None, (stage("staging", done),))
    assert pace(run, learn(HISTORY)) == 2.0
    assert pace(RunRecord("now", 2, T0, None, (stage("staging", done[:2]),)), learn(HISTORY)) == 1.0


def test_a_cluster_in_flight_counts_what_is_left_of_its_usual_time():
    run = RunRecord("now", 2, T0, None, (stage("canary", [cluster("b", 0), cluster("c")]),))
    assert estimate(run, HISTORY, now=at(50)).seconds == 70 + 120


@pytest.mark.parametrize(("age", "left"), [
    pytest.param(0, 60, id="new: the mean of the past times"),
    pytest.param(40, 50, id="under way: what the longer ones took beyond its age"),
    pytest.param(90, 30, id="past its typical time: only the slow ones count"),
    pytest.param(200, 0, id="past every sample and its typical time: done any moment"),
])
def test_a_cluster_in_flight_has_left_what_past_clusters_as_old_took_beyond_that(age, left):
    assert time_left(age, 60, (20, 40, 60, 120), 1.0) == left


def test_finished_stages_add_nothing_and_a_running_timed_wait_adds_what_is_left():
    wait = GateSpan("TimedWait", "after", "staging", wait=300, started=at(60))
    staging = stage("staging", [cluster("a", 0, 60)], gates=[wait])
    run = RunRecord("now", 2, T0, None, (staging,))
    assert estimate(run, HISTORY, now=at(100)).seconds == 260


def test_a_timed_wait_not_reached_adds_its_whole_wait():
    wait = GateSpan("TimedWait", "after", "staging", wait=300)
    run = RunRecord("now", 2, T0, None, (stage("staging", [cluster("a")], gates=[wait]),))
    assert estimate(run, HISTORY, now=T0).seconds == 60 + 300


def test_approvals_are_named_not_counted():
    gate = GateSpan("Approval", "after", "canary", approval_name="now-canary")
    run = RunRecord("now", 2, T0, None, (stage("canary", [cluster("b"), cluster("c")], gates=[gate]),))
    eta = estimate(run, HISTORY, now=T0)
    assert (eta.seconds, eta.gates, eta.basis) == (240, ("canary",), 1)
    assert eta.text == "about 4 min left, plus the canary approval"


@pytest.mark.parametrize(("eta", "text"), [
    pytest.param(Eta(None), "no estimate yet", id="none"),
    pytest.param(Eta(None, reason="no estimate while stopped"), "no estimate while stopped", id="reason"),
    pytest.param(Eta(20), "less than a minute left", id="seconds"),
    pytest.param(Eta(0, ("canary",)), "only the canary approval left", id="only-a-gate"),
    pytest.param(Eta(45, ("canary",)), "less than a minute left, plus the canary approval", id="seconds-and-gate"),
    pytest.param(Eta(370), "about 6 min left", id="minutes"),
    pytest.param(Eta(4800, ("staging", "canary", "prod")),
                 "about 1 h 20 min left, plus the staging, canary and prod approvals", id="hours-and-gates"),
])
def test_the_eta_reads_as_a_sentence(eta, text):
    assert eta.text == text


def test_minutes_round_and_never_say_zero():
    assert [minutes_text(s) for s in (10, 89, 91, 3600, 3660)] == ["1 min", "1 min", "2 min", "1 h", "1 h 1 min"]


# From the status JSON ------------------------------------------------------------------------


def _cond(type_, status, seconds):
    return {"type": type_, "status": status, "lastTransitionTime": at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_a_record_reads_cluster_gate_and_concurrency_times_from_the_status():
    status = {
        "conditions": [_cond("Initialized", "True", 0), _cond("Succeeded", "True", 400)],
        "resourceSnapshotIndexUsed": "3",
        "stagedUpdateStrategySnapshot": {"stages": [{"name": "canary", "maxConcurrency": "50%",
                                                     "afterStageTasks": [{"type": "TimedWait", "waitTime": "1m"},
                                                                         {"type": "Approval"}]}]},
        "stagesStatus": [{
            "stageName": "canary", "startTime": "2026-03-02T10:00:00Z", "endTime": "2026-03-02T10:06:40Z",
            "conditions": [_cond("Succeeded", "True", 400)],
            "clusters": [{"clusterName": n, "conditions": [_cond("Started", "True", s), _cond("Succeeded", "True", e)]}
                         for n, s, e in (("a", 0, 30), ("b", 0, 50), ("c", 30, 90), ("d", 50, 100))],
            "afterStageTaskStatus": [
                {"type": "TimedWait", "conditions": [_cond("WaitTimeElapsed", "True", 160)]},
                {"type": "Approval", "approvalRequestName": "r-canary",
                 "conditions": [_cond("ApprovalRequestCreated", "True", 100),
                                _cond("ApprovalRequestApproved", "True", 400)]}],
        }],
    }
    record = run_record("r", {}, status)
    canary = record.stages[0]
    assert (record.snapshot_index, record.outcome, record.seconds) == (3, "succeeded", 400)
    assert (canary.concurrency, canary.update_seconds, canary.cluster_seconds) == (2, 100, [30, 50, 60, 50])
    wait, approval = canary.gates
    assert (wait.type, wait.seconds, approval.approval_name, approval.seconds) == ("TimedWait", 60, "r-canary", 300)


# The slow-stage rule ----------------------------------------------------------------------


@pytest.mark.parametrize(("took", "usual", "slow"), [
    pytest.param(300, 120, True, id="over-twice-and-over-a-minute-longer"),
    pytest.param(240, 120, False, id="exactly-twice-is-not-over"),
    pytest.param(25, 10, False, id="over-twice-but-only-seconds-longer"),
    pytest.param(110, 52, False, id="over-twice-but-under-a-minute-longer"),
    pytest.param(61, 0, True, id="a-minute-where-there-was-nothing"),
    pytest.param(None, 60, False, id="unfinished"),
    pytest.param(500, None, False, id="nothing-to-compare-with"),
])
def test_a_stage_is_slow_over_twice_its_median_and_a_minute_longer(took, usual, slow):
    assert is_slow(took, usual) is slow


def test_a_run_compares_each_stage_with_the_median_of_the_runs_before_it():
    previous = [finished_run(f"p{i}", {"staging": [60], "canary": [seconds]}) for i, seconds in
                enumerate([100, 110, 120, 5000, 90, 10])]  # only the newest five count
    run = finished_run("r", {"staging": [70], "canary": [400]})
    staging, canary = stage_comparison(run, previous)
    assert (staging.took, staging.usual, staging.runs, staging.slow) == (70, 60, 5, False)
    assert (canary.took, canary.usual, canary.runs, canary.slow) == (400, 110, 5, True)


# The time view ---------------------------------------------------------------------------


def test_clusters_pack_into_as_many_lanes_as_ran_at_once():
    clusters = [cluster("a", 0, 10), cluster("b", 0, 20), cluster("c", 10, 30), cluster("d", 20, 30), cluster("e")]
    assert lanes(clusters) == [0, 1, 0, 1, None]


def test_a_finished_run_draws_every_started_cluster_and_no_now_line():
    run = finished_run("r", {"staging": [60], "canary": [120, 120]})
    view = layout(run, now=at(10_000), active=False)
    bars = [s for s in view.shapes if s.css.startswith("bar-")]
    assert len(bars) == 3 and all(s.css == "bar-succeeded" for s in bars)
    assert view.now_x is None and view.ticks and [name for _, name in view.labels] == ["staging", "canary"]
    assert max(s.x + s.width for s in view.shapes) <= view.width


def test_a_moving_run_draws_the_now_line_at_the_right_edge_and_its_open_gate():
    gate = GateSpan("Approval", "after", "canary", approval_name="r-canary", started=at(100))
    run = RunRecord("r", 2, T0, None, (stage("canary", [cluster("a", 0, 100), cluster("b", 100)], gates=[gate]),))
    view = layout(run, now=at(160), active=True, approvers={})
    assert view.now_x == max(s.x + s.width for s in view.shapes)
    marker = next(s for s in view.shapes if "gate-approval" in s.css)
    assert "gate-open" in marker.css and marker.label == "Approval after canary: waiting 60s for a person so far"
    assert {s.css for s in view.shapes if s.css.startswith("bar-")} == {"bar-succeeded", "bar-updating"}
