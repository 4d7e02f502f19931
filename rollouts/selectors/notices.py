"""What a committed batch of changes means to a person: notices.

`notices_for(events)` reads the objects the events name and returns one
Notice per thing worth telling (a gate opened, a run failed…), each with an
idempotency key that is the same however often, and in whichever process,
the same change is read: the key, not the event, decides what was already
told (Delivery is unique per subscription and key).

    RunChanged              the run's outcome (stuck, failed, stopped,
                            succeeded) from its conditions; gates it opened
    ApprovalRequestChanged  approval given (Approved=True), or rejected (a
                            `rejected` audit Event)
    ClusterFailing          the placement's failing bindings
    FreezeChanged           a freeze started or ended

Bounded queries per batch: one per run kind, one per approval kind, one per
placement kind (labels), plus a few per gate opened (who may approve).
"""

from dataclasses import dataclass, field
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from rollouts import changes, clock
from rollouts import models as m
from rollouts.conditions import find_condition
from rollouts.controllers.family import FAMILIES
from rollouts.engine.timeline import approval_request_names
from rollouts.services import policies

from .failures import binding_failure

Kind = m.Subscription.EventKind
_RUN_FAMILY = {family.run.KIND: family for family in FAMILIES}
_REQUEST_FAMILY = {family.approval_request.KIND: family for family in FAMILIES}
_PLACEMENT_FAMILY = {family.placement.KIND: family for family in FAMILIES}
_APPROVERS_SHOWN = 20


@dataclass
class Notice:
    """One thing to tell, channel-neutral. `payload` is what the receiver
    gets (docs/notifications.md: the webhook schema's event part)."""

    kind: str
    key: str
    placement: str = ""
    namespace: str = ""
    run: str = ""
    placement_kind: str = ""
    occurred_at: str = ""
    payload: dict = field(default_factory=dict)
    placement_labels: dict = field(default_factory=dict)


def notices_for(events: list) -> list[Notice]:
    """The notices a committed batch of change events gives."""
    found: list[Notice] = []
    runs = [e for e in events if isinstance(e, changes.RunChanged)]
    requests = [e for e in events if isinstance(e, changes.ApprovalRequestChanged)]
    failing = [e for e in events if isinstance(e, changes.ClusterFailing)]
    if runs:
        found += _run_notices(runs)
    if requests:
        found += _request_notices(requests)
    if failing:
        found += _failing_notices(failing)
    found += [_freeze_notice(e) for e in events if isinstance(e, changes.FreezeChanged)]
    _add_placement_labels(found)
    return found


# Deep links ------------------------------------------------------------------


def absolute_url(view: str, name: str, namespace: str = "", anchor: str = "") -> str:
    """FLEET_BASE_URL + the dashboard's path of the object (+ #anchor)."""
    args = [a for a in (namespace, name) if a]
    route = f"rollouts:ns-{view}" if namespace else f"rollouts:{view}"
    try:
        path = reverse(route, args=args)
    except NoReverseMatch:  # a free-text name holding a "/": a link that says "not found"
        path = reverse(route, args=[quote(str(a), safe="") or "-" for a in args])
    return f"{settings.FLEET_BASE_URL.rstrip('/')}{path}{'#' + anchor if anchor else ''}"


def _run_facts(run, kind_name: str) -> dict:
    return {"kind": kind_name, "name": run.name, "namespace": run.namespace, "uid": str(run.uid),
            "placement": (run.spec or {}).get("placementName", ""),
            "state": (run.spec or {}).get("state") or "Run"}


# Runs ------------------------------------------------------------------------

# (condition type, status, reason) -> notice kind: a run's outcome, read from
# the conditions the engine (or a hub) sets (rollouts/engine/execution.py).
_OUTCOMES = [
    ("Succeeded", "True", None, Kind.RUN_SUCCEEDED),
    ("Succeeded", "False", None, Kind.RUN_FAILED),
    ("Progressing", "False", "UpdateRunStuck", Kind.RUN_STUCK),
    ("Progressing", "False", "UpdateRunStopped", Kind.RUN_STOPPED),
]


def run_outcome(conditions: list) -> tuple[str, dict] | None:
    """(notice kind, condition) of the run's outcome now, or None while it
    simply runs. Succeeded wins over Progressing (a failed run is also not
    progressing)."""
    for type_, status, reason, kind in _OUTCOMES:
        cond = find_condition(conditions, type_)
        if cond and cond.get("status") == status and (reason is None or cond.get("reason") == reason):
            return kind, cond
    return None


def _run_notices(events: list) -> list[Notice]:
    found = []
    for kind_name, family in _RUN_FAMILY.items():
        pks = {e.pk for e in events if e.kind == kind_name}
        if not pks:
            continue
        runs = list(family.run.objects.filter(pk__in=pks))
        for run in runs:
            outcome = run_outcome((run.status or {}).get("conditions") or [])
            if outcome is not None:
                found.append(_outcome_notice(run, kind_name, *outcome))
        found += _gate_notices(family, [r for r in runs if r.active])
    return found


def _outcome_notice(run, kind_name: str, kind: str, cond: dict) -> Notice:
    facts = _run_facts(run, kind_name)
    when = cond.get("lastTransitionTime") or ""
    # The transition time alone does not tell two stops apart: a run resumed
    # at a gate stays Progressing=False (waiting), so its time stays too. The
    # generation does: each spec.state change bumps it.
    key = f"{kind}:{run.uid}:{cond.get('type')}:{cond.get('reason', '')}:{when}:{cond.get('observedGeneration', '')}"
    return Notice(
        kind=kind, key=key,
        placement=facts["placement"], namespace=run.namespace, run=run.name, occurred_at=when,
        placement_kind=_placement_kind_of(kind_name),
        payload={"run": facts, "reason": cond.get("reason", ""), "message": cond.get("message", ""),
                 "summary": f"Run {run.name} {Kind(kind).label.removeprefix('run ')}: {cond.get('message', '')}",
                 "links": {"run": absolute_url("run-detail", run.name, run.namespace)}})


def _placement_kind_of(run_kind: str) -> str:
    return _RUN_FAMILY[run_kind].placement.KIND


def _gate_notices(family, runs: list) -> list[Notice]:
    """A gate opened: an approval request of an active run that is not
    approved yet. Keyed by the request's uid: told once per request."""
    by_name = {(run.namespace, name): run for run in runs for name in approval_request_names(run.status or {})}
    if not by_name:
        return []
    names = {name for _ns, name in by_name}
    found = []
    for request in family.approval_request.objects.filter(name__in=names):
        run = by_name.get((request.namespace, request.name))
        if run is None or (request.condition("Approved") or {}).get("status") == "True":
            continue
        found.append(_gate_notice(request, run, family))
    return found


def _gate_notice(request, run, family) -> Notice:
    gate = policies.gate_of(request)
    facts = _run_facts(run, family.run.KIND)
    who = may_approve_text(gate)
    occurred = clock.rfc3339(request.creation_timestamp) or ""
    return Notice(
        kind=Kind.GATE_OPENED, key=f"{Kind.GATE_OPENED}:{request.uid}", placement=facts["placement"],
        namespace=run.namespace, run=run.name, placement_kind=family.placement.KIND, occurred_at=occurred,
        payload={"run": facts, "stage": gate.stage, "gate": gate.gate or "", "approvalRequest": request.name,
                 "approvers": who,
                 "summary": f"Run {run.name} waits for approval at stage {gate.stage}: {who['text']}",
                 "links": {"run": absolute_url("run-detail", run.name, run.namespace),
                           "approve": absolute_url("approval-detail", request.name, request.namespace)}})


def may_approve_text(gate) -> dict:
    """Who may approve the gate under its policy: {"text", "users", "groups"}."""
    users = get_user_model().objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(groups__permissions__codename="approve_stage")
        | Q(user_permissions__codename="approve_stage"))
    policy, groups = gate.policy, []
    if policy is not None:
        groups = policy.groups
        for group_set in policy.group_sets:
            users = users.filter(groups__name__in=group_set)
        if policy.four_eyes and gate.run is not None:
            users = users.exclude(username=policies.run_starter(gate.run))
    names = sorted(set(users.values_list("username", flat=True)))[:_APPROVERS_SHOWN]
    if policy is None:
        text = "anyone with the approve permission"
    else:
        text = f"{policy.quorum} approval{'s' if policy.quorum != 1 else ''}"
        text += f" from {policy.groups_text}" if groups else ""
        text += ", four-eyes" if policy.four_eyes else ""
    return {"text": f"{text} ({', '.join(names) or 'nobody may approve now'})", "users": names,
            "groups": groups, "quorum": policy.quorum if policy else 1}


# Approval requests -------------------------------------------------------------


def _request_notices(events: list) -> list[Notice]:
    found = []
    for kind_name, family in _REQUEST_FAMILY.items():
        wanted = {(e.namespace, e.name) for e in events if e.kind == kind_name}
        if not wanted:
            continue
        names = {name for _ns, name in wanted}
        requests = [r for r in family.approval_request.objects.filter(name__in=names)
                    if (r.namespace, r.name) in wanted]
        rejections = _latest_rejections(kind_name, names)
        for request in requests:
            found += _decision_notices(request, family, rejections.get((request.namespace, request.name)))
    return found


def _latest_rejections(kind_name: str, names: set) -> dict:
    rows = (m.Event.objects.filter(object_kind=kind_name, object_name__in=names, action=m.Event.Action.REJECTED)
            .order_by("id"))
    return {(e.object_namespace, e.object_name): e for e in rows}


def _decision_notices(request, family, rejection) -> list[Notice]:
    run_name = (request.spec or {}).get("parentStageRollout", "")
    placement = ""
    run = family.run.objects.filter(namespace=request.namespace, name=run_name).only("spec").first()
    if run is not None:
        placement = (run.spec or {}).get("placementName", "")
    base = {"run": {"kind": family.run.KIND, "name": run_name, "namespace": request.namespace,
                    "placement": placement},
            "stage": (request.spec or {}).get("targetStage", ""), "approvalRequest": request.name,
            "links": {"run": absolute_url("run-detail", run_name, request.namespace),
                      "approve": absolute_url("approval-detail", request.name, request.namespace)}}
    where = {"placement": placement, "namespace": request.namespace, "run": run_name,
             "placement_kind": family.placement.KIND}
    found = []
    approved = request.condition("Approved") or {}
    if approved.get("status") == "True":
        when = approved.get("lastTransitionTime") or ""
        found.append(Notice(kind=Kind.APPROVED, key=f"{Kind.APPROVED}:{request.uid}:{when}", occurred_at=when,
                            payload={**base, "message": approved.get("message", ""),
                                     "summary": f"{request.name} approved: {approved.get('message', '')}"},
                            **where))
    if rejection is not None:
        when = clock.rfc3339(rejection.time) or ""
        found.append(Notice(kind=Kind.REJECTED, key=f"{Kind.REJECTED}:{request.uid}:{rejection.pk}",
                            occurred_at=when,
                            payload={**base, "by": rejection.actor, "message": rejection.message,
                                     "summary": f"{request.name} rejected by {rejection.actor}: {rejection.message}"},
                            **where))
    return found


# Failing clusters --------------------------------------------------------------


def _failing_notices(events: list) -> list[Notice]:
    found = []
    for kind_name, family in _PLACEMENT_FAMILY.items():
        wanted = {(e.namespace, e.name) for e in events if e.placement_kind == kind_name}
        if not wanted:
            continue
        names = {name for _ns, name in wanted}
        runs = {(r.namespace, (r.spec or {}).get("placementName", "")): r
                for r in family.run.objects.filter(active=True, spec__placementName__in=list(names))}
        for binding in family.binding.objects.filter(owner__name__in=names, spec__state="Bound").select_related("owner"):
            where = (binding.namespace, binding.owner.name)
            if where not in wanted:
                continue
            failure = binding_failure(cluster=binding.target_cluster, placement=binding.owner.name,
                                      namespace=binding.namespace, generation=binding.generation,
                                      conditions=(binding.status or {}).get("conditions"))
            if failure is not None:
                found.append(_failing_notice(binding, failure, family, runs.get(where)))
    return found


def _failing_notice(binding, failure, family, run) -> Notice:
    since = clock.rfc3339(failure.since) or ""
    links = {"placement": absolute_url("placement-detail", failure.placement, failure.namespace)}
    run_facts = None
    if run is not None:
        run_facts = _run_facts(run, family.run.KIND)
        links["run"] = absolute_url("run-detail", run.name, run.namespace)
        links["cluster"] = absolute_url("run-detail", run.name, run.namespace, anchor=f"cluster-{failure.cluster}")
    return Notice(
        kind=Kind.CLUSTER_FAILING,
        key=f"{Kind.CLUSTER_FAILING}:{binding.uid}:{failure.condition}:{failure.reason}:{since}",
        placement=failure.placement, namespace=failure.namespace, run=run.name if run else "",
        placement_kind=family.placement.KIND, occurred_at=since,
        payload={"run": run_facts, "cluster": failure.cluster, "placement": failure.placement,
                 "condition": failure.condition, "reason": failure.reason, "message": failure.message,
                 "summary": f"Cluster {failure.cluster} is failing ({failure.placement}): {failure.text}",
                 "links": links})


# Freezes -----------------------------------------------------------------------


def _freeze_notice(event) -> Notice:
    """A freeze started or ended, with who declared it, why and until when
    (one query). The key is the freeze, its new state and the minute, so a
    burst of publications of one change (an edit, two processes) is told once."""
    kind = Kind.FREEZE_STARTED if event.active else Kind.FREEZE_ENDED
    now = clock.now()
    row = m.Freeze.objects.filter(name=event.name).values(
        "declared_by", "reason", "ends_at", "windows", "time_zone", "selector", "ended_by").first() or {}
    facts = {"name": event.name, "active": event.active, "declaredBy": row.get("declared_by", ""),
             "reason": row.get("reason", ""), "until": clock.rfc3339(row.get("ends_at")) if row.get("ends_at") else "",
             "windows": row.get("windows", ""), "timeZone": row.get("time_zone", ""),
             "selector": row.get("selector", ""), "endedBy": row.get("ended_by", "")}
    who = f" by {facts['declaredBy']}" if facts["declaredBy"] else ""
    why = f": {facts['reason']}" if facts["reason"] else ""
    return Notice(kind=kind, key=f"{kind}:{event.name}:{now:%Y-%m-%dT%H:%M}", occurred_at=clock.rfc3339(now),
                  payload={"freeze": facts,
                           "summary": f"Freeze {event.name}{who} {'started' if event.active else 'ended'}{why}",
                           "links": {"overview": absolute_url("overview", ""),
                                     "freezes": f"{settings.FLEET_BASE_URL.rstrip('/')}{reverse('rollouts:freezes')}"}})


def _add_placement_labels(notices: list[Notice]) -> None:
    """Fill each notice's placement labels (for label selectors): one query
    per placement kind."""
    for kind_name, family in _PLACEMENT_FAMILY.items():
        names = {n.placement for n in notices if n.placement_kind == kind_name and n.placement}
        if not names:
            continue
        labels = {(p.namespace, p.name): p.labels or {}
                  for p in family.placement.objects.filter(name__in=names).only("namespace", "name", "labels")}
        for notice in notices:
            if notice.placement_kind == kind_name:
                notice.placement_labels = labels.get((notice.namespace, notice.placement), {})
