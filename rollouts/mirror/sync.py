"""Keeping the mirror of a hub current: sessions of list-then-watch.

A session owns one HubConnection for a bounded time (so a Celery task can
run it and chain the next). It lists what it has no resourceVersion for,
then watches every kind at once (one thread per watch stream, all database
writes on the calling thread) and mirrors each change as it arrives, saving
the kind's resourceVersion in the same transaction. So nothing is lost
between sessions, across a broken stream or a crash: the next watch starts
where the last applied change left off, and the API server replays what
happened since (or answers 410 Gone, and the kind is listed again).
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django import db
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from rollouts import changes, clock, k8s, metrics
from rollouts.controllers.family import PLACEMENT_KINDS
from rollouts.models.connections import HubConnection, UnreadableCredential

from . import objects
from .kinds import MIRRORED_KINDS, HubKind

log = logging.getLogger(__name__)

LEASE_GRACE_SECONDS = 30
BACKOFF_FIRST_SECONDS = 5
MAX_WARNINGS = 50
WATCH_RETRIES = 2  # a stream that breaks is reopened this many times before the session gives up


def session_seconds() -> float:
    return float(getattr(settings, "FLEET_HUB_SESSION_SECONDS", 40))


def backoff_max_seconds() -> float:
    return float(getattr(settings, "FLEET_HUB_BACKOFF_MAX_SECONDS", 300))


def backoff_seconds(failures: int) -> float:
    """5 s, 10 s, 20 s… after 1, 2, 3… failed sessions in a row, capped."""
    return min(BACKOFF_FIRST_SECONDS * 2 ** max(failures - 1, 0), backoff_max_seconds())


@dataclass
class SyncResult:
    """What a session did. outcome: synced | skipped | failed.
    next_in: seconds until the next session should start (None: skipped)."""

    outcome: str
    changes: int = 0
    error: str = ""
    next_in: float | None = None
    warnings: list[str] = field(default_factory=list)


def hub_connections_due() -> list[int]:
    """Enabled connections no session holds and that are not backing off."""
    now = clock.now()
    return list(_claimable(HubConnection.objects.all(), now).values_list("pk", flat=True))


def _claimable(queryset, now):
    return queryset.filter(enabled=True).filter(Q(lease_until=None) | Q(lease_until__lt=now)).filter(
        Q(backoff_until=None) | Q(backoff_until__lte=now))


def hubs_keep_synced(*, stop: threading.Event, poll_seconds: float = 5.0) -> None:
    """Embedded mode (no Celery): keep a session going for every hub that is
    due, one thread per hub, until `stop` is set. Run it beside the engine loop."""
    running: dict[int, threading.Thread] = {}
    try:
        while not stop.is_set():
            try:
                due = hub_connections_due()
            except Exception:  # the database is busy or gone: keep the loop, look again
                log.exception("cannot read the hub connections")
                db.close_old_connections()
                due = []
            for connection_id in due:
                if connection_id not in running or not running[connection_id].is_alive():
                    running[connection_id] = threading.Thread(target=_session_thread, args=(connection_id, stop),
                                                              name=f"hub-sync-{connection_id}", daemon=True)
                    running[connection_id].start()
            stop.wait(poll_seconds)
    finally:
        for thread in running.values():
            thread.join()  # sessions see `stop` within a fraction of a second


def _session_thread(connection_id: int, stop: threading.Event) -> None:
    try:
        hub_sync(connection_id=connection_id, stop=stop)
    except Exception:  # keep the loop alive; the session recorded its error
        log.exception("hub sync session %s failed", connection_id)
    finally:
        db.connection.close()  # this thread's own database connection


def hub_sync(*, connection_id: int, seconds: float | None = None, stop: threading.Event | None = None) -> SyncResult:
    """Run one sync session with a hub, for about `seconds`.

    1. Claim the connection by compare-and-set on its lease: skipped when
       another session holds it, it is disabled, or it is backing off.
    2. Build a client from its kubeconfig.
    3. List every kind without a resourceVersion (first sync, after a 410,
       a kind the hub did not serve) and mirror it whole, deletions included.
    4. Watch every kind until the session ends, mirroring each change.
    5. Release: success clears the error and the backoff; a failure records
       the error (one line), counts it and backs off exponentially. What was
       mirrored stays, and the next session resumes from where this stopped.
    Setting `stop` ends the session early (the process is shutting down).
    """
    seconds = session_seconds() if seconds is None else seconds
    now = clock.now()
    lease = now + timedelta(seconds=seconds + LEASE_GRACE_SECONDS)
    if not _claimable(HubConnection.objects.filter(pk=connection_id), now).update(lease_until=lease):
        return SyncResult("skipped")
    connection = HubConnection.objects.get(pk=connection_id)
    session = None
    try:
        client = k8s.client_from_kubeconfig(connection.kubeconfig(), connection.context)
        session = _Session(connection, client, deadline=time.monotonic() + seconds, shutdown=stop)
        session.run()
    except (k8s.K8sError, UnreadableCredential) as exc:
        return _release_failed(connection, str(exc), session)
    except Exception:
        # Unexpected: let it surface, but never leave the hub leased and the error unsaid.
        _release_failed(connection, "the sync failed unexpectedly; see the worker's log", session)
        raise
    return _release_synced(connection, session)


def _release_synced(connection: HubConnection, session: "_Session") -> SyncResult:
    with transaction.atomic():
        HubConnection.objects.filter(pk=connection.pk).update(
            lease_until=None, failures=0, backoff_until=None, last_error="", last_sync=clock.now(),
            warnings=session.warnings[:MAX_WARNINGS])
        if connection.failures:  # recovered: "Needs attention" drops it
            changes.publish(changes.HubConnectionChanged(connection.name))
    return SyncResult("synced", changes=session.changes, next_in=0.0, warnings=session.warnings)


def _release_failed(connection: HubConnection, error: str, session) -> SyncResult:
    now = clock.now()
    failures = connection.failures + 1
    delay = backoff_seconds(failures)
    log.warning("hub %s: sync failed (%s in a row), next try in %ss: %s", connection.name, failures, delay, error)
    metrics.hub_sync_failed(hub=connection.name)
    with transaction.atomic():
        HubConnection.objects.filter(pk=connection.pk).update(
            lease_until=None, failures=F("failures") + 1, last_error=error, last_error_at=now,
            backoff_until=now + timedelta(seconds=delay))
        changes.publish(changes.HubConnectionChanged(connection.name))
    return SyncResult("failed", changes=session.changes if session else 0, error=error, next_in=delay)


class _Session:
    """One session's state. Watch threads only read the hub and queue what
    they see; this object applies it on the calling thread."""

    def __init__(self, connection: HubConnection, client, *, deadline: float, shutdown=None):
        self.connection, self.client, self.deadline = connection, client, deadline
        self.shutdown = shutdown or threading.Event()
        self.state = {k: dict(v) for k, v in (connection.watch_state or {}).items()}
        self.events: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.streams: set = set()  # open watch streams, closed when the session ends
        self.streams_lock = threading.Lock()
        self.changes = 0
        self.warnings: list[str] = []
        self.deferred: dict[tuple, tuple[HubKind, dict]] = {}
        # Watch health, written by the watch threads: kinds whose watch has not
        # opened yet, and the last error of kinds whose watch is reconnecting.
        self.unopened: set[str] = set()
        self.trouble: dict[str, k8s.K8sError] = {}

    def remaining(self) -> float:
        return 0.0 if self.shutdown.is_set() else self.deadline - time.monotonic()

    def run(self) -> None:
        try:
            for hub_kind in MIRRORED_KINDS:
                if not self.state.get(hub_kind.kind, {}).get("resourceVersion"):
                    self.relist(hub_kind)
            self.watch_all()
            self.require_watches_healthy()
        finally:
            self.stop.set()
            with self.streams_lock:
                for stream in self.streams:
                    stream.close()
            self.settle_deferred()

    # Listing ------------------------------------------------------------------

    def relist(self, hub_kind: HubKind) -> None:
        """List the kind (first version the hub serves) and make the mirror match."""
        for version in hub_kind.versions:
            try:
                items, resource_version = k8s.list_objects(self.client, hub_kind.group, version, hub_kind.plural)
            except k8s.NotFoundError:
                continue
            except k8s.PermanentK8sError as exc:
                if exc.status != 403:
                    raise
                self.warn(f"{hub_kind.plural}: not mirrored, the hub forbids listing them ({exc})")
                self.state.pop(hub_kind.kind, None)
                return
            waiting: dict = {}
            with transaction.atomic():
                self.warnings += objects.mirror_replace_all(self.connection, hub_kind, items, deferred=waiting)
                self.save_position(hub_kind, {"version": version, "resourceVersion": resource_version})
            self.deferred.update({key: (hub_kind, obj) for key, obj in waiting.items()})
            self.changes += len(items)
            return
        with transaction.atomic():  # the hub has no such kind (an older KubeFleet, a feature off)
            objects.mirror_replace_all(self.connection, hub_kind, [])
            self.save_position(hub_kind, {"served": False})

    def save_position(self, hub_kind: HubKind, position: dict) -> None:
        """Remember where the kind's watch resumes; renew the lease on the way
        (a long first list must not let a second session start beside us)."""
        self.state[hub_kind.kind] = position
        now = clock.now()
        lease = now + timedelta(seconds=max(self.remaining(), 0) + LEASE_GRACE_SECONDS)
        HubConnection.objects.filter(pk=self.connection.pk).update(watch_state=self.state, last_sync=now,
                                                                   lease_until=lease)

    def warn(self, line: str) -> None:
        if line not in self.warnings:
            self.warnings.append(line)

    # Watching -----------------------------------------------------------------

    def watched(self) -> list[HubKind]:
        return [k for k in MIRRORED_KINDS if self.state.get(k.kind, {}).get("resourceVersion")]

    def watch_all(self) -> None:
        for hub_kind in self.watched():
            self.start_watch(hub_kind)
        while True:
            remaining = self.remaining()
            if remaining <= 0:
                return
            try:
                message = self.events.get(timeout=min(remaining, 0.2))  # short: notice a shutdown
            except queue.Empty:
                continue
            self.handle(*message)

    def require_watches_healthy(self) -> None:
        """A session only counts as synced if the hub kept answering: no watch
        still failing to reconnect, none still waiting for the hub to accept
        it (waited for as long as a connection may take)."""
        waited_until = time.monotonic() + 2 * k8s.CONNECT_TIMEOUT
        while self.unopened and not self.trouble and time.monotonic() < waited_until:
            time.sleep(0.01)
        if self.trouble:
            raise next(iter(self.trouble.values()))
        if self.unopened:
            raise k8s.TemporaryK8sError(f"the hub did not open the watch of {sorted(self.unopened)[0]} in time")

    def start_watch(self, hub_kind: HubKind) -> None:
        position = self.state[hub_kind.kind]
        self.unopened.add(hub_kind.plural)
        thread = threading.Thread(target=self.watch_kind, name=f"watch-{hub_kind.plural}", daemon=True,
                                  args=(hub_kind, position["version"], position["resourceVersion"]))
        thread.start()

    def watch_kind(self, hub_kind: HubKind, version: str, resource_version: str) -> None:
        """Thread body: watch one kind until the session ends; queue
        ("event", kind, type, object, arrival), ("gone", kind) or ("error", kind, exc)."""
        try:
            self.watch_until_done(hub_kind, version, resource_version)
        finally:
            self.unopened.discard(hub_kind.plural)  # `trouble` keeps any failure

    def watch_until_done(self, hub_kind: HubKind, version: str, resource_version: str) -> None:
        retries = WATCH_RETRIES
        while not self.stop.is_set() and self.remaining() > 0:
            stream = k8s.watch_objects(self.client, hub_kind.group, version, hub_kind.plural,
                                       resource_version=resource_version,
                                       timeout_seconds=max(1, int(self.remaining())),
                                       on_open=lambda: self.opened(hub_kind))
            with self.streams_lock:
                if self.stop.is_set():
                    return
                self.streams.add(stream)
            try:
                for type_, obj in stream:
                    resource_version = (obj.get("metadata") or {}).get("resourceVersion") or resource_version
                    self.events.put(("event", hub_kind, type_, obj, time.monotonic()))
                    retries = WATCH_RETRIES
            except k8s.GoneError:
                self.events.put(("gone", hub_kind, None, None))
                return
            except k8s.TemporaryK8sError as exc:
                self.trouble[hub_kind.plural] = exc
                if retries <= 0:
                    self.events.put(("error", hub_kind, None, exc))
                    return
                retries -= 1
            except k8s.K8sError as exc:
                self.events.put(("error", hub_kind, None, exc))
                return
            finally:
                with self.streams_lock:
                    self.streams.discard(stream)
            # The server ended the stream (its timeout, a restart): watch again
            # from the last version seen; the pause keeps a flapping server from spinning us.
            self.stop.wait(0.05)

    def opened(self, hub_kind: HubKind) -> None:
        self.trouble.pop(hub_kind.plural, None)
        self.unopened.discard(hub_kind.plural)

    def handle(self, what: str, hub_kind: HubKind, type_, payload, arrived: float | None = None) -> None:
        if what == "gone":
            self.relist(hub_kind)
            if self.state.get(hub_kind.kind, {}).get("resourceVersion"):
                self.start_watch(hub_kind)
            return
        if what == "error":
            if isinstance(payload, k8s.PermanentK8sError) and payload.status == 403:
                self.warn(f"{hub_kind.plural}: no longer watched, the hub forbids it ({payload})")
                return
            raise payload
        self.apply(hub_kind, type_, payload)
        if arrived is not None and type_ != "BOOKMARK":
            metrics.hub_event_mirrored(hub=self.connection.name, seconds=time.monotonic() - arrived)

    def apply(self, hub_kind: HubKind, type_: str, obj: dict) -> None:
        """Mirror one watch event and remember its resourceVersion, atomically."""
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        with transaction.atomic():
            if type_ in ("ADDED", "MODIFIED"):
                self.upsert(hub_kind, obj)
            elif type_ == "DELETED":
                namespace, name = objects.address_of(hub_kind, obj)
                self.deferred.pop((hub_kind.kind, namespace, name), None)
                objects.mirror_delete(self.connection, hub_kind, namespace, name)
            if version:
                self.save_position(hub_kind, {**self.state[hub_kind.kind], "resourceVersion": version})
        if type_ != "BOOKMARK":
            self.changes += 1
        if type_ != "DELETED" and hub_kind.kind in PLACEMENT_KINDS and self.deferred:
            self.retry_deferred()

    def upsert(self, hub_kind: HubKind, obj: dict) -> None:
        key = (hub_kind.kind, *objects.address_of(hub_kind, obj))
        try:
            objects.mirror_upsert(self.connection, hub_kind, obj)
            self.deferred.pop(key, None)
        except objects.Deferred:
            self.deferred[key] = (hub_kind, obj)  # its placement's event is on another stream
        except objects.Skipped as exc:
            self.warn(str(exc))

    def retry_deferred(self) -> None:
        for hub_kind, obj in list(self.deferred.values()):
            with transaction.atomic():
                self.upsert(hub_kind, obj)

    def settle_deferred(self) -> None:
        """Objects still waiting for their placement: warn, and list their kind
        again next session so nothing is dropped for good."""
        if not self.deferred:
            return
        with transaction.atomic():
            for hub_kind, obj in self.deferred.values():
                namespace, name = objects.address_of(hub_kind, obj)
                self.warn(f"{hub_kind.kind} {name}: its placement is not on the hub; listed again next time")
                self.state.pop(hub_kind.kind, None)
            HubConnection.objects.filter(pk=self.connection.pk).update(watch_state=self.state)
