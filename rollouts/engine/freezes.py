"""What the engine knows of freezes: plain data, and which one holds a run.

The runner reads the freezes holding now once per tick (selectors.freezes),
as FreezeInfo, and puts the one covering the run's placement into its World;
the state machine then starts no stage and no cluster (execution.py).
"""

from dataclasses import dataclass
from datetime import datetime

from rollouts.api.labels import selector_matches


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
