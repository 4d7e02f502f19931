"""What an engine tick costs in transactions, and when a placement no run
moves shows its applies (docs/engine.md, "What a tick costs")."""

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

from rollouts import models as m
from rollouts.engine import runner
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
    settings.FLEET_SIMULATED_APPLY_SECONDS = 0
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    fb.tutorial_run("second-run")
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
