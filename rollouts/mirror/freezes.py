"""Freezes on mirrored KubeFleet hubs: a hub's controller drives its own runs,
so a freeze cannot hold them in our engine. Instead, while a freeze holds,
its hubs' matching running runs are stopped on the hub (spec.state Stop, as
`set_run_state_on_hub` sends it) and each one is recorded (FreezeStop); when
no freeze covers them any more, exactly those are resumed (spec.state Run).
A run a person stopped is never resumed by a freeze. docs/freezes.md.
"""

import logging

from rollouts import clock, mirror
from rollouts import models as m
from rollouts.api.errors import ApiError
from rollouts.controllers.family import FAMILIES
from rollouts.engine.freezes import FreezeInfo, holding
from rollouts.selectors.freezes import freezes_holding

from .marks import mirrored_only

log = logging.getLogger(__name__)


def actor_of(freeze_name: str) -> str:
    """Who the hub's audit rows name for a freeze's stop or resume."""
    return f"system:freeze/{freeze_name}"


def mirrored_runs_enforce(*, freezes: list[FreezeInfo] | None = None, now=None) -> tuple[int, int]:
    """Stop the mirrored runs a holding freeze covers, resume those a freeze
    stopped and no freeze covers any more. Returns (stopped, resumed).
    A hub that refuses or is unreachable is logged and tried again on the
    next call (the engine tick, or beat's sync-freezes). Queries: the
    freezes (unless given), the recorded stops, and per run family the
    mirrored active runs and their placements' labels (only while a freeze
    holds or stops remain)."""
    freezes = freezes_holding(now) if freezes is None else freezes
    stops = list(m.FreezeStop.objects.select_related("freeze"))
    if not freezes and not stops:
        return 0, 0
    runs = _mirrored_runs_with_labels()
    recorded = {(s.run_kind, s.run_namespace, s.run_name): s for s in stops}
    stopped = 0
    for key, (run, labels) in runs.items():
        frozen = holding(freezes, labels)
        # Stopped once: a person resuming it on the hub meanwhile wins. Legacy
        # hubs' runs have no spec.state and cannot be stopped: left alone.
        if frozen and key not in recorded and (run.spec or {}).get("state") == "Run":
            stopped += _stop(run, frozen)
    resumed = 0
    for key, stop in recorded.items():
        run, labels = runs.get(key, (None, None))
        frozen = holding(freezes, labels) if run is not None else None
        if run is None:
            stop.delete()  # the run finished or is gone from the hub
        elif frozen is not None:
            if frozen.name != stop.freeze.name:  # still held, by another freeze: it resumes it
                stop.freeze = m.Freeze.objects.get(name=frozen.name)
                stop.save(update_fields=["freeze"])
        else:
            resumed += _resume(run, stop)
    return stopped, resumed


def _mirrored_runs_with_labels() -> dict[tuple, tuple]:
    """(kind, namespace, name) -> (run, its placement's labels) of every mirrored active run."""
    found = {}
    for family in FAMILIES:
        runs = list(mirrored_only(family.run.objects.filter(active=True)))
        if not runs:
            continue
        names = {(r.namespace, (r.spec or {}).get("placementName", "")) for r in runs}
        labels = {(p.namespace, p.name): p.labels for p in
                  family.placement.objects.filter(name__in=[n for _, n in names])}
        for run in runs:
            found[(run.KIND, run.namespace, run.name)] = (
                run, labels.get((run.namespace, (run.spec or {}).get("placementName", "")), {}))
    return found


def _stop(run, frozen: FreezeInfo) -> int:
    try:
        mirror.set_run_state_on_hub(run, "Stop", actor=actor_of(frozen.name))
    except ApiError as exc:
        log.warning("freeze %s could not stop mirrored run %s: %s", frozen.name, run.name, exc)
        return 0
    m.FreezeStop.objects.get_or_create(freeze=m.Freeze.objects.get(name=frozen.name), run_kind=run.KIND,
                                       run_namespace=run.namespace, run_name=run.name,
                                       defaults={"stopped_at": clock.now()})
    return 1


def _resume(run, stop: m.FreezeStop) -> int:
    try:
        mirror.set_run_state_on_hub(run, "Run", actor=actor_of(stop.freeze.name))
    except ApiError as exc:
        log.warning("freeze %s could not resume mirrored run %s: %s", stop.freeze.name, run.name, exc)
        return 0
    stop.delete()
    return 1
