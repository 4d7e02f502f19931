"""How long a run has left, from its progress and its placement's past runs
(docs/eta.md). Pure: it takes RunRecords (selectors/records.py) and "now";
selectors/history.py loads them.

The estimate, stage by stage from the one being worked on:
1. One cluster takes `d`: the median time a cluster of this stage (by name)
   took in the placement's last runs, or of any stage when no past run had
   this one. No past cluster at all: no estimate.
2. The stage's clusters run as the engine runs them: in order, at most the
   stage's maxConcurrency at once. Each cluster in flight has `d` minus its
   age left (at least 0); each one not started takes `d` once a slot frees.
3. A TimedWait after the stage adds what is left of its wait.
4. An Approval gate adds nothing to the minutes (a person decides when) and
   is named instead: "about 6 min left, plus the canary approval".
"""

import heapq
from dataclasses import dataclass
from datetime import datetime

from .records import RunRecord, StageRecord, typical_cluster_seconds


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


def _stage_left(stage: StageRecord, each: float, now: datetime) -> tuple[float, list[str]]:
    """(seconds left in this stage, its approvals still ahead)."""
    if stage.succeeded:
        return 0.0, []
    in_flight = [max(0.0, each - (now - c.started).total_seconds())
                 for c in stage.clusters if c.started and c.ended is None]
    pending = sum(1 for c in stage.clusters if c.started is None)
    seconds = cluster_phase_seconds(in_flight, pending, stage.concurrency, each)
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
    outcome; their finished clusters are what counts)."""
    typical, overall = typical_cluster_seconds(history)
    if overall is None:
        return Eta(None)
    total, gates = 0.0, []
    for stage in run.stages:
        seconds, stage_gates = _stage_left(stage, typical.get(stage.name, overall), now)
        total += seconds
        gates += stage_gates
    return Eta(total, tuple(dict.fromkeys(gates)), basis=len(history))
