"""A run on a time axis: each stage a band, its clusters as bars packed into
lanes (at most the stage's concurrency run side by side, so a 1,000-cluster
run stays a few screens tall at most), its gates as markers showing how long
each waited, and a "now" line while the run moves. `layout` is pure
geometry in SVG user units (the page scales the drawing to its width);
`run_time_view` loads what it needs in a fixed number of queries.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from rollouts import clock

from .common import duration_text, family_for
from .comparison import StageComparison, stage_comparison
from .history import gate_approvers, previous_records
from .records import GateSpan, RunRecord, StageRecord, run_record

WIDTH = 1000  # the drawing's user units; the SVG scales to the page
LABEL = 150  # left gutter for stage names
PLOT = WIDTH - LABEL - 10
AXIS = 24  # the time axis's height, at the top
BAND = 20  # a stage's band (its name, its span, its gates)
STAGE_GAP = 10
CLUSTER_BLOCK = 120  # the most height one stage's clusters take
LANE_MAX, LANE_MIN = 10, 2
TICK_STEPS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


@dataclass(frozen=True)
class Shape:
    """A rectangle: a stage's span, a cluster bar or a gate marker."""

    x: float
    y: float
    width: float
    height: float
    css: str  # the CSS class: its state
    label: str  # its tooltip (SVG <title>)


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass
class StageText:
    """One stage for the text alternative (the table under the drawing)."""

    name: str
    started: datetime | None
    ended: datetime | None
    took: str
    clusters: int
    finished: int
    per_cluster: str  # median time one cluster took
    slowest: str  # "member7 (2m10s)"
    gates: list[str]  # "approval after the stage: waited 4m (alice)"
    comparison: StageComparison | None = None


@dataclass
class TimeView:
    height: float
    shapes: list[Shape]
    ticks: list[Tick]
    labels: list[tuple[float, str]]  # (y, stage name)
    now_x: float | None  # the "now" line, while the run moves
    start: datetime | None
    end: datetime | None
    stages: list[StageText] = field(default_factory=list)

    @property
    def width(self) -> int:
        return WIDTH


def _span(record: RunRecord, now: datetime, active: bool) -> tuple[datetime, datetime]:
    times = [t for s in record.stages for t in (s.started, s.ended, *[c.started for c in s.clusters],
                                                 *[c.ended for c in s.clusters],
                                                 *[g.started for g in s.gates], *[g.ended for g in s.gates]) if t]
    start = min([record.started or now, *times])
    end = now if active else max([record.ended or start, *times])
    return start, max(end, start + timedelta(seconds=60))


def _ticks(start: datetime, end: datetime, x) -> list[Tick]:
    total = (end - start).total_seconds()
    step = next((s for s in TICK_STEPS if total / s <= 8), TICK_STEPS[-1])
    first = start.timestamp() // step * step + step
    fmt = "%H:%M:%S" if step < 60 else "%H:%M"
    ticks, moment = [], first
    while moment <= end.timestamp():
        when = datetime.fromtimestamp(moment, tz=start.tzinfo)
        ticks.append(Tick(x(when), f"{when:{fmt}}"))
        moment += step
    return ticks


def lanes(clusters) -> list[int]:
    """Each started cluster's lane: the first whose last bar ended by its
    start (greedy interval packing, in start order); None for unstarted."""
    ends: list[datetime] = []
    found = {}
    order = sorted((c for c in clusters if c.started), key=lambda c: c.started)
    for cluster in order:
        lane = next((i for i, end in enumerate(ends) if end is not None and end <= cluster.started), None)
        if lane is None:
            lane = len(ends)
            ends.append(None)
        ends[lane] = cluster.ended
        found[id(cluster)] = lane
    return [found.get(id(c)) for c in clusters]


def _gate_label(gate: GateSpan, approvers: dict[str, list[str]], now: datetime) -> str:
    end = gate.ended or now
    waited = duration_text((end - gate.started).total_seconds()) if gate.started else ""
    if gate.type == "TimedWait":
        return f"TimedWait {duration_text(gate.wait)} after {gate.stage}: " + (
            f"waited {waited}" if gate.ended else f"waiting ({waited} so far)")
    who = ", ".join(approvers.get(gate.approval_name, []))
    if gate.ended:
        return f"Approval {gate.when} {gate.stage}: waited {waited} for a person" + (
            f" (approved by {who})" if who else "")
    return f"Approval {gate.when} {gate.stage}: " + (
        f"approved by {who} after {waited}, not accepted by the engine yet" if who
        else f"waiting {waited} for a person so far")


def _cluster_css(cluster, active: bool) -> str:
    if cluster.failed:
        return "bar-failed"
    if cluster.ended:
        return "bar-succeeded"
    return "bar-updating" if active else "bar-unfinished"


def _stage_shapes(stage: StageRecord, y: float, x, now: datetime, active: bool,
                  approvers: dict[str, list[str]]) -> tuple[list[Shape], float]:
    """The stage's band and cluster lanes from `y`; returns (shapes, height)."""
    shapes = []
    if stage.started:
        end = stage.ended or (now if active else stage.updated or stage.started)
        state = "succeeded" if stage.succeeded else "running" if active else "unfinished"
        shapes.append(Shape(x(stage.started), y + 4, max(1.0, x(end) - x(stage.started)), BAND - 8,
                            f"stage-span stage-span-{state}",
                            f"{stage.name}: {duration_text((end - stage.started).total_seconds())}"))
    for gate in stage.gates:
        if gate.started is None:
            continue
        end = gate.ended or (now if active else gate.started)
        css = "gate-wait" if gate.type == "TimedWait" else "gate-approval"
        shapes.append(Shape(x(gate.started), y + 1, max(2.0, x(end) - x(gate.started)), BAND - 2,
                            f"gate {css}{' gate-open' if gate.ended is None else ''}",
                            _gate_label(gate, approvers, now)))
    assigned = lanes(stage.clusters)
    count = max((lane for lane in assigned if lane is not None), default=-1) + 1
    lane_height = max(LANE_MIN, min(LANE_MAX, CLUSTER_BLOCK / count)) if count else 0
    for cluster, lane in zip(stage.clusters, assigned, strict=True):
        if lane is None:
            continue
        end = cluster.ended or (now if active else cluster.started)
        took = duration_text((end - cluster.started).total_seconds())
        state = "failed" if cluster.failed else "succeeded" if cluster.ended else "updating"
        shapes.append(Shape(x(cluster.started), y + BAND + lane * lane_height, max(1.0, x(end) - x(cluster.started)),
                            max(1.0, lane_height - (1 if lane_height > 3 else 0)), _cluster_css(cluster, active),
                            f"{cluster.name}: {state}, {took}"))
    return shapes, BAND + count * lane_height


def _stage_text(stage: StageRecord, approvers: dict[str, list[str]], now: datetime) -> StageText:
    seconds = stage.cluster_seconds
    slowest = max(((c.seconds, c.name) for c in stage.clusters if c.seconds is not None), default=None)
    end = stage.ended
    return StageText(
        stage.name, stage.started, end,
        duration_text((end - stage.started).total_seconds()) if stage.started and end else "",
        len(stage.clusters), len(seconds), duration_text(median(seconds)) if seconds else "",
        f"{slowest[1]} ({duration_text(slowest[0])})" if slowest else "",
        [_gate_label(g, approvers, now) for g in stage.gates if g.started])


def layout(record: RunRecord, *, now: datetime, active: bool,
           approvers: dict[str, list[str]] | None = None) -> TimeView:
    """The drawing of `record` (pure). `active`: the run still moves, so
    open bars end at `now` and the now line is drawn."""
    approvers = approvers or {}
    start, end = _span(record, now, active)
    scale = PLOT / (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return round(LABEL + (moment - start).total_seconds() * scale, 1)

    shapes, labels, y = [], [], AXIS
    for stage in record.stages:
        stage_shapes, height = _stage_shapes(stage, y, x, now, active, approvers)
        shapes += stage_shapes
        labels.append((y + BAND - 6, stage.name))
        y += height + STAGE_GAP
    return TimeView(y, shapes, _ticks(start, end, x), labels, x(now) if active else None, start, end,
                    [_stage_text(s, approvers, now) for s in record.stages])


def run_time_view(run) -> TimeView:
    """The time view of `run`, each stage compared with the placement's
    previous runs. Queries: the approval Events, the previous runs."""
    record = run_record(run.name, run.spec, run.status)
    names = [g.approval_name for s in record.stages for g in s.gates if g.approval_name]
    approvers = gate_approvers(family_for(run.namespace).approval_request.KIND, run.namespace, names)
    view = layout(record, now=clock.now(), active=run.active, approvers=approvers)
    for text, comparison in zip(view.stages, stage_comparison(record, previous_records(run)), strict=True):
        text.comparison = comparison
    return view
