"""The sweeps queue at most one advance per run at a time: a run whose
advance waits in a backed-up queue is not queued again until a worker takes
it (marks in a real Redis of the test's own)."""

import pytest

from rollouts import tasks

from .real_services import RedisServer


@pytest.fixture
def marks(tmp_path, settings, monkeypatch):
    redis = RedisServer(tmp_path).start()
    settings.REDIS_URL = redis.url
    monkeypatch.setattr(tasks, "_queued_marks", None)
    queued = []
    monkeypatch.setattr(tasks.run_advance, "delay", lambda *args: queued.append(args))
    yield queued
    redis.kill()


@pytest.mark.django_db  # the task reads the freezes holding for the advance
def test_a_run_is_queued_once_until_a_worker_takes_it(marks, monkeypatch):
    assert tasks.advance_once("ClusterStagedUpdateRun", 7)
    assert not tasks.advance_once("ClusterStagedUpdateRun", 7), "already waiting in the queue"
    assert tasks.advance_once("ClusterStagedUpdateRun", 8)
    assert marks == [("ClusterStagedUpdateRun", 7, None), ("ClusterStagedUpdateRun", 8, None)]
    advanced = []
    monkeypatch.setattr(tasks.runner, "run_advance", lambda **kwargs: advanced.append(kwargs["pk"]))
    tasks.run_advance("ClusterStagedUpdateRun", 7)  # a worker takes it: a new reason queues a new advance
    assert advanced == [7]
    assert tasks.advance_once("ClusterStagedUpdateRun", 7)


def test_a_lost_task_frees_its_run_after_the_mark_expires(marks, monkeypatch):
    monkeypatch.setattr(tasks, "QUEUED_SECONDS", 1)
    assert tasks.advance_once("ClusterStagedUpdateRun", 9)
    ttl = tasks._marks().ttl(tasks._queued_key("ClusterStagedUpdateRun", 9))
    assert 0 < ttl <= 1


def test_without_redis_every_advance_is_queued(settings, monkeypatch):
    settings.REDIS_URL = ""
    monkeypatch.setattr(tasks, "_queued_marks", None)
    queued = []
    monkeypatch.setattr(tasks.run_advance, "delay", lambda *args: queued.append(args))
    assert tasks.advance_once("ClusterStagedUpdateRun", 7) and tasks.advance_once("ClusterStagedUpdateRun", 7)
    assert len(queued) == 2
