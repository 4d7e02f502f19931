"""Waking the engine the moment something changes a run, not on a timer.

A subscriber of rollouts.changes (registered in RolloutsConfig.ready): after
a transaction commits, what it changed decides what wakes up.

    RunChanged / ApprovalRequestChanged by a person   that run, at once
    BindingsApplied      a member finished applying: the placement's runs
    ClustersBound        clusters were bound: the member agent has work (in a
                         worker's task, on that placement, in that task)
    PlacementBound       a placement bound its clusters itself (RollingUpdate):
                         that placement's applies, ahead of the runs' work
    PlacementChanged     a person wrote or deleted a placement: its active
                         runs, if it has any
    FleetChanged         members, strategies, resources: every active run
    FreezeChanged        a freeze declared, edited, ended, a window opening or
                         closing: every active run (waits, or resumes)

The engine's own passes and a hub's changes wake nothing: the pass goes on by
itself, and a mirrored run is driven by its hub.

Embedded mode (no REDIS_URL): the in-process engine loop waits on a Listener;
a threading.Event wakes it in one process, a datagram on a Unix socket under
var/ across processes (the CLI and `fleet engine`). A wake-up may name
placements (PlacementBound): the loop looks for those between two runs'
advances (Listener.named_placements) and syncs them at once, instead of
after the tick's every advance. A writer of SQLite kept waiting for the
write lock says so (writer_waiting, called by fleetui/sqlite_backend): the
loop then leaves a gap between two advances (writer_gap), as its
transactions otherwise come back to back.
Celery mode (REDIS_URL): the matching tasks are sent by name, so this module
needs nothing of rollouts.tasks; a placement's sync goes to the `placements`
queue, which workers take from first. All are hints: the engine's
safety-net pass catches anything that was lost.
"""

import json
import logging
import os
import select
import socket
import threading
import time
from pathlib import Path

from celery import current_app, current_task
from django.conf import settings

from rollouts import changes, outages
from rollouts.controllers.family import FAMILIES

log = logging.getLogger(__name__)
INTERACTIVE_QUEUE = "interactive"
PLACEMENTS_QUEUE = "placements"
NAMED_MAX = 20  # placements one datagram names at most; more wake the loop plainly (its next tick syncs all)
# Long enough for a waiting writer's next try (SQLite's busy handler tries
# at least every 100 ms); ended early by the wake-up its commit sends.
WRITER_GAP_SECONDS = 0.15
_in_process = threading.Event()
_writer_waiting_here = threading.Event()  # a writer of this process, not the loop's thread, waits for the lock
_first_wake: list[float] = []  # when this process first woke its loop since the loop last looked (0 or 1 item)
_named_here: set[tuple[str, str, str]] = set()  # placements named to this process's listener, not yet taken
_named_lock = threading.Lock()
_listening: list = []  # this process's open Listener (0 or 1): only it takes named placements

# The Celery tasks (rollouts.tasks) this module sends, by name.
RUN_ADVANCE = "rollouts.tasks.run_advance"
RUNS_ADVANCE_ACTIVE = "rollouts.tasks.runs_advance_active"
RUNS_ADVANCE_FOR_PLACEMENT = "rollouts.tasks.runs_advance_for_placement"
MEMBERS_SYNC = "rollouts.tasks.members_sync"
PLACEMENT_SYNC = "rollouts.tasks.placement_sync"
_RUN_MODEL_OF_REQUEST = {family.approval_request.KIND: family.run for family in FAMILIES}
_RUN_MODEL_OF_PLACEMENT = {family.placement.KIND: family.run for family in FAMILIES}
# A wave's chain in Celery is advance -> the placement's applies -> find the
# placement's runs -> advance. Inside a worker's task the chain goes on right
# here after each commit, as the task's continuation: each queue hop cost a
# message round trip and a wait for a free worker process (a single run's
# six waves spent about a third of its time between tasks), and each step
# finds this process's caches warm from the one before (bindings decoded,
# placement entries built). The steps run one after another, never one
# inside the other's commit (a long run is a loop, not a recursion), and a
# task goes on for at most CHAIN_STEPS steps or CHAIN_SECONDS: then it
# queues the rest, as other work waits for a worker process too (a
# placement's sync a person waits for: 1.4 s p90 with whole runs in one
# task, 0.64 s with 0.15 s). The sweeps queue their advances (one a run).
CONTINUED_IN_TASK = frozenset({PLACEMENT_SYNC, RUNS_ADVANCE_FOR_PLACEMENT})
CHAIN_STEPS = 60  # about twenty waves
CHAIN_SECONDS = 0.15
_chain = threading.local()  # .steps: continuations this task has yet to run (None: not in one); .ran; .started; .shared


def socket_path() -> Path:
    return Path(getattr(settings, "FLEET_ENGINE_SOCKET", "") or settings.BASE_DIR / "var" / "engine.sock")


def notify(placements: frozenset[tuple[str, str, str]] = frozenset()) -> None:
    """Wake any engine loop now (best effort, never raises); `placements`
    ((kind, namespace, name)) are for it to sync before its other work."""
    now = time.time()  # wall clock, not rollouts.clock: a latency across processes, never frozen
    named = sorted(placements) if len(placements) <= NAMED_MAX else []
    if not _first_wake:
        _first_wake.append(now)
    if named and _listening:
        with _named_lock:
            _named_here.update(named)
    _in_process.set()
    _datagram(f"wake {now} {json.dumps(named)}" if named else f"wake {now}")


def _datagram(message: str) -> None:
    """Send `message` to the engine loop's socket, if there is one (never raises)."""
    path = socket_path()
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(message.encode(), str(path))
    except OSError:
        pass  # no engine listening, or its queue is full: it is awake anyway


def writer_waiting() -> None:
    """A SQLite write must wait for the lock (fleetui/sqlite_backend): ask
    the engine loop for a gap between two advances (best effort, never
    raises). The loop's own writes ask nothing: it waits for another."""
    listening = list(_listening)
    if not listening:
        _datagram(f"yield {time.time()}")
    elif threading.get_ident() != listening[0].thread:
        _writer_waiting_here.set()


def writer_gap() -> bool:
    """Between two advances of the engine loop of this process: when a
    writer said it waits for the lock, wait up to WRITER_GAP_SECONDS (less
    once a wake-up comes: the writer committed) holding no lock. Whether it
    waited."""
    listening = list(_listening)
    return listening[0].give_way(WRITER_GAP_SECONDS) if listening else False


def _celery() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def on_changes(events: list) -> None:
    """The changes subscriber: wake what a committed batch may move. The
    commit's time travels with a run's advance, for the wake-up lag metric
    (Unix time: it crosses processes)."""
    woken_at = time.time()
    tasks = dict.fromkeys(task for event in events for task in _tasks_for(event, woken_at))
    placements = {(e.placement_kind, e.namespace, e.name) for e in events if isinstance(e, changes.PlacementChanged)}
    if not tasks and not placements:
        return
    if not _celery():  # the loop syncs the placements a person waits for first, the rest in its tick
        notify(frozenset(args for name, args, queue in tasks if queue == PLACEMENTS_QUEUE))
        return
    tasks.update(dict.fromkeys(_runs_of(placements, woken_at)))
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
        if event.name:  # the wave's own applies (in a worker's task, right here)
            return [(PLACEMENT_SYNC, (event.placement_kind, event.namespace, event.name), None)]
        return [(MEMBERS_SYNC, (), None)]
    if isinstance(event, changes.PlacementBound):
        # A person waits for it, and its work is small (one placement's
        # bindings): ahead of every run's advance and of the waves' syncs.
        return [(PLACEMENT_SYNC, (event.placement_kind, event.namespace, event.name), PLACEMENTS_QUEUE)]
    if isinstance(event, (changes.FleetChanged, changes.FreezeChanged)):
        # A freeze that starts holding must show on every run; one that stops resumes them all.
        return [(RUNS_ADVANCE_ACTIVE, (), None)]
    return []


def _runs_of(placements: set[tuple[str, str, str]], woken_at: float) -> list[tuple]:
    """PlacementChanged: a lookup of its runs for each written placement
    that has active runs, found by one query a batch (no other run reads a
    placement; a bulk apply of 1,000 new placements queues nothing, where
    a task for each held up the next placement a person waited for)."""
    tasks = []
    for kind, run_model in _RUN_MODEL_OF_PLACEMENT.items():
        names = {name for k, _, name in placements if k == kind}
        if not names:
            continue
        with_runs = set(run_model.objects.filter(active=True, spec__placementName__in=names)
                        .values_list("namespace", "spec__placementName"))
        tasks += [(RUNS_ADVANCE_FOR_PLACEMENT, (kind, namespace, name, woken_at), None)
                  for k, namespace, name in sorted(placements) if k == kind and (namespace, name) in with_runs]
    return tasks


def _send(name: str, args: tuple, queue: str | None) -> None:
    """Send one task (or, inside a task, continue it here: CONTINUED_IN_TASK)."""
    if name in CONTINUED_IN_TASK and continue_in_task(name, args, queue):
        return
    _queue(name, args, queue)


def _queue(name: str, args: tuple, queue: str | None) -> None:
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


def continue_in_task(name: str, args: tuple, queue: str | None = None) -> bool:
    """In a worker's task, run task `name` in this process, after the step
    running now (a step's own continuations run after it, in order); whether
    it is taken. Outside a task (a web request, the CLI), or once the task
    has run CHAIN_STEPS of them or for CHAIN_SECONDS, the caller queues it
    instead. A step that fails here is queued: every one is idempotent."""
    task = current_app.tasks.get(name) if current_task else None
    if task is None:
        return False
    steps = getattr(_chain, "steps", None)
    if steps is not None:
        if _chain.ran + len(steps) >= CHAIN_STEPS or time.monotonic() - _chain.started > CHAIN_SECONDS:
            return False
        steps.append((task, args, queue))
        return True
    _chain.steps, _chain.ran, _chain.started, _chain.shared = [(task, args, queue)], 0, time.monotonic(), {}
    try:
        while _chain.steps:
            step, step_args, step_queue = _chain.steps.pop(0)
            _chain.ran += 1
            try:
                step.run(*step_args)
            except Exception as exc:  # a conflict or a dropped connection: a worker retries the queued one
                log.info("continuing with %s here failed (%s: %s); queued instead", step.name, type(exc).__name__, exc)
                _queue(step.name, step_args, step_queue)
    finally:
        _chain.steps = _chain.shared = None
    return True


def chain_shared(key: str, read):
    """In the steps continue_in_task runs, what `read()` gave the first of
    them that asked for `key`: a chain lasts at most CHAIN_SECONDS, as an
    engine tick whose runs share one read of the freezes holding and the
    members' labels (a query each on every advance of 100 rollouts' waves).
    Outside a chain, `read()`."""
    shared = getattr(_chain, "shared", None)
    if shared is None:
        return read()
    if key not in shared:
        shared[key] = read()
    return shared[key]


def named_placements() -> set[tuple[str, str, str]]:
    """The placements wake-ups named since the engine loop of this process
    last looked (empty when no loop listens here); never waits."""
    listening = list(_listening)
    return listening[0].named_placements() if listening else set()


class Listener:
    """The engine side: wait(timeout) returns early when notified; woken_at
    is then when the first wake-up since the last wait was sent (Unix time).
    Between waits the loop may take the placements wake-ups named
    (named_placements); the wake-ups it reads then still end the next wait."""

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
        self._woken = False  # a wake-up was read and no wait has returned for it yet
        self._wakes = 0  # wake-ups read, ever: a gap ends at the next one
        self._writer_waiting = False
        self.thread = threading.get_ident()  # the loop's: its own writes never ask for a gap
        self._times: list[float] = []
        self._named: set[tuple[str, str, str]] = set()
        with _named_lock:
            _named_here.clear()  # named before this listener: the first tick syncs every member anyway
        _listening[:] = [self]

    def wait(self, timeout: float) -> bool:
        self._collect()
        deadline = time.monotonic() + timeout
        while not self._woken and (left := deadline - time.monotonic()) > 0:
            select.select([self.sock], [], [], left)  # a writer's `yield` is no reason to tick: wait on
            self._collect()
        # The loop held no lock while it waited: a writer waiting then had its turn.
        self._writer_waiting = False
        woke, self._woken = self._woken, False
        self.woken_at = min(self._times) if self._times else None
        self._times.clear()
        self._named.clear()  # the tick that follows syncs every member
        return woke

    def named_placements(self) -> set[tuple[str, str, str]]:
        """The placements wake-ups named since the last look, each once;
        never waits."""
        self._collect()
        named, self._named = self._named, set()
        return named

    def give_way(self, seconds: float) -> bool:
        """When a writer waits for the write lock: wait up to `seconds`, or
        until the next wake-up (its commit). Whether it waited."""
        self._collect()
        if not self._writer_waiting:
            return False
        self._writer_waiting = False
        wakes, deadline = self._wakes, time.monotonic() + seconds
        while self._wakes == wakes and (left := deadline - time.monotonic()) > 0:
            if _in_process.wait(0) or select.select([self.sock], [], [], min(left, 0.01))[0]:
                self._collect()
        return True

    def _collect(self) -> None:
        """Take what was sent: the in-process flags, names and times, then
        every datagram on the socket."""
        if _in_process.is_set():
            _in_process.clear()
            self._woken = True
            self._wakes += 1
        if _writer_waiting_here.is_set():
            _writer_waiting_here.clear()
            self._writer_waiting = True
        with _named_lock:
            self._named |= _named_here
            _named_here.clear()
        self._times += _first_wake
        _first_wake.clear()
        while True:
            try:
                message = self.sock.recv(65536)
            except (BlockingIOError, OSError):
                break
            self._read(message.decode(errors="replace"))

    def _read(self, message: str) -> None:
        """`yield <unix time>` (a writer waits for the lock), or `wake <unix
        time> [<json list of [kind, namespace, name]>]`; an older sender's
        plain `wake` carries nothing more."""
        if message.startswith("yield"):
            self._writer_waiting = True
            return
        self._woken = True
        self._wakes += 1
        parts = message.split(" ", 2)
        try:
            self._times.append(float(parts[1]))
            self._named.update(tuple(p) for p in (json.loads(parts[2]) if len(parts) > 2 else []))
        except (IndexError, ValueError, TypeError):
            pass

    def close(self) -> None:
        if _listening and _listening[0] is self:
            _listening.clear()
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
