"""Reads for update runs: their state in one word, progress, the runs list,
and the timeline of one run, each with a fixed number of queries however
many clusters a run has (the clusters live in the run's status JSON)."""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.paginator import Paginator
from django.db import models

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.family import FAMILIES

from .common import ConditionRow, condition_rows, conditions_by_type, duration_text, family_for, seconds_between, when

RUNS_PER_PAGE = 25
RUN_EVENTS_SHOWN = 20


class RunState(models.TextChoices):
    """A run's state in one word, derived from its conditions (§5)."""

    PENDING = "pending", "pending"
    INITIALIZED = "initialized", "initialized (idle)"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting"
    STOPPING = "stopping", "stopping"
    STOPPED = "stopped", "stopped"
    STUCK = "stuck", "stuck"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


_BY_PROGRESSING_REASON = {
    "UpdateRunWaiting": RunState.WAITING,
    "UpdateRunStopping": RunState.STOPPING,
    "UpdateRunStopped": RunState.STOPPED,
    "UpdateRunStuck": RunState.STUCK,
    "UpdateRunSucceeded": RunState.SUCCEEDED,
    "UpdateRunFailed": RunState.FAILED,
}


def run_state(spec_state: str | None, conditions: list[dict] | None) -> RunState:
    """Terminal conditions win; then the Progressing reason; a run that is
    initialized but has no Progressing condition is idle in Initialize."""
    by_type = {c.get("type"): c for c in conditions or []}
    initialized, succeeded = by_type.get("Initialized"), by_type.get("Succeeded")
    if (initialized or {}).get("status") == "False" or (succeeded or {}).get("status") == "False":
        return RunState.FAILED
    if (succeeded or {}).get("status") == "True":
        return RunState.SUCCEEDED
    if not initialized:
        return RunState.PENDING
    progressing = by_type.get("Progressing")
    if progressing is None:
        return RunState.INITIALIZED if spec_state == "Initialize" else RunState.PENDING
    return _BY_PROGRESSING_REASON.get(progressing.get("reason"), RunState.RUNNING)


def cluster_state(entry: dict) -> str:
    """pending, updating, succeeded or failed, from a cluster's conditions."""
    conds = conditions_by_type(entry)
    succeeded = (conds.get("Succeeded") or {}).get("status")
    if succeeded == "True":
        return "succeeded"
    if succeeded == "False":
        return "failed"
    return "updating" if (conds.get("Started") or {}).get("status") == "True" else "pending"


def progress(status: dict | None) -> tuple[int, int]:
    """(clusters succeeded, clusters in update stages)."""
    clusters = [c for s in (status or {}).get("stagesStatus") or [] for c in s.get("clusters") or []]
    return sum(cluster_state(c) == "succeeded" for c in clusters), len(clusters)


@dataclass
class RunRow:
    """A run as the overview and the runs list show it."""

    name: str
    namespace: str
    placement: str
    strategy: str
    snapshot_index: str
    state: RunState
    done: int
    total: int
    created: datetime
    active: bool

    @property
    def age(self) -> str:
        return duration_text((clock.precise_now() - self.created).total_seconds())


def run_row(run) -> RunRow:
    spec, status = run.spec or {}, run.status or {}
    done, total = progress(status)
    return RunRow(run.name, run.namespace, spec.get("placementName", ""), spec.get("stagedRolloutStrategyName", ""),
                  str(status.get("resourceSnapshotIndexUsed") or spec.get("resourceSnapshotIndex") or ""),
                  run_state(spec.get("state"), status.get("conditions")), done, total, run.creation_timestamp,
                  run.active)


def runs_active() -> list[RunRow]:
    """Unfinished runs of both families, newest first (one query per family)."""
    rows = [run_row(r) for f in FAMILIES for r in f.run.objects.filter(active=True)]
    return sorted(rows, key=lambda r: r.created, reverse=True)


def run_list(*, placement: str = "", state: str = "", page: int | str = 1):
    """A page of runs (RunRow), newest first, filtered by placement name and
    state. States are derived from conditions, so the filter reads only each
    run's conditions (not its cluster list); then the page's runs in full."""
    keys = []
    for family in FAMILIES:
        qs = family.run.objects.all()
        if placement:
            qs = qs.filter(spec__placementName=placement)
        for pk, created, spec_state, conditions in qs.values_list(
                "pk", "creation_timestamp", "spec__state", "status__conditions"):
            if not state or run_state(spec_state, conditions) == state:
                keys.append((created, pk, family))
    keys.sort(key=lambda k: (k[0], k[1]), reverse=True)
    page_obj = Paginator(keys, RUNS_PER_PAGE).get_page(page)
    page_obj.object_list = _rows_for(list(page_obj.object_list))
    return page_obj


def _rows_for(keys: list) -> list[RunRow]:
    runs = {}
    for family in FAMILIES:
        pks = [pk for _, pk, f in keys if f is family]
        if pks:
            runs.update({(family, r.pk): r for r in family.run.objects.filter(pk__in=pks)})
    return [run_row(runs[(f, pk)]) for _, pk, f in keys if (f, pk) in runs]


def run_placements() -> list[str]:
    """Placement names runs refer to, for the filter's choices."""
    names = set()
    for family in FAMILIES:
        names.update(family.run.objects.values_list("spec__placementName", flat=True))
    return sorted(n for n in names if n)


def run_get(*, name: str, namespace: str = ""):
    """The run or None."""
    return family_for(namespace).run.objects.filter(name=name, namespace=namespace).first()


# The timeline ---------------------------------------------------------------------


@dataclass
class ClusterView:
    name: str
    state: str
    started: datetime | None
    ended: datetime | None
    duration: str
    message: str


@dataclass
class TaskView:
    """A before- or after-stage task: an Approval gate or a TimedWait."""

    type: str
    when: str  # "before" or "after"
    state: str
    approval_name: str = ""
    approved_by: str = ""
    approved_at: datetime | None = None
    comment: str = ""
    can_approve: bool = False
    wait: str = ""
    remaining: int | None = None  # seconds left of a running TimedWait
    ends_at: datetime | None = None


@dataclass
class StageView:
    name: str
    state: str
    started: datetime | None
    ended: datetime | None
    duration: str
    clusters: list[ClusterView]
    before: list[TaskView] = field(default_factory=list)
    after: list[TaskView] = field(default_factory=list)
    is_deletion: bool = False

    @property
    def done(self) -> int:
        return sum(c.state == "succeeded" for c in self.clusters)


@dataclass
class Timeline:
    run: object
    state: RunState
    placement: str
    strategy: str
    snapshot_index: str
    stages: list[StageView]
    deletion: StageView | None
    conditions: list[ConditionRow]
    done: int
    total: int
    elapsed: str
    sentence: str
    events: list
    now: datetime

    @property
    def active(self) -> bool:
        return self.run.active

    @property
    def can_stop(self) -> bool:
        return self.run.active and self.state not in (RunState.STOPPED, RunState.STOPPING)

    @property
    def can_resume(self) -> bool:
        return self.run.active and (self.run.spec or {}).get("state") in ("Stop", "Initialize")


_STAGE_STATES = {
    ("Progressing", "True"): "updating",
    ("Progressing", "StageUpdatingWaiting"): "waiting",
    ("Progressing", "StageUpdatingStopping"): "stopping",
    ("Progressing", "StageUpdatingStopped"): "stopped",
    ("Progressing", "StageUpdatingFailed"): "failed",
}


def stage_state(entry: dict) -> str:
    conds = conditions_by_type(entry)
    succeeded = conds.get("Succeeded")
    if succeeded:
        if succeeded.get("status") == "True":
            return "skipped (no clusters)" if succeeded.get("reason") == "StageUpdatingSkippedNoClusters" else "succeeded"
        return "failed"
    progressing = conds.get("Progressing")
    if not progressing:
        return "not started"
    if progressing.get("status") == "True":
        return "updating"
    return _STAGE_STATES.get(("Progressing", progressing.get("reason")), "updating")


def _cluster_view(entry: dict) -> ClusterView:
    conds = conditions_by_type(entry)
    started = when((conds.get("Started") or {}).get("lastTransitionTime"))
    ended = when((conds.get("Succeeded") or {}).get("lastTransitionTime"))
    failed = (conds.get("Succeeded") or {}).get("status") == "False"
    return ClusterView(entry.get("clusterName", ""), cluster_state(entry), started, ended,
                       duration_text(seconds_between(started, ended)),
                       (conds.get("Succeeded") or {}).get("message", "") if failed else "")


def _stage_view(entry: dict, config: dict, ctx: dict, *, is_deletion: bool = False) -> StageView:
    started, ended = when(entry.get("startTime")), when(entry.get("endTime"))
    stage = StageView(entry.get("stageName", ""), stage_state(entry), started, ended,
                      duration_text(seconds_between(started, ended or (ctx["now"] if started else None))),
                      [_cluster_view(c) for c in entry.get("clusters") or []], is_deletion=is_deletion)
    for when_, key, config_key in (("before", "beforeStageTaskStatus", "beforeStageTasks"),
                                   ("after", "afterStageTaskStatus", "afterStageTasks")):
        configs = config.get(config_key) or []
        tasks = entry.get(key) or [{"type": c.get("type")} for c in configs]
        views = [_task_view(task, configs[i] if i < len(configs) else {}, when_, entry, stage, ctx)
                 for i, task in enumerate(tasks)]
        setattr(stage, when_, views)
    return stage


def _task_view(task: dict, config: dict, when_: str, entry: dict, stage: StageView, ctx: dict) -> TaskView:
    if task.get("type") == "TimedWait":
        return _timed_wait_view(task, config, entry, stage, ctx["now"])
    return _approval_view(task, when_, ctx)


def _timed_wait_view(task: dict, config: dict, entry: dict, stage: StageView, now: datetime) -> TaskView:
    from rollouts.engine.stages import parse_duration

    wait = config.get("waitTime", "")
    view = TaskView("TimedWait", "after", "not started", wait=wait)
    elapsed = conditions_by_type(task).get("WaitTimeElapsed")
    if elapsed and elapsed.get("status") == "True":
        view.state, view.ends_at = "elapsed", when(elapsed.get("lastTransitionTime"))
        return view
    progressing = conditions_by_type(entry).get("Progressing") or {}
    if stage.state == "waiting" and progressing.get("lastTransitionTime"):
        since = when(progressing["lastTransitionTime"])
        seconds = parse_duration(wait) if wait else 0
        view.remaining = max(0, int(seconds - (now - since).total_seconds()))
        view.ends_at = since + (now - now) + __import__("datetime").timedelta(seconds=seconds)
        view.state = "waiting"
    return view


def _approval_view(task: dict, when_: str, ctx: dict) -> TaskView:
    name = task.get("approvalRequestName", "")
    view = TaskView("Approval", when_, "not requested yet", approval_name=name)
    request = ctx["requests"].get(name)
    approved = (request.condition("Approved") or {}) if request else {}
    task_approved = conditions_by_type(task).get("ApprovalRequestApproved", {}).get("status") == "True"
    if approved.get("status") == "True" or task_approved:
        accepted = request is not None and request.condition_status("ApprovalAccepted") == "True"
        view.state = "approved and accepted" if accepted or task_approved else "approved (not accepted yet)"
        view.approved_at = when(approved.get("lastTransitionTime"))
        view.comment = approved.get("message", "")
        view.approved_by = ctx["approvers"].get(name, "")
    elif request is not None:
        view.state, view.can_approve = "waiting for approval", ctx["active"]
    return view
