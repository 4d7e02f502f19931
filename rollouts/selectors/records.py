"""A run's status as plain times: each stage's clusters (started → ended),
its gates (Approval, TimedWait: when each began and ended) and its
concurrency. Pure: no ORM and no clock, so the ETA (selectors/eta.py), the
time view (selectors/timeview.py) and the history comparison
(selectors/history.py) are unit-tested with plain dicts.

Where each time comes from (the engine writes them, engine/execution.py):
- a cluster: its Started and Succeeded conditions' lastTransitionTime;
- a stage: status startTime (its first cluster started) and endTime (its
  after-stage tasks done);
- an Approval gate: the task's ApprovalRequestCreated (the request exists:
  the wait for a person begins) and ApprovalRequestApproved (the engine
  accepted the approval) conditions;
- a TimedWait: from the moment the stage's last cluster finished (the after-
  stage tasks begin) to its WaitTimeElapsed condition.
"""

from dataclasses import dataclass
from datetime import datetime

from rollouts.engine.stages import max_concurrency, wait_seconds

from .common import Memo, cluster_entry_key, conditions_by_type, when


@dataclass(frozen=True)
class ClusterSpan:
    name: str
    started: datetime | None
    ended: datetime | None  # Succeeded=True (None while updating, or failed)
    failed: bool = False

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class GateSpan:
    """An Approval or TimedWait gate of a stage. `started` None: not reached yet."""

    type: str  # "Approval" or "TimedWait"
    when: str  # "before" or "after"
    stage: str
    approval_name: str = ""
    wait: float = 0.0  # a TimedWait's configured seconds
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class StageRecord:
    name: str
    concurrency: int  # the stage's effective maxConcurrency
    started: datetime | None
    ended: datetime | None
    clusters: tuple[ClusterSpan, ...]
    gates: tuple[GateSpan, ...]
    succeeded: bool = False

    @property
    def updated(self) -> datetime | None:
        """When its last cluster finished (None until every cluster did)."""
        ends = [c.ended for c in self.clusters]
        if not ends or any(e is None for e in ends):
            return None
        return max(ends)

    @property
    def update_seconds(self) -> float | None:
        """The clusters' part of the stage: first start to last finish (no gates)."""
        starts = [c.started for c in self.clusters if c.started]
        if not starts or self.updated is None:
            return None
        return (self.updated - min(starts)).total_seconds()

    @property
    def cluster_seconds(self) -> list[float]:
        return [s for s in (c.seconds for c in self.clusters) if s is not None]


@dataclass(frozen=True)
class RunRecord:
    name: str
    snapshot_index: int | None
    started: datetime | None
    ended: datetime | None  # the terminal condition's time
    stages: tuple[StageRecord, ...]
    outcome: str = ""  # "succeeded", "failed" or "" (unfinished)

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()


def _time(entry: dict | None, type_: str, status: str = "True") -> datetime | None:
    return _time_of(conditions_by_type(entry), type_, status)


def _time_of(conds: dict, type_: str, status: str = "True") -> datetime | None:
    cond = conds.get(type_)
    return when(cond.get("lastTransitionTime")) if cond and cond.get("status") == status else None


_SPANS = Memo(20_000)  # by entry content: a push of a 1,000-cluster run re-reads 1,000 entries


def _cluster_span(entry: dict) -> ClusterSpan:
    return _SPANS.get(cluster_entry_key(entry), lambda: cluster_span(entry))


def cluster_span(entry: dict) -> ClusterSpan:
    """A run's status entry for one cluster as its time span."""
    conds = conditions_by_type(entry)
    return ClusterSpan(entry.get("clusterName", ""), _time_of(conds, "Started"), _time_of(conds, "Succeeded"),
                       failed=_time_of(conds, "Succeeded", "False") is not None)


def _gates(entry: dict, config: dict, clusters: tuple[ClusterSpan, ...]) -> tuple[GateSpan, ...]:
    stage = entry.get("stageName", "")
    ends = [c.ended for c in clusters]
    updated = max(ends) if ends and all(ends) else None
    gates = []
    for when_, status_key, config_key in (("before", "beforeStageTaskStatus", "beforeStageTasks"),
                                          ("after", "afterStageTaskStatus", "afterStageTasks")):
        statuses = entry.get(status_key) or []
        for i, task_config in enumerate(config.get(config_key) or []):
            task = statuses[i] if i < len(statuses) else {}
            if task_config.get("type") == "TimedWait":
                gates.append(GateSpan("TimedWait", when_, stage, wait=wait_seconds(task_config.get("waitTime", "")),
                                      started=updated, ended=_time(task, "WaitTimeElapsed")))
            else:
                gates.append(GateSpan("Approval", when_, stage, approval_name=task.get("approvalRequestName", ""),
                                      started=_time(task, "ApprovalRequestCreated"),
                                      ended=_time(task, "ApprovalRequestApproved")))
    return tuple(gates)


def stage_record(entry: dict, config: dict, clusters: tuple[ClusterSpan, ...] | None = None) -> StageRecord:
    """A stage's record from its status entry and strategy config; `clusters`
    when the caller has parsed the entry's clusters already."""
    if clusters is None:
        clusters = tuple(_cluster_span(c) for c in entry.get("clusters") or [])
    return StageRecord(entry.get("stageName", ""), max_concurrency(config.get("maxConcurrency"), len(clusters)),
                       when(entry.get("startTime")), when(entry.get("endTime")), clusters,
                       _gates(entry, config, clusters), succeeded=_time(entry, "Succeeded") is not None)


def _index(status: dict, spec: dict) -> int | None:
    text = str(status.get("resourceSnapshotIndexUsed") or spec.get("resourceSnapshotIndex") or "")
    return int(text) if text.isdigit() else None


def run_record(name: str, spec: dict | None, status: dict | None,
               spans: list[tuple[ClusterSpan, ...]] | None = None) -> RunRecord:
    """The run's times from its spec and status (both as stored); `spans`:
    each stage's clusters, when the caller has parsed them already."""
    spec, status = spec or {}, status or {}
    configs = (status.get("stagedUpdateStrategySnapshot") or {}).get("stages") or []
    stages = tuple(stage_record(entry, configs[i] if i < len(configs) else {}, spans[i] if spans else None)
                   for i, entry in enumerate(status.get("stagesStatus") or []))
    conds = conditions_by_type(status)
    succeeded, initialized = conds.get("Succeeded") or {}, conds.get("Initialized") or {}
    outcome = {"True": "succeeded", "False": "failed"}.get(succeeded.get("status"), "")
    if initialized.get("status") == "False":
        outcome = "failed"
    final = succeeded if succeeded.get("status") in ("True", "False") else initialized if outcome else {}
    return RunRecord(name, _index(status, spec), when(initialized.get("lastTransitionTime")),
                     when(final.get("lastTransitionTime")), stages, outcome)
