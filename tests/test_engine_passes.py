"""An advance loads its run's world once: a later pass decides on the world
the pass before left, made from that pass's own writes (docs/engine.md,
"What a tick costs"). What it decides must be what a reload would decide."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.family import CLUSTER
from rollouts.controllers.placement import placement_status_refresh
from rollouts.engine import runner
from rollouts.members.agent import members_sync

from . import fleet_builders as fb

pytestmark = pytest.mark.django_db


@pytest.fixture
def loads(monkeypatch):
    """How many times the runner loaded a world from the database."""
    count = [0]
    real = runner.load_world

    def counted(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "load_world", counted)
    return count


@pytest.fixture
def reload_finds_nothing(monkeypatch):
    """After every advance, a pass that reloads the world from the database
    must find nothing left to do: the in-memory passes stopped where a
    reloading one would have."""
    checked = [0]
    real = runner.run_advance

    def advance_then_reload(**kwargs):
        decision = real(**kwargs)
        if decision is not None:
            _, changed, _, _ = runner._one_pass(kwargs["family"], kwargs["pk"])
            assert not changed, "a reload found work the advance's passes left"
            checked[0] += 1
        return decision

    monkeypatch.setattr(runner, "run_advance", advance_then_reload)
    return checked


def _waves_fleet() -> int:
    """Two stages of four clusters, two at a time, no gates; the run's pk."""
    fb.staged_fleet({"one": ["a1", "a2", "a3", "a4"], "two": ["b1", "b2", "b3", "b4"]})
    fb.strategy("example-strategy", fb.stage("one", max_concurrency="50%"), fb.stage("two", max_concurrency="50%"))
    fb.run()
    return fb.run_obj().pk


def test_finishing_a_wave_and_starting_the_next_loads_the_world_once(frozen_clock, settings, loads):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    pk = _waves_fleet()
    runner.run_advance(family=CLUSTER, pk=pk)  # initialize: load, then load again, bind a1 a2
    members_sync()
    loads[0] = 0
    runner.run_advance(family=CLUSTER, pk=pk)  # a1 a2 succeed, a3 a4 start; nothing more until they apply
    assert loads[0] == 1
    assert fb.succeeded("example-run", "one") == ["a1", "a2"]
    assert fb.started("example-run", "one") == ["a1", "a2", "a3", "a4"]


def test_a_stage_ending_starts_the_next_within_the_same_load(frozen_clock, settings, loads):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    pk = _waves_fleet()
    for _ in range(2):
        runner.run_advance(family=CLUSTER, pk=pk)
        members_sync()
    loads[0] = 0
    runner.run_advance(family=CLUSTER, pk=pk)  # stage one succeeds, stage two binds b1 b2
    assert loads[0] == 1
    assert fb.stage_conditions("example-run", "one")["Succeeded"][0] == "True"
    assert fb.started("example-run", "two") == ["b1", "b2"]


def test_a_run_to_success_stops_each_advance_where_a_reload_would(frozen_clock, settings, reload_finds_nothing):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    _waves_fleet()
    fb.settle()
    assert fb.run_conditions()["Succeeded"][0] == "True"
    assert reload_finds_nothing[0] >= 5


def test_gates_and_their_approval_requests_stop_where_a_reload_would(frozen_clock, settings, reload_finds_nothing):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.settle()
    frozen_clock.advance(61)  # the staging stage's TimedWait
    fb.settle()
    assert fb.approval_requests() == ["example-run-canary"]
    fb.approve("example-run-canary")
    fb.settle()
    assert fb.run_conditions()["Succeeded"][0] == "True"
    assert m.Event.objects.filter(reason="ApprovalRequestApprovalAccepted").count() == 1



def test_an_event_appended_as_a_plain_row_is_stored_as_the_model_would_store_it(frozen_clock):
    values = {"time": clock.now(), "actor": "system:engine", "action": m.Event.Action.CONDITION,
              "object_kind": "ClusterStagedUpdateRun", "object_name": "run", "run": "run", "reason": "Started",
              "message": "it started", "details": {"scope": "run", "type": "Progressing", "status": "True"}}
    m.Event.objects.append_many([m.Event(**values), m.Event.row(**values)])
    fields = ["time", "actor", "action", "object_kind", "object_namespace", "object_name", "run", "reason",
              "message", "details"]
    model, plain = m.Event.objects.order_by("id").values(*fields)
    assert plain == model


def test_a_placement_refresh_with_nothing_new_writes_nothing_though_time_moved(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    _waves_fleet()
    fb.settle()
    placement = fb.placement_obj()
    version, entries = placement.resource_version, placement.status["placementStatuses"]
    frozen_clock.advance(3600)
    placement_status_refresh(placement, CLUSTER)
    placement = fb.placement_obj()
    assert placement.resource_version == version
    assert placement.status["placementStatuses"] == entries


def test_a_refresh_keeps_the_times_of_clusters_whose_binding_did_not_change(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    pk = _waves_fleet()
    runner.run_advance(family=CLUSTER, pk=pk)  # binds a1 a2
    members_sync()
    before = {e["clusterName"]: e for e in fb.placement_obj().status["placementStatuses"]}
    frozen_clock.advance(60)
    runner.run_advance(family=CLUSTER, pk=pk)  # binds a3 a4; a1 a2 and stage two stay as they were
    after = {e["clusterName"]: e for e in fb.placement_obj().status["placementStatuses"]}
    assert [after[c] for c in ("a1", "a2", "b1", "b4")] == [before[c] for c in ("a1", "a2", "b1", "b4")]
    scheduled = [{c["type"]: c for c in e["conditions"]}["Scheduled"] for e in (before["a3"], after["a3"])]
    assert scheduled[0]["lastTransitionTime"] == scheduled[1]["lastTransitionTime"]  # scheduled before, still
    assert after["a3"] != before["a3"]  # RolloutStarted now


def test_an_advance_writes_its_run_once_however_many_passes_changed_it(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    pk = _waves_fleet()
    for _ in range(2):
        runner.run_advance(family=CLUSTER, pk=pk)
        members_sync()
    table = m.ClusterStagedUpdateRun._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        runner.run_advance(family=CLUSTER, pk=pk)  # two passes change it: stage one ends, stage two starts
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].startswith(f'UPDATE "{table}" SET "namespace"')]  # the whole row, not wake_at alone
    assert len(writes) == 1
    assert fb.started("example-run", "two") == ["b1", "b2"]
    assert m.Event.objects.filter(run="example-run", details__scope="stage", details__type="Succeeded").count() == 1



def test_the_run_written_at_the_end_of_an_advance_carries_its_next_look(frozen_clock, settings):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.settle()  # staging done, waiting on its one-minute TimedWait
    assert 0 < (fb.run_obj().wake_at - clock.now()).total_seconds() <= 60
    frozen_clock.advance(61)
    fb.settle()
    fb.approve("example-run-canary")
    fb.settle()
    run = fb.run_obj()
    assert run.active is False and run.wake_at is None
