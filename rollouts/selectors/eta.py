"""How long a run has left, from its progress and its placement's past runs
(docs/eta.md). Pure: it takes RunRecords (selectors/records.py) and "now";
selectors/history.py loads them.

What the past runs teach (`learn`), per stage by name:
- one cluster's typical time: the mean of the clusters' times, the
  slowest and fastest tenth left out (a stuck cluster once must not weigh);
- the stage's time per wave: its update time (first cluster start to last
  finish) over its waves (clusters / maxConcurrency, rounded up), median of
  the runs. It holds what one cluster's time cannot: the wave waits for its
  slowest cluster, and the engine's passes between clusters.

The estimate, stage by stage from the one being worked on:
1. The run's pace: the median of its finished clusters' times over their
   stage's typical time (1 until three clusters finished; kept in 0.5–2).
2. A stage not started takes its time per wave × its waves × the pace; a
   stage no past run had runs its clusters as below, at the typical time of
   every past cluster.
3. A stage under way runs its clusters as the engine does: in order, at
   most maxConcurrency at once; one in flight has left what the past
   clusters of its stage that ran longer than its age took beyond it (× the
   pace; none: its typical time less its age), each one not started takes
   the whole typical time × pace once a slot frees.
4. A TimedWait after a stage adds what is left of its wait.
5. An Approval gate adds nothing to the minutes (a person decides when) and
   is named instead: "about 6 min left, plus the canary approval".
No past cluster at all: no estimate.
"""

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from math import ceil
from statistics import median

from .records import RunRecord, StageRecord

TRIM = 0.1  # the share of slowest and of fastest clusters a typical time leaves out
PACE_MIN_CLUSTERS, PACE_LIMITS = 3, (0.5, 2.0)


@dataclass(frozen=True)
class Eta:
    """seconds: the estimate (None: no estimate); gates: the stages whose
    approvals still stand ahead; basis: how many past runs it comes from;
    reason: why there is no estimate, when not for want of history."""

    seconds: float | None
    gates: tuple[str, ...] = ()
    basis: int = 0
    reason: str = ""

    @property
    def text(self) -> str:
        if self.seconds is None:
            return self.reason or "no estimate yet"
        plus = _gates_text(self.gates)
        if plus and self.seconds < 30:
            return f"only {plus} left"
        left = "less than a minute left" if self.seconds < 60 else f"about {minutes_text(self.seconds)} left"
        return f"{left}, plus {plus}" if plus else left

    @property
    def title(self) -> str:
        """How it was made, for the tooltip."""
        if self.seconds is None:
            return "" if self.reason else "No finished run of this placement to estimate from yet."
        runs = "run" if self.basis == 1 else "runs"
        return (f"From the per-cluster times of this placement's last {self.basis} {runs} and the run's progress; "
                "approvals are not counted (a person decides when).")


def minutes_text(seconds: float) -> str:
    """`6 min`, `1 h 20 min` (rounded to the minute, at least 1)."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _gates_text(stages: tuple[str, ...]) -> str:
    if not stages:
        return ""
    if len(stages) == 1:
        return f"the {stages[0]} approval"
    return f"the {', '.join(stages[:-1])} and {stages[-1]} approvals"


def cluster_phase_seconds(in_flight_left: list[float], pending: int, slots: int, each: float) -> float:
    """Seconds until every cluster of a stage is done: the ones in flight
    finish after their time left; the `pending` ones start in order, each as
    a slot frees, and take `each`. Slots: the stage's maxConcurrency."""
    free = [0.0] * max(0, max(slots, 1) - len(in_flight_left))
    heap = sorted(in_flight_left) + free
    heapq.heapify(heap)
    for _ in range(pending):
        heapq.heappush(heap, heapq.heappop(heap) + each)
    return max(heap, default=0.0)


@dataclass(frozen=True)
class Learned:
    """What past runs say: per stage name, one cluster's typical seconds,
    the seconds per wave and every cluster's seconds (sorted); `overall`:
    every past cluster's typical seconds."""

    cluster: dict[str, float]
    wave: dict[str, float]
    overall: float | None
    samples: dict[str, tuple[float, ...]] = field(default_factory=dict)


def trimmed_mean(values: list[float]) -> float:
    ordered = sorted(values)
    cut = int(len(ordered) * TRIM)
    kept = ordered[cut:len(ordered) - cut] or ordered
    return sum(kept) / len(kept)


def waves(clusters: int, concurrency: int) -> int:
    return ceil(clusters / max(concurrency, 1))


def learn(history: list[RunRecord]) -> Learned:
    times: dict[str, list[float]] = {}
    per_wave: dict[str, list[float]] = {}
    for record in history:
        for stage in record.stages:
            times.setdefault(stage.name, []).extend(stage.cluster_seconds)
            if stage.update_seconds is not None and stage.clusters:
                per_wave.setdefault(stage.name, []).append(
                    stage.update_seconds / waves(len(stage.clusters), stage.concurrency))
    everything = [t for values in times.values() for t in values]
    return Learned({name: trimmed_mean(values) for name, values in times.items() if values},
                   {name: median(values) for name, values in per_wave.items()},
                   trimmed_mean(everything) if everything else None,
                   {name: tuple(sorted(values)) for name, values in times.items() if values})


def time_left(age: float, each: float, samples: tuple[float, ...], factor: float) -> float:
    """What a cluster `age` seconds into its update still takes: the mean of
    what the past clusters that took longer than that took beyond it (so a
    cluster past its typical time is not counted as done), or `each` minus
    its age when no sample is known."""
    later = [t * factor - age for t in samples if t * factor > age]
    if later:
        return sum(later) / len(later)
    return max(0.0, each - age)


def pace(run: RunRecord, learned: Learned) -> float:
    """How much slower (> 1) or faster this run's finished clusters were than usual."""
    ratios = [seconds / learned.cluster[stage.name] for stage in run.stages if learned.cluster.get(stage.name)
              for seconds in stage.cluster_seconds]
    if len(ratios) < PACE_MIN_CLUSTERS:
        return 1.0
    low, high = PACE_LIMITS
    return min(high, max(low, median(ratios)))


def _clusters_left(stage: StageRecord, learned: Learned, factor: float, now: datetime) -> float:
    started = any(c.started for c in stage.clusters)
    if not started and stage.name in learned.wave:
        return learned.wave[stage.name] * waves(len(stage.clusters), stage.concurrency) * factor
    each = learned.cluster.get(stage.name, learned.overall) * factor
    samples = learned.samples.get(stage.name, ())
    in_flight = [time_left((now - c.started).total_seconds(), each, samples, factor)
                 for c in stage.clusters if c.started and c.ended is None]
    pending = sum(1 for c in stage.clusters if c.started is None)
    return cluster_phase_seconds(in_flight, pending, stage.concurrency, each)


def _stage_left(stage: StageRecord, learned: Learned, factor: float, now: datetime) -> tuple[float, list[str]]:
    """(seconds left in this stage, its approvals still ahead)."""
    if stage.succeeded:
        return 0.0, []
    seconds = _clusters_left(stage, learned, factor, now)
    gates = []
    for gate in stage.gates:
        if gate.ended is not None:
            continue
        if gate.type == "Approval":
            gates.append(gate.stage)
        elif gate.started is None:
            seconds += gate.wait
        else:  # the wait runs: what is left of it, after the clusters (all done)
            seconds = max(seconds, gate.wait - (now - gate.started).total_seconds())
    return seconds, list(dict.fromkeys(gates))


def estimate(run: RunRecord, history: list[RunRecord], now: datetime) -> Eta:
    """The time `run` has left. `history`: the placement's past runs (any
    outcome; their finished clusters and stages are what counts)."""
    return estimate_learned(run, learn(history), now, basis=len(history))


def estimate_learned(run: RunRecord, learned: Learned, now: datetime, *, basis: int) -> Eta:
    """`estimate` from what `learn` made of `basis` past runs."""
    if learned.overall is None:
        return Eta(None)
    factor = pace(run, learned)
    total, gates = 0.0, []
    for stage in run.stages:
        seconds, stage_gates = _stage_left(stage, learned, factor, now)
        total += seconds
        gates += stage_gates
    return Eta(total, tuple(dict.fromkeys(gates)), basis=basis)
