"""Reads for update runs: their state in one word, progress, the runs list,
and the timeline of one run, each with a fixed number of queries however
many clusters a run has (the clusters live in the run's status JSON)."""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.paginator import Paginator
from django.db import models

from rollouts import clock
from rollouts.controllers.family import FAMILIES
from rollouts.mirror import mirror_sources

from .common import conditions_by_type, duration_text, family_for

RUNS_PER_PAGE = 25


class RunState(models.TextChoices):
    """A run's state in one word, derived from its conditions (§5)."""

    PENDING = "pending", "pending"
    INITIALIZED = "initialized", "initialized (idle)"
    RUNNING = "running", "running"
    WAITING = "waiting", "waiting"
    FROZEN = "frozen", "frozen"  # a freeze holds it (docs/freezes.md)
    STOPPING = "stopping", "stopping"
    STOPPED = "stopped", "stopped"
    STUCK = "stuck", "stuck"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


_BY_PROGRESSING_REASON = {
    "UpdateRunWaiting": RunState.WAITING,
    "UpdateRunFrozen": RunState.FROZEN,
    "UpdateRunStopping": RunState.STOPPING,
    "UpdateRunStopped": RunState.STOPPED,
    "UpdateRunStuck": RunState.STUCK,
    "UpdateRunSucceeded": RunState.SUCCEEDED,
    "UpdateRunFailed": RunState.FAILED,
}


def run_state(spec_state: str | None, conditions: list[dict] | None) -> RunState:
    """Terminal conditions win; then the Progressing reason; a run that is
    initialized but has no Progressing condition is idle in Initialize."""
    by_type = {c.get("type"): c for c in conditions or []}
    initialized, succeeded = by_type.get("Initialized"), by_type.get("Succeeded")
    if (initialized or {}).get("status") == "False" or (succeeded or {}).get("status") == "False":
        return RunState.FAILED
    if (succeeded or {}).get("status") == "True":
        return RunState.SUCCEEDED
    if not initialized:
        return RunState.PENDING
    progressing = by_type.get("Progressing")
    if progressing is None:
        return RunState.INITIALIZED if spec_state == "Initialize" else RunState.PENDING
    return _BY_PROGRESSING_REASON.get(progressing.get("reason"), RunState.RUNNING)


def cluster_state(entry: dict) -> str:
    """pending, updating, succeeded or failed, from a cluster's conditions."""
    return cluster_state_of(conditions_by_type(entry))


def cluster_state_of(conds: dict) -> str:
    """cluster_state() from conditions already read by type (a 1,000-cluster
    page reads each cluster's once)."""
    succeeded = (conds.get("Succeeded") or {}).get("status")
    if succeeded == "True":
        return "succeeded"
    if succeeded == "False":
        return "failed"
    return "updating" if (conds.get("Started") or {}).get("status") == "True" else "pending"


def progress(status: dict | None) -> tuple[int, int]:
    """(clusters succeeded, clusters in update stages)."""
    clusters = [c for s in (status or {}).get("stagesStatus") or [] for c in s.get("clusters") or []]
    return sum(cluster_state(c) == "succeeded" for c in clusters), len(clusters)


@dataclass
class RunRow:
    """A run as the overview and the runs list show it."""

    name: str
    namespace: str
    placement: str
    strategy: str
    snapshot_index: str
    state: RunState
    done: int
    total: int
    created: datetime
    active: bool
    hub: str = ""  # the KubeFleet hub it is mirrored from; "" for our own
    conditions: list = field(default_factory=list)  # the run's status conditions
    status: dict = field(default_factory=dict, repr=False)  # the run's whole status (the overview's strip reads it)
    pipeline: object = None  # the overview's pipeline strip (selectors.pipeline.Pipeline), when it shows one
    eta: object = None  # its selectors.eta.Eta, where a page asks for one (the overview)

    @property
    def age(self) -> str:
        return duration_text((clock.precise_now() - self.created).total_seconds())


def run_row(run, hub: str = "") -> RunRow:
    spec, status = run.spec or {}, run.status or {}
    done, total = progress(status)
    return RunRow(run.name, run.namespace, spec.get("placementName", ""), spec.get("stagedRolloutStrategyName", ""),
                  str(status.get("resourceSnapshotIndexUsed") or spec.get("resourceSnapshotIndex") or ""),
                  run_state(spec.get("state"), status.get("conditions")), done, total, run.creation_timestamp,
                  run.active, hub, list(status.get("conditions") or []), status)


def run_rows(runs) -> list[RunRow]:
    """RunRows, each marked with the hub it is mirrored from (one query for all)."""
    runs = list(runs)
    hubs = mirror_sources(runs)
    return [run_row(r, hubs.get((r.KIND, r.namespace, r.name), "")) for r in runs]


def active_runs() -> list:
    """Unfinished runs of both families, as models (one query per family)."""
    return [r for f in FAMILIES for r in f.run.objects.filter(active=True)]


def runs_active() -> list[RunRow]:
    """Unfinished runs of both families, newest first (one query per family)."""
    return sorted(run_rows(active_runs()), key=lambda r: r.created, reverse=True)


def run_list(*, placement: str = "", state: str = "", page: int | str = 1):
    """A page of runs (RunRow), newest first, filtered by placement name and
    state. States are derived from conditions, so the filter reads only each
    run's conditions (not its cluster list); then the page's runs in full."""
    keys = []
    for family in FAMILIES:
        qs = family.run.objects.all()
        if placement:
            qs = qs.filter(spec__placementName=placement)
        for pk, created, spec_state, conditions in qs.values_list(
                "pk", "creation_timestamp", "spec__state", "status__conditions"):
            if not state or run_state(spec_state, conditions) == state:
                keys.append((created, pk, family))
    keys.sort(key=lambda k: (k[0], k[1]), reverse=True)
    page_obj = Paginator(keys, RUNS_PER_PAGE).get_page(page)
    page_obj.object_list = _rows_for(list(page_obj.object_list))
    return page_obj


def _rows_for(keys: list) -> list[RunRow]:
    runs = {}
    for family in FAMILIES:
        pks = [pk for _, pk, f in keys if f is family]
        if pks:
            runs.update({(family, r.pk): r for r in family.run.objects.filter(pk__in=pks)})
    return run_rows(runs[(f, pk)] for _, pk, f in keys if (f, pk) in runs)


def run_placements() -> list[str]:
    """Placement names runs refer to, for the filter's choices."""
    names = set()
    for family in FAMILIES:
        names.update(family.run.objects.values_list("spec__placementName", flat=True))
    return sorted(n for n in names if n)


def run_get(*, name: str, namespace: str = ""):
    """The run or None."""
    return family_for(namespace).run.objects.filter(name=name, namespace=namespace).first()
