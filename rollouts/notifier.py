"""Notifications as a reaction: after a transaction commits, what it changed
becomes Delivery rows, and something else sends them.

A subscriber of rollouts.changes (registered in RolloutsConfig.ready). In the
committing thread, after commit, it:

1. returns at once unless some subscription is enabled (one query);
2. reads what the events mean (selectors.notices.notices_for);
3. writes the deliveries owed, idempotently (services.notifications);
4. hands their ids to the sender, and returns: it never sends itself, so a
   slow or dead receiver never delays the write, the engine pass or the
   page that caused it.

The sender:
- Celery mode (REDIS_URL): the task `rollouts.tasks.notifications_send`,
  sent by name on the `notifications` queue, which its own worker consumes
  (Procfile `notify`); beat's `notifications-sweep` sends what is due again
  (retries, and ids a lost message dropped).
- Embedded mode: a thread beside the engine loop (`sender_start`, started
  by engine/loop.engine_main) with a pool of FLEET_NOTIFY_SENDERS threads
  that send, woken at once in this process and polling the table every
  FLEET_NOTIFY_POLL_SECONDS for rows other processes (the `fleet` command,
  the web process) wrote.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, connection

from rollouts import changes
from rollouts.selectors.notices import notices_for
from rollouts.services.deliveries import deliveries_due, delivery_send
from rollouts.services.notifications import deliveries_create, subscriptions_exist

log = logging.getLogger(__name__)
QUEUE = "notifications"
SEND_TASK = "rollouts.tasks.notifications_send"
_RELEVANT = (changes.RunChanged, changes.ApprovalRequestChanged, changes.ClusterFailing, changes.FreezeChanged)
_wake = threading.Event()


def on_changes(events: list) -> None:
    """The changes subscriber (see the module docstring). Never raises: a
    failure is one log line, and the write it reacts to stands."""
    relevant = [e for e in events if isinstance(e, _RELEVANT)]
    if not relevant:
        return
    try:
        if not subscriptions_exist():
            return
        notices = notices_for(relevant)
        ids = deliveries_create(notices) if notices else []
    except Exception as exc:  # the write has committed; the sweep and the next change carry on
        log.warning("notifications: could not record the deliveries of %d change(s): %s", len(relevant),
                    type(exc).__name__)
        return
    if ids:
        send_soon(ids)


def _celery() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def send_soon(ids: list[int]) -> None:
    """Hand deliveries to the sender (best effort: a lost hand-off is sent by
    the sweep or the embedded sender's poll)."""
    if not _celery():
        _wake.set()
        return
    try:
        current_app.send_task(SEND_TASK, args=[list(ids)], queue=QUEUE)
    except Exception as exc:  # broker down: beat's sweep sends them when it is back
        log.warning("notifications: could not queue %d deliveries: %s", len(ids), type(exc).__name__)


class Sender:
    """The embedded mode's sender: each round hands every due delivery to a
    small pool of threads (FLEET_NOTIFY_SENDERS), so a receiver that times
    out holds one thread, not every other message. A delivery already in a
    thread is not handed again; each send claims its row anyway."""

    def __init__(self, workers: int):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-notify-send")
        self.busy: set[int] = set()
        self.lock = threading.Lock()

    def round(self, *, limit: int = 500) -> int:
        """Hand the deliveries due now to the pool; returns how many."""
        handed = 0
        for delivery_id in deliveries_due(limit=limit):
            with self.lock:
                if delivery_id in self.busy:
                    continue
                self.busy.add(delivery_id)
            self.pool.submit(self._send, delivery_id)
            handed += 1
        return handed

    def _send(self, delivery_id: int) -> None:
        close_old_connections()
        try:
            delivery_send(delivery_id=delivery_id)
        except Exception as exc:  # the row stays due: the next round tries again
            log.warning("notification %s could not be sent: %s", delivery_id, type(exc).__name__)
        finally:
            with self.lock:
                self.busy.discard(delivery_id)
            close_old_connections()
            _wake.set()  # a thread is free: look for more

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _sender_loop(stop: threading.Event, sender: Sender) -> None:
    poll = settings.FLEET_NOTIFY_POLL_SECONDS
    try:
        while not stop.is_set():
            _wake.clear()
            close_old_connections()
            try:
                sender.round()
            except Exception:  # keep the thread alive; the next round retries
                log.exception("notification sender round failed")
            _wake.wait(poll)
    finally:
        sender.close()
        connection.close()


def sender_start(stop: threading.Event) -> threading.Thread:
    """The embedded mode's sender: a daemon thread handing due deliveries to
    its pool until `stop` is set (then `wake()` ends it at once)."""
    sender = Sender(workers=int(settings.FLEET_NOTIFY_SENDERS))
    thread = threading.Thread(target=_sender_loop, args=(stop, sender), name="fleet-notifications", daemon=True)
    thread.start()
    return thread


def wake() -> None:
    """Wake the embedded sender now (after stop is set, to let it end)."""
    _wake.set()
