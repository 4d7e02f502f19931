"""The timeline of one run: its stages in order, each with its clusters in
update order, its before/after tasks (TimedWait countdowns, Approval gates),
the deletion stage, the run's conditions and one sentence saying what the run
waits for. Built from the run's status JSON plus three small queries, so the
query count does not grow with the number of clusters."""

import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property

from rollouts import clock
from rollouts import models as m
from rollouts.engine.stages import wait_seconds
from rollouts.engine.world import STUCK_THRESHOLD_SECONDS
from rollouts.services import policies

from .audit import event_rows
from .common import (
    ConditionRow,
    Memo,
    cluster_entry_keys,
    condition_rows,
    conditions_by_type,
    duration_text,
    family_for,
    seconds_between,
    when,
)
from .failures import (
    Failure,
    failed_attempts,
    placement_status_available,
    placement_status_failures,
    placement_status_pending,
)
from .health_gates import health_views
from .records import ClusterSpan, cluster_span
from .runs import RunState, cluster_state_of, run_state

RUN_EVENTS_SHOWN = 20
TABLE_OPEN_UP_TO = 25  # clusters: a bigger stage shows its map, its table loaded when opened

@dataclass(frozen=True)
class ClusterView:
    """One cluster of a stage as the run page shows it. Immutable: equal
    entries share one view (`_cluster_view`'s memo), across pushes and pages."""

    name: str
    state: str
    started: datetime | None
    ended: datetime | None
    duration: str
    message: str
    failure: Failure | None = None  # why a started cluster is failing (state "failing")
    pending: str = ""  # what an updating cluster's member still works on ("Available: ResourceNotAvailableYet…")
    available: bool = False  # its member reports Available for the placement's current generation

    # Preformatted: a 1,000-cluster page renders faster without a filter per cell.
    @property
    def started_text(self) -> str:
        return f"{self.started:%H:%M:%S}" if self.started else ""

    @property
    def ended_text(self) -> str:
        return f"{self.ended:%H:%M:%S}" if self.ended else ""

    @cached_property
    def fingerprint(self) -> int:
        """A number that changes with anything the view shows (computed once
        per view: a push compares 1,000 cells' fingerprints, rollouts/fragments.py)."""
        return zlib.crc32(repr((self.name, self.state, self.started, self.ended, self.duration, self.message,
                                self.failure, self.pending, self.available)).encode())


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
    policy: str = ""  # the approval policy's standing: "1 of 2 approvals, waiting for someone from sre"
    rejected: str = ""  # "rejected by rita: error rate up", until the gate is approved
    health: object = None  # selectors.health_gates.HealthView: the gate's last health check, None without one
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

    @cached_property
    def done(self) -> int:
        """Clusters succeeded (read by the page, the strip and a push's
        fingerprints: counted once)."""
        return sum(c.state == "succeeded" for c in self.clusters)

    @property
    def collapsed(self) -> bool:
        """Whether the run page shows the stage as its cluster map with its
        table folded away: a finished or pending stage without a failing
        cluster, or a big stage (`table_deferred`)."""
        return self.table_deferred or (
            self.state in ("succeeded", "skipped (no clusters)", "not started")
            and not any(c.failure for c in self.clusters))

    @property
    def table_deferred(self) -> bool:
        """A stage too big for its table to stay readable: the run page shows
        its map (a run of 1,000 clusters fits on one screen) and loads its
        table when someone opens it, so the page and its pushes stay small."""
        return len(self.clusters) > TABLE_OPEN_UP_TO


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
    spans: list[tuple[ClusterSpan, ...]] = field(default_factory=list)  # each stage's clusters, for the ETA

    @property
    def active(self) -> bool:
        return self.run.active

    @property
    def problem(self) -> bool:
        """Whether the sentence reports a problem (failed, stuck, a failing cluster)."""
        return self.state in (RunState.FAILED, RunState.STUCK) or bool(self.failing)

    @property
    def failing(self) -> list[ClusterView]:
        """The run's clusters whose member reports a failure now."""
        return [c for s in self.stages for c in s.clusters if c.failure]

    @property
    def badge(self) -> tuple[str, str]:
        """(css state, word) of the run's badge: a running or waiting run with
        a failing cluster reads "running · 1 failing" in the failing colour,
        so the badge never looks healthy while the sentence reports a problem."""
        failing = len(self.failing)
        if failing and self.state in (RunState.RUNNING, RunState.WAITING, RunState.STOPPING):
            return "failing", f"{self.state.label} · {failing} failing"
        return self.state.value, self.state.label

    @property
    def can_stop(self) -> bool:
        """Stop is allowed from Run (or no state); Initialize→Stop is refused."""
        return self.run.active and (self.run.spec or {}).get("state") in (None, "", "Run")

    @property
    def can_resume(self) -> bool:
        return self.run.active and (self.run.spec or {}).get("state") in ("Stop", "Initialize")

    @property
    def rejection(self) -> "TaskView | None":
        """The gate whose rejection stopped the run, while it is stopped."""
        return next((t for s in self.stages for t in s.before + s.after if t.state == "rejected"), None)

    @property
    def awaiting_approval(self) -> "TaskView | None":
        """The first gate someone can approve now (the banner's Approve…)."""
        return next((t for s in self.stages for t in s.before + s.after if t.can_approve), None)

    @property
    def in_flight(self) -> list[ClusterView]:
        """Clusters of the current stage that started and have not finished:
        what a stop waits for (§4.10: nothing new starts, these finish first).
        A failing cluster has started and not finished: it counts."""
        current, _ = _current(self)
        return [c for c in current.clusters if c.state in ("updating", "failing")] if current else []


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


def failure_text(failure: Failure) -> str:
    """`ApplyFailed: message · since 10:02:03 UTC · 3 attempts`."""
    return f"{failure.text} · {failure.when_text}" if failure.when_text else failure.text


# Parsed cluster entries and their views, by content: a push of a 1,000-cluster
# run parses only the entries that changed since any earlier read.
_PARSED, _VIEWS = Memo(20_000), Memo(20_000)


def _parsed(entries: list[dict]) -> list[tuple[tuple, ClusterView, ClusterSpan]]:
    """For each of a stage's cluster entries: (its key, its view before what
    its member reports now, its time span for the ETA)."""
    keys = cluster_entry_keys(entries)
    values = _PARSED.get_many(keys, lambda i: (_parsed_view(entries[i]), cluster_span(entries[i])))
    return [(key, view, span) for key, (view, span) in zip(keys, values, strict=True)]


def _cluster_views(clusters: list[tuple[tuple, ClusterView, ClusterSpan]], failures: dict[str, dict]) -> list[ClusterView]:
    """`_cluster_view` of each of a stage's parsed clusters: only those its
    member reports something of (failing, pending, available) are looked at."""
    views = [view for _, view, _ in clusters]
    reported = failures["failing"].keys() | failures["pending"].keys() | set(failures.get("available", ()))
    if reported:
        for i in [i for i, view in enumerate(views) if view.name in reported]:
            views[i] = _cluster_view(clusters[i][0], views[i], failures)
    return views


def _cluster_view(key: tuple, parsed: ClusterView, failures: dict[str, dict]) -> ClusterView:
    """A parsed cluster with what its member reports now (`_failures`):
    failing, still pending, available."""
    failure = failures["failing"].get(parsed.name) if parsed.state == "updating" else None
    pending = failures["pending"].get(parsed.name, "") if parsed.state == "updating" and failure is None else ""
    available = parsed.name in failures.get("available", ())
    if failure is None and not pending and not available:
        return parsed
    return _VIEWS.get((key, failure, pending, available), lambda: _reported(parsed, failure, pending, available))


def _parsed_view(entry: dict) -> ClusterView:
    conds = conditions_by_type(entry)
    started = when((conds.get("Started") or {}).get("lastTransitionTime"))
    ended = when((conds.get("Succeeded") or {}).get("lastTransitionTime"))
    failed = (conds.get("Succeeded") or {}).get("status") == "False"
    return ClusterView(entry.get("clusterName", ""), cluster_state_of(conds), started, ended,
                       duration_text(seconds_between(started, ended)),
                       (conds.get("Succeeded") or {}).get("message", "") if failed else "")


def _reported(view: ClusterView, failure: Failure | None, pending: str, available: bool) -> ClusterView:
    if failure:
        return replace(view, state="failing", failure=failure, message=failure_text(failure), available=available)
    return replace(view, pending=pending, available=available)


def stage_clusters(run, stage_name: str) -> StageView | None:
    """The run's stage `stage_name` with its clusters (state, start → end,
    failure, availability now), without its tasks; None when the run has no
    such stage. One query (the placement's status), for any number of clusters."""
    entry = next((e for e in (run.status or {}).get("stagesStatus") or [] if e.get("stageName") == stage_name), None)
    if entry is None:
        return None
    placement = (run.spec or {}).get("placementName", "")
    parsed = _parsed(entry.get("clusters") or [])
    now = clock.now()
    failures = _failures(family_for(run.namespace), placement, run.namespace, [view.name for _, view, _ in parsed])
    started, ended = when(entry.get("startTime")), when(entry.get("endTime"))
    views = [_with_failure(view, failures["failing"]) for view in _cluster_views(parsed, failures)]
    return StageView(stage_name, stage_state(entry), started, ended,
                     duration_text(seconds_between(started, ended or (now if started else None))), views)


def _with_failure(view: ClusterView, failing: dict[str, Failure]) -> ClusterView:
    """A cluster that finished and fails now (its member reports it) shows that too."""
    failure = failing.get(view.name)
    if view.failure is None and failure is not None:
        return replace(view, failure=failure, message=failure_text(failure))
    return view


def _stage_view(entry: dict, clusters: list[tuple[tuple, ClusterView, ClusterSpan]], config: dict, ctx: dict, *,
                is_deletion: bool = False) -> StageView:
    """A stage of the run from its status entry and its clusters (`_parsed`)."""
    started, ended = when(entry.get("startTime")), when(entry.get("endTime"))
    stage = StageView(entry.get("stageName", ""), stage_state(entry), started, ended,
                      duration_text(seconds_between(started, ended or (ctx["now"] if started else None))),
                      _cluster_views(clusters, ctx["failures"]),
                      is_deletion=is_deletion)
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
        return timed_wait_view(task, config, entry, stage.state, ctx["now"])
    return _approval_view(task, when_, ctx)


def timed_wait_view(task: dict, config: dict, entry: dict, state: str, now: datetime) -> TaskView:
    """A TimedWait task of a stage in `state`: not started, waiting
    (seconds left, end) or elapsed (when)."""
    wait = config.get("waitTime", "")
    view = TaskView("TimedWait", "after", "not started", wait=wait)
    elapsed = conditions_by_type(task).get("WaitTimeElapsed")
    if elapsed and elapsed.get("status") == "True":
        view.state, view.ends_at = "elapsed", when(elapsed.get("lastTransitionTime"))
        return view
    progressing = conditions_by_type(entry).get("Progressing") or {}
    if state == "waiting" and progressing.get("lastTransitionTime"):
        since = when(progressing["lastTransitionTime"])
        seconds = wait_seconds(wait) if wait else 0
        view.remaining = max(0, int(seconds - (now - since).total_seconds()))
        view.ends_at = since + timedelta(seconds=seconds)
        view.state = "waiting"
    return view


def _approval_view(task: dict, when_: str, ctx: dict) -> TaskView:
    name = task.get("approvalRequestName", "")
    view = TaskView("Approval", when_, "not requested yet", approval_name=name)
    request = ctx["requests"].get(name)
    approved = (request.condition("Approved") or {}) if request else {}
    task_approved = conditions_by_type(task).get("ApprovalRequestApproved", {}).get("status") == "True"
    standing = ctx["policies"].get(name)
    view.policy = standing.text if standing else ""
    view.health = ctx["health"].get(name)
    if standing and not standing.met and not task_approved and approved.get("status") == "True":
        approved = {}  # Approved=True the policy's votes do not back: the engine ignores it, so do we
    decision = ctx["decisions"].get(name)
    if approved.get("status") == "True" or task_approved:
        accepted = request is not None and request.condition_status("ApprovalAccepted") == "True"
        view.state = "approved and accepted" if accepted or task_approved else "approved (not accepted yet)"
        view.approved_at = when(approved.get("lastTransitionTime"))
        view.comment = approved.get("message", "")
        view.approved_by = ", ".join(standing.approvers) if standing else (decision or ("", ""))[1]
    elif request is not None:
        view.state, view.can_approve = "waiting for approval", ctx["active"]
        if decision and decision[0] == m.Event.Action.REJECTED:
            view.rejected = f"rejected by {decision[1]}: {decision[2]}"
            if ctx["stopped"]:  # the rejection stopped the run; once resumed, the gate waits again
                view.state, view.can_approve = "rejected", False
    return view


# Building the timeline ------------------------------------------------------------------


def run_timeline(run) -> Timeline:
    """Everything the run page shows. Queries: the run's approval requests,
    the approval and rejection Events naming who decided, the approval
    policies in scope of the run (plus member labels when a clusters policy
    exists; four more when one governs a gate: the
    votes, the run's epoch and snapshot, who started it), the run's latest Events,
    and for an active run its placement's status (which clusters fail)."""
    status, spec = run.status or {}, run.spec or {}
    family = family_for(run.namespace)
    names = [t.get("approvalRequestName") for s in status.get("stagesStatus") or []
             for t in (s.get("beforeStageTaskStatus") or []) + (s.get("afterStageTaskStatus") or [])
             if t.get("approvalRequestName")]
    requests = {r.name: r for r in family.approval_request.objects.filter(namespace=run.namespace, name__in=names)}
    now = clock.now()
    ctx = {"now": now, "requests": requests, "active": run.active,
           "stopped": run.active and spec.get("state") == "Stop",
           "decisions": gate_decisions(family.approval_request.KIND, run.namespace, list(requests)),
           "policies": policies.progress_for_run(run, requests) if requests else {},
           "health": health_views(family.approval_request.KIND, run.namespace, list(requests))}
    entries, deletion = status.get("stagesStatus") or [], status.get("deletionStageStatus")
    parsed = [_parsed(entry.get("clusters") or []) for entry in [*entries, deletion or {}]]
    # What members report matters for the clusters updating now (failing, pending): only theirs is read.
    updating = [view.name for clusters in parsed for _, view, _ in clusters if view.state == "updating"]
    ctx["failures"] = (_failures(family, spec.get("placementName", ""), run.namespace, updating) if run.active
                       else {"failing": {}, "pending": {}})
    state = run_state(spec.get("state"), status.get("conditions"))
    configs = (status.get("stagedUpdateStrategySnapshot") or {}).get("stages") or []
    stages = [_stage_view(entry, parsed[i], configs[i] if i < len(configs) else {}, ctx)
              for i, entry in enumerate(entries)]
    # progress(status), from the views just built: a 1,000-cluster run's clusters are read once.
    done, total = sum(s.done for s in stages), sum(len(s.clusters) for s in stages)
    timeline = Timeline(
        run=run, state=state, placement=spec.get("placementName", ""),
        strategy=spec.get("stagedRolloutStrategyName", ""),
        snapshot_index=str(status.get("resourceSnapshotIndexUsed") or spec.get("resourceSnapshotIndex") or ""),
        stages=stages, deletion=_stage_view(deletion, parsed[-1], {}, ctx, is_deletion=True) if deletion else None,
        conditions=condition_rows(status.get("conditions")), done=done, total=total,
        elapsed=duration_text(seconds_between(*_run_span(run, now))), sentence="",
        events=event_rows(m.Event.objects.filter(run=run.name, object_namespace=run.namespace), RUN_EVENTS_SHOWN),
        now=now, spans=[tuple(span for _, _, span in clusters) for clusters in parsed[:-1]])
    timeline.sentence = run_sentence(timeline)
    return timeline


def _failures(family, placement: str, namespace: str, clusters: list[str]) -> dict[str, dict]:
    """{"failing": {cluster: Failure}, "pending": {cluster: text},
    "available": {cluster, …}} of these clusters, from the placement's
    status (one query, none without clusters): the same for our own
    placements and mirrored KubeFleet ones."""
    status = {"placementStatuses": family.placement.objects.cluster_statuses(placement, namespace, clusters)}
    failing = placement_status_failures(status, placement=placement, namespace=namespace)
    return {"failing": failed_attempts(family, placement=placement, namespace=namespace, failures=failing),
            "pending": placement_status_pending(status), "available": placement_status_available(status)}


def gate_decisions(kind_name: str, namespace: str, names: list[str]) -> dict[str, tuple[str, str, str]]:
    """{request name: (action, actor, message)} of the latest approval or
    rejection Event of each request, in one query."""
    if not names:
        return {}
    rows = (m.Event.objects.filter(action__in=[m.Event.Action.APPROVED, m.Event.Action.REJECTED],
                                   object_kind=kind_name, object_namespace=namespace, object_name__in=names)
            .order_by("id").values_list("object_name", "action", "actor", "message"))
    return {name: (action, actor, message) for name, action, actor, message in rows}


def _run_span(run, now: datetime) -> tuple[datetime | None, datetime | None]:
    """From initialization (or creation) to the terminal condition (or now)."""
    conds = conditions_by_type(run.status)
    start = when((conds.get("Initialized") or {}).get("lastTransitionTime")) or run.creation_timestamp
    final = conds.get("Succeeded") or (conds.get("Initialized") if run_state(None, run.conditions()) == RunState.FAILED
                                       else None)
    end = when((final or {}).get("lastTransitionTime")) if final else None
    return start, end or now


# The sentence ------------------------------------------------------------------------------


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _current(timeline: Timeline) -> tuple[StageView | None, StageView | None]:
    """(the stage being worked on, the one after it), or (None, None)."""
    open_stages = [s for s in timeline.stages if not s.state.startswith(("succeeded", "skipped"))]
    if not open_stages:
        return None, None
    current = open_stages[0]
    later = timeline.stages[timeline.stages.index(current) + 1:]
    return current, (later[0] if later else None)


def _failure_message(timeline: Timeline) -> str:
    for cond in timeline.conditions:
        if cond.type in ("Succeeded", "Initialized") and cond.status == "False":
            return cond.message
    return "no reason recorded"


_FIXED = {
    RunState.PENDING: "The engine has not initialized this run yet; it starts as soon as the engine picks it up.",
    RunState.SUCCEEDED: "The run finished: every stage succeeded and nothing more will happen.",
    RunState.INITIALIZED: "The run is initialized and idle because its state is Initialize; "
                          "Resume (state Run) starts its first stage.",
}


def run_sentence(timeline: Timeline) -> str:
    """One plain sentence: what the run waits for and what would move it on."""
    state = timeline.state
    if state in _FIXED:
        return _FIXED[state]
    if state == RunState.FAILED:
        return (f"The run failed ({_failure_message(timeline)}); nothing more will happen, "
                "so start a new run to go on.")
    current, following = _current(timeline)
    if current is None:
        return _deletion_sentence(timeline)
    if state == RunState.STOPPED:
        if timeline.rejection:
            return (f"The run is stopped at stage {current.name}: {_rejected_text(timeline.rejection)}. "
                    "Resume sets its state back to Run and it waits at this gate again.")
        return f"The run is stopped at stage {current.name}; Resume sets its state back to Run and it goes on from there."
    updating = [c.name for c in current.clusters if c.state in ("updating", "failing")]
    failing = [c for c in current.clusters if c.failure]
    # Stop asked for and not yet reported stopped (the engine may not have
    # seen it yet, or a stuck cluster shows UpdateRunStuck instead, §4.10).
    if state == RunState.STOPPING or (timeline.run.spec or {}).get("state") == "Stop":
        return _stopping_sentence(timeline, current)
    if state == RunState.STUCK:
        return _stuck_sentence(timeline, current, updating, failing)
    if state == RunState.WAITING:
        return _waiting_sentence(current, following)
    if state == RunState.FROZEN:  # the engine's message: "Frozen by NAME (freeze X): REASON, until TIME"
        message = (conditions_by_type(timeline.run.status or {}).get("Progressing") or {}).get("message", "")
        return (f"{message}. In stage {current.name} no cluster starts (those updating finish); the run goes on "
                "within one engine pass when the freeze ends, or when a gate is opened by break-glass.")
    if failing:
        return (f"{_failing_text(failing)} in stage {current.name}; the run retries it and goes on when it "
                "reports its resources applied and available.")
    return (f"The run is updating {_names(updating) or 'the next clusters'} in stage {current.name} "
            f"({current.done} of {len(current.clusters)} done); it moves on as each cluster reports "
            "its resources applied and available.")


def _failing_text(failing: list[ClusterView]) -> str:
    first = failing[0].failure
    more = f" (and {len(failing) - 1} more failing)" if len(failing) > 1 else ""
    return f"Cluster {first.cluster} is failing{more}: {first.text}"


def _stuck_sentence(timeline: Timeline, current: StageView, updating: list[str], failing: list[ClusterView]) -> str:
    """UpdateRunStuck: the clusters it waits for and why (the member's
    failure when one is reported, else the engine's message)."""
    if failing:
        return (f"The run is stuck: c{_failing_text(failing)[1:]} in stage {current.name}; it goes on when the "
                "cluster reports its resources applied and available.")
    pending = next((c for c in current.clusters if c.pending), None)
    progressing = next((c for c in timeline.conditions if c.type == "Progressing"), None)
    reason = (f"{pending.name} reports {pending.pending}" if pending
              else progressing.message if progressing and progressing.message else "no failure reported yet")
    return (f"The run is stuck: cluster {_names(updating)} in stage {current.name} has been updating for over "
            f"5 minutes ({reason}); it goes on when the cluster reports its resources applied and available.")


def _rejected_text(task: TaskView) -> str:
    """ "rita rejected the approval of example-run-canary: “error rate up”" """
    who, _, reason = task.rejected.removeprefix("rejected by ").partition(": ")
    return f"{who} rejected the approval of {task.approval_name}: “{reason}”"


def _stopping_sentence(timeline: Timeline, current: StageView) -> str:
    """Why a stopping run is not stopped yet: the clusters already updating
    finish first (a stuck one keeps it stopping until it reports), nothing
    new starts, no gate is consumed and no wait completes (§4.10)."""
    why = f" after {_rejected_text(timeline.rejection)}" if timeline.rejection else ""
    if not timeline.in_flight:
        return (f"The run is stopping{why}: no cluster of stage {current.name} is still updating, so it reports "
                "stopped at the engine's next pass; nothing new starts.")
    stuck = [c for c in timeline.in_flight
             if c.started and (timeline.now - c.started).total_seconds() > STUCK_THRESHOLD_SECONDS]
    waiting = [f"{c.name} (updating since {c.started:%H:%M} UTC{', stuck' if c in stuck else ''})"
               if c.started else c.name for c in timeline.in_flight]
    hint = (" A stuck cluster keeps the run stopping until it reports: fix it, or Resume."
            if stuck or timeline.state == RunState.STUCK else "")
    return (f"The run is stopping{why}: waiting for {_names(waiting)} in stage {current.name} to finish; "
            f"nothing new starts. Clusters already updating finish first, then the run reports stopped.{hint}")


def _waiting_sentence(current: StageView, following: StageView | None) -> str:
    before = current.state == "not started" or any(t.state.startswith("waiting") for t in current.before)
    tasks = current.before if before else current.after
    gates = [f"approval of {t.approval_name}" + (f" ({t.policy})" if t.policy else "") for t in tasks
             if t.state == "waiting for approval"]
    gates += [f"the timed wait ({duration_text(t.remaining)} left, until {t.ends_at:%H:%M:%S} UTC)"
              for t in tasks if t.type == "TimedWait" and t.state == "waiting" and t.ends_at]
    gates += [f"the engine to accept the approval of {t.approval_name}" for t in tasks
              if t.state.startswith("approved (not")]
    waits_for = " and ".join(gates) or "its stage tasks"
    if before:
        return f"The run is waiting for {waits_for} before stage {current.name}; once given, stage {current.name} starts."
    then = f"stage {following.name} starts" if following else "the run moves to the deletion stage and finishes"
    return f"The run is waiting for {waits_for} after stage {current.name}; once done, {then}."


def _deletion_sentence(timeline: Timeline) -> str:
    deletion = timeline.deletion
    left = [c.name for c in (deletion.clusters if deletion else []) if c.state != "succeeded"]
    if left:
        return (f"Every stage is done; the run is removing the placement from {_names(left)}, which are no "
                "longer scheduled, and finishes when they are clean.")
    return "Every stage is done; the run finishes on the engine's next pass."
