"""What changed, described once by the writer, delivered after commit.

A writer (a service, the engine runner, the member agent, the hub mirror)
publishes small events inside its transaction:

    changes.publish(changes.RunChanged.of(run, changes.Origin.PERSON))

and imports nothing that reacts to them. Once the transaction commits, every
event is handed to the subscribers registered at start-up (RolloutsConfig.ready):
the engine wake-up, the live push and the audit seal today; notifications and
metrics subscribe the same way. A rolled-back transaction (or savepoint)
delivers nothing of what it published, because each event rides on Django's
own on_commit list, which drops the callbacks of what rolled back.

Delivery is in memory, in the committing thread, one batch per transaction:
identical events are delivered once, in the order first published, to each
subscriber in the order it subscribed. A subscriber that raises is logged in
one line and never fails the write that committed, nor the other subscribers.
Events are hints: a crash between commit and delivery loses them, and the
engine's safety-net pass and the pages' resync cover that (docs/architecture.md
says why this is not an outbox table).
"""

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction

log = logging.getLogger(__name__)


class Origin(StrEnum):
    """Who made the change: a subscriber reacts differently to a person's
    stop than to the engine's own pass or to a hub's controller."""

    PERSON = "person"  # a person or a script: web, `fleet`, the admin
    ENGINE = "engine"  # Fleet UI's engine pass
    HUB = "hub"  # a mirrored KubeFleet hub's controller


@dataclass(frozen=True)
class RunChanged:
    """A run's spec or status changed, or the run was created."""

    kind: str
    pk: int
    origin: Origin

    @classmethod
    def of(cls, run, origin: Origin) -> "RunChanged":
        return cls(run.KIND, run.pk, origin)


@dataclass(frozen=True)
class ApprovalRequestChanged:
    """An approval request changed: approved, voted on, rejected, edited."""

    kind: str
    namespace: str
    name: str
    run_name: str  # spec.parentStageRollout
    origin: Origin

    @classmethod
    def of(cls, request, origin: Origin) -> "ApprovalRequestChanged":
        return cls(request.KIND, request.namespace, request.name,
                   (request.spec or {}).get("parentStageRollout", ""), origin)


@dataclass(frozen=True)
class BindingsApplied:
    """A member finished applying bindings of this placement: its runs may move."""

    placement_kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class ClusterFailing:
    """A member reported a new failure on a binding of this placement: the
    pages of the placement's active runs and the overview show it, though
    the run's own status may not change (the engine keeps retrying)."""

    placement_kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class ClustersBound:
    """The engine bound clusters to a snapshot: member clusters have work,
    on the bindings of this placement (empty names: any placement's)."""

    placement_kind: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class PlacementBound:
    """The placement controller bound this placement's clusters itself (a
    RollingUpdate placement rolling out): its members have work that no run
    will ask for, and a person waits to see it Available."""

    placement_kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class PlacementChanged:
    """A person wrote or deleted this placement: its runs may move (no other
    run reads it)."""

    placement_kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class FleetChanged:
    """Members, strategies or resources changed: any run may move."""


@dataclass(frozen=True)
class FreezeChanged:
    """A freeze window was declared, edited or ended, or a recurring window
    opened or closed: runs wait or resume, banners and notifications follow."""

    name: str
    active: bool  # whether the freeze holds the line now


@dataclass(frozen=True)
class HubConnectionChanged:
    """A mirrored hub's connection changed state (failing, recovered): the
    overview's "Needs attention" and the hubs page show it."""

    name: str


@dataclass(frozen=True)
class AccountChanged:
    """Users' groups, permissions, flags or password changed: what their open
    pages may see may have changed."""

    user_pks: tuple


@dataclass(frozen=True)
class SessionEnded:
    """A person signed out: whatever that session opened must close."""

    session_key: str


@dataclass(frozen=True)
class AuditAppended:
    """Audit Events were appended on this database: the chain has rows to seal."""

    using: str = "default"


Subscriber = Callable[[list], None]
_subscribers: list[Subscriber] = []
_local = threading.local()  # this thread's batch: the events of the transaction committing now


def subscribe(subscriber: Subscriber) -> None:
    """Deliver every committed batch of events to `subscriber(events)` (once
    per subscriber, however often this is called)."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def subscribers() -> list[Subscriber]:
    return list(_subscribers)


class _Batch:
    """The events of one commit, gathered as their callbacks run."""

    def __init__(self):
        self.waiting: list[weakref.ref] = []  # every _Published registered since the last delivery
        self.events: dict = {}  # committed events, in first-published order


def _batch() -> _Batch:
    batch = getattr(_local, "batch", None)
    if batch is None:
        batch = _local.batch = _Batch()
    return batch


class _Published:
    """One event on Django's on_commit list, in the savepoint it was published
    in, so a rollback drops it with the rest. The last one of a commit to run
    delivers the batch.

    Which one is last: Django runs a commit's callbacks from a list of its own
    and has dropped those of rolled-back savepoints beforehand; a dropped
    callback is garbage at once (CPython frees it with its last reference),
    so the registrations still alive and not yet run are those to come. A
    test's captureOnCommitCallbacks runs them in place instead, so there the
    ones after this one on the connection's list are those to come.
    """

    __slots__ = ("event", "using", "ran", "__weakref__")

    def __init__(self, event, using: str):
        self.event, self.using, self.ran = event, using, False

    def __call__(self) -> None:
        batch = _batch()
        self.ran = True
        batch.events[self.event] = None
        if self._more_to_come(batch):
            return
        _local.batch = None
        deliver(list(batch.events))

    def _more_to_come(self, batch: _Batch) -> bool:
        registered = [func for _sids, func, _robust in transaction.get_connection(self.using).run_on_commit]
        if self in registered:  # run in place by a test's captureOnCommitCallbacks
            return any(isinstance(func, _Published) for func in registered[registered.index(self) + 1:])
        return any(ref() is not None and not ref().ran for ref in batch.waiting)

    def __repr__(self) -> str:
        return f"<published {self.event!r}>"


def publish(event, *, using: str = "default") -> None:
    """Deliver `event` to every subscriber once the current transaction
    commits (at once outside a transaction). Publishing an event already
    waiting in this transaction adds nothing."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        deliver([event])
        return
    if _already_waiting(connection, event):
        return
    published = _Published(event, using)
    _batch().waiting.append(weakref.ref(published))
    # robust: should a delivery ever raise, the write has committed all the same.
    transaction.on_commit(published, using=using, robust=True)


def _already_waiting(connection, event) -> bool:
    """Whether an equal event waits where a rollback would drop it no sooner
    than this one: registered in this savepoint or one enclosing it."""
    open_savepoints = set(connection.savepoint_ids)
    return any(isinstance(func, _Published) and func.event == event and sids <= open_savepoints
               for sids, func, _robust in connection.run_on_commit)


def deliver(events: Iterable) -> None:
    """Hand committed events to every subscriber; none may fail the caller."""
    events = list(events)
    for subscriber in _subscribers:
        try:
            subscriber(events)
        except Exception as exc:  # the write has committed: a reaction failing must not undo that
            log.warning("%s.%s could not react to %d change(s): %s: %s", subscriber.__module__,
                        subscriber.__qualname__, len(events), type(exc).__name__, exc)
            log.debug("traceback of the failed reaction", exc_info=True)
