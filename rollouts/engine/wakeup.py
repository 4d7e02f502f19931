"""Waking the engine the moment something changes a run, not on a timer.

Writers say what changed, after their transaction commits:
run_changed(run), runs_changed() (anything that may move any run),
placement_changed(placement) (a member finished applying its bindings) and
bindings_changed() (clusters were bound: members have work).

Embedded mode (no REDIS_URL): the in-process engine loop waits on a Listener;
a threading.Event wakes it in one process, a datagram on a Unix socket under
var/ across processes (the CLI and `fleet engine`).
Celery mode (REDIS_URL): the same calls enqueue the matching tasks.
All are hints: the engine's safety-net pass catches anything that was lost.
"""

import logging
import os
import select
import socket
import threading
from pathlib import Path

from django.conf import settings
from django.db import transaction

from rollouts import outages

log = logging.getLogger(__name__)
INTERACTIVE_QUEUE = "interactive"
_in_process = threading.Event()


def socket_path() -> Path:
    return Path(getattr(settings, "FLEET_ENGINE_SOCKET", "") or settings.BASE_DIR / "var" / "engine.sock")


def notify() -> None:
    """Wake any engine loop now (best effort, never raises)."""
    _in_process.set()
    path = socket_path()
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"wake", str(path))
    except OSError:
        pass  # no engine listening, or its queue is full: it is awake anyway


def _celery() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def _enqueue(send) -> None:
    """Send a task after commit; a broker that is down must not fail the
    action that already committed: the beat safety net finds the work."""

    def send_or_log():
        try:
            send()
        except Exception as exc:  # kombu/redis raise many kinds; none may escape into the caller
            if not outages.is_connection_error(exc):
                log.warning("could not enqueue the engine's wake-up; the safety-net pass will pick it up",
                            exc_info=True)
                return
            # One line per outage, not a traceback per write: `fleet approve`
            # prints it, and a worker would print it for every task.
            outages.REDIS.failed(exc, outages.CHANGE_SAVED, logger=log)
        else:
            outages.REDIS.succeeded(logger=log)

    transaction.on_commit(send_or_log)


def run_changed(run) -> None:
    """This run's spec or one of its approval requests changed."""
    if not _celery():
        transaction.on_commit(notify)
        return
    from rollouts import tasks

    kind, pk = run.KIND, run.pk
    # A person is waiting: the interactive queue goes before background work.
    _enqueue(lambda: tasks.run_advance.apply_async((kind, pk), queue=INTERACTIVE_QUEUE))


def approval_request_changed(request) -> None:
    """An approval request changed: advance the run it belongs to."""
    from rollouts.controllers.family import family_of

    run_model = family_of(request).run
    name = (request.spec or {}).get("parentStageRollout", "")
    run = run_model.objects.filter(namespace=request.namespace, name=name).only("pk").first()
    run_changed(run) if run else runs_changed()


def runs_changed() -> None:
    """Something that may move any run changed (placements, members, strategies)."""
    if not _celery():
        transaction.on_commit(notify)
        return
    from rollouts import tasks

    _enqueue(lambda: tasks.runs_advance_active.delay())


def placement_changed(placement) -> None:
    """Bindings of this placement finished applying: its runs can move on."""
    if not _celery():
        transaction.on_commit(notify)
        return
    from rollouts import tasks

    kind, namespace, name = placement.KIND, placement.namespace, placement.name
    _enqueue(lambda: tasks.runs_advance_for_placement.delay(kind, namespace, name))


def bindings_changed() -> None:
    """Clusters were bound to a snapshot: the member agent has work."""
    if not _celery():
        transaction.on_commit(notify)
        return
    from rollouts import tasks

    _enqueue(lambda: tasks.members_sync.delay())


def notify_after_commit() -> None:
    """Kept for callers that do not know what changed: same as runs_changed()."""
    runs_changed()


class Listener:
    """The engine side: wait(timeout) returns early when notified."""

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

    def wait(self, timeout: float) -> bool:
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
        while True:
            try:
                self.sock.recv(64)
            except (BlockingIOError, OSError):
                return

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
