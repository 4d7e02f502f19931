"""Failing clusters: a binding whose member reports a failure on its
current generation (Overridden, WorkSynchronized, Applied or Available
False for a reason that is not "still in progress"), as the engine judges
it (rollouts/engine/execution.py `_binding_finished`). The run page, the
members page, the placement page, the roll-back preview and the overview's
"Needs attention" all read failures from here, so they agree."""

from dataclasses import dataclass, replace
from datetime import datetime

from rollouts.engine.execution import IN_PROGRESS_REASONS

from .common import when

# The binding conditions a member agent reports, in the order it reports them.
_REPORTED = ("Overridden", "WorkSynchronized", "Applied", "Available", "DiffReported")


@dataclass(frozen=True)
class Failure:
    """Why a cluster is failing and since when."""

    cluster: str
    placement: str
    namespace: str
    condition: str  # the binding condition that is False: Applied, Available…
    reason: str  # ApplyFailed…
    message: str
    since: datetime | None  # the condition's lastTransitionTime
    attempts: int | None = None  # failed applies of this generation (None: not known, e.g. a mirrored hub's)

    @property
    def text(self) -> str:
        return f"{self.reason}: {self.message}" if self.message else self.reason

    @property
    def when_text(self) -> str:
        """`since 10:02:03 UTC · 4 attempts`, or what of it is known."""
        parts = [f"since {self.since:%H:%M:%S} UTC"] if self.since else []
        if self.attempts:
            parts.append(f"{self.attempts} attempt{'' if self.attempts == 1 else 's'}")
        return " · ".join(parts)


def binding_failure(*, cluster: str, placement: str, namespace: str, generation, conditions,
                    failed_generation=None, failed_attempts=0) -> Failure | None:
    """The failure a binding reports on its current generation, or None; with
    the agent's count of failed attempts when they are of this generation."""
    for cond in conditions or []:
        if (cond.get("type") in _REPORTED and cond.get("status") == "False"
                and cond.get("observedGeneration") == generation
                and cond.get("reason") not in IN_PROGRESS_REASONS):
            attempts = failed_attempts if failed_generation == generation and failed_attempts else None
            return Failure(cluster, placement, namespace, cond["type"], cond.get("reason", ""),
                           cond.get("message", ""), when(cond.get("lastTransitionTime")), attempts)
    return None


def failures_of(bindings) -> list[Failure]:
    """The Failures of rows of BINDING_FIELDS."""
    found = (binding_failure(cluster=c, placement=p, namespace=ns, generation=g, conditions=conds,
                             failed_generation=fg, failed_attempts=fa)
             for c, p, ns, g, conds, fg, fa in bindings)
    return [f for f in found if f]


def failed_attempts(family, *, placement: str, namespace: str, failures: dict[str, Failure]) -> dict[str, Failure]:
    """`failures` (from a placement's status, which has no attempt counts)
    with the attempts our own bindings counted: one query, none when nothing fails."""
    if not failures:
        return failures
    counts = dict((c, fa) for c, g, fg, fa in family.binding.objects.filter(
        owner__name=placement, namespace=namespace, target_cluster__in=list(failures)).values_list(
        "target_cluster", "generation", "failed_generation", "failed_attempts") if fg == g and fa)
    return {c: replace(f, attempts=counts[c]) if c in counts else f for c, f in failures.items()}


def _status_failure(entry: dict, placement: str, namespace: str) -> Failure | None:
    """A placementStatuses / perClusterPlacementStatuses entry's failure.
    Its conditions carry one generation (the binding's in our hub, the
    placement's in KubeFleet's): a failure counts when it is of the same
    generation as the entry's RolloutStarted. KubeFleet names the objects
    that failed in failedPlacements; the first one goes into the message."""
    conditions = entry.get("conditions") or []
    started = next((c for c in conditions if c.get("type") == "RolloutStarted"), {})
    failure = binding_failure(cluster=entry.get("clusterName", ""), placement=placement, namespace=namespace,
                              generation=started.get("observedGeneration"), conditions=conditions)
    failed = (entry.get("failedPlacements") or [{}])[0]
    if failure is None or not failed:
        return failure
    where = "/".join(x for x in (failed.get("namespace"), failed.get("name")) if x)
    detail = f"{failed.get('kind', '')} {where}: {(failed.get('condition') or {}).get('message', '')}".strip()
    return replace(failure, message=f"{failure.message} ({detail})" if failure.message else detail)


def per_cluster_entries(status: dict | None) -> list[dict]:
    """A placement status's per-cluster entries: KubeFleet v1's
    `perClusterPlacementStatuses`, else v1beta1's (and ours) `placementStatuses`."""
    return (status or {}).get("perClusterPlacementStatuses") or (status or {}).get("placementStatuses") or []


def placement_status_failures(status: dict | None, *, placement: str, namespace: str) -> dict[str, Failure]:
    """{cluster: Failure} from a placement's status: our own placements copy
    their bindings' conditions there, and a mirrored KubeFleet placement
    carries its hub's per-cluster statuses (v1beta1 `placementStatuses`,
    v1 `perClusterPlacementStatuses`), so this reads both the same way."""
    entries = per_cluster_entries(status)
    found = (_status_failure(e, placement, namespace) for e in entries)
    return {f.cluster: f for f in found if f}


def placement_status_pending(status: dict | None) -> dict[str, str]:
    """{cluster: "Available: ResourceNotAvailableYet: 1/3 replicas ready"}
    for clusters whose member still works on the current generation (a
    reason the engine waits on): what a stuck run waits for."""
    entries = per_cluster_entries(status)
    found = {}
    for entry in entries:
        conditions = entry.get("conditions") or []
        started = next((c for c in conditions if c.get("type") == "RolloutStarted"), {})
        for cond in conditions:
            if (cond.get("type") in _REPORTED and cond.get("status") == "False"
                    and cond.get("reason") in IN_PROGRESS_REASONS
                    and cond.get("observedGeneration") == started.get("observedGeneration")):
                text = f"{cond['type']}: {cond.get('reason', '')}"
                found[entry.get("clusterName", "")] = f"{text}: {cond['message']}" if cond.get("message") else text
                break
    return found


def placement_status_available(status: dict | None) -> set[str]:
    """The clusters whose member reports Available=True for the current
    generation (the generation of the entry's RolloutStarted)."""
    entries = per_cluster_entries(status)
    found = set()
    for entry in entries:
        conditions = entry.get("conditions") or []
        started = next((c for c in conditions if c.get("type") == "RolloutStarted"), {})
        if any(c.get("type") == "Available" and c.get("status") == "True"
               and c.get("observedGeneration") == started.get("observedGeneration") for c in conditions):
            found.add(entry.get("clusterName", ""))
    return found


BINDING_FIELDS = ("target_cluster", "owner__name", "namespace", "generation", "status__conditions",
                  "failed_generation", "failed_attempts")


def failing_clusters(families) -> list[Failure]:
    """Every failing binding of the fleet, oldest failure first, in one query
    (a UNION over the families): only bound bindings whose member has not
    applied their generation can be failing."""
    queries = [family.binding.objects.filter(apply_pending=True)
               .values_list(*BINDING_FIELDS).order_by() for family in families]
    rows = queries[0].union(*queries[1:], all=True) if queries else []
    return sorted(failures_of(rows), key=lambda f: (f.since is None, f.since or 0, f.cluster))
