"""The engine during a freeze (docs/freezes.md): pure decisions, the clock
injected through World.now, no database. A run at a stage boundary waits,
clusters in flight finish, nothing new starts, and the run resumes when the
freeze is gone from its world; a gate opened by break-glass lets its stage go."""

import copy
from dataclasses import replace
from datetime import timedelta

import pytest

from rollouts.engine.freezes import FreezeInfo, holding
from rollouts.engine.state_machine import decide
from rollouts.engine.world import ApprovalView, BindBinding
from tests.test_state_machine import (
    NOW,
    ROLLOUT,
    STRATEGY,
    _c,
    _started_world,
    binding,
    cond,
    reason,
    world,
)

XMAS = FreezeInfo(name="xmas", reason="holidays", declared_by="alice", until=NOW + timedelta(days=2))
DONE = [_c("Started", "True", "ClusterUpdatingStarted", 1), _c("Succeeded", "True", "ClusterUpdatingSucceeded", 1)]


def _at_the_canary_boundary(strategy=None, approvals=None):
    """Staging done (its wait elapsed), canary not started: the next step starts canary's clusters."""
    w = world(strategy=copy.deepcopy(strategy or STRATEGY))
    status = decide(w).status
    staging = status["stagesStatus"][0]
    staging["conditions"] = [_c("Progressing", "False", "StageUpdatingSucceeded", 1),
                             _c("Succeeded", "True", "StageUpdatingSucceeded", 1)]
    staging["startTime"] = staging["endTime"] = "2026-01-01T11:00:00Z"
    for cluster in staging["clusters"]:
        cluster["conditions"] = list(DONE)
    staging["afterStageTaskStatus"][0]["conditions"] = [_c("WaitTimeElapsed", "True", "AfterStageTaskWaitTimeElapsed", 1)]
    strategy_applied = status["appliedStrategy"]
    member2 = replace(binding("member2", state="Bound", snapshot="example-placement-1-snapshot",
                              conditions=[ROLLOUT, _c("Available", "True")], generation=2),
                      apply_strategy=strategy_applied, cluster_resource_override_snapshots=[], resource_override_snapshots=[])
    return replace(w, status=status, bindings=[member2, binding("member1"), binding("member3")], approvals=approvals or {})


def test_the_sentence_says_who_froze_why_and_until_when():
    assert XMAS.sentence() == "Frozen by alice (freeze xmas): holidays, until 2026-01-03 12:00 UTC"
    assert replace(XMAS, until=None).sentence().endswith("holidays, until it is ended")


@pytest.mark.parametrize(
    "selector,labels,holds",
    [
        pytest.param(None, {}, True, id="no-selector-covers-every-placement"),
        pytest.param({"matchLabels": {"env": "prod"}}, {"env": "prod"}, True, id="matching-labels-are-covered"),
        pytest.param({"matchLabels": {"env": "prod"}}, {"env": "dev"}, False, id="other-labels-are-not"),
        pytest.param({"matchLabels": {"env": "prod"}}, None, False, id="a-placement-without-labels-is-not"),
    ],
)
def test_a_freeze_holds_the_placements_its_selector_matches(selector, labels, holds):
    assert (holding([replace(XMAS, selector=selector)], labels) is not None) == holds


def test_a_new_run_initializes_but_starts_no_cluster_during_a_freeze():
    decision = decide(world(frozen=XMAS))
    assert reason(decision.status, "Initialized") == ("True", "UpdateRunInitializedSuccessfully")
    assert decision.actions == []
    assert reason(decision.status, "Progressing") == ("False", "UpdateRunFrozen")
    assert cond(decision.status, "Progressing")["message"] == XMAS.sentence()
    assert "startTime" not in decision.status["stagesStatus"][0]


def test_a_run_at_a_stage_boundary_waits_during_a_freeze_and_resumes_after():
    frozen = decide(replace(_at_the_canary_boundary(), frozen=XMAS))
    canary = frozen.status["stagesStatus"][1]
    assert frozen.actions == []
    assert reason(frozen.status, "Progressing") == ("False", "UpdateRunFrozen")
    assert "waiting for the freeze to end" in cond(canary, "Progressing")["message"]
    assert all(cond(c, "Started") is None for c in canary["clusters"])
    assert frozen.requeue_after == 60  # a safety net: the freeze ending wakes the run at once

    later = replace(_at_the_canary_boundary(), status=frozen.status, now=NOW + timedelta(days=3))  # no freeze in its world
    resumed = decide(later)
    assert [type(a) for a in resumed.actions] == [BindBinding]
    assert resumed.actions[0].name == "example-placement-member3"
    assert reason(resumed.status, "Progressing") == ("True", "UpdateRunProgressing")


def test_a_cluster_in_flight_finishes_during_a_freeze_and_no_other_starts():
    w = _started_world([ROLLOUT, _c("Available", "True")])  # member2 (staging) in flight, now available
    decision = decide(replace(w, frozen=XMAS))
    member2 = decision.status["stagesStatus"][0]["clusters"][0]
    assert reason(member2, "Succeeded") == ("True", "ClusterUpdatingSucceeded")
    assert decision.actions == []


def test_in_a_stage_of_several_clusters_the_next_one_waits_for_the_freeze():
    strategy = {"stages": [{"name": "all", "labelSelector": {}, "maxConcurrency": 1}]}
    w = world(strategy=strategy)
    first = decide(w)  # starts the first cluster
    assert len(first.actions) == 1
    first_cluster = first.status["stagesStatus"][0]["clusters"][0]
    bound = [replace(binding(c["clusterName"], state="Bound", snapshot="example-placement-1-snapshot", generation=2,
                             conditions=[ROLLOUT, _c("Applied", "False", "ApplyPending")]),
                     apply_strategy=first.status["appliedStrategy"], cluster_resource_override_snapshots=[],
                     resource_override_snapshots=[]) if c is first_cluster else binding(c["clusterName"])
             for c in first.status["stagesStatus"][0]["clusters"]]
    in_flight = decide(replace(w, status=first.status, bindings=bound, frozen=XMAS, now=NOW + timedelta(seconds=5)))
    assert in_flight.actions == [] and in_flight.requeue_after == 15  # still applying: polled, not held
    done = [replace(b, conditions=(ROLLOUT, _c("Available", "True"))) if b.cluster == first_cluster["clusterName"] else b
            for b in bound]
    held = decide(replace(w, status=in_flight.status, bindings=done, frozen=XMAS, now=NOW + timedelta(seconds=10)))
    assert held.actions == []
    assert reason(held.status["stagesStatus"][0]["clusters"][0], "Succeeded") == ("True", "ClusterUpdatingSucceeded")
    assert reason(held.status, "Progressing") == ("False", "UpdateRunFrozen")
    assert sum(1 for c in held.status["stagesStatus"][0]["clusters"] if cond(c, "Started")) == 1


def _gated_strategy():
    strategy = copy.deepcopy(STRATEGY)
    strategy["stages"][1]["beforeStageTasks"] = [{"type": "Approval"}]
    return strategy


def _approved(name, *, break_glass):
    return ApprovalView(name, "example-run", "canary", 1, (_c("Approved", "True", generation=1),
                                                            _c("ApprovalAccepted", "True", generation=1)),
                        break_glass=break_glass)


@pytest.mark.parametrize("break_glass,starts", [pytest.param(False, False, id="an-ordinary-approval-still-waits"),
                                                pytest.param(True, True, id="a-break-glass-approval-lets-its-stage-go")])
def test_a_gate_opened_by_break_glass_lets_its_stage_start_during_the_freeze(break_glass, starts):
    boundary = _at_the_canary_boundary(_gated_strategy())
    gate = boundary.status["stagesStatus"][1]["beforeStageTaskStatus"][0]["approvalRequestName"]
    w = replace(boundary, approvals={gate: _approved(gate, break_glass=break_glass)}, frozen=XMAS)
    decision = decide(w)
    assert bool([a for a in decision.actions if isinstance(a, BindBinding)]) == starts
    assert (reason(decision.status, "Progressing") == ("False", "UpdateRunFrozen")) != starts
