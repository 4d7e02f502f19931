"""The overview's "Needs attention": what is broken now, each with its
reason, its age and a link. Every row is derived from current state (run
conditions, binding conditions, hub connections), so a row disappears by
itself once its cause is gone."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import TextChoices

from rollouts import clock
from rollouts import models as m
from rollouts.controllers.family import FAMILIES
from rollouts.models.connections import HubConnection

from .approvals import ApprovalRow
from .common import conditions_by_type, duration_text, when
from .failures import failing_clusters
from .runs import RunRow, RunState, run_state


class Problem(TextChoices):
    RUN_FAILED = "run-failed", "run failed"
    RUN_STUCK = "run-stuck", "run stuck"
    RUN_STOPPED = "run-stopped", "run stopped"
    RUN_REJECTED = "run-rejected", "approval rejected"
    CLUSTER_FAILING = "cluster-failing", "cluster failing"
    HUB_FAILING = "hub-failing", "hub connection failing"


@dataclass(frozen=True)
class AttentionRow:
    problem: Problem
    subject: str  # what is broken: a run, a cluster, a hub
    reason: str
    since: datetime | None
    link_view: str  # a fleet_url view name ("run-detail", "placement-detail") or a plain route ("hubs")
    link_name: str = ""
    link_namespace: str = ""
    cluster: str = ""  # the failing cluster of a CLUSTER_FAILING row

    @property
    def age(self) -> str:
        return duration_text((clock.precise_now() - self.since).total_seconds()) if self.since else ""


def failed_run_hours() -> float:
    """How long a failed run stays on the overview (FLEET_OVERVIEW_FAILED_RUN_HOURS)."""
    return float(getattr(settings, "FLEET_OVERVIEW_FAILED_RUN_HOURS", 24))


def _run_problem(state: RunState, conditions) -> tuple[str, datetime | None]:
    conds = conditions_by_type({"conditions": conditions})
    if state == RunState.FAILED:
        cond = next(c for c in (conds.get("Initialized"), conds.get("Succeeded")) if c and c.get("status") == "False")
    else:
        cond = conds.get("Progressing") or {}
    return cond.get("message") or cond.get("reason") or "", when(cond.get("lastTransitionTime"))


_ACTIVE_PROBLEMS = {RunState.STUCK: Problem.RUN_STUCK, RunState.STOPPED: Problem.RUN_STOPPED}


def _active_run_rows(active: list[RunRow]) -> list[AttentionRow]:
    rows = []
    for run in active:
        problem = _ACTIVE_PROBLEMS.get(run.state)
        if problem:
            reason, since = _run_problem(run.state, run.conditions)
            rows.append(AttentionRow(problem, _run_label(run.namespace, run.name), reason, since, "run-detail",
                                     run.name, run.namespace))
    return rows


def _run_label(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _failed_run_rows(now: datetime) -> list[AttentionRow]:
    """Finished runs that failed within the configured hours, in one query (a
    UNION over the families, reading only runs finished since the cutoff)."""
    cutoff, rows = now - timedelta(hours=failed_run_hours()), []
    queries = [f.run.objects.filter(active=False, finished_at__gte=cutoff)
               .values_list("name", "namespace", "spec__state", "status__conditions").order_by() for f in FAMILIES]
    for name, namespace, spec_state, conditions in queries[0].union(*queries[1:], all=True):
        if run_state(spec_state, conditions) != RunState.FAILED:
            continue
        reason, since = _run_problem(RunState.FAILED, conditions)
        rows.append(AttentionRow(Problem.RUN_FAILED, _run_label(namespace, name), reason, since,
                                 "run-detail", name, namespace))
    return rows


def _rejected_rows(approvals: list[ApprovalRow]) -> list[AttentionRow]:
    """Gates of active runs whose latest decision is a rejection (one query,
    none when nothing waits for approval)."""
    if not approvals:
        return []
    latest = {}
    for namespace, name, action, actor, message, time in (
            m.Event.objects.filter(action__in=[m.Event.Action.APPROVED, m.Event.Action.REJECTED],
                                   object_name__in={a.name for a in approvals})
            .order_by("id").values_list("object_namespace", "object_name", "action", "actor", "message", "time")):
        latest[(namespace, name)] = (action, actor, message, time)
    rows = []
    for a in approvals:
        action, actor, message, time = latest.get((a.namespace, a.name), ("", "", "", None))
        if action == m.Event.Action.REJECTED:
            rows.append(AttentionRow(Problem.RUN_REJECTED, _run_label(a.namespace, a.run),
                                     f"{a.name} rejected by {actor}: {message}", time, "run-detail", a.run, a.namespace))
    return rows


def _cluster_rows() -> list[AttentionRow]:
    return [AttentionRow(Problem.CLUSTER_FAILING, f"{f.cluster} ({_run_label(f.namespace, f.placement)})", f.text,
                         f.since, "placement-detail", f.placement, f.namespace, f.cluster)
            for f in failing_clusters(FAMILIES)]


def _hub_rows() -> list[AttentionRow]:
    """Enabled hub connections whose sessions fail (the hubs page's "failing")."""
    return [AttentionRow(Problem.HUB_FAILING, name, f"{error} ({failures} failed sessions in a row)", since, "hubs")
            for name, error, failures, since in HubConnection.objects.filter(enabled=True, failures__gt=0)
            .order_by("name").values_list("name", "last_error", "failures", "last_error_at")]


def needs_attention(*, active: list[RunRow], approvals: list[ApprovalRow]) -> list[AttentionRow]:
    """What needs a person now, most urgent kinds first. `active` and
    `approvals` are the overview's own rows (no query repeated). Queries,
    however many runs and clusters: failed runs, failing bindings (each one
    UNION over the families), the latest decision on pending gates (when
    any wait), failing hub connections."""
    now = clock.now()
    return (_failed_run_rows(now) + _active_run_rows(active) + _rejected_rows(approvals)
            + _cluster_rows() + _hub_rows())
