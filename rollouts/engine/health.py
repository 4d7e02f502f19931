"""Judging a health gate: pure, no Prometheus, no ORM, no clock of its own.

The health-gate service (services/health_gates.py) asks Prometheus for each
query's samples over the window and hands them here with "now"; `judge`
says what the gate is and what to do about it.

The window of a check is [max(gate opened, now - soak), now]: samples from
before the approval request existed (before the stage's clusters were
updated) never count for it. A query is
  unknown  when Prometheus could not answer, or answered with no samples in
           the window, or with NaN: never healthy for lack of evidence;
  failing  when any sample of any series in the window breaks its threshold;
  passing  otherwise.
The gate is failing if any query fails, else unknown if any is unknown, else
healthy once it has been open for the whole soak, else soaking.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from rollouts.api.health_gate import HealthGate, Mode, Query


class Verdict(StrEnum):
    SOAKING = "soaking"  # passing so far, the soak window has not passed yet
    HEALTHY = "healthy"
    FAILING = "failing"
    UNKNOWN = "unknown"


class Action(StrEnum):
    NONE = "none"
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class Series:
    """One time series of a query's answer: `cluster="member3"` and its (unix time, value) points."""

    labels: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Answer:
    """What Prometheus answered for one query: its series, or why it could not."""

    query: Query
    expr: str  # as sent, {clusters} expanded
    series: tuple[Series, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class QueryVerdict:
    query: Query
    expr: str
    verdict: str  # passing | failing | unknown
    value: float | None  # the worst value at the latest sample, None without one
    worst_labels: str  # which series that is
    reason: str  # why unknown or failing, "" when passing


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    action: Action
    queries: tuple[QueryVerdict, ...]
    message: str  # one line for the audit log and the page
    window_start: float = 0.0  # unix time


def window_start(*, opened: datetime, now: datetime, gate: HealthGate) -> datetime:
    """Where the window of a check made `now` begins."""
    return max(opened, now - timedelta(seconds=gate.soak_seconds))


def judge(gate: HealthGate, answers: list[Answer], *, opened: datetime, now: datetime) -> Judgement:
    """The gate's verdict and the action its mode takes on it.

    1. Judge each query over the window (unknown, failing or passing).
    2. Any failing: failing. Else any unknown: unknown. Else healthy when the
       gate has been open for the whole soak, soaking before.
    3. auto-approve approves a healthy gate; auto-reject rejects a failing
       one; evidence (and every other case) does nothing."""
    start = window_start(opened=opened, now=now, gate=gate).timestamp()
    queries = tuple(_judge_query(answer, start) for answer in answers)
    verdicts = {q.verdict for q in queries}
    if "failing" in verdicts:
        verdict = Verdict.FAILING
    elif "unknown" in verdicts or not queries:
        verdict = Verdict.UNKNOWN
    elif (now - opened).total_seconds() >= gate.soak_seconds:
        verdict = Verdict.HEALTHY
    else:
        verdict = Verdict.SOAKING
    action = Action.NONE
    if verdict == Verdict.HEALTHY and gate.mode == Mode.AUTO_APPROVE:
        action = Action.APPROVE
    elif verdict == Verdict.FAILING and gate.mode == Mode.AUTO_REJECT:
        action = Action.REJECT
    return Judgement(verdict, action, queries, _message(verdict, queries, gate), start)


def _judge_query(answer: Answer, start: float) -> QueryVerdict:
    query = answer.query
    if answer.error:
        return QueryVerdict(query, answer.expr, "unknown", None, "", answer.error)
    points = [(s.labels, t, v) for s in answer.series for t, v in s.points if t >= start]
    if not points:
        return QueryVerdict(query, answer.expr, "unknown", None, "", "no data in the window")
    failing = [(labels, t, v) for labels, t, v in points if not math.isnan(v) and not query.passes(v)]
    worst = _worst(query, [p for p in points if not math.isnan(p[2])], at=max(t for _, t, _ in points))
    if failing:
        labels, _, value = _worst(query, failing, at=None) or failing[-1]
        where = f" on {labels}" if labels else ""
        return QueryVerdict(query, answer.expr, "failing", value, labels,
                            f"{query.name} = {_number(value)}{where} (healthy: {query.rule})")
    if any(math.isnan(v) for _, _, v in points):
        return QueryVerdict(query, answer.expr, "unknown", worst[2] if worst else None, worst[0] if worst else "",
                            "Prometheus answered NaN (no traffic?)")
    return QueryVerdict(query, answer.expr, "passing", worst[2] if worst else None, worst[0] if worst else "", "")


def _worst(query: Query, points: list, *, at: float | None):
    """The point furthest on the unhealthy side (at time `at` only, when given)."""
    chosen = [p for p in points if at is None or p[1] == at] or points
    if not chosen:
        return None
    upward = query.op in ("<", "<=")  # higher values are worse
    return max(chosen, key=lambda p: p[2]) if upward else min(chosen, key=lambda p: p[2])


def _message(verdict: Verdict, queries: tuple[QueryVerdict, ...], gate: HealthGate) -> str:
    """`health gate passed: error-ratio 0.002 (healthy: < 0.01) over 5m`."""
    if verdict == Verdict.FAILING:
        return "health gate failed: " + "; ".join(q.reason for q in queries if q.verdict == "failing")
    if verdict == Verdict.UNKNOWN:
        return "health unknown: " + "; ".join(f"{q.query.name}: {q.reason}" for q in queries
                                               if q.verdict == "unknown")
    values = ", ".join(f"{q.query.name} {_number(q.value)} (healthy: {q.query.rule})" for q in queries)
    if verdict == Verdict.HEALTHY:
        return f"health gate passed: {values} over {_seconds(gate.soak_seconds)}"
    return f"healthy so far, soaking for {_seconds(gate.soak_seconds)}: {values}"


def _number(value: float | None) -> str:
    return "no value" if value is None else f"{value:.4g}"


def _seconds(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
