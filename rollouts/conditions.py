"""metav1.Condition helpers with meta.SetStatusCondition semantics:
lastTransitionTime changes only when a condition's status changes."""

from datetime import datetime

from rollouts.clock import rfc3339


def find_condition(conditions: list[dict] | None, type: str) -> dict | None:
    for cond in conditions or []:
        if cond.get("type") == type:
            return cond
    return None


def set_condition(
    conditions: list[dict],
    *,
    type: str,
    status: str,
    reason: str,
    message: str = "",
    observed_generation: int,
    now: datetime,
) -> bool:
    """Upsert a condition in place; returns whether anything changed."""
    new = {
        "lastTransitionTime": rfc3339(now),
        "message": message,
        "observedGeneration": observed_generation,
        "reason": reason,
        "status": status,
        "type": type,
    }
    existing = find_condition(conditions, type)
    if existing is None:
        conditions.append(new)
        return True
    if existing.get("status") == status:
        new["lastTransitionTime"] = existing.get("lastTransitionTime") or new["lastTransitionTime"]
    if existing == new:
        return False
    existing.clear()
    existing.update(new)
    return True


def remove_condition(conditions: list[dict], type: str) -> bool:
    before = len(conditions)
    conditions[:] = [c for c in conditions if c.get("type") != type]
    return len(conditions) != before


def is_true(conditions, type: str, generation: int | None = None) -> bool:
    """True for the given generation (when one is given), as KubeFleet checks."""
    cond = find_condition(conditions, type)
    if cond is None or cond.get("status") != "True":
        return False
    return generation is None or cond.get("observedGeneration") == generation


def is_false(conditions, type: str, generation: int | None = None) -> bool:
    cond = find_condition(conditions, type)
    if cond is None or cond.get("status") != "False":
        return False
    return generation is None or cond.get("observedGeneration") == generation
