"""A run's stage times against the previous runs of its placement (pure).

A stage is compared by its update time: from its first cluster's start to
its last cluster's finish. Gates are left out: how long a person took to
approve says nothing about the rollout. The rule that flags a stage as
"much longer than usual" (docs/eta.md):

    took > SLOW_FACTOR × median   and   took − median ≥ SLOW_MARGIN_SECONDS

where the median is over the previous runs (at most COMPARE_RUNS, newest
first) whose stage of the same name finished. The margin keeps a 10 s stage
that took 25 s from being called slow; the factor keeps a long stage's
normal jitter quiet.
"""

from dataclasses import dataclass
from statistics import median

from .records import RunRecord

COMPARE_RUNS = 5
SLOW_FACTOR = 2.0
SLOW_MARGIN_SECONDS = 60.0


def is_slow(took: float | None, usual: float | None) -> bool:
    """Whether `took` seconds is much longer than the `usual` (median) seconds."""
    if took is None or usual is None:
        return False
    return took > SLOW_FACTOR * usual and took - usual >= SLOW_MARGIN_SECONDS


@dataclass(frozen=True)
class StageComparison:
    stage: str
    took: float | None  # this run's update time (None: the stage has not finished)
    usual: float | None  # the median over the previous runs (None: no previous run had it)
    runs: int  # how many previous runs the median is from
    slow: bool

    @property
    def ratio(self) -> float | None:
        if self.took is None or not self.usual:
            return None
        return self.took / self.usual


def stage_comparison(run: RunRecord, previous: list[RunRecord]) -> list[StageComparison]:
    """Each stage of `run` against the same stage in `previous` (the
    placement's runs before it, newest first; the first COMPARE_RUNS that
    finished the stage count)."""
    rows = []
    for stage in run.stages:
        past = [s.update_seconds for r in previous for s in r.stages
                if s.name == stage.name and s.update_seconds is not None][:COMPARE_RUNS]
        usual = median(past) if past else None
        rows.append(StageComparison(stage.name, stage.update_seconds, usual, len(past),
                                    is_slow(stage.update_seconds, usual)))
    return rows
