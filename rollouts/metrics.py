"""Prometheus metrics: every metric object lives here, and only here.

Writers call the small functions below at the point where a change is known
(the runner saving a run, the placement controller saving a status, the
mirror applying a watch event, the broadcaster sending a push); nothing else
touches a metric object. The changes of run and placement status are recorded
after their transaction commits, so a rolled-back pass counts nothing. No
function here ever raises: a metric is never worth a failed write.

KubeFleet's hub metrics keep their names, labels, help texts and buckets
(kubefleet pkg/metrics/hub/metrics.go), so dashboards and alerts written for
a KubeFleet hub carry over. Ours are prefixed `fleetui_`. docs/metrics.md
lists them all.

Processes: with PROMETHEUS_MULTIPROC_DIR set (production), prometheus-client
writes every value to a file in that directory, per process; daphne and every
Celery worker write there, and /metrics aggregates them (MultiProcessCollector).
Without it (embedded mode), /metrics shows this one process's default registry.

Notification deliveries will be counted here once notifications exist: a
`fleetui_notification_deliveries_total{channel,outcome}` counter and its
recording function beside the others, called by the sender.
"""

import functools
import logging

import redis
from django.conf import settings
from django.db import transaction
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from rollouts import clock
from rollouts.conditions import find_condition

log = logging.getLogger(__name__)

# KubeFleet's hub metrics ----------------------------------------------------------------
# Gauges holding a timestamp aggregate across processes with "max": a timestamp
# only grows, so the largest is the latest, and a non-live mode keeps the value
# of a worker that has exited since (the one that saw a run succeed may be gone).

RUN_STATUS = Gauge(
    "fleet_workload_update_run_status_last_timestamp_seconds",
    "Last update timestamp of update run status in seconds",
    ["namespace", "name", "state", "condition", "status", "reason", "failureType"],
    multiprocess_mode="max",
)
APPROVAL_LATENCY = Histogram(
    "fleet_workload_update_run_approval_request_latency_seconds",
    "The latency from approval request creation to user approval in seconds",
    ["namespace", "name", "taskType"],
    buckets=[60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400],
)
STAGE_CLUSTER_UPDATING = Histogram(
    "fleet_workload_update_run_stage_cluster_updating_duration_seconds",
    "The duration the stage of an update run in seconds without stage tasks execution time",
    ["namespace", "name"],
    buckets=[15, 30, 60, 120, 300, 600, 1800, 3600],
)
PLACEMENT_STATUS = Gauge(
    "fleet_workload_placement_status_last_timestamp_seconds",
    "Last update timestamp of placement status in seconds",
    ["namespace", "name", "generation", "conditionType", "status", "reason"],
    multiprocess_mode="max",
)

# Ours -------------------------------------------------------------------------------------

FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
# Every metric has a label: an unlabelled one opens its multiprocess file on
# import, so a process that cannot write there would fail to start.
ENGINE_PASS = Histogram("fleetui_engine_pass_duration_seconds",
                        "Time one locked engine pass over a run takes (load, decide, act, save)",
                        ["changed"], buckets=FAST)
WAKEUP_LAG = Histogram("fleetui_engine_wakeup_lag_seconds",
                       "Time from a writer waking the engine for a run to the start of the run's pass",
                       ["path"], buckets=[*FAST, 30, 60])
HUB_SYNC_LAG = Histogram("fleetui_hub_sync_lag_seconds",
                         "Time from a hub watch event arriving to its mirrored row being committed",
                         ["hub"], buckets=FAST)
HUB_SYNC_ERRORS = Counter("fleetui_hub_sync_errors_total", "Hub sync sessions that failed", ["hub"])
LIVE_PUSH = Histogram("fleetui_live_push_latency_seconds",
                      "Time from a write's commit to its live update handed to the channel layer",
                      ["layer"], buckets=FAST)


def _never_raises(function):
    @functools.wraps(function)
    def safe(*args, **kwargs):
        try:
            function(*args, **kwargs)
        except Exception:  # a metric must never fail the write that called it
            log.warning("metric %s not recorded", function.__name__, exc_info=True)

    return safe


def _after_commit(function):
    """Record once the caller's transaction commits (at once outside one)."""

    @functools.wraps(function)
    def deferred(*args, **kwargs):
        transaction.on_commit(lambda: function(*args, **kwargs))

    return _never_raises(deferred)


# Recording: runs ----------------------------------------------------------------------------

_USER_ERROR = "failed to process the request due to a client error"
_FAILED_REASONS = {"UpdateRunFailed", "UpdateRunInitializedFailed"}


@_after_commit
@_never_raises
def run_status_changed(*, run, before: dict, after: dict, now) -> None:
    """A pass changed a run's status from `before` to `after` at `now`:
    the run's status timestamp, stages whose clusters all finished, and
    approvals the run just took in (as KubeFleet's updaterun/metrics.go)."""
    _run_status(run, after, now)
    for old, new in _stages(before, after):
        _stage_clusters_done(run, old, new, now)
        for task_type, key in (("beforeStage", "beforeStageTaskStatus"), ("afterStage", "afterStageTaskStatus")):
            for position, task in enumerate(new.get(key) or []):
                old_tasks = old.get(key) or []
                _approval_taken(run, old_tasks[position] if position < len(old_tasks) else {}, task, task_type)


def _run_status(run, status: dict, now) -> None:
    """The first of Succeeded, Progressing, Initialized observed for the run's generation."""
    conditions = status.get("conditions") or []
    for type_ in ("Succeeded", "Progressing", "Initialized"):
        cond = find_condition(conditions, type_)
        if cond and cond.get("observedGeneration") == run.generation:
            state = (run.spec or {}).get("state") or "Run"
            RUN_STATUS.labels(run.namespace, run.name, state, type_, cond.get("status", ""), cond.get("reason", ""),
                              _failure_type(cond)).set(now.timestamp())
            return


def _failure_type(cond: dict) -> str:
    """none | user_error | internal_error, as KubeFleet derives it from the condition."""
    if cond.get("status") != "False":
        return "none"
    if cond.get("reason") == "UpdateRunStuck":
        return "internal_error"
    if cond.get("reason") in _FAILED_REASONS:
        return "user_error" if _USER_ERROR in (cond.get("message") or "") else "internal_error"
    return "none"


def _stages(before: dict, after: dict):
    """(old stage status, new stage status) pairs by stage name."""
    old = {s.get("stageName"): s for s in before.get("stagesStatus") or []}
    for stage in after.get("stagesStatus") or []:
        yield old.get(stage.get("stageName"), {}), stage


def _stage_clusters_done(run, old: dict, new: dict, now) -> None:
    """Every cluster of the stage finished in this pass: its updating time,
    from the stage's start, without the after-stage tasks."""
    was = (find_condition(old.get("conditions"), "Progressing") or {}).get("reason")
    is_ = (find_condition(new.get("conditions"), "Progressing") or {}).get("reason")
    started = clock.parse_rfc3339(new.get("startTime"))
    if was == "StageUpdatingStarted" and is_ in ("StageUpdatingWaiting", "StageUpdatingSucceeded") and started:
        STAGE_CLUSTER_UPDATING.labels(run.namespace, run.name).observe((now - started).total_seconds())


def _approval_taken(run, old: dict, new: dict, task_type: str) -> None:
    """The run took an approval in: from the request's creation to then."""
    if (find_condition(old.get("conditions"), "ApprovalRequestApproved") or {}).get("status") == "True":
        return
    approved = find_condition(new.get("conditions"), "ApprovalRequestApproved") or {}
    created = find_condition(new.get("conditions"), "ApprovalRequestCreated") or {}
    if approved.get("status") != "True" or created.get("status") != "True":
        return
    seconds = (clock.parse_rfc3339(approved["lastTransitionTime"]) -
               clock.parse_rfc3339(created["lastTransitionTime"])).total_seconds()
    APPROVAL_LATENCY.labels(run.namespace, run.name, task_type).observe(seconds)


# Recording: placements, engine, mirror, live updates ------------------------------------------


@_after_commit
@_never_raises
def placement_status_changed(*, placement, condition_types: list[str]) -> None:
    """The placement's status changed. As KubeFleet: the first of its expected
    conditions (in order) not True for its generation, else "Completed"."""
    generation = str(placement.generation)
    conditions = (placement.status or {}).get("conditions") or []
    for type_ in condition_types:
        cond = find_condition(conditions, type_)
        if not cond or cond.get("status") != "True" or cond.get("observedGeneration") != placement.generation:
            current = cond and cond.get("observedGeneration") == placement.generation
            status, reason = (cond["status"], cond.get("reason", "")) if current else ("nil", "nil")
            PLACEMENT_STATUS.labels(placement.namespace, placement.name, generation, type_, status, reason).set(
                clock.now().timestamp())
            return
    PLACEMENT_STATUS.labels(placement.namespace, placement.name, generation, "Completed", "True", "Completed").set(
        clock.now().timestamp())


@_never_raises
def engine_pass_finished(*, seconds: float, changed: bool) -> None:
    """A pass took `seconds`; `changed`: whether it changed anything (a pass
    that did not is the cost of a wake-up or a poll that found nothing to do)."""
    ENGINE_PASS.labels("true" if changed else "false").observe(seconds)


@_never_raises
def engine_woken(*, seconds: float, path: str) -> None:
    """A pass started `seconds` after a writer woke the engine; `path` is
    "celery" (a run_advance task) or "loop" (the in-process engine loop)."""
    WAKEUP_LAG.labels(path).observe(max(seconds, 0.0))


@_never_raises
def hub_event_mirrored(*, hub: str, seconds: float) -> None:
    HUB_SYNC_LAG.labels(hub).observe(seconds)


@_never_raises
def hub_sync_failed(*, hub: str) -> None:
    HUB_SYNC_ERRORS.labels(hub).inc()


@_never_raises
def live_push_sent(*, seconds: float, layer: str) -> None:
    """A push reached the channel layer `seconds` after its commit; `layer`:
    "redis" (channels-redis) or "memory" (this process's sockets)."""
    LIVE_PUSH.labels(layer).observe(seconds)


# Scraping -------------------------------------------------------------------------------------


class QueueDepthCollector:
    """Celery queue depths, read from Redis at scrape time (LLEN of each queue
    and of the sub-queues kombu's redis transport keeps per priority step)."""

    def __init__(self, redis_url: str, queues: list[str]):
        self.client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self.queues = queues

    def collect(self):
        depth = GaugeMetricFamily("fleetui_celery_queue_depth", "Tasks waiting in a Celery queue", labels=["queue"])
        up = GaugeMetricFamily("fleetui_celery_broker_up", "Whether the scrape could read the queues from Redis")
        try:
            pipe = self.client.pipeline(transaction=False)
            for queue in self.queues:
                for step in PRIORITY_STEPS:
                    pipe.llen(f"{queue}{RedisChannel.sep}{step}" if step else queue)
            sizes = pipe.execute()
        except Exception:  # Redis down must not break the scrape of everything else
            log.warning("cannot read the Celery queue depths from Redis", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        steps = len(PRIORITY_STEPS)
        for i, queue in enumerate(self.queues):
            depth.add_metric([queue], sum(sizes[i * steps:(i + 1) * steps]))
        up.add_metric([], 1)
        yield depth
        yield up


def celery_queues() -> list[str]:
    """Every queue a worker consumes: the declared ones, then the routed ones."""
    names = [q.name for q in getattr(settings, "CELERY_TASK_QUEUES", ())]
    for route in getattr(settings, "CELERY_TASK_ROUTES", {}).values():
        if route.get("queue") and route["queue"] not in names:
            names.append(route["queue"])
    return names


@functools.cache
def _queue_collector(redis_url: str) -> QueueDepthCollector:
    return QueueDepthCollector(redis_url, celery_queues())


def exposition(accept: str = "") -> tuple[bytes, str]:
    """(body, content type) of a scrape, in the format the Accept header asks
    for (Prometheus text by default, OpenMetrics on request): every process's
    values (multiprocess mode) or this process's, plus the queue depths when
    Celery is configured."""
    registry = CollectorRegistry()
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry = _Union(REGISTRY)
    if settings.REDIS_URL:
        registry.register(_queue_collector(settings.REDIS_URL))
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


class _Union:
    """The default registry plus collectors of this scrape only (registering
    them on the default one would keep them for the life of the process)."""

    def __init__(self, base):
        self.base, self.extra = base, []

    def register(self, collector) -> None:
        self.extra.append(collector)

    def collect(self):
        yield from self.base.collect()
        for collector in self.extra:
            yield from collector.collect()
