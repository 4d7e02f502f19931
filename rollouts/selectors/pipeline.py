"""The pipeline strip and the cluster map (issue 16).

The strip is a run's stages in a row: each stage's state and n of m
clusters, its TimedWait and Approval gates as markers (with the time left of
a running wait), the deletion stage last. The run page builds it from its
Timeline (`timeline_pipeline`); the overview builds one per active run from
the run's status JSON alone (`status_pipeline`), so the overview runs no
query per run.

The map is one cell per cluster of a stage, in a state a legend explains
(`CellState`), with a label naming the cluster, its state, times and reason
(the cell's accessible name and its tooltip)."""

from dataclasses import dataclass
from datetime import datetime

from django.db import models

from rollouts import models as m

from .common import conditions_by_type, duration_text
from .runs import RunState, cluster_state
from .timeline import StageView, TaskView, Timeline, stage_state, timed_wait_view

DELETION = "deletion"  # the deletion stage's anchor: #stage-deletion


def css_token(state: str) -> str:
    """A state as a class suffix, as the `css_token` filter does: `approved (not accepted yet)` → `approved`."""
    return state.split(" ")[0].strip("()").lower()


class CellState(models.TextChoices):
    """A cluster's state on the map: what the legend lists, in this order."""

    PENDING = "pending", "pending"
    UPDATING = "updating", "updating"
    SUCCEEDED = "succeeded", "succeeded"
    FAILING = "failing", "failing or failed"
    REMOVED = "removed", "removed (deletion stage)"


@dataclass(frozen=True)
class Gate:
    """A TimedWait or Approval marker before or after a stage."""

    kind: str  # "wait" or "approval"
    state: str  # the TaskView's state: "waiting", "elapsed", "waiting for approval"…
    text: str  # "wait 5m", "approval"
    remaining: int | None = None  # seconds left of a running wait

    @property
    def short(self) -> str:
        """The state in a word or two, for the strip."""
        return _SHORT.get(self.state, self.state)

    @property
    def remaining_text(self) -> str:
        return duration_text(self.remaining)

    @property
    def css(self) -> str:
        """Its classes: `pipe-gate gate-approval gate-waiting`."""
        return f"pipe-gate gate-{self.kind} gate-{css_token(self.state)}"


_SHORT = {"not requested yet": "not yet", "not started": "not yet", "waiting for approval": "waiting",
          "approved (not accepted yet)": "approved", "approved and accepted": "approved"}


@dataclass(frozen=True)
class StripStage:
    """One stage of the strip; `anchor` is the id of its section on the run page."""

    anchor: str
    name: str
    state: str
    done: int
    total: int
    failing: int = 0
    before: tuple[Gate, ...] = ()
    after: tuple[Gate, ...] = ()
    is_deletion: bool = False
    kind = "stage"  # what the strip draws: a stage box, not a gate

    @property
    def number(self) -> str:
        """Its number on the run page ("3"), or "deletion"."""
        return self.anchor.removeprefix("stage-")

    @property
    def css(self) -> str:
        """Its classes: `pipe-stage pipe-updating pipe-failing`."""
        return " ".join(("pipe-stage", f"pipe-{css_token(self.state)}", *(["pipe-failing"] if self.failing else []),
                         *(["pipe-deletion"] if self.is_deletion else [])))


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[StripStage, ...]  # the update stages in order, then the deletion stage if any

    @property
    def failing(self) -> int:
        return sum(s.failing for s in self.stages)

    @property
    def items(self) -> list:
        """What the strip draws, in order: each stage's before-gates, the
        stage, its after-gates (a stage's `kind` is "stage")."""
        return [item for s in self.stages for item in (*s.before, s, *s.after)]

    @property
    def legend(self) -> list[CellState]:
        """The cluster map's states, in the legend's order."""
        return list(CellState)


@dataclass(frozen=True, slots=True)
class Cell:
    """A cluster on the map. `id` is stable (`cell-<stage>-<cluster>`) so a
    push can replace one cell."""

    id: str
    name: str
    state: CellState
    label: str


# The run page: from its Timeline --------------------------------------------------------------


def _gate(task: TaskView) -> Gate:
    if task.type == "TimedWait":
        return Gate("wait", task.state, f"wait {task.wait}".strip(),
                    task.remaining if task.state == "waiting" else None)
    return Gate("approval", task.state, "approval")


def _strip_stage(stage: StageView, anchor: str) -> StripStage:
    return StripStage(anchor, stage.name, stage.state, stage.done, len(stage.clusters),
                      sum(c.state in ("failing", "failed") or c.failure is not None for c in stage.clusters),
                      tuple(_gate(t) for t in stage.before), tuple(_gate(t) for t in stage.after),
                      stage.is_deletion)


def timeline_pipeline(timeline: Timeline) -> Pipeline:
    """The strip of a run page, from what its Timeline already loaded (no query)."""
    stages = [_strip_stage(s, f"stage-{i}") for i, s in enumerate(timeline.stages, 1)]
    if timeline.deletion:
        stages.append(_strip_stage(timeline.deletion, f"stage-{DELETION}"))
    return Pipeline(tuple(stages))


# The overview: from the run's status alone -----------------------------------------------------


def _status_gates(entry: dict, configs: list[dict], key: str, stage: str, now: datetime,
                  rejected: set[str]) -> tuple[Gate, ...]:
    gates = []
    for i, task in enumerate(entry.get(key) or [{"type": c.get("type")} for c in configs]):
        if task.get("type") == "TimedWait":
            view = timed_wait_view(task, configs[i] if i < len(configs) else {}, entry, stage, now)
            gates.append(_gate(view))
            continue
        conds = conditions_by_type(task)
        state = ("approved and accepted" if (conds.get("ApprovalRequestApproved") or {}).get("status") == "True"
                 else "rejected" if task.get("approvalRequestName") in rejected
                 else "waiting for approval" if (conds.get("ApprovalRequestCreated") or {}).get("status") == "True"
                 else "not requested yet")
        gates.append(Gate("approval", state, "approval"))
    return tuple(gates)


def _status_stage(entry: dict, config: dict, anchor: str, failing: set[str], now: datetime,
                  rejected: set[str] = frozenset(), *, is_deletion: bool = False) -> StripStage:
    states = [(c.get("clusterName", ""), cluster_state(c)) for c in entry.get("clusters") or []]
    state = stage_state(entry)
    return StripStage(
        anchor, entry.get("stageName", ""), state, sum(s == "succeeded" for _, s in states), len(states),
        sum(s == "failed" or (s == "updating" and name in failing) for name, s in states),
        _status_gates(entry, config.get("beforeStageTasks") or [], "beforeStageTaskStatus", state, now, rejected),
        _status_gates(entry, config.get("afterStageTasks") or [], "afterStageTaskStatus", state, now, rejected),
        is_deletion)


def status_pipeline(status: dict | None, now: datetime, failing: set[str] = frozenset(),
                    rejected: set[str] = frozenset()) -> Pipeline:
    """The strip of a run from its status JSON alone (the overview's rows):
    gates read the task conditions the engine writes, `failing` names the
    clusters known to fail (from the overview's "Needs attention"),
    `rejected` the approval requests whose rejection holds the run stopped
    (rejected_gates)."""
    status = status or {}
    configs = (status.get("stagedUpdateStrategySnapshot") or {}).get("stages") or []
    stages = [_status_stage(e, configs[i] if i < len(configs) else {}, f"stage-{i + 1}", failing, now, rejected)
              for i, e in enumerate(status.get("stagesStatus") or [])]
    deletion = status.get("deletionStageStatus")
    if deletion:
        stages.append(_status_stage(deletion, {}, f"stage-{DELETION}", set(), now, is_deletion=True))
    return Pipeline(tuple(stages))


# The map ----------------------------------------------------------------------------------------


def cell_state(state: str, *, failure: bool = False, deletion: bool = False) -> CellState:
    """A ClusterView's state (pending, updating, failing, failed, succeeded)
    as a map cell's."""
    if failure or state in ("failing", "failed"):
        return CellState.FAILING
    if state == "succeeded":
        return CellState.REMOVED if deletion else CellState.SUCCEEDED
    return CellState.UPDATING if state == "updating" else CellState.PENDING


def stage_cells(stage: StageView, key: int | str) -> list[Cell]:
    """The map cells of the stage numbered `key` on its page (or "deletion"):
    each with its id `cell-<key>-<cluster>` and its label ("member1: failing ·
    started 10:02:03 · ApplyFailed: …")."""
    return [cluster_cell(c, key, deletion=stage.is_deletion) for c in stage.clusters]


def cluster_cell(c, key: int | str, *, deletion: bool = False) -> Cell:
    """The map cell of one cluster (a ClusterView) of the stage numbered `key`
    (a live push renders only the cells that changed: rollouts/fragments.py)."""
    state = cell_state(c.state, failure=c.failure is not None, deletion=deletion)
    parts = [f"{c.name}: {'removed' if state == CellState.REMOVED else c.state}"]
    if c.started:
        parts.append(f"started {c.started_text}")
    if c.ended:
        parts.append(f"ended {c.ended_text}" + (f" ({c.duration})" if c.duration else ""))
    if c.message or c.pending:
        parts.append(c.message or c.pending)
    return Cell(f"cell-{key}-{c.name}", c.name, state, " · ".join(parts))


def rejected_gates(runs) -> dict[tuple[str, str], set[str]]:
    """{(namespace, run): {approval request, …}} of the stopped runs among
    the overview's rows (selectors.runs.RunRow) whose gate's latest decision
    is a rejection: the rejection holds the run stopped, and its strip says
    so, as the run page does. One query, none when no run is stopped."""
    waiting = {}
    for run in runs:
        if run.state not in (RunState.STOPPING, RunState.STOPPED):
            continue
        for entry in (run.status or {}).get("stagesStatus") or []:
            for task in (entry.get("beforeStageTaskStatus") or []) + (entry.get("afterStageTaskStatus") or []):
                if task.get("approvalRequestName"):
                    waiting[(run.namespace, task["approvalRequestName"])] = (run.namespace, run.name)
    if not waiting:
        return {}
    latest = {}
    for namespace, name, action in (
            m.Event.objects.filter(action__in=[m.Event.Action.APPROVED, m.Event.Action.REJECTED],
                                   object_name__in={name for _, name in waiting})
            .order_by("id").values_list("object_namespace", "object_name", "action")):
        latest[(namespace, name)] = action
    found: dict[tuple[str, str], set[str]] = {}
    for key, run in waiting.items():
        if latest.get(key) == m.Event.Action.REJECTED:
            found.setdefault(run, set()).add(key[1])
    return found


def failing_by_placement(rows) -> dict[tuple[str, str], set[str]]:
    """{(namespace, placement): {failing cluster, …}} from "Needs attention"
    rows (selectors.attention.AttentionRow), which already read them."""
    found: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if row.cluster:
            found.setdefault((row.link_namespace, row.link_name), set()).add(row.cluster)
    return found

