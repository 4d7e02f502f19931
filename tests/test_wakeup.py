"""The engine's wake-ups (rollouts/engine/wakeup.py): what a change wakes,
and a wake-up that names a placement for the loop to sync first."""

import socket
import tempfile
import time

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError

from fleetui.celery import app
from rollouts import changes, tasks
from rollouts import models as m
from rollouts.controllers import placement as placement_controller
from rollouts.engine import runner, wakeup
from rollouts.selectors import freezes as freeze_selectors
from rollouts.services import audit

from . import fleet_builders as fb

WEB = ("ClusterResourcePlacement", "", "web")
TUTORIAL = ("ClusterResourcePlacement", "", "example-placement")


@pytest.fixture
def sent(settings, monkeypatch):
    """Celery mode; the tasks the wake-up sends, as (name, args, queue)."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    tasks = []
    monkeypatch.setattr(wakeup.current_app, "send_task",
                        lambda name, args, queue=None, **_: tasks.append((name, args, queue)))
    return tasks


@pytest.fixture
def listener(settings):
    """An engine loop's listener on a socket of its own, nothing left over."""
    socket_dir = tempfile.mkdtemp(prefix="fleet-", dir="/tmp")  # a Unix socket path must stay short
    settings.FLEET_ENGINE_SOCKET = f"{socket_dir}/engine.sock"
    wakeup._in_process.clear()  # wake-ups earlier tests left for a loop that never ran
    wakeup._first_wake.clear()
    opened = wakeup.Listener()
    yield opened
    opened.close()


@pytest.mark.django_db
def test_a_rolling_update_placement_sends_its_own_sync_to_the_placements_queue(
        sent, frozen_clock, django_capture_on_commit_callbacks):
    fb.tutorial_fleet()
    with django_capture_on_commit_callbacks(execute=True):
        fb.placement("web", strategy_type="RollingUpdate")
    assert (wakeup.PLACEMENT_SYNC, WEB, wakeup.PLACEMENTS_QUEUE) in sent


@pytest.mark.django_db
def test_a_placement_written_wakes_its_own_active_runs_not_every_active_run(sent, frozen_clock,
                                                                          django_capture_on_commit_callbacks):
    """No other run reads a placement: 100 active runs were each queued an
    advance (finding nothing to do) for every placement a person created."""
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        fb.placement("web")  # no run of its own: nothing to wake
        fb.patch("ClusterResourcePlacement", "example-placement", {"metadata": {"labels": {"team": "a"}}})
    assert [(name, args[:3]) for name, args, _ in sent] == [(wakeup.RUNS_ADVANCE_FOR_PLACEMENT, TUTORIAL)]
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        fb.add_members(fb.member("member9", environment="canary"))  # any placement may schedule it
    assert [name for name, _, _ in sent] == [wakeup.RUNS_ADVANCE_ACTIVE]


@pytest.mark.django_db
def test_a_member_or_placement_deleted_wakes_the_runs_that_may_go_to_it(sent, frozen_clock,
                                                                      django_capture_on_commit_callbacks):
    """Not the next sweep, up to FLEET_ACTIVE_RUNS_SWEEP_SECONDS later."""
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run()
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        fb.delete("MemberCluster", "member1")
    assert [name for name, _, _ in sent] == [wakeup.RUNS_ADVANCE_ACTIVE]
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        fb.delete("ClusterResourcePlacement", "example-placement")
    assert [(name, args[:3]) for name, args, _ in sent] == [(wakeup.RUNS_ADVANCE_FOR_PLACEMENT, TUTORIAL)]


@pytest.mark.django_db
def test_in_the_embedded_mode_a_placement_written_wakes_the_loop(listener, frozen_clock,
                                                               django_capture_on_commit_callbacks):
    fb.tutorial_fleet()
    while listener.wait(0):
        pass
    with django_capture_on_commit_callbacks(execute=True):
        fb.placement("web")
    assert listener.wait(0) is True


@pytest.mark.django_db
def test_an_external_placement_names_nothing_runs_bind_its_clusters(sent, frozen_clock,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        fb.tutorial_fleet()
    assert [name for name, _, _ in sent if name == wakeup.PLACEMENT_SYNC] == []


def test_celery_routes_a_placement_sync_to_the_queue_workers_take_first():
    route = app.amqp.router.route({}, wakeup.PLACEMENT_SYNC)
    assert route["queue"].name == "placements"
    # queue_order_strategy "priority": workers take from the queues in this order.
    assert [q.name for q in django_settings.CELERY_TASK_QUEUES] == ["placements", "interactive", "celery"]
    assert django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] == "priority"


def test_the_loop_takes_a_named_placement_once_and_the_wake_up_still_ends_its_wait(listener):
    wakeup.notify(frozenset({WEB}))
    assert wakeup.named_placements() == {WEB}
    assert wakeup.named_placements() == set()  # taken
    assert listener.wait(0) is True  # the tick that follows still runs
    assert listener.wait(0) is False


def test_a_wake_up_from_another_process_names_its_placements_on_the_socket(listener):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(f'wake {time.time()} [["ClusterResourcePlacement", "", "web"]]'.encode(), str(listener.path))
        sock.sendto(b"wake 12.5", str(listener.path))  # an older sender: a plain wake-up
    assert listener.named_placements() == {WEB}
    assert listener.wait(0) is True
    assert listener.woken_at is not None and listener.woken_at <= 12.5


def test_without_a_listening_loop_a_named_wake_up_keeps_no_names(settings):
    settings.FLEET_ENGINE_SOCKET = f"{tempfile.mkdtemp(prefix='fleet-', dir='/tmp')}/engine.sock"
    wakeup.notify(frozenset({WEB}))
    assert wakeup.named_placements() == set()
    assert wakeup._named_here == set()


def test_a_batch_naming_more_placements_than_a_datagram_carries_wakes_the_loop_plainly(listener):
    many = frozenset(("ClusterResourcePlacement", "", f"p{i}") for i in range(wakeup.NAMED_MAX + 1))
    wakeup.notify(many)
    assert listener.named_placements() == set()  # the next tick syncs every member anyway
    assert listener.wait(0) is True


def test_a_placement_bound_event_in_embedded_mode_wakes_the_loop_with_its_name(listener, settings):
    settings.REDIS_URL = ""
    wakeup.on_changes([changes.PlacementBound(*WEB)])
    assert listener.named_placements() == {WEB}


@pytest.mark.django_db
def test_a_placement_sync_task_comes_back_when_its_simulated_apply_is_due(frozen_clock, settings, monkeypatch):
    settings.FLEET_SIMULATED_APPLY_SECONDS = 4
    fb.tutorial_fleet()
    fb.placement("web", strategy_type="RollingUpdate")
    again = []
    monkeypatch.setattr(tasks.placement_sync, "apply_async", lambda args, countdown: again.append((args, countdown)))
    tasks.placement_sync(*WEB)
    assert again == [(WEB, 4.0)]
    frozen_clock.advance(4)
    tasks.placement_sync(*WEB)
    assert again == [(WEB, 4.0)]  # applied: nothing to come back for
    assert m.ClusterResourcePlacement.objects.get(name="web").condition(
        "ClusterResourcePlacementAvailable")["status"] == "True"


@pytest.mark.django_db
def test_a_member_sync_task_advances_the_placements_runs_itself_instead_of_queueing_a_lookup(
        sent, frozen_clock, monkeypatch):
    fb.tutorial_fleet()
    fb.run("web-run", placement_name="web")
    fb.run("other-run", placement_name="other")
    run = m.ClusterStagedUpdateRun.objects.get(name="web-run")
    assert run.active and m.ClusterStagedUpdateRun.objects.get(name="other-run").active
    advanced = []
    monkeypatch.setattr(tasks, "advance_once", lambda kind, pk, woken_at=None, **_: advanced.append((kind, pk)))
    monkeypatch.setattr(wakeup, "current_task", object())  # inside a worker's task
    wakeup.on_changes([changes.BindingsApplied(*WEB)])
    assert [name for name, _, _ in sent if name == wakeup.RUNS_ADVANCE_FOR_PLACEMENT] == []
    assert advanced == [("ClusterStagedUpdateRun", run.pk)]


def test_outside_a_task_the_placements_runs_are_looked_up_by_a_queued_task(sent):
    wakeup.on_changes([changes.BindingsApplied(*WEB)])
    assert [name for name, _, _ in sent] == [wakeup.RUNS_ADVANCE_FOR_PLACEMENT]


@pytest.mark.django_db
def test_a_continuation_that_fails_in_the_task_is_queued_instead(sent, monkeypatch):
    def broken(*_args):
        raise OperationalError("connection lost")

    monkeypatch.setattr(tasks.runs_advance_for_placement, "run", broken)
    monkeypatch.setattr(wakeup, "current_task", object())
    wakeup.on_changes([changes.BindingsApplied(*WEB)])
    assert [name for name, _, _ in sent] == [wakeup.RUNS_ADVANCE_FOR_PLACEMENT]


@pytest.mark.django_db
def test_in_a_task_a_bound_wave_is_applied_in_that_task(sent, frozen_clock, monkeypatch,
                                                        django_capture_on_commit_callbacks):
    """An advance in a worker binds a wave; its applies follow in the same
    task, on that placement (its runs' next advance is queued once), and no
    member sync goes to the queue."""
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run("web-run")
    run = m.ClusterStagedUpdateRun.objects.get(name="web-run")
    advanced = []
    monkeypatch.setattr(tasks, "advance_once", lambda kind, pk, woken_at=None, **_: advanced.append((kind, pk)))
    monkeypatch.setattr(wakeup, "current_task", object())  # inside a worker's task
    with django_capture_on_commit_callbacks(execute=True):
        tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    bound = m.ClusterResourceBinding.objects.filter(owner__name="example-placement", spec__state="Bound")
    assert bound.exists()
    assert not bound.filter(apply_pending=True).exists()  # applied in the task
    assert [name for name, _, _ in sent if name in (wakeup.MEMBERS_SYNC, wakeup.PLACEMENT_SYNC)] == []
    assert ("ClusterStagedUpdateRun", run.pk) in advanced


@pytest.mark.django_db
def test_outside_a_task_a_bound_wave_queues_its_placements_sync(sent, frozen_clock,
                                                                django_capture_on_commit_callbacks):
    fb.tutorial_fleet()
    fb.tutorial_strategy()
    fb.tutorial_run("web-run")
    run = m.ClusterStagedUpdateRun.objects.get(name="web-run")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert (wakeup.PLACEMENT_SYNC, TUTORIAL, None) in sent


def test_a_bound_wave_in_embedded_mode_wakes_the_loop_naming_nothing(listener, settings):
    """The loop's tick applies every member's wave together: a run's wave is
    no reason to sync its placement between two advances."""
    settings.REDIS_URL = ""
    wakeup.on_changes([changes.ClustersBound(*WEB)])
    assert listener.named_placements() == set()


@pytest.fixture
def in_a_task(sent, monkeypatch):
    """Inside a worker's task, Celery mode, no Redis for the queued marks."""
    monkeypatch.setattr(wakeup, "current_task", object())
    monkeypatch.setattr(tasks, "_marks", lambda: None)
    return sent


def _two_stage_run() -> m.ClusterStagedUpdateRun:
    fb.staged_fleet({"staging": ["member1", "member2"], "prod": ["member3", "member4"]})
    fb.strategy("example-strategy", fb.stage("staging", max_concurrency=1), fb.stage("prod", max_concurrency=1))
    fb.run()
    return fb.run_obj()  # its creation's wake-ups are still in the list: callers clear it


@pytest.mark.django_db(transaction=True)  # real commits: their continuations run as the task's
def test_in_a_task_a_run_goes_wave_after_wave_in_that_task(in_a_task, frozen_clock):
    """Four waves (one cluster each): advance, applies, advance… all in the
    task that took the first advance, one step after another; nothing queued."""
    run = _two_stage_run()
    in_a_task.clear()
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert fb.run_conditions()["Succeeded"][0] == "True"
    assert in_a_task == []


@pytest.mark.django_db(transaction=True)  # real commits: their continuations run as the task's
def test_a_task_runs_at_most_chain_steps_then_queues_the_rest(in_a_task, frozen_clock, monkeypatch):
    monkeypatch.setattr(wakeup, "CHAIN_STEPS", 3)  # an advance, its applies, the runs' lookup
    run = _two_stage_run()
    in_a_task.clear()
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert "Succeeded" not in fb.run_conditions()
    assert [name for name, _, _ in in_a_task] == [wakeup.PLACEMENT_SYNC]  # the fourth step, queued


@pytest.mark.django_db
def test_a_sweep_queues_its_advances_it_never_runs_them_itself(in_a_task, frozen_clock, monkeypatch):
    run = _two_stage_run()
    in_a_task.clear()
    monkeypatch.setattr(tasks.run_advance, "delay", lambda *args: in_a_task.append((wakeup.RUN_ADVANCE, args, None)))
    tasks.runs_advance_active()
    assert (wakeup.RUN_ADVANCE, ("ClusterStagedUpdateRun", run.pk, None), None) in in_a_task
    assert "Progressing" not in fb.run_conditions()  # queued, not advanced here


@pytest.mark.django_db(transaction=True)
def test_a_task_goes_on_for_at_most_chain_seconds_then_queues_the_rest(in_a_task, frozen_clock, monkeypatch):
    """A placement's sync a person waits for must find a free worker process:
    past its time the chain queues its next step (the applies' continuation)."""
    monkeypatch.setattr(wakeup, "CHAIN_SECONDS", 0.0)
    run = _two_stage_run()
    in_a_task.clear()
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert [name for name, _, _ in in_a_task] == [wakeup.RUNS_ADVANCE_FOR_PLACEMENT]


@pytest.mark.django_db(transaction=True)
def test_in_a_task_each_wave_refreshes_its_placement_once_after_its_applies(in_a_task, frozen_clock, monkeypatch):
    run = _two_stage_run()
    in_a_task.clear()
    refreshed = []
    refresh = placement_controller._refresh
    monkeypatch.setattr(placement_controller, "_refresh",
                        lambda placement, family: refreshed.append(placement.name) or refresh(placement, family))
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert refreshed == ["example-placement"] * 4  # four waves of one cluster, each bound then applied
    entries = fb.placement_obj().status["placementStatuses"]
    assert [(e["clusterName"], fb.conditions(e)["Available"][0]) for e in entries] == [
        (f"member{i}", "True") for i in range(1, 5)]


@pytest.mark.django_db(transaction=True)
def test_the_steps_of_a_chain_read_the_freezes_and_the_members_labels_once(in_a_task, frozen_clock, monkeypatch):
    """Four waves: the first advance (the task itself) reads them, the three
    advances the chain continues with share one read, as a tick's runs do."""
    run = _two_stage_run()
    in_a_task.clear()
    reads = []
    holding, labels = freeze_selectors.freezes_holding, runner.member_labels
    monkeypatch.setattr(freeze_selectors, "freezes_holding", lambda *a: reads.append("freezes") or holding(*a))
    monkeypatch.setattr(runner, "member_labels", lambda *a: reads.append("labels") or labels(*a))
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert fb.run_conditions()["Succeeded"][0] == "True"
    assert sorted(reads) == ["freezes", "freezes", "labels", "labels"]


@pytest.mark.django_db(transaction=True)
def test_each_chain_reads_the_freezes_afresh(in_a_task, frozen_clock, monkeypatch):
    """What a chain shared ends with it: the next task's chain reads again
    (a freeze declared between the two holds the runs of the second)."""
    monkeypatch.setattr(wakeup, "CHAIN_STEPS", 3)  # an advance's applies, the runs' lookup, the next advance
    run = _two_stage_run()
    in_a_task.clear()
    reads = []
    holding = freeze_selectors.freezes_holding
    monkeypatch.setattr(freeze_selectors, "freezes_holding", lambda *a: reads.append("freezes") or holding(*a))
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    assert len(reads) == 2 and [name for name, _, _ in in_a_task] == [wakeup.PLACEMENT_SYNC]
    (_, args, _), = in_a_task
    tasks.placement_sync(*args)  # the queued step, taken by the next task: a chain of its own
    assert len(reads) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("task", ["placement_sync", "members_sync"])
def test_a_chain_seals_its_audit_rows_once_at_its_end(in_a_task, frozen_clock, monkeypatch, task):
    """Every step's commit appends audit rows; the task that ran the chain
    seals them in one go when it ends, whichever task started it (here a
    queued placement sync or the members' sweep: its applies, the runs'
    lookup, the advances…)."""
    monkeypatch.setattr(wakeup, "CHAIN_STEPS", 3)
    run = _two_stage_run()
    in_a_task.clear()
    tasks.run_advance("ClusterStagedUpdateRun", run.pk)
    (_, args, _), = in_a_task
    in_a_task.clear()
    monkeypatch.setattr(wakeup, "CHAIN_STEPS", 60)
    seals = []
    seal = audit.audit_seal
    monkeypatch.setattr(audit, "audit_seal", lambda **kw: seals.append(1) or seal(**kw))
    if task == "placement_sync":
        tasks.placement_sync(*args)
    else:
        tasks.members_sync()
    assert fb.run_conditions()["Succeeded"][0] == "True"
    assert len(seals) == 1
    assert not m.Event.objects.filter(seq=None).exists()
