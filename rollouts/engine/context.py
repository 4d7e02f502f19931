"""The working state of one pass: the world, the status being built and the
actions collected, with the condition helpers every step uses."""

import pickle

from rollouts.clock import rfc3339
from rollouts.conditions import find_condition, is_true, set_condition

from .world import World


class Pass:
    def __init__(self, world: World):
        self.world = world
        self.now = world.now
        self.generation = world.generation
        # A deep copy through pickle: four times faster than through JSON (1.5
        # ms for a hundred clusters' status), several than copy.deepcopy. Only
        # our own bytes are ever unpickled.
        self.status = pickle.loads(pickle.dumps(world.status or {}, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301
        self.actions: list = []
        self.state = world.spec.get("state") or "Run"  # no state: executes on creation (legacy)

    # Conditions on any status entry (run, stage, cluster, task).
    def set(self, entry: dict, type: str, status: str, reason: str, message: str = "") -> None:
        conditions = entry.setdefault("conditions", [])
        set_condition(conditions, type=type, status=status, reason=reason, message=message,
                      observed_generation=self.generation, now=self.now)

    def true(self, entry: dict, type: str) -> bool:
        return is_true(entry.get("conditions"), type, self.generation)

    def cond(self, entry: dict, type: str) -> dict | None:
        return find_condition(entry.get("conditions"), type)

    def run_set(self, type: str, status: str, reason: str, message: str = "") -> None:
        self.set(self.status, type, status, reason, message)

    def stamp(self, entry: dict, field: str) -> None:
        entry.setdefault(field, rfc3339(self.now))

    @property
    def stages(self) -> list[dict]:
        return self.status.get("stagesStatus") or []

    @property
    def strategy_stages(self) -> list[dict]:
        return (self.status.get("stagedUpdateStrategySnapshot") or {}).get("stages") or []

    def bump_observed_generations(self) -> None:
        """Every condition follows the run's generation (§4.2 step 2), so a
        state change does not make the recorded history stale."""
        for conditions in _all_condition_lists(self.status):
            for cond in conditions:
                cond["observedGeneration"] = self.generation

    def settle_transition_times(self) -> None:
        """A run condition that ends the pass with the status it started with
        keeps its lastTransitionTime, though the pass moved it on the way
        (Progressing True after the cluster walk, then False while a stage
        waits). Stage conditions keep KubeFleet's in-pass semantics on
        purpose: stopping moves a waiting stage through Unknown back to False
        within one pass, and that restarts its TimedWait (§4.9)."""
        before = {c.get("type"): c for c in (self.world.status or {}).get("conditions") or []}
        for cond in self.status.get("conditions") or []:
            old = before.get(cond.get("type"))
            if old and old.get("status") == cond.get("status") and old.get("lastTransitionTime"):
                cond["lastTransitionTime"] = old["lastTransitionTime"]

    def strip_approval_wait_times(self) -> None:
        for stage in self.strategy_stages:
            for key in ("beforeStageTasks", "afterStageTasks"):
                for task in stage.get(key) or []:
                    if task.get("type") == "Approval":
                        task.pop("waitTime", None)


def _all_condition_lists(status: dict):
    yield status.setdefault("conditions", [])
    stages = list(status.get("stagesStatus") or [])
    if status.get("deletionStageStatus"):
        stages.append(status["deletionStageStatus"])
    for stage in stages:
        for entry in [stage, *(stage.get("clusters") or []), *(stage.get("beforeStageTaskStatus") or []),
                      *(stage.get("afterStageTaskStatus") or [])]:
            if entry.get("conditions"):
                yield entry["conditions"]
