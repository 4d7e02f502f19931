"""The member agent's part: for every bound binding, apply its snapshot to
the member and report Overridden, WorkSynchronized, Applied and Available on
the binding, as KubeFleet's member agent does through Work objects."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from rollouts import changes, clock
from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import Conflict
from rollouts.clock import parse_rfc3339
from rollouts.conditions import find_condition, set_condition
from rollouts.controllers.family import FAMILIES
from rollouts.controllers.placement import (
    PlacementRefreshes,
    placement_status_refresh,
    placements_with_status,
)
from rollouts.k8s_errors import TemporaryK8sError

from . import MemberConnector, ReportDiffFailed, connector_for

POLL_SECONDS = 5.0  # how soon to look again at a member that is not done or not reachable


def _current(binding, type: str) -> dict | None:
    cond = find_condition((binding.status or {}).get("conditions"), type)
    return cond if cond and cond.get("observedGeneration") == binding.generation else None


def _needs_work(binding) -> bool:
    started = _current(binding, "RolloutStarted")
    if not started or started.get("status") != "True":
        return False
    applied, available = _current(binding, "Applied"), _current(binding, "Available")
    # Applied but not available yet (a real member's Deployment rolling out): look again.
    return not (applied and applied.get("status") == "True" and available and available.get("status") == "True")


_PENDING_FIELDS = ("name", "namespace", "target_cluster", "generation", "resource_version", "applied_generation",
                   "failed_generation", "failed_attempts",
                   "spec", "status", "owner")


def members_sync(refreshes: PlacementRefreshes | None = None) -> float | None:
    """Apply what is due on every member. Returns seconds until the next
    apply finishes (None when nothing is pending). `refreshes`: an engine
    tick's, to refresh the placements touched once at its end."""
    next_due, _ = members_sync_some(limit=None, refreshes=refreshes)
    return next_due


def members_sync_some(*, limit: int | None,
                      refreshes: PlacementRefreshes | None = None) -> tuple[float | None, bool]:
    """Apply what is due on at most `limit` bindings a family, in one
    transaction (each family's a savepoint: a conflict undoes that family's
    sync only). Returns (seconds until the next apply finishes, whether more
    bindings were left waiting)."""
    now, next_due, more = clock.now(), None, False
    with transaction.atomic():
        for family in FAMILIES:
            due, full = _sync_family(family, now, limit, refreshes)
            more |= full
            if due is not None:
                next_due = due if next_due is None else min(next_due, due)
    return next_due, more


def placements_sync(named: set[tuple[str, str, str]]) -> float | None:
    """Apply what is due on the bindings of the placements `named` only
    ((placement kind, namespace, name)), and refresh those placements whether
    or not anything was applied, in one transaction: a placement rolling out
    by itself (RollingUpdate) shows its clusters Available without waiting
    behind the runs' waves, and a run's wave is refreshed here once, bound
    and applied (rollouts.engine.runner's refresh_with_applies). Returns
    seconds until the next of their applies finishes (None: none pending)."""
    now, next_due = clock.now(), None
    with transaction.atomic():
        for family in FAMILIES:
            wanted = Q()
            for kind, namespace, name in named:
                if kind == family.placement.KIND:
                    wanted |= Q(namespace=namespace, name=name)
            if not wanted:
                continue
            placements = {p.pk: p for p in placements_with_status(family.placement.objects.filter(wanted))}
            if not placements:
                continue
            # The placements the sync applied on are among those named, each
            # refreshed below once: what the sync would refresh is left to it.
            due, _ = _sync_family(family, now, None, PlacementRefreshes(), owners=placements)
            if due is not None:
                next_due = due if next_due is None else min(next_due, due)
            for placement in placements.values():
                placement_status_refresh(placement, family)
    return next_due


def _sync_family(family, now, limit: int | None, refreshes: PlacementRefreshes | None,
                 owners: dict | None = None) -> tuple[float | None, bool]:
    """`owners`: {pk: placement} to sync those placements' bindings only."""
    next_due = None
    with transaction.atomic():
        # Workers share the pending bindings instead of racing for them: each
        # locks a batch and skips what another holds (PostgreSQL).
        query = (family.binding.objects.filter(apply_pending=True)
                 .filter(Q(owner_id__in=list(owners)) if owners is not None else Q())
                 .only(*_PENDING_FIELDS).select_for_update(skip_locked=True, of=("self",)).order_by("pk"))
        rows = list(query[:limit] if limit else query)
        pending = _with_owners(family, [b for b in rows if _needs_work(b)], owners)
        if not pending:
            return None, False
        members = {c.name: c for c in m.MemberCluster.objects.filter(name__in={b.target_cluster for b in pending})
                   .only("name", "labels", "annotations")}
        snapshots = {s.name: s for s in family.resource_snapshot.objects.filter(
            name__in={b.spec.get("resourceSnapshotName") for b in pending})}
        reports = _Reports()
        applied = _apply_together(pending, members, snapshots, now)
        for binding in pending:
            member = members.get(binding.target_cluster)
            if member is None:
                continue
            wait = _sync_binding(binding, member, snapshots.get(binding.spec.get("resourceSnapshotName")), now,
                                 reports, applied)
            if wait is not None:
                next_due = wait if next_due is None else min(next_due, wait)
        try:
            reports.save(family.binding)
        except Conflict:  # the engine rebound one meanwhile: undo this sync, the next one sees the new spec
            transaction.set_rollback(True)
            return next_due, False
        owners = {b.owner_id: b.owner for b in reports.bindings.values()}  # placements whose bindings changed
        if refreshes is not None:
            for placement in owners.values():
                refreshes.add(placement, family)
        else:
            for placement in family.placement.objects.filter(pk__in=owners):
                placement_status_refresh(placement, family)
        for placement in owners.values():
            changes.publish(changes.BindingsApplied(placement.KIND, placement.namespace, placement.name))
    # More may wait behind a full batch; a batch of failing members made no
    # progress, and going round again at once would only spin.
    progressed = any(b.applied_generation == b.generation for b in pending)
    return next_due, bool(limit) and len(rows) == limit and progressed


def _with_owners(family, bindings: list, owners: dict | None = None) -> list:
    """The bindings, each with its placement (from `owners`, else its name
    and namespace by one query for the few placements, not a joined copy of
    its placement built for each of thousands of bindings); those whose
    placement is gone are left out, as the join left them out."""
    if not bindings:
        return bindings
    if owners is None:
        owners = family.placement.objects.only("name", "namespace").in_bulk({b.owner_id for b in bindings})
    found = [b for b in bindings if b.owner_id in owners]
    for binding in found:
        binding.owner = owners[binding.owner_id]
    return found


def _apply_together(pending: list, members: dict, snapshots: dict, now) -> dict[int, str | None]:
    """Apply, in one call per connector that can, every binding whose apply
    is due now: {binding pk: failure or None}. The rest apply one by one."""
    batches: dict[type, list] = {}
    for binding in pending:
        member, snapshot = members.get(binding.target_cluster), snapshots.get(binding.spec.get("resourceSnapshotName"))
        if member is None or snapshot is None or (binding.spec.get("applyStrategy") or {}).get("type") == "ReportDiff":
            continue
        connector = connector_for(member)
        if type(connector).apply_many is MemberConnector.apply_many or now < _apply_due(binding, connector):
            continue
        batches.setdefault(type(connector), []).append((binding, member, snapshot))
    applied = {}
    for connector_type, batch in batches.items():
        failures = connector_type().apply_many([(member, binding.owner.name, snapshot.name,
                                                 snapshot.spec.get("selectedResources") or [])
                                                for binding, member, snapshot in batch])
        applied.update({binding.pk: failure for (binding, _, _), failure in zip(batch, failures, strict=True)})
    return applied


def _apply_due(binding, connector):
    """When the binding's apply finishes: its RolloutStarted plus the connector's apply time."""
    started = parse_rfc3339(_current(binding, "RolloutStarted")["lastTransitionTime"])
    return started + timedelta(seconds=connector.apply_seconds())


class _Reports:
    """The bindings one sync reported on, written at its end in one statement."""

    def __init__(self):
        self.bindings: dict[int, object] = {}

    def add(self, binding) -> None:
        self.bindings[binding.pk] = binding

    def save(self, model) -> None:
        """In id order, as the engine binds them: the two never deadlock."""
        store.save_many(model, [self.bindings[pk] for pk in sorted(self.bindings)], ["status", "applied_generation"])


def _sync_binding(binding, member, snapshot, now, reports: _Reports, applied: dict) -> float | None:
    connector = connector_for(member)
    due = _apply_due(binding, connector)
    if now < due:
        _report(reports, binding, [("Overridden", "True", "NoOverrideSpecified", "no override rules"),
                                   ("WorkSynchronized", "True", "AllWorkSynced", "all works are synchronized"),
                                   ("Applied", "False", "ApplyPending", "applying the resources")])
        return (due - now).total_seconds()
    if snapshot is None:
        _report(reports, binding, [("Applied", "False", "ApplyFailed",
                                   f"resource snapshot {binding.spec.get('resourceSnapshotName')} not found")])
        return None
    manifests = snapshot.spec.get("selectedResources") or []
    strategy = binding.spec.get("applyStrategy") or {}
    if strategy.get("type") == "ReportDiff":
        return _report_diffs(reports, binding, member, connector, manifests, now=now,
                             full=strategy.get("comparisonOption") == "FullComparison")
    try:
        failure = (applied[binding.pk] if binding.pk in applied else
                   connector.apply(member, placement=binding.owner.name, snapshot=snapshot.name, manifests=manifests))
        state, message = ("Available", "") if failure is None else connector.status(
            member, placement=binding.owner.name, manifests=manifests)
    except TemporaryK8sError as exc:
        _report(reports, binding, [("Applied", "False", "ApplyPending", f"the member cannot be reached now: {exc}")])
        return POLL_SECONDS
    if state == "NotAvailableYet":
        _report(reports, binding, [("Overridden", "True", "NoOverrideSpecified", "no override rules"),
                                   ("WorkSynchronized", "True", "AllWorkSynced", "all works are synchronized"),
                                   ("Applied", "True", "AllWorkHaveBeenApplied", "all resources are applied"),
                                   ("Available", "False", "ResourceNotAvailableYet", message)])
        return POLL_SECONDS
    if state != "Available":
        _failed(reports, binding, [("Applied", "False", "ApplyFailed", failure or message)])
        return None
    binding.applied_generation = binding.generation
    _report(reports, binding, [*_SYNCED,
                               ("Applied", "True", "AllWorkHaveBeenApplied", "all resources are applied"),
                               ("Available", "True", "AllWorkAreAvailable", "all resources are available")], force=True)
    return None


_SYNCED = [("Overridden", "True", "NoOverrideSpecified", "no override rules"),
           ("WorkSynchronized", "True", "AllWorkSynced", "all works are synchronized")]
DIFFS_KEPT = 100  # objects with differences reported per cluster, as KubeFleet caps them


def _report_diffs(reports: _Reports, binding, member, connector, manifests: list[dict], *, full: bool,
                  now) -> float | None:
    """The ReportDiff apply strategy: nothing is applied; the binding reports
    DiffReported and KubeFleet's `diffedPlacements`, and the cluster succeeds
    on that (§4.8 step 7), differences or not."""
    try:
        diffed = connector.report_diff(member, manifests=manifests, full=full)
    except TemporaryK8sError as exc:
        _report(reports, binding, [("WorkSynchronized", "False", "WorkNotSynchronizedYet",
                                   f"the member cannot be reached now: {exc}")])
        return POLL_SECONDS
    except ReportDiffFailed as exc:
        _failed(reports, binding, [*_SYNCED, ("DiffReported", "False", "DiffReportingIncompleteOrFailed", str(exc))])
        return None
    first_seen = {_identity(d): d.get("firstDiffedObservedTime")
                  for d in (binding.status or {}).get("diffedPlacements") or []}
    stamp = clock.rfc3339(now)
    entries = [{**d, "observationTime": stamp, "firstDiffedObservedTime": first_seen.get(_identity(d)) or stamp}
               for d in diffed[:DIFFS_KEPT]]
    status = {k: v for k, v in (binding.status or {}).items() if k != "diffedPlacements"}
    binding.status = {**status, "diffedPlacements": entries} if entries else status
    binding.applied_generation = binding.generation
    message = (f"found differences in {len(diffed)} of {len(manifests)} objects" if diffed
               else f"no differences in {len(manifests)} objects")
    _report(reports, binding, [*_SYNCED, ("DiffReported", "True", "DiffReportingCompleted", message)], force=True)
    return None


def _identity(diffed: dict) -> tuple:
    return tuple(diffed.get(k, "") for k in ("group", "version", "kind", "namespace", "name"))


def _failed(reports: _Reports, binding, conditions: list[tuple]) -> None:
    """Report a failure; a new one (not the same again) pushes the pages."""
    _count_failed_attempt(binding)
    if _report(reports, binding, conditions):
        changes.publish(changes.ClusterFailing(binding.owner.KIND, binding.namespace, binding.owner.name))


def _count_failed_attempt(binding) -> None:
    """One more failed apply of this generation ("failing · 3 attempts"): a
    column update, not a status write, so a retry that fails the same way
    bumps no resourceVersion and pushes nothing."""
    attempts = binding.failed_attempts + 1 if binding.failed_generation == binding.generation else 1
    type(binding).objects.filter(pk=binding.pk).update(failed_generation=binding.generation, failed_attempts=attempts)
    binding.failed_generation, binding.failed_attempts = binding.generation, attempts


def _report(reports: _Reports, binding, conditions: list[tuple], *, force: bool = False) -> bool:
    """Set the conditions on the binding; have it saved with the sync's
    reports (returning True) when they changed."""
    current = [dict(c) for c in (binding.status or {}).get("conditions") or []]
    now = clock.now()
    for type, status, reason, message in conditions:
        set_condition(current, type=type, status=status, reason=reason, message=message,
                      observed_generation=binding.generation, now=now)
    if force or current != (binding.status or {}).get("conditions"):
        binding.status = {**(binding.status or {}), "conditions": current}
        reports.add(binding)
        return True
    return False
