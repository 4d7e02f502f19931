"""Reads for health gates: what a gate's last check found, shaped for the
approve dialog and the run page (templates/rollouts/_health.html), with each
query's sparkline drawn server-side as SVG coordinates (the CSP allows no
inline script or style: the SVG carries only geometry and classes)."""

from dataclasses import dataclass, field
from datetime import datetime

from rollouts import models as m

SPARK_WIDTH, SPARK_HEIGHT, _PAD = 120, 28, 2


@dataclass(frozen=True)
class Spark:
    """A sparkline: one polyline per series (`x,y x,y …`), and the threshold's y."""

    lines: tuple[str, ...]
    threshold_y: float | None
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


@dataclass(frozen=True)
class QueryView:
    name: str
    expr: str
    rule: str  # `< 0.01`
    verdict: str  # passing | failing | unknown
    value: str  # the worst series' latest value, "—" without one
    labels: str  # which series that is
    reason: str
    graph: str  # Prometheus' graph page for the query
    spark: Spark | None
    samples: int

    @property
    def verdict_text(self) -> str:
        return {"passing": "pass", "failing": "fail"}.get(self.verdict, "unknown")


@dataclass(frozen=True)
class HealthView:
    verdict: str  # soaking | healthy | failing | unknown
    mode: str
    outcome: str
    message: str
    checked_at: datetime | None
    window: str  # `2m30s`
    prometheus_url: str
    queries: list[QueryView] = field(default_factory=list)

    @property
    def mode_text(self) -> str:
        return {"auto-approve": "approves the gate when healthy for the soak window",
                "auto-reject": "rejects the gate (stopping the run) when a query fails"}.get(
            self.mode, "evidence for the approver: a person decides")

    @property
    def outcome_text(self) -> str:
        return {"approved": "approved by system:health-gate", "rejected": "rejected by system:health-gate",
                "refused": "not approved automatically: an approval policy governs the gate"}.get(self.outcome, "")


def health_views(kind: str, namespace: str, names: list[str]) -> dict[str, HealthView]:
    """{request name: HealthView} for the requests that have been checked; one query."""
    if not names:
        return {}
    rows = m.HealthCheck.objects.filter(request_kind=kind, request_namespace=namespace, request_name__in=names)
    return {row.request_name: health_view(row) for row in rows}


def health_view_of(request) -> HealthView | None:
    """The last check of one approval request, None before the first; one query."""
    return health_views(request.KIND, request.namespace, [request.name]).get(request.name)


def health_view(row: m.HealthCheck) -> HealthView:
    queries = [_query_view(result) for result in row.results or []]
    return HealthView(row.verdict, row.mode, row.outcome, row.message, row.checked_at, _seconds(row.window_seconds),
                      row.prometheus_url, queries)


def _query_view(result: dict) -> QueryView:
    value = result.get("value")
    series = result.get("series") or []
    return QueryView(result.get("name", ""), result.get("expr", ""), result.get("rule", ""),
                     result.get("verdict", "unknown"), "—" if value is None else f"{value:.4g}",
                     result.get("labels", ""), result.get("reason", ""), result.get("graph", ""),
                     sparkline(series, result.get("threshold")), sum(len(s.get("points") or []) for s in series))


def sparkline(series: list[dict], threshold: float | None) -> Spark | None:
    """The polylines of `series` ([{points: [[t, v], …]}]) scaled into the
    box, and the threshold line when it falls in their range; None without
    any point. A None value (NaN) is a gap: its polyline skips it."""
    points = [(t, v) for s in series for t, v in s.get("points") or [] if v is not None]
    if not points:
        return None
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    values = [v for _, v in points] + ([threshold] if threshold is not None else [])
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1

    def x(t: float) -> float:
        return _PAD + (SPARK_WIDTH - 2 * _PAD) * ((t - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(v: float) -> float:
        return _PAD + (SPARK_HEIGHT - 2 * _PAD) * (1 - (v - low) / (high - low))

    lines = tuple(" ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s.get("points") or [] if v is not None)
                  for s in series)
    return Spark(tuple(line for line in lines if line), round(y(threshold), 1) if threshold is not None else None)


def _seconds(seconds: float) -> str:
    seconds = int(round(seconds or 0))
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if rest else f"{minutes}m"
