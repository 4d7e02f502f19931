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


def cluster_entry_key(entry: dict) -> tuple:
    """What a run's status entry for one cluster says (its name and its
    conditions' type, status, reason, message and time), as a hashable value:
    the key under which `Memo`s keep what is parsed from it. A push of a
    1,000-cluster run re-reads 1,000 entries of which one or two changed."""
    return cluster_entry_keys([entry])[0]


def cluster_entry_keys(entries: list[dict]) -> list[tuple]:
    """`cluster_entry_key` of each entry (one comprehension: the keys of a
    1,000-cluster stage are most of what a push spends on it)."""
    return [(e.get("clusterName", ""), *[(c.get("type"), c.get("status"), c.get("reason"), c.get("message"),
                                          c.get("lastTransitionTime")) for c in e.get("conditions") or ()])
            for e in entries]


class Memo:
    """Values computed from their key alone (so never stale), kept up to
    `size` keys; when full it starts over. Threads may share one: each dict
    operation is atomic, and two threads computing the same value both get
    an equal one."""

    def __init__(self, size: int):
        self.size, self.values = size, {}

    def known(self, key):
        """The value for `key` if it was computed before, else None."""
        return self.values.get(key)

    def get_many(self, keys: list, make) -> list:
        """The value for each of `keys`, `make(i)` for the i-th the first time
        (one dict lookup a key: a 1,000-cluster stage's views, once per push)."""
        values = [*map(self.values.get, keys)]
        for i, value in enumerate(values):
            if value is None:
                values[i] = self.get(keys[i], lambda i=i: make(i))
        return values

    def get(self, key, make):
        """The value for `key`, from `make()` the first time."""
        value = self.values.get(key)
        if value is None:
            if len(self.values) >= self.size:
                self.values.clear()
            value = self.values[key] = make()
        return value


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
