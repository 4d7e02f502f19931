"""Notifications as a reaction: after a transaction commits, what it changed
becomes Delivery rows, and a sender sends them, off the path of the write.

A subscriber of rollouts.changes (registered in RolloutsConfig.ready). In the
committing thread, after commit, it does as little as it can:

- in the process that runs the embedded sender (the engine loop of `fleet
  serve` / `fleet engine` without REDIS_URL): it queues the events for the
  sender's thread, and returns (no query);
- in Celery mode: it queues the events for the process's hand-off thread,
  which (unless no subscription is enabled: one query) sends them to the
  `notifications` queue (`rollouts.tasks.notifications_record`);
- anywhere else (the `fleet` command in embedded mode), or when the broker
  cannot take the task: it records the deliveries itself (`record`), for the
  sender to find in the table.

`record(events)` reads what the events mean (selectors.notices), writes the
deliveries owed, idempotently (services.notifications: one row per
subscription and event key), and hands their ids to sending. The reaction
never sends: a slow or dead receiver delays neither the write, nor the
engine pass, nor the page that caused it (BENCHMARKS.md measures it).

Sending:
- Celery mode: `rollouts.tasks.notifications_send` on the `notifications`
  queue, which a worker of its own consumes (Procfile `notify`); beat's
  `notifications-sweep` sends what is due again (retries, lost hand-offs).
- Embedded mode: `sender_start` (called by engine/loop.engine_main) runs a
  thread that records queued events and hands due deliveries to a pool of
  FLEET_NOTIFY_SENDERS threads; it is woken at once from this process and
  reads the table every FLEET_NOTIFY_POLL_SECONDS for the rows other
  processes (the `fleet` command) wrote.
"""

import atexit
import dataclasses
import logging
import os
import queue
import threading
import time
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
RECORD_TASK = "rollouts.tasks.notifications_record"
_RELEVANT = {cls.__name__: cls for cls in (changes.RunChanged, changes.ApprovalRequestChanged,
                                           changes.ClusterFailing, changes.FreezeChanged)}
_wake = threading.Event()
_pending: "queue.SimpleQueue | None" = None  # events for this process's embedded sender, when it runs one


def on_changes(events: list) -> None:
    """The changes subscriber (see the module docstring). Never raises: a
    failure is one log line, and the write it reacts to stands."""
    relevant = [e for e in events if type(e).__name__ in _RELEVANT]
    if not relevant:
        return
    if _pending is not None:
        _pending.put(relevant)
        _wake.set()
        return
    if _celery():
        _hand_off().pending.put(relevant)
        return
    _record_here(relevant)


def _record_here(events: list) -> None:
    try:
        ids = record(events)
    except Exception as exc:  # the write has committed; the next change carries on
        log.warning("notifications: could not record the deliveries of %d change(s): %s", len(events),
                    type(exc).__name__)
        return
    if ids:
        send_soon(ids)


def record(events: list) -> list[int]:
    """Write the deliveries `events` owe (idempotent); the ids now due."""
    if not subscriptions_exist():
        return []
    notices = notices_for(events)
    return deliveries_create(notices) if notices else []


def encode(events: list) -> list[dict]:
    """Events as JSON for a Celery task (what `decode` reads back)."""
    return [{"type": type(e).__name__, **dataclasses.asdict(e)} for e in events]


def decode(payload: list[dict]) -> list:
    """The events `encode` wrote (unknown types are skipped)."""
    events = []
    for item in payload:
        fields = dict(item)
        cls = _RELEVANT.get(fields.pop("type", ""))
        if cls is not None:
            if "origin" in fields:
                fields["origin"] = changes.Origin(fields["origin"])
            events.append(cls(**fields))
    return events


def _celery() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


class HandOff(threading.Thread):
    """Celery mode: a daemon thread of the committing process that takes the
    events its commits queued and, unless nobody subscribed (one query),
    sends them to the notifications queue, gathered over HAND_OFF_GATHER
    seconds into one task; with the broker down it records them in place.
    The committing thread (an engine worker's) only appends to a queue."""

    def __init__(self):
        super().__init__(name="fleet-notify-hand-off", daemon=True)
        self.pending: queue.SimpleQueue = queue.SimpleQueue()
        self.pid = os.getpid()
        self.idle = threading.Event()

    def run(self) -> None:
        while True:
            self.idle.set()
            events = list(self.pending.get())
            self.idle.clear()
            time.sleep(HAND_OFF_GATHER)
            self.hand(list(dict.fromkeys(events + self.drain())))

    def drain(self) -> list:
        events = []
        while not self.pending.empty():
            events += self.pending.get_nowait()
        return events

    def flush(self, timeout: float = 5.0) -> None:
        """At exit (a `fleet` verb, a worker stopping): wait for the batch in
        hand, then hand what is left from this thread."""
        self.idle.wait(timeout)
        left = self.drain()
        if left:
            self.hand(list(dict.fromkeys(left)))

    def hand(self, events: list) -> None:
        try:
            if subscriptions_exist() and not _hand_to_worker(events):
                _record_here(events)
        except Exception as exc:  # never let the thread die: the next batch goes on
            log.warning("notifications: could not hand %d change(s) over: %s", len(events), type(exc).__name__)
        finally:
            close_old_connections()


# A notice may wait this long; each batch costs the committing process a
# query (and a connection check) in a thread beside its engine work: at
# 0.05 s, 100 rollouts' workers asked for subscriptions ~1,600 times.
HAND_OFF_GATHER = 0.25
_hand_off_thread: HandOff | None = None
_hand_off_lock = threading.Lock()


def _hand_off() -> HandOff:
    """This process's hand-off thread (started on first use; again in a
    forked Celery worker child, where the parent's thread does not run)."""
    global _hand_off_thread
    with _hand_off_lock:
        if _hand_off_thread is None or _hand_off_thread.pid != os.getpid() or not _hand_off_thread.is_alive():
            _hand_off_thread = HandOff()
            _hand_off_thread.start()
            atexit.register(_hand_off_thread.flush)
        return _hand_off_thread


def _hand_to_worker(events: list) -> bool:
    try:
        current_app.send_task(RECORD_TASK, args=[encode(events)], queue=QUEUE)
    except Exception as exc:  # broker down: record here; the sweep sends the rows once it is back
        log.warning("notifications: could not queue %d change(s), recording them here: %s", len(events),
                    type(exc).__name__)
        return False
    return True


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
    """The embedded mode's sender: each round records the queued events,
    then hands every due delivery to a small pool of threads, so a receiver
    that times out holds one thread, not every other message. A delivery
    already in a thread is not handed again; each send claims its row anyway."""

    def __init__(self, workers: int, pending: queue.SimpleQueue):
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fleet-notify-send")
        self.pending = pending
        self.busy: set[int] = set()
        self.lock = threading.Lock()

    def record_pending(self) -> None:
        """Record every batch of events queued so far, as one batch."""
        events = []
        while True:
            try:
                events += self.pending.get_nowait()
            except queue.Empty:
                break
        if events:
            record(list(dict.fromkeys(events)))

    def round(self) -> int:
        """Record what is queued, then hand due deliveries to the pool, as
        many as keep each thread one ahead (with every thread waiting on a
        receiver that times out, no query at all); returns how many."""
        self.record_pending()
        with self.lock:
            busy = len(self.busy)
        room = 2 * self.workers - busy
        if room <= 0:
            return 0
        handed = 0
        for delivery_id in deliveries_due(limit=room + busy):
            with self.lock:
                if delivery_id in self.busy:
                    continue
                self.busy.add(delivery_id)
            self.pool.submit(self._send, delivery_id)
            handed += 1
            if handed >= room:
                break
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
        try:
            self.record_pending()  # what the last commits owe is in the table for the next start
        except Exception as exc:
            log.warning("notifications: could not record the last changes: %s", type(exc).__name__)
        self.pool.shutdown(wait=False, cancel_futures=True)


def _sender_loop(stop: threading.Event, sender: Sender) -> None:
    global _pending
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
        _pending = None
        sender.close()
        connection.close()


def sender_start(stop: threading.Event) -> threading.Thread:
    """Start the embedded mode's sender thread (see the module docstring);
    it ends once `stop` is set and `wake()` called. From now on this
    process's commits queue their events for it."""
    global _pending
    _pending = queue.SimpleQueue()
    sender = Sender(workers=int(settings.FLEET_NOTIFY_SENDERS), pending=_pending)
    thread = threading.Thread(target=_sender_loop, args=(stop, sender), name="fleet-notifications", daemon=True)
    thread.start()
    return thread


def wake() -> None:
    """Wake the embedded sender now (after stop is set, to let it end)."""
    _wake.set()
