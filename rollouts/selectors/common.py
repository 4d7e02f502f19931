"""Small helpers every selector uses: families, times and durations."""

from dataclasses import dataclass
from datetime import datetime

from rollouts import clock
from rollouts.api.durations import human_duration
from rollouts.api.kinds import FLEET_KINDS, Kind
from rollouts.controllers.family import CLUSTER, NAMESPACED, Family

KIND_OF_MODEL = {kind.model: kind for kind in FLEET_KINDS}


def family_for(namespace: str) -> Family:
    """Cluster-scoped objects have no namespace; namespaced ones always do."""
    return NAMESPACED if namespace else CLUSTER


def kind_of(model) -> Kind:
    return KIND_OF_MODEL[model if isinstance(model, type) else type(model)]


def when(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp from a status, as a datetime (None stays None)."""
    try:
        return clock.parse_rfc3339(text)
    except ValueError:
        return None


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def duration_text(seconds: float | None) -> str:
    """`15s`, `2m6s`… (kubectl's style); empty when unknown."""
    return "" if seconds is None else human_duration(seconds)


def conditions_by_type(entry: dict | None) -> dict:
    return {c.get("type"): c for c in (entry or {}).get("conditions") or []}


@dataclass(frozen=True)
class ConditionRow:
    """A condition as the page shows it."""

    type: str
    status: str
    reason: str
    message: str
    since: datetime | None


def condition_rows(conditions: list[dict] | None) -> list[ConditionRow]:
    return [ConditionRow(c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""),
                         when(c.get("lastTransitionTime"))) for c in conditions or []]
