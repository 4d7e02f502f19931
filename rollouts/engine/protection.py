"""Which approval gate of a run protects which clusters, and whether every
cluster that an approval policy on a placement or on clusters protects has
one (docs/approval-policies.md, "Policies on placements and clusters").

The gate that protects the clusters of a stage is, in this order:
1. the stage's own `beforeStageTasks` Approval, else
2. the `afterStageTasks` Approval of the stage right before it.
A stage with clusters a policy protects and neither gate is unprotected: a
run of that strategy is refused at creation and fails at initialization.

Pure: plain data in and out, used both by the service that creates runs and
by the state machine that initializes them.
"""

from dataclasses import dataclass

from rollouts.api.labels import selector_matches, selector_problem

Gate = tuple[str, str]  # (stage name, "before" | "after")

# The Initialized=False reason of a run failed for want of a gate: Fleet
# UI's own, so it is told apart from KubeFleet's UpdateRunInitializedFailed.
UNPROTECTED_REASON = "UpdateRunApprovalGateMissing"


class Unprotected(Exception):
    """Initialization found clusters a policy protects with no gate before them."""


@dataclass(frozen=True)
class Protection:
    """An approval policy on a placement or on clusters, as a run sees it.

    key: the policy's id. label: how messages name it. selector: the cluster
    label selector (a policy on clusters), or None for a policy on the run's
    placement, which protects every cluster the run updates."""

    key: int
    label: str
    selector: dict | None = None

    def protects(self, labels: dict | None) -> bool:
        if self.selector is None:
            return True
        return labels is not None and selector_matches(self.selector, labels)


def _has_approval(tasks) -> bool:
    return any(isinstance(t, dict) and t.get("type") == "Approval" for t in tasks or [])


def protecting_gate(stages: list[dict], index: int) -> Gate | None:
    """The gate that protects the clusters of strategy stage `index`, or None."""
    stage = stages[index]
    if _has_approval(stage.get("beforeStageTasks")):
        return stage.get("name", ""), "before"
    if index > 0 and _has_approval(stages[index - 1].get("afterStageTasks")):
        return stages[index - 1].get("name", ""), "after"
    return None


def stage_clusters(stages: list[dict], selected: list[str], member_labels: dict) -> list[list[str]]:
    """The clusters each strategy stage would update, as compute_stages picks
    them, without its checks (a run that fails them fails at initialization)."""
    out = []
    for stage in stages:
        selector = stage.get("labelSelector")
        ok = not selector_problem(selector)
        out.append([c for c in selected if ok and c in member_labels and selector_matches(selector, member_labels[c])])
    return out


def gate_protections(stages: list[dict], clusters: list[list[str]], member_labels: dict,
                     protections: list[Protection]) -> tuple[dict[Gate, list[Protection]], list[tuple[str, Protection]]]:
    """({gate: the protections it must meet}, [(stage, protection) with no
    gate]) for a strategy's stages and the clusters each updates."""
    gates: dict[Gate, list[Protection]] = {}
    missing: list[tuple[str, Protection]] = []
    for index, names in enumerate(clusters):
        found = [p for p in protections if any(p.protects(member_labels.get(c)) for c in names)]
        if not found:
            continue
        gate = protecting_gate(stages, index)
        if gate is None:
            missing += [(stages[index].get("name", ""), p) for p in found]
        else:
            gates.setdefault(gate, []).extend(p for p in found if p not in gates.get(gate, []))
    return gates, missing


def unprotected_message(strategy: str, stage: str, protection: Protection) -> str:
    return (f'strategy "{strategy}" has no approval gate before stage "{stage}" which updates clusters protected '
            f"by {protection.label}")
