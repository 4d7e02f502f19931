"""Reads for approval requests: the inbox, the list, who approved, and the
review the Approve dialog shows (what the approval lets through)."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef, Subquery
from django.db.models.fields.json import KT, KeyTextTransform

from rollouts import clock, roles
from rollouts import models as m
from rollouts.controllers import labels as L
from rollouts.controllers.family import FAMILIES
from rollouts.services import policies

from .common import duration_text, family_for, when
from .health_gates import health_view_of
from .snapshots import ClusterGroup, ReleaseDiff, cluster_groups, release_diff
from .timeline import StageView, stage_clusters


@dataclass
class ApprovalRow:
    name: str
    namespace: str
    run: str
    stage: str
    task_type: str
    created: datetime
    approved: bool
    accepted: bool
    rejected: bool = False  # rejected, and its run stopped by it (not resumed since)

    @property
    def age(self) -> str:
        return duration_text((clock.precise_now() - self.created).total_seconds())

    @property
    def state(self) -> str:
        if self.accepted:
            return "approved and accepted"
        if self.approved:
            return "approved (not accepted yet)"
        return "rejected" if self.rejected else "waiting for approval"


def approval_row(request, *, stopped: bool = False) -> ApprovalRow:
    """The request as a row. `stopped`: its run's state is Stop, so a
    rejection (the request's annotated `decision`, see
    `with_latest_decision`) still holds; a resumed run waits at the gate again."""
    spec = request.spec or {}
    return ApprovalRow(request.name, request.namespace, spec.get("parentStageRollout", ""),
                       spec.get("targetStage", ""), request.labels.get(L.TASK_TYPE, ""), request.creation_timestamp,
                       request.condition_status("Approved") == "True",
                       request.condition_status("ApprovalAccepted") == "True",
                       stopped and getattr(request, "decision", None) == m.Event.Action.REJECTED)


def with_latest_decision(requests, kind_name: str):
    """Annotate each request with `decision`: the action of its latest
    approval or rejection Event (None without one). A correlated subquery on
    the Event index (object_kind, object_name, id): no query of its own."""
    latest = (m.Event.objects.filter(object_kind=kind_name, object_namespace=OuterRef("namespace"),
                                     object_name=OuterRef("name"),
                                     action__in=[m.Event.Action.APPROVED, m.Event.Action.REJECTED])
              .order_by("-id").values("action")[:1])
    return requests.annotate(decision=Subquery(latest))


def approvals_pending() -> list[ApprovalRow]:
    """Requests of unfinished runs still waiting for a person, oldest first
    (two queries per family: the active runs, then their requests with their
    latest decision). A rejected request whose run is stopped waits for no
    one and is left out; once the run is resumed it waits again and is back."""
    rows = []
    for family in FAMILIES:
        active = dict(((ns, name), state) for ns, name, state in
                      family.run.objects.filter(active=True).values_list("namespace", "name", "spec__state"))
        requests = with_latest_decision(family.approval_request.objects.filter(
            spec__parentStageRollout__in={name for _, name in active}), family.approval_request.KIND)
        for r in requests:
            key = (r.namespace, (r.spec or {}).get("parentStageRollout"))
            if key in active:
                rows.append(approval_row(r, stopped=active[key] == "Stop"))
    return sorted((r for r in rows if not r.approved and not r.rejected), key=lambda r: (r.created, r.name))


def approvals_waiting_count() -> int:
    """How many gates wait for a person: len(approvals_pending()), in one
    query per family (the requests of active runs, with their run's state and
    latest decision): the nav's "Approvals (n)" on every page and its push.
    The same number for everyone: a gate holds up the fleet, whoever may
    approve it."""
    count = 0
    for family in FAMILIES:
        run = family.run.objects.filter(active=True, namespace=OuterRef("namespace"),
                                        name=KeyTextTransform("parentStageRollout", OuterRef("spec")))
        requests = with_latest_decision(family.approval_request.objects.filter(Exists(run)),
                                        family.approval_request.KIND)
        for r in requests.annotate(run_state=Subquery(run.values(state=KT("spec__state"))[:1])).only("status"):
            rejected = r.run_state == "Stop" and r.decision == m.Event.Action.REJECTED
            count += r.condition_status("Approved") != "True" and not rejected
    return count


def approval_list() -> list[ApprovalRow]:
    """Every approval request, newest first; a rejected one (its run still
    stopped) is marked so. Two queries per family: the stopped runs, the
    requests with their latest decision."""
    rows = []
    for family in FAMILIES:
        stopped = set(family.run.objects.filter(active=True, spec__state="Stop").values_list("namespace", "name"))
        rows += [approval_row(r, stopped=(r.namespace, (r.spec or {}).get("parentStageRollout")) in stopped)
                 for r in with_latest_decision(family.approval_request.objects.all(), family.approval_request.KIND)]
    return sorted(rows, key=lambda r: (r.created, r.name), reverse=True)


def approval_policies_list() -> list[m.ApprovalPolicy]:
    """Every approval policy (gates of strategies, placements, clusters), one query."""
    return list(m.ApprovalPolicy.objects.all())


def approval_get(*, name: str, namespace: str = ""):
    return family_for(namespace).approval_request.objects.filter(name=name, namespace=namespace).first()


@dataclass(frozen=True)
class Approver:
    who: str
    at: datetime | None
    comment: str


def approval_approver(request) -> Approver | None:
    """Who approved the request and when, or None while it is not approved.
    The audit log names the person; a request approved outside Fleet UI has
    only its condition (its reason stands in for the name)."""
    condition = request.condition("Approved") or {}
    if condition.get("status") != "True":
        return None
    event = (m.Event.objects.filter(object_kind=request.KIND, object_namespace=request.namespace,
                                    object_name=request.name, action=m.Event.Action.APPROVED)
             .order_by("-id").first())
    who = event.actor if event else (condition.get("reason") or "unknown")
    comment = (event.details.get("comment", event.message) if event else condition.get("message", ""))
    return Approver(who, when(condition.get("lastTransitionTime")), comment)


@dataclass
class ApprovalReview:
    request: object
    row: ApprovalRow
    run: object | None
    snapshot_index: str
    next_stage: str
    groups: list[ClusterGroup]
    approver: Approver | None
    gate: object = None  # services.policies.Gate
    standing: object = None  # services.policies.Progress, None without a policy
    rejection: object = None  # the latest `rejected` Event while the gate waits
    release: ReleaseDiff | None = None  # what the run's snapshot changes against the one before it
    finished: StageView | None = None  # the stage that finished before this gate (None before the first)
    started_by: str = ""  # who created the run (its `created` Event), "" when unknown
    started_at: datetime | None = None
    later: list = field(default_factory=list)  # StageAhead after next_stage, before the run stops again
    stops_at: str = ""  # the Approval the run waits at next ("" when it then finishes)
    health: object = None  # selectors.health_gates.HealthView: the gate's last health check, None without one

    @property
    def next_clusters(self) -> int:
        return sum(len(g.clusters) for g in self.groups)

    @property
    def is_rejected(self) -> bool:
        """Rejected, and the run stopped by it: no one can approve until it is
        resumed (then the gate waits again)."""
        return self.row.rejected

    @property
    def can_reject(self) -> bool:
        return self.approver is None and not self.is_rejected and self.run is not None and self.run.active

    @property
    def others_approved(self) -> list[str]:
        """Who already approved toward the policy's quorum (empty without a policy)."""
        return self.standing.approvers if self.standing else []

    def refusal_for(self, user) -> str:
        """Why `user` may not approve now ("" when they may); the service
        checks again when they do."""
        if not user.has_perm(roles.APPROVE):
            return "Approving needs the release manager role."
        if self.standing is None:
            return ""
        reason = policies.refusal(self.gate, actor=user.get_username(), starter=self.standing.starter,
                                  approvers=self.standing.approvers)
        return f"You may not approve this gate: {reason}." if reason else ""


def approval_review(request) -> ApprovalReview:
    """What approving `request` lets happen, and the evidence for it: the
    run's snapshot index and what it changes against the placement's previous
    snapshot, the stage that finished before the gate (its clusters, how long
    each took, failures, availability now), who started the run and when,
    the policy's standing, the gate's last health check, and the clusters that update next (per snapshot
    they run now, the object diff to the run's snapshot). A fixed number of
    queries, whatever the number of clusters."""
    row = approval_row(request)
    run = family_for(request.namespace).run.objects.filter(namespace=request.namespace, name=row.run).first()
    status = (run.status or {}) if run else {}
    index = str(status.get("resourceSnapshotIndexUsed") or ((run.spec or {}) if run else {}).get(
        "resourceSnapshotIndex") or "")
    gate = policies.gate_of(request)  # from the run's status: the taskType label can be edited
    task_type = {"before": "beforeStage", "after": "afterStage"}.get(gate.gate, row.task_type)
    ahead, stops_at = stages_ahead(status, gate.stage or row.stage, task_type)
    next_stage, clusters = _next_clusters(ahead)
    groups = cluster_groups(placement=(run.spec or {}).get("placementName", ""), namespace=run.namespace,
                            index=index, clusters=clusters) if run and clusters else []
    standing = policies.progress(gate)
    approver = None if standing and not standing.met else approval_approver(request)
    rejection = _rejection(request) if approver is None else None
    row.rejected = rejection is not None and run is not None and run.active and (run.spec or {}).get("state") == "Stop"
    review = ApprovalReview(request, row, run, index, next_stage, groups, approver, gate, standing, rejection)
    review.later = [s for s in ahead if s.name != next_stage and s.clusters]
    review.stops_at = stops_at
    review.health = health_view_of(request)
    if run is not None:
        placement = (run.spec or {}).get("placementName", "")
        review.release = release_diff(placement=placement, namespace=run.namespace, index=index)
        finished = _finished_stage(status, gate.stage or row.stage, task_type)
        review.finished = stage_clusters(run, finished) if finished else None
        review.started_by, review.started_at = _run_created(run)
    return review


def _finished_stage(status: dict, stage: str, task_type: str) -> str:
    """An after-stage gate follows its own stage; a before-stage gate the
    stage before it ("" for the first stage)."""
    names = [s.get("stageName") for s in status.get("stagesStatus") or []]
    if stage not in names:
        return ""
    if task_type != "beforeStage":
        return stage
    at = names.index(stage)
    return names[at - 1] if at else ""


def _run_created(run) -> tuple[str, datetime | None]:
    """Who created the run and when: its latest `created` Event."""
    event = (m.Event.objects.filter(object_kind=run.KIND, object_namespace=run.namespace, object_name=run.name,
                                    action=m.Event.Action.CREATED).order_by("-id").values_list("actor", "time")
             .first())
    return event or ("", None)


def _rejection(request):
    """The latest rejection, unless an approval (vote) came after it."""
    event = (m.Event.objects.filter(object_kind=request.KIND, object_namespace=request.namespace,
                                    object_name=request.name,
                                    action__in=[m.Event.Action.APPROVED, m.Event.Action.REJECTED])
             .order_by("-id").first())
    return event if event and event.action == m.Event.Action.REJECTED else None


@dataclass(frozen=True)
class StageAhead:
    """A stage that approving this gate lets run, with its cluster count."""

    name: str
    clusters: list[str]
    waits: str = ""  # a TimedWait after it: "waits 1m after it"


def _tasks(entry: dict, key: str) -> list[str]:
    return [t.get("type", "") for t in entry.get(key) or []]


def stages_ahead(status: dict, stage: str, task_type: str) -> tuple[list[StageAhead], str]:
    """What approving the gate (`task_type` of `stage`) lets run before the
    run stops at another Approval: ([StageAhead], "the Approval after stage
    prod") or ([…], "") when the run then finishes. TimedWaits delay, they do
    not stop, so the stages behind them are let through too."""
    stages = status.get("stagesStatus") or []
    names = [s.get("stageName") for s in stages]
    if stage not in names:
        return [], ""
    ahead, at = [], names.index(stage)
    for offset, entry in enumerate(stages[at + (0 if task_type == "beforeStage" else 1):]):
        name = entry.get("stageName", "")
        own_gate = offset == 0 and task_type == "beforeStage"
        if not own_gate and "Approval" in _tasks(entry, "beforeStageTaskStatus"):
            return ahead, f"the Approval before stage {name}"
        after = _tasks(entry, "afterStageTaskStatus")
        ahead.append(StageAhead(name, [c.get("clusterName") for c in entry.get("clusters") or []],
                                "a TimedWait after it" if "TimedWait" in after else ""))
        if "Approval" in after:
            return ahead, f"the Approval after stage {name}"
    return ahead, ""


def _next_clusters(ahead: list[StageAhead]) -> tuple[str, list[str]]:
    """The first stage ahead that has clusters: its diff is shown in full."""
    return next(((s.name, s.clusters) for s in ahead if s.clusters), ("", []))
