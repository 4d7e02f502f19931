"""Celery tasks: thin shells that take ids, call the engine and own retries.

Every task is idempotent (a run's advance is a locked compare-and-set pass),
acknowledged late (a task on a killed worker is redelivered) and retried with
backoff on transient database, Redis or write-conflict errors.
"""

import logging

import redis.exceptions
from celery import shared_task, signals
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

from rollouts import clock, notifier
from rollouts import models as m
from rollouts.api.errors import Conflict
from rollouts.controllers.family import FAMILIES
from rollouts.engine import runner, wakeup
from rollouts.k8s_errors import TemporaryK8sError
from rollouts.members import agent
from rollouts.mirror import freezes as freeze_mirror
from rollouts.models import revisions
from rollouts.selectors import freezes as freeze_selectors
from rollouts.services import audit, deliveries, freezes
from rollouts.services.health import heartbeat_record

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, InterfaceError, redis.exceptions.ConnectionError, Conflict, TemporaryK8sError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 0.2, "retry_backoff_max": 10, "retry_jitter": True,
         "max_retries": 50, "acks_late": True}
_FAMILY_BY_RUN_KIND = {family.run.KIND: family for family in FAMILIES}
_FAMILY_BY_PLACEMENT_KIND = {family.placement.KIND: family for family in FAMILIES}


# An advance waiting in the queue covers every later reason to advance that
# run (a pass reads the run's whole world): the sweeps and a placement's
# applies queue at most one per run, marked in Redis until a worker takes it.
# A lost task (a killed worker's reserved one) frees its run after
# QUEUED_SECONDS, the safety-net sweep's interval, and the next sweep queues it.
QUEUED_SECONDS = max(1, round(settings.FLEET_ACTIVE_RUNS_SWEEP_SECONDS))  # 15 unless set
_queued_marks = None  # redis client on the broker's Redis, made on first use


def _marks():
    """The Redis that holds the marks (None without REDIS_URL: no broker to back up)."""
    global _queued_marks
    if _queued_marks is None and settings.REDIS_URL:
        _queued_marks = redis.Redis.from_url(settings.REDIS_URL, max_connections=8)
    return _queued_marks


def _queued_key(run_kind: str, pk: int) -> str:
    return f"fleetui:advance-queued:{run_kind}:{pk}"


def advance_once(run_kind: str, pk: int, woken_at: float | None = None, *, here: bool = False) -> bool:
    """Queue the run's advance unless one is queued already; whether it
    queued one. `here`: in a worker's task, run it in this task after the
    step running now instead (wakeup.continue_in_task), marked the same way."""
    marks = _marks()
    if marks is not None and not marks.set(_queued_key(run_kind, pk), 1, nx=True, ex=QUEUED_SECONDS):
        return False
    if here and wakeup.continue_in_task(wakeup.RUN_ADVANCE, (run_kind, pk, woken_at)):
        return True
    run_advance.delay(run_kind, pk, woken_at)
    return True


# run_from_args: its log lines carry the run (fleetui.logging).
@shared_task(**RETRY, run_from_args=True)
def run_advance(run_kind: str, pk: int, woken_at: float | None = None) -> None:
    """Advance one run as far as it goes now (`woken_at`: when a writer asked,
    Unix time). Its passes' audit rows, and those of the chain of steps that
    goes on in this task (wakeup.continue_in_task), are sealed once, at the
    task's end."""
    try:
        if _marks() is not None:
            _marks().delete(_queued_key(run_kind, pk))  # from now on, a new reason queues a new advance
    except redis.exceptions.RedisError:
        pass  # the mark expires by itself; the advance must not wait for Redis
    with audit.seals_deferred():
        # A wave's placement refresh follows its applies (placement_sync, in
        # this task or queued): one refresh a wave.
        # The steps of one chain share the freezes and members' labels, as a tick's runs do.
        runner.run_advance(family=_FAMILY_BY_RUN_KIND[run_kind], pk=pk, woken_at=woken_at, refresh_with_applies=True,
                           freezes=wakeup.chain_shared("freezes", freeze_selectors.freezes_holding),
                           labels=wakeup.chain_shared("labels", runner.MemberLabels))


@shared_task(**RETRY)
def runs_advance_due() -> int:
    """Beat, every second: queue the runs whose timer is due (once each)."""
    return sum(advance_once(family.run.KIND, pk) for family, pk in runner.due_runs())


@shared_task(**RETRY)
def runs_advance_active() -> int:
    """Queue every active run (safety net, and changes that may move any run), once each."""
    return sum(advance_once(family.run.KIND, pk) for family, pk in runner.active_runs())


@shared_task(**RETRY)
def runs_advance_for_placement(placement_kind: str, namespace: str, name: str, woken_at: float | None = None) -> None:
    """A placement's bindings finished applying: advance its active runs.
    Inside a worker's task (a member sync) it runs in that task, after its
    commit, not queued, and so do the advances (rollouts/engine/wakeup.py
    CONTINUED_IN_TASK)."""
    family = _FAMILY_BY_PLACEMENT_KIND[placement_kind]
    # The database picks the placement's runs: 100 active runs' specs were
    # read and decoded for every placement a member sync applied on.
    runs = family.run.objects.filter(active=True, namespace=namespace, spec__placementName=name)
    with audit.seals_deferred():  # the chain the advances go on with: sealed once, at its end
        for pk in runs.values_list("pk", flat=True):
            advance_once(family.run.KIND, pk, woken_at, here=True)


@shared_task(**RETRY)
def freezes_sync() -> None:
    """Beat, every few seconds: publish the freezes that started or stopped
    holding by the clock (FreezeChanged wakes every run), and stop or resume
    the mirrored hubs' runs they cover."""
    freezes.freezes_sync()
    freeze_mirror.mirrored_runs_enforce()


MEMBERS_BATCH = 50


@shared_task(**RETRY)
def members_sync() -> None:
    """Apply what is due on a batch of bindings; another task takes the next
    batch at once (so workers share the work), and one comes back when the
    next simulated apply finishes."""
    with audit.seals_deferred():  # the batch's commits and the chain that goes on after them: sealed once
        next_due, more = agent.members_sync_some(limit=MEMBERS_BATCH)
    if more:
        members_sync.delay()
    if next_due is not None:
        members_sync.apply_async(countdown=min(next_due, 30.0))


@shared_task(**RETRY)
def placement_sync(placement_kind: str, namespace: str, name: str) -> None:
    """A placement bound its clusters itself (RollingUpdate): apply what is
    due on its bindings and refresh it (queue `placements`, which workers
    take from before the runs' advances); come back when its next simulated
    apply finishes."""
    with audit.seals_deferred():  # its commit and the chain that goes on after it: sealed once, at the end
        next_due = agent.placements_sync({(placement_kind, namespace, name)})
    if next_due is not None:
        placement_sync.apply_async((placement_kind, namespace, name), countdown=min(next_due, 30.0))


@shared_task(**RETRY)
def housekeeping() -> int:
    """Remove simulated member contents of members that left the fleet."""
    members = set(m.MemberCluster.objects.values_list("name", flat=True))
    deleted, _ = m.MemberObject.objects.exclude(cluster__in=members).delete()
    return deleted


@shared_task(**RETRY)
def change_log_compact() -> int:
    """Forget the tombstones of deletions older than the change log keeps
    (a watch from before them answers 410 Gone); returns the compaction point."""
    return revisions.tombstones_compact(now=clock.now())


@shared_task(**RETRY)
def notifications_record(events: list[dict]) -> int:
    """The change events a commit handed over (notifier.encode): write the
    deliveries they owe (idempotent, so a redelivered task owes nothing
    twice), then send each as a task of its own. Queue `notifications`."""
    ids = notifier.record(notifier.decode(events))
    for delivery_id in ids:
        notifications_send.delay([delivery_id])
    return len(ids)


@shared_task(**RETRY)
def notifications_send(delivery_ids: list[int]) -> int:
    """Send deliveries (queue `notifications`, its own worker). Several ids
    fan out into one task each, so one slow receiver holds one worker slot,
    not the others' messages. A repeat is harmless: each send claims its row
    with compare-and-set. Failures are recorded on the row, never raised."""
    if len(delivery_ids) > 1:
        for delivery_id in delivery_ids:
            notifications_send.delay([delivery_id])
        return 0
    return sum(deliveries.delivery_send(delivery_id=i) is not None for i in delivery_ids)


@shared_task(**RETRY)
def notifications_send_due() -> int:
    """Beat's sweep: every delivery due now (retries after their backoff, and
    hand-offs a lost message dropped), one task each."""
    due = deliveries.deliveries_due(limit=500)
    for delivery_id in due:
        notifications_send.delay([delivery_id])
    return len(due)


HEARTBEAT = "rollouts.tasks.heartbeat"


_heartbeats_failing: set[str] = set()  # sources whose last write failed, in this process


@shared_task(name=HEARTBEAT, bind=True, ignore_result=True, acks_late=False)
def heartbeat(self) -> None:
    """Beat, every FLEET_HEARTBEAT_SECONDS: a worker is taking tasks (its
    name recorded). Not retried: the next heartbeat is the retry."""
    _heartbeat_or_warn(m.Heartbeat.Source.WORKER, by=self.request.hostname or "")


@signals.after_task_publish.connect(sender=HEARTBEAT, weak=False, dispatch_uid="rollouts-beat-heartbeat")
def _beat_published_heartbeat(**kwargs) -> None:
    """In beat (the only process that sends `heartbeat`): beat is ticking and
    reached the broker."""
    _heartbeat_or_warn(m.Heartbeat.Source.BEAT)


def _heartbeat_or_warn(source: str, by: str = "") -> None:
    """Record a heartbeat; with the database down, one warning line per
    outage (not a traceback every FLEET_HEARTBEAT_SECONDS), and a broken
    connection dropped so the next heartbeat reconnects."""
    try:
        heartbeat_record(source=source, by=by)
    except DatabaseError as exc:
        close_old_connections()
        if source not in _heartbeats_failing:
            log.warning("cannot record the %s heartbeat, the database is unavailable: %s", source,
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        _heartbeats_failing.add(source)
        return
    if source in _heartbeats_failing:
        _heartbeats_failing.discard(source)
        log.warning("the %s heartbeat is recorded again: the database is back", source)
