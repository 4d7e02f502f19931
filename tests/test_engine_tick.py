"""What an engine tick costs in transactions, and when a placement no run
moves shows its applies: at a tick's start, or between two runs' advances
when a wake-up named it (docs/engine.md, "What a tick costs")."""

import tempfile

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

from rollouts import models as m
from rollouts.engine import loop, runner, wakeup
from rollouts.engine.loop import engine_tick

from . import fleet_builders as fb

pytestmark = pytest.mark.django_db


def available(placement: str) -> int:
    entries = (fb.placement_obj(placement).status or {}).get("placementStatuses") or []
    return sum((fb.cond(e, "Available") or ("",))[0] == "True" for e in entries)


@pytest.fixture
def commits(monkeypatch):
    """Transactions committed (atomic blocks; the tick writes nothing under autocommit)."""
    count = [0]
    real = BaseDatabaseWrapper.commit

    def commit(wrapper):
        count[0] += 1
        return real(wrapper)

    monkeypatch.setattr(BaseDatabaseWrapper, "commit", commit)
    return count


@pytest.mark.django_db(transaction=True)
def test_a_tick_commits_once_per_run_it_advances_plus_its_two_member_syncs_and_one_seal(frozen_clock, commits,
                                                                                         settings):
    two_runs(settings)
    commits[0] = 0
    engine_tick()
    passes = m.Event.objects.filter(actor="system:engine", object_kind="ClusterStagedUpdateRun").values("run")
    assert {e["run"] for e in passes} == {"example-run", "second-run"}  # both ran passes that wrote
    assert commits[0] == 2 + 2 + 1


def test_a_placement_no_run_moves_shows_its_applies_before_the_runs_advance(frozen_clock, settings, monkeypatch):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.placement("web", strategy_type="RollingUpdate")
    seen = []
    advance = runner.run_advance
    monkeypatch.setattr(runner, "run_advance", lambda **kw: seen.append(available("web")) or advance(**kw))
    engine_tick()
    assert seen == [3]
    assert available("web") == 3


@pytest.fixture
def listening(settings):
    """This process's engine loop listening, as `fleet engine` does."""
    settings.FLEET_ENGINE_SOCKET = f"{tempfile.mkdtemp(prefix='fleet-', dir='/tmp')}/engine.sock"
    listener = wakeup.Listener()
    yield listener
    listener.close()


def two_runs(settings) -> None:
    """The tutorial's fleet with two runs, whose applies take no time."""
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.tutorial_run("second-run")


def test_a_placement_created_during_a_tick_is_synced_before_the_next_runs_advance(
        frozen_clock, settings, monkeypatch, listening, django_capture_on_commit_callbacks):
    two_runs(settings)
    seen = []
    advance = runner.run_advance

    def advance_while_a_person_creates_a_placement(**kw):
        if not seen:
            with django_capture_on_commit_callbacks(execute=True):  # its commit wakes the loop, naming it
                fb.placement("web", strategy_type="RollingUpdate")
        seen.append(available("web"))
        return advance(**kw)

    monkeypatch.setattr(runner, "run_advance", advance_while_a_person_creates_a_placement)
    engine_tick()
    assert seen == [0, 3]  # Available before the second run's advance, not after the tick's last
    assert listening.wait(0) is True  # and the wake-up still brings the next tick


def test_a_tick_syncs_nothing_between_advances_when_no_placement_was_named(frozen_clock, settings, monkeypatch,
                                                                           listening):
    two_runs(settings)
    synced = []
    monkeypatch.setattr(loop, "placements_sync", lambda named: synced.append(named))
    engine_tick()
    assert synced == []
