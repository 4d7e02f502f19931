"""What the engine knows of freezes: plain data, which one holds a run, and
what holding a stage means in a pass.

The runner reads the freezes holding now once per tick (selectors.freezes),
as FreezeInfo, and puts the one covering the run's placement into its World;
the state machine then starts no stage and no cluster (execution.py asks
`held` and calls `hold`). Pure, like the rest of the engine.
"""

from dataclasses import dataclass
from datetime import datetime

from rollouts.api.labels import selector_matches

FROZEN_REASON = "UpdateRunFrozen"  # Progressing=False while a freeze holds the run (Fleet UI only)


@dataclass(frozen=True)
class FreezeInfo:
    """A freeze holding the line now.

    until: when it stops holding by itself (the end of a one-off freeze, or
        of the current window of a recurring one); None: until it is ended.
    selector: the placements it covers, as a LabelSelector; {}: all of them.
    """

    name: str
    reason: str
    declared_by: str
    until: datetime | None = None
    selector: dict | None = None
    selector_text: str = ""  # as typed (`env=prod`), for banners

    def sentence(self) -> str:
        """`Frozen by alice (freeze xmas): holidays, until 2026-12-27 06:00 UTC`: the run page's why."""
        until = f"until {self.until:%Y-%m-%d %H:%M} UTC" if self.until else "until it is ended"
        return f"Frozen by {self.declared_by} (freeze {self.name}): {self.reason}, {until}"

    def covers(self, placement_labels: dict | None) -> bool:
        return not self.selector or selector_matches(self.selector, placement_labels or {})


def holding(freezes: list[FreezeInfo], placement_labels: dict | None) -> FreezeInfo | None:
    """The first freeze (newest first, as given) covering a placement with these labels."""
    return next((f for f in freezes if f.covers(placement_labels)), None)


# In a pass (ctx: engine.context.Pass; not imported: the World imports this module).


def held(ctx, position: int) -> bool:
    """Whether a freeze keeps the stage at `position` (len(stages): the
    deletion stage) from starting clusters. A gate opened by break-glass
    during the freeze lets its run through to the next gate: the stage
    behind a before-stage gate, or the one after an after-stage gate."""
    if ctx.world.frozen is None:
        return False
    gates = list(ctx.stages[position].get("beforeStageTaskStatus") or []) if position < len(ctx.stages) else []
    if position > 0:
        gates += ctx.stages[position - 1].get("afterStageTaskStatus") or []
    approvals = ctx.world.approvals
    return not any(getattr(approvals.get(task.get("approvalRequestName", "")), "break_glass", False) for task in gates)


def hold(ctx, stage: dict, poll: float) -> float:
    """A stage that would start now waits for the freeze to end; returns `poll`
    (a safety net: the freeze ending wakes every run through FreezeChanged)."""
    sentence = ctx.world.frozen.sentence()
    ctx.set(stage, "Progressing", "False", "StageUpdatingWaiting", f"waiting for the freeze to end: {sentence}")
    ctx.run_set("Progressing", "False", FROZEN_REASON, sentence)
    return poll
