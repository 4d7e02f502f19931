"""Health gates: check a waiting gate's Prometheus queries, keep what they
showed, and act on it as the gate's mode says (docs/health-gates.md).

Never inside an engine pass: the Celery tasks on the `health` queue
(rollouts/tasks_health.py) or, in the embedded mode, the engine loop's
health thread (engine/loop.py) call `health_gates_due` and
`health_gate_check`. Approving and rejecting go through the services a
person uses (services/approvals.py) as `system:health-gate`, so approval
policies, freezes, mirrored hubs and the audit log work alike for both.
"""

import logging
import math
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from rollouts import changes, clock, prometheus
from rollouts import models as m
from rollouts.api import health_gate
from rollouts.api.errors import ApiError
from rollouts.api.kinds import FLEET_KINDS
from rollouts.controllers.family import FAMILIES
from rollouts.engine import health
from rollouts.engine.stages import request_gates
from rollouts.selectors.freezes import freeze_holding_run

from . import approvals
from .policies import PolicyDenied

log = logging.getLogger(__name__)
ACTOR = "system:health-gate"
VIA = "health-gate"
REFUSED_TEXT = "not approved automatically: an approval policy governs this gate, people decide"
SAMPLES = 60  # points per series kept for the sparkline
QUEUED_SECONDS = 60  # a check task not taken by then (lost, or no `health` worker) is sent again
_KINDS = {kind.kind: kind for kind in FLEET_KINDS}
_FAMILY_BY_REQUEST_KIND = {family.approval_request.KIND: family for family in FAMILIES}


@dataclass(frozen=True)
class GateRef:
    """An approval request whose gate has a health gate: what a task passes."""

    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class _Target:
    request: object
    run: object
    stage: str
    gate: str
    declared: health_gate.HealthGate
    clusters: list[str]


def strategy_manifest(strategy) -> dict:
    """Enough of a strategy's manifest for the annotation parsers."""
    return {"metadata": {"annotations": strategy.annotations or {}}, "spec": strategy.spec or {}}


def health_gates_due() -> list[GateRef]:
    """The waiting gates with a health gate whose next check is due. Four
    queries per family at most (running runs, their annotated strategies,
    their requests, the rows of earlier checks), for any number of gates."""
    now = clock.precise_now()
    due = []
    for family in FAMILIES:
        stages = _gated_stages(family)  # {(namespace, run name): stages with a health gate}
        if not stages:
            continue
        requests = [r for r in family.approval_request.objects.filter(
            spec__parentStageRollout__in={name for _, name in stages})
            if (r.spec or {}).get("targetStage") in stages.get((r.namespace, r.spec.get("parentStageRollout")), ())
            and r.condition_status("Approved") != "True"]
        later = set(m.HealthCheck.objects.filter(request_kind=family.approval_request.KIND, next_at__gt=now,
                                                 request_name__in=[r.name for r in requests])
                    .values_list("request_namespace", "request_name"))
        due += [GateRef(r.KIND, r.namespace, r.name) for r in requests if (r.namespace, r.name) not in later]
    return due


def _gated_stages(family) -> dict[tuple[str, str], set[str]]:
    """{(namespace, run): its stages with a health gate} for running runs
    (not stopped) whose strategy has the annotation."""
    # Stopped runs are left out in Python: exclude(spec__state=…) would also
    # drop the runs without spec.state (NULL), which run (the tutorial's).
    runs = {(ns, name): strategy for ns, name, strategy, state in family.run.objects.filter(active=True)
            .values_list("namespace", "name", "spec__stagedRolloutStrategyName", "spec__state") if state != "Stop"}
    if not runs:
        return {}
    strategies = family.strategy.objects.filter(name__in=set(runs.values()),
                                                annotations__has_key=health_gate.ANNOTATION)
    declared = {(s.namespace, s.name): {g.stage for g in health_gate.parse(strategy_manifest(s))} for s in strategies}
    return {key: declared[(key[0], strategy)] for key, strategy in runs.items() if declared.get((key[0], strategy))}


def health_gates_enqueue_due(send) -> int:
    """Celery mode: call `send(gate)` for each gate due that has no check
    queued yet, marking it queued (compare-and-set on queued_until, so two
    listers send one task). Returns how many were sent."""
    now, sent = clock.precise_now(), 0
    for gate in health_gates_due():
        row, _ = m.HealthCheck.objects.get_or_create(request_kind=gate.kind, request_namespace=gate.namespace,
                                                     request_name=gate.name, defaults={"next_at": now})
        free = Q(queued_until__isnull=True) | Q(queued_until__lte=now)
        if m.HealthCheck.objects.filter(free, pk=row.pk).update(queued_until=now + timedelta(seconds=QUEUED_SECONDS)):
            send(gate)
            sent += 1
    return sent


def health_gate_check(*, kind: str, namespace: str, name: str, query=prometheus.query_range) -> m.HealthCheck | None:
    """Check one gate now, unless another checker is at it or it is not due.

    1. Find the gate: the request still waits, its run runs (not stopped),
       and the strategy declares a health gate for it; else do nothing.
    2. Claim the check: move next_at forward by the interval with a
       compare-and-set; a checker that loses returns None.
    3. Ask Prometheus for each query over the window, outside any
       transaction (`query`: prometheus.query_range, or a fake in tests).
    4. Judge (engine.health.judge), save the row and publish the change
       (engine origin: the pages refresh, nothing wakes).
    5. Act as the mode says: approve or reject through the approval
       services as system:health-gate (an approved gate or a stopped run is
       not checked again; a resumed run is). A gate an approval policy
       governs is left to people: the refusal is recorded once (outcome
       "refused"). A refusal for another reason (a freeze, a hub) is noted
       on the row and tried again at the next check.
    Returns the row, or None when there is nothing to check."""
    target = _target(kind, namespace, name)
    if target is None:  # the row stays: it is the evidence the gate was decided on
        return None
    row = _claim(target)
    if row is None:
        return None
    now = clock.precise_now()
    answers = _ask(target, query, now=now)
    judgement = health.judge(target.declared, answers, opened=target.request.creation_timestamp, now=now)
    _save(row, target, judgement, answers, now=now)
    if judgement.action != health.Action.NONE and row.outcome != m.HealthCheck.Outcome.REFUSED:
        _act(row, target, judgement)
    return row


def _target(kind: str, namespace: str, name: str) -> _Target | None:
    family = _FAMILY_BY_REQUEST_KIND.get(kind)
    request = family and family.approval_request.objects.filter(namespace=namespace, name=name).first()
    if request is None or request.condition_status("Approved") == "True":
        return None
    run = family.run.objects.filter(namespace=namespace, name=(request.spec or {}).get("parentStageRollout")).first()
    if run is None or not run.active or (run.spec or {}).get("state") == "Stop":
        return None
    strategy = family.strategy.objects.filter(namespace=namespace,
                                              name=(run.spec or {}).get("stagedRolloutStrategyName")).first()
    gates = request_gates(run.status or {}, name, run=run.name, stage=(request.spec or {}).get("targetStage", ""))
    if strategy is None or not gates:
        return None
    stage, gate = gates[0]
    declared = health_gate.gate_of(strategy_manifest(strategy), stage, gate)
    if declared is None:
        return None
    return _Target(request, run, stage, gate, declared, _stage_clusters(run, stage))


def _stage_clusters(run, stage: str) -> list[str]:
    """The clusters of the stage, as the run recorded them, in update order."""
    entry = next((s for s in (run.status or {}).get("stagesStatus") or [] if s.get("stageName") == stage), {})
    return [c.get("clusterName") for c in entry.get("clusters") or [] if c.get("clusterName")]


def _claim(target: _Target) -> m.HealthCheck | None:
    """The row, claimed for this check by moving next_at forward; None when
    another checker holds it or its check is not due."""
    request, now = target.request, clock.precise_now()
    row, _ = m.HealthCheck.objects.get_or_create(
        request_kind=request.KIND, request_namespace=request.namespace, request_name=request.name,
        defaults={"run": target.run.name, "run_uid": str(target.run.uid), "stage": target.stage, "gate": target.gate,
                  "mode": target.declared.mode, "next_at": now})
    if row.next_at > now:
        return None
    claimed = m.HealthCheck.objects.filter(pk=row.pk, next_at=row.next_at).update(
        next_at=now + timedelta(seconds=target.declared.interval_seconds))
    if not claimed:
        return None
    if row.run_uid != str(target.run.uid):  # the run was made again under the same name
        row.outcome = m.HealthCheck.Outcome.NONE
    return row


def _ask(target: _Target, query, *, now) -> list[health.Answer]:
    declared = target.declared
    start = health.window_start(opened=target.request.creation_timestamp, now=now, gate=declared).timestamp()
    step = max(declared.interval_seconds, (now.timestamp() - start) / SAMPLES, 0.1)
    answers = []
    for q in declared.queries:
        expr = health_gate.expand(q, target.clusters)
        if not target.clusters:
            answers.append(health.Answer(q, expr, error="the stage has no clusters to check"))
            continue
        try:
            series = query(url=declared.url, token_env=declared.token_env, expr=expr, start=start,
                           end=now.timestamp(), step=step)
        except prometheus.PrometheusUnavailable as exc:
            answers.append(health.Answer(q, expr, error=str(exc)))
            continue
        answers.append(health.Answer(q, expr, tuple(series)))
    return answers


def _save(row: m.HealthCheck, target: _Target, judgement: health.Judgement, answers: list, *, now) -> None:
    declared = target.declared
    by_name = {a.query.name: a for a in answers}
    row.run, row.run_uid, row.stage, row.gate = target.run.name, str(target.run.uid), target.stage, target.gate
    row.mode, row.verdict, row.message = declared.mode, judgement.verdict, judgement.message[:4000]
    if row.outcome == m.HealthCheck.Outcome.REFUSED and declared.mode == health_gate.Mode.AUTO_APPROVE:
        row.message = f"{judgement.message}; {REFUSED_TEXT}"[:4000]
    row.prometheus_url, row.window_seconds = declared.url, now.timestamp() - judgement.window_start
    row.checked_at = now
    row.results = [{
        "name": q.query.name, "expr": q.expr, "op": q.query.op, "threshold": q.query.threshold, "rule": q.query.rule,
        "verdict": q.verdict, "value": q.value, "labels": q.worst_labels, "reason": q.reason,
        "graph": health_gate.graph_url(declared.url, q.expr, max(row.window_seconds, declared.soak_seconds)),
        "series": [{"labels": s.labels, "points": [[round(t, 3), v] for t, v in s.points
                                                   if t >= judgement.window_start][-SAMPLES:]}
                   for s in by_name[q.query.name].series][:10],
    } for q in judgement.queries]
    with transaction.atomic():
        m.HealthCheck.objects.filter(pk=row.pk).update(
            run=row.run, run_uid=row.run_uid, stage=row.stage, gate=row.gate, mode=row.mode, verdict=row.verdict,
            message=row.message, results=_json_safe(row.results), prometheus_url=row.prometheus_url,
            window_seconds=row.window_seconds, checked_at=row.checked_at, outcome=row.outcome, queued_until=None)
        changes.publish(changes.ApprovalRequestChanged.of(target.request, changes.Origin.ENGINE))


def _json_safe(results: list) -> list:
    """NaN and infinities are no JSON: stored as None (a gap in the sparkline)."""
    for result in results:
        result["value"] = _finite(result["value"])
        for series in result["series"]:
            series["points"] = [[t, _finite(v)] for t, v in series["points"]]
    return results


def _finite(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _act(row: m.HealthCheck, target: _Target, judgement: health.Judgement) -> None:
    """Approve or reject as system:health-gate; record what came of it."""
    request, kind = target.request, _KINDS[target.request.KIND]
    frozen = freeze_holding_run(target.run) if judgement.action == health.Action.APPROVE else None
    if frozen is not None:  # no `denied` row per check: the gate is approved once the freeze ends
        m.HealthCheck.objects.filter(pk=row.pk).update(
            message=f"{judgement.message}; a freeze holds the run: approved when it ends ({frozen.sentence()})"[:4000])
        return
    try:
        if judgement.action == health.Action.APPROVE:
            approvals.approval_request_approve(kind=kind, name=request.name, namespace=request.namespace,
                                               actor=ACTOR, message=judgement.message, via=VIA)
            outcome = m.HealthCheck.Outcome.APPROVED
        else:
            approvals.approval_request_reject(kind=kind, name=request.name, namespace=request.namespace, actor=ACTOR,
                                              reason=judgement.message[:approvals.REASON_LIMIT], via=VIA)
            outcome = m.HealthCheck.Outcome.REJECTED
    except PolicyDenied as exc:
        outcome = m.HealthCheck.Outcome.REFUSED
        row.message = f"{judgement.message}; {REFUSED_TEXT}: {exc}"
    except ApiError as exc:  # a freeze, a hub that refused, the run stopping meanwhile: try again next check
        log.warning("health gate of %s could not %s: %s", request.name, judgement.action, exc)
        m.HealthCheck.objects.filter(pk=row.pk).update(message=f"{judgement.message}; could not {judgement.action}: {exc}"[:4000])
        return
    row.outcome = outcome
    m.HealthCheck.objects.filter(pk=row.pk).update(outcome=outcome, message=row.message[:4000])
