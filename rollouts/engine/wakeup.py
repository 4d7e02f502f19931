"""Waking the engine the moment something changes a run, not on a timer.

A subscriber of rollouts.changes (registered in RolloutsConfig.ready): after
a transaction commits, what it changed decides what wakes up.

    RunChanged / ApprovalRequestChanged by a person   that run, at once
    BindingsApplied      a member finished applying: the placement's runs
    ClustersBound        clusters were bound: the member agent has work
    FleetChanged         placements, members, strategies: every active run
    FreezeChanged        a freeze declared, edited, ended, a window opening or
                         closing: every active run (waits, or resumes)

The engine's own passes and a hub's changes wake nothing: the pass goes on by
itself, and a mirrored run is driven by its hub.

Embedded mode (no REDIS_URL): the in-process engine loop waits on a Listener;
a threading.Event wakes it in one process, a datagram on a Unix socket under
var/ across processes (the CLI and `fleet engine`).
Celery mode (REDIS_URL): the matching tasks are sent by name, so this module
needs nothing of rollouts.tasks. All are hints: the engine's safety-net pass
catches anything that was lost.
"""

import logging
import os
import select
import socket
import threading
import time
from pathlib import Path

from celery import current_app
from django.conf import settings

from rollouts import changes, outages
from rollouts.controllers.family import FAMILIES

log = logging.getLogger(__name__)
INTERACTIVE_QUEUE = "interactive"
_in_process = threading.Event()
_first_wake: list[float] = []  # when this process first woke its loop since the loop last looked (0 or 1 item)

# The Celery tasks (rollouts.tasks) this module sends, by name.
RUN_ADVANCE = "rollouts.tasks.run_advance"
RUNS_ADVANCE_ACTIVE = "rollouts.tasks.runs_advance_active"
RUNS_ADVANCE_FOR_PLACEMENT = "rollouts.tasks.runs_advance_for_placement"
MEMBERS_SYNC = "rollouts.tasks.members_sync"
_RUN_MODEL_OF_REQUEST = {family.approval_request.KIND: family.run for family in FAMILIES}


def socket_path() -> Path:
    return Path(getattr(settings, "FLEET_ENGINE_SOCKET", "") or settings.BASE_DIR / "var" / "engine.sock")


def notify() -> None:
    """Wake any engine loop now (best effort, never raises)."""
    now = time.time()  # wall clock, not rollouts.clock: a latency across processes, never frozen
    if not _first_wake:
        _first_wake.append(now)
    _in_process.set()
    path = socket_path()
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(f"wake {now}".encode(), str(path))
    except OSError:
        pass  # no engine listening, or its queue is full: it is awake anyway


def _celery() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def on_changes(events: list) -> None:
    """The changes subscriber: wake what a committed batch may move. The
    commit's time travels with a run's advance, for the wake-up lag metric
    (Unix time: it crosses processes)."""
    woken_at = time.time()
    tasks = dict.fromkeys(task for event in events for task in _tasks_for(event, woken_at))
    if not tasks:
        return
    if not _celery():
        notify()
        return
    for name, args, queue in tasks:
        _send(name, args, queue)


def _tasks_for(event, woken_at: float) -> list[tuple]:
    """(task name, args, queue) to send for one event; [] when it moves nothing."""
    person = getattr(event, "origin", None) == changes.Origin.PERSON
    if isinstance(event, changes.RunChanged) and person:
        # A person is waiting: the interactive queue goes before background work.
        return [(RUN_ADVANCE, (event.kind, event.pk, woken_at), INTERACTIVE_QUEUE)]
    if isinstance(event, changes.ApprovalRequestChanged) and person:
        run_model = _RUN_MODEL_OF_REQUEST[event.kind]
        pk = (run_model.objects.filter(namespace=event.namespace, name=event.run_name)
              .values_list("pk", flat=True).first())
        if pk is None:
            return [(RUNS_ADVANCE_ACTIVE, (), None)]
        return [(RUN_ADVANCE, (run_model.KIND, pk, woken_at), INTERACTIVE_QUEUE)]
    if isinstance(event, changes.BindingsApplied):
        return [(RUNS_ADVANCE_FOR_PLACEMENT, (event.placement_kind, event.namespace, event.name, woken_at), None)]
    if isinstance(event, changes.ClustersBound):
        return [(MEMBERS_SYNC, (), None)]
    if isinstance(event, (changes.FleetChanged, changes.FreezeChanged)):
        # A freeze that starts holding must show on every run; one that stops resumes them all.
        return [(RUNS_ADVANCE_ACTIVE, (), None)]
    return []


def _send(name: str, args: tuple, queue: str | None) -> None:
    """Send one task; a broker that is down must not fail the action that
    already committed: the beat safety net finds the work. An outage is one
    line when it starts and one when it ends, not a traceback per write:
    `fleet approve` prints it, and a worker would print it for every task."""
    try:
        current_app.send_task(name, args, queue=queue)
    except Exception as exc:  # kombu/redis raise many kinds; none may escape into the caller
        if outages.is_connection_error(exc):
            outages.REDIS.failed(exc, outages.CHANGE_SAVED, logger=log)
        else:
            log.warning("could not enqueue the engine's wake-up (%s: %s); the safety-net pass will pick it up",
                        type(exc).__name__, exc)
    else:
        outages.REDIS.succeeded(logger=log)


class Listener:
    """The engine side: wait(timeout) returns early when notified; woken_at
    is then when the first wake-up since the last wait was sent (Unix time)."""

    def __init__(self):
        self.path = socket_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.setblocking(False)
        self.woken_at: float | None = None

    def wait(self, timeout: float) -> bool:
        self.woken_at = None
        if _in_process.is_set():
            _in_process.clear()
            self._drain()
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        woke = bool(ready) or _in_process.is_set()
        _in_process.clear()
        self._drain()
        return woke

    def _drain(self) -> None:
        """Empty the socket; note the earliest wake-up time seen."""
        times = list(_first_wake)
        _first_wake.clear()
        while True:
            try:
                message = self.sock.recv(64)
            except (BlockingIOError, OSError):
                break
            try:
                times.append(float(message.split()[1]))
            except (IndexError, ValueError):
                pass  # a plain "wake" from an older sender
        self.woken_at = min(times) if times else None

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
