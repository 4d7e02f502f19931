"""`python manage.py fleet engine`: the in-process engine loop.

Each tick applies what is due on members and advances every active run.
It sleeps until the sooner of the safety-net interval and the next deadline
(a TimedWait ending, an apply finishing), and wakes at once when a writer
notifies it (wakeup.py). SIGTERM and SIGINT stop it between ticks.

Beside it, a thread checks the health gates that are due (health_gates_tick):
the embedded mode's `health` queue."""

import logging
import signal
import threading
import time

from django.conf import settings
from django.db import close_old_connections, transaction

from rollouts import clock, metrics, notifier
from rollouts import models as m
from rollouts.controllers.placement import PlacementRefreshes
from rollouts.members.agent import members_sync, placements_sync
from rollouts.mirror.freezes import mirrored_runs_enforce
from rollouts.selectors.freezes import freezes_holding
from rollouts.services import audit, health_gates
from rollouts.services.freezes import freezes_sync
from rollouts.services.health import heartbeat_record

from . import runner, wakeup

log = logging.getLogger(__name__)


def engine_tick() -> float | None:
    """One pass over everything. Returns seconds until something is due
    (a freeze's window opening or closing included). The audit rows its
    commits append are sealed once, before it returns."""
    with audit.seals_deferred():
        return _tick()


def _tick() -> float | None:
    refreshes = PlacementRefreshes()  # each placement whose bindings changed, once
    wakeup.writer_gap()
    with transaction.atomic():
        deadlines = [members_sync(refreshes)]
        # A placement no run moves (a RollingUpdate placement rolling out)
        # shows its applies now, not after every run's advance; the runs'
        # placements are refreshed once, at the end.
        if refreshes:
            refreshes.run(leave=runner.active_placements())
    deadlines.append(freezes_sync())
    freezes = freezes_holding()  # once per tick, for every run's world
    mirrored_runs_enforce(freezes=freezes)  # a hub's runs are its controller's: a freeze stops them there
    labels = runner.MemberLabels(whole_fleet=True)  # read once, on the first run's pass, for every run
    for family, pk in runner.active_runs():
        wakeup.writer_gap()  # a person's write waiting for SQLite's lock goes in between two advances
        deadlines.append(_named_placements_sync())
        decision = runner.run_advance(family=family, pk=pk, freezes=freezes, labels=labels, refreshes=refreshes)
        if decision is not None:
            deadlines.append(decision.requeue_after)
    # Finished applies may let runs move on: sync members once more at once,
    # and refresh what the tick touched in the same transaction.
    with transaction.atomic():
        deadlines.append(members_sync(refreshes))
        refreshes.run()
    pending = [d for d in deadlines if d is not None]
    return min(pending) if pending else None


def _named_placements_sync() -> float | None:
    """Between two runs' advances: sync the placements a wake-up named since
    the last look (a RollingUpdate placement a person just created), so they
    wait for one advance, not for the tick's every advance (100 runs: seconds).
    Returns seconds until their next apply is due (None: nothing named or due)."""
    named = wakeup.named_placements()
    return placements_sync(named) if named else None


class _Heartbeat:
    """The embedded mode's sign of life for /readyz: written after a pass
    that succeeded, at most every FLEET_HEARTBEAT_SECONDS (not every tick:
    SQLite has one writer at a time)."""

    def __init__(self):
        self.last = None

    def record(self) -> None:
        now = clock.precise_now()
        if self.last is None or (now - self.last).total_seconds() >= settings.FLEET_HEARTBEAT_SECONDS:
            heartbeat_record(source=m.Heartbeat.Source.ENGINE)
            self.last = now


def health_gates_tick() -> int:
    """Check every health gate that is due (the embedded mode's stand-in for
    the `health` queue); returns how many were checked."""
    due = health_gates.health_gates_due()
    for gate in due:
        health_gates.health_gate_check(kind=gate.kind, namespace=gate.namespace, name=gate.name)
    return len(due)


def _health_loop(stop: threading.Event, tick: float) -> None:
    """The health thread: Prometheus answers in up to seconds, so the checks
    run beside the engine's passes, never inside one."""
    while not stop.is_set():
        close_old_connections()
        try:
            health_gates_tick()
        except Exception:  # keep the thread alive; the next tick retries
            log.exception("health gate check failed")
        stop.wait(tick)
    close_old_connections()


def engine_main(options: dict | None = None, stop: threading.Event | None = None) -> None:
    """Run the loop until stopped (or one tick with --once)."""
    options = options or {}
    interval = float(options.get("interval") or settings.FLEET_ENGINE_INTERVAL_SECONDS)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: (stop.set(), wakeup.notify()))
    listener = wakeup.Listener()
    beat = _Heartbeat()
    # Embedded mode: notifications go out from a thread of their own, so a
    # receiver that times out never delays a pass (Celery mode: their queue).
    sender = None if options.get("once") or getattr(settings, "REDIS_URL", "") else notifier.sender_start(stop)
    if not options.get("once"):
        threading.Thread(target=_health_loop, args=(stop, settings.FLEET_HEALTH_TICK_SECONDS),
                         name="fleet-health-gates", daemon=True).start()
    try:
        while not stop.is_set():
            close_old_connections()
            if listener.woken_at is not None:
                metrics.engine_woken(seconds=time.time() - listener.woken_at, path="loop")
            try:
                due = engine_tick()
                beat.record()
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("engine tick failed")
                due = None
            if options.get("once"):
                return
            listener.wait(max(0.0, min(interval, due if due is not None else interval)))
    finally:
        listener.close()
        if sender is not None:
            stop.set()  # the loop has ended: so does its sender
            notifier.wake()
            sender.join(timeout=settings.FLEET_NOTIFY_TIMEOUT_SECONDS * 2 + 1)
        log.info("engine stopped")
