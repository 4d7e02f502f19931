"""The placement controller: scheduling, resource snapshots and the
placement's status (staged-update-semantics.md §6). Level-triggered and
synchronous: services call placements_reconcile() after any change that can
move a placement, inside their transaction."""

from django.db import connection, transaction

from rollouts import changes, clock, metrics
from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import Conflict
from rollouts.conditions import find_condition, set_condition
from rollouts.mirror.marks import local_only

from . import labels as L
from .bindings import placement_bindings, policy_snapshot_rows
from .family import FAMILIES
from .scheduler import may_choose, placement_policy, schedule
from .snapshots import may_select, snapshot_resources

# Placement-level conditions after Scheduled, in the order KubeFleet computes them.
_ROLLOUT_CHAIN = [
    ("RolloutStarted", "RolloutStarted", "RolloutNotStartedYet"),
    ("Overridden", "NoOverrideSpecified", "OverriddenFailed"),
    ("WorkSynchronized", "WorkSynchronized", "WorkNotSynchronizedYet"),
    ("Applied", "ApplySucceeded", "ApplyFailed"),
    ("Available", "ResourceAvailable", "ResourceNotAvailableYet"),
]
# With applyStrategy ReportDiff nothing is applied: the clusters report their differences instead.
_REPORT_DIFF_CHAIN = [*_ROLLOUT_CHAIN[:3], ("DiffReported", "DiffReportingCompleted", "DiffReportingPending")]


def _chain(placement) -> list[tuple]:
    strategy = ((placement.spec or {}).get("strategy") or {}).get("applyStrategy") or {}
    return _REPORT_DIFF_CHAIN if strategy.get("type") == "ReportDiff" else _ROLLOUT_CHAIN


def placements_reconcile(only: list | None = None) -> None:
    """Schedule, snapshot and refresh the status of every placement, or of
    the placements in `only` (ours, not a hub's: callers write local ones)."""
    # A hub's mirrored members are not ours; the scheduler reads names and labels only.
    members = list(local_only(m.MemberCluster.objects.only("pk", "name", "labels")))
    for family in FAMILIES:
        placements = (local_only(family.placement.objects.all()) if only is None
                      else [p for p in only if isinstance(p, family.placement)])
        for placement in placements:
            placement_reconcile(placement, family, members)


def placements_reconcile_for(resources: list, *, done: list = ()) -> None:
    """Reconcile the placements whose selection a change to these hub
    resources can change (controllers.snapshots.may_select), not all of
    them, and not those in `done`: a new namespace and its placement cost
    the same on a hub of 10 placements as on one of 1,000."""
    _reconcile_concerned(lambda family: lambda p: any(may_select(p, resource) for resource in resources), done)


def placements_reconcile_for_members(members: list, *, done: list = ()) -> None:
    """Reconcile the placements a change to these members (written or
    deleted) can reschedule, not all of them, and not those in `done`:
    those whose policy may choose one of them now (scheduler.may_choose)
    and those with a binding to one of them (it may have been chosen
    before). The scheduler reads members' names and labels only, so the
    others cannot change: a member no placement selects costs the same on
    a hub of 10 placements as on one of 1,000 (7 s there before)."""
    names = {member.name for member in members}

    def concerned(family):
        bound = set(family.binding.objects.filter(target_cluster__in=names).values_list("owner_id", flat=True))
        return lambda p: p.pk in bound or any(may_choose(placement_policy(p), member) for member in members)

    _reconcile_concerned(concerned, done)


def _reconcile_concerned(concerned, done) -> None:
    """Reconcile our placements for which `concerned(family)` (a test of a
    placement read with its spec only) holds, but those in `done`."""
    skip = {(type(p), p.pk) for p in done}
    affected = []
    for family in FAMILIES:
        test = concerned(family)
        # Read only what the tests look at: a placement's status (an entry
        # per cluster) is most of its row, and this reads every placement.
        candidates = local_only(family.placement.objects.only("pk", "namespace", "name", "spec"))
        pks = [p.pk for p in candidates if (family.placement, p.pk) not in skip and test(p)]
        if pks:
            affected += list(family.placement.objects.filter(pk__in=pks))
    if affected:
        placements_reconcile(only=affected)


def placement_reconcile(placement, family, members: list) -> None:
    schedule(placement, family, members)
    latest = snapshot_resources(placement, family)
    if (placement.spec or {}).get("strategy", {}).get("type", "RollingUpdate") != "External" and latest:
        _roll_out_immediately(placement, family, latest)
    placement_status_refresh(placement, family)


def _roll_out_immediately(placement, family, snapshot) -> None:
    """RollingUpdate placements: bind every scheduled cluster to the latest
    snapshot at once (Fleet UI keeps no rolling-update pacing). Binding any
    publishes PlacementBound: no run's wave will wake the member agent for
    these, so the wake-up names the placement."""
    message = ("Detected the new changes on the resources and started the rollout process, "
               f"resourceSnapshotIndex: {snapshot.index}")
    bound = []
    for binding in family.binding.objects.filter(owner=placement).exclude(spec__state="Unscheduled").order_by("pk"):
        if binding.spec.get("state") == "Bound" and binding.spec.get("resourceSnapshotName") == snapshot.name:
            continue
        binding.spec = {**binding.spec, "state": "Bound", "resourceSnapshotName": snapshot.name}
        binding.generation += 1
        binding.status = with_rollout_started(binding, message=message)
        bound.append(binding)
    # One statement for every binding (compare-and-set, in id order as the
    # engine and the member agent write): 100 clusters were 200 saves.
    with transaction.atomic(savepoint=False):
        store.save_many(family.binding, bound, ["spec", "generation", "status"])
    if bound:
        changes.publish(changes.PlacementBound(placement.KIND, placement.namespace, placement.name))


def with_rollout_started(binding, *, message: str) -> dict:
    """The binding's status with RolloutStarted=True afresh: the old condition
    is dropped first so its lastTransitionTime is new (§2.5)."""
    conditions = [c for c in (binding.status or {}).get("conditions") or [] if c.get("type") != "RolloutStarted"]
    set_condition(
        conditions,
        type="RolloutStarted",
        status="True",
        reason="RolloutStarted",
        message=message,
        observed_generation=binding.generation,
        now=clock.now(),
    )
    return {**(binding.status or {}), "conditions": conditions}


def _snapshot_index(spec: dict) -> str:
    name = spec.get("resourceSnapshotName") or ""
    if spec.get("state") != "Bound" or not name.endswith("-snapshot"):
        return ""
    return name[: -len("-snapshot")].rsplit("-", 1)[-1]


def _cluster_entry(row: dict, old: dict | None, now, chain: list[tuple]) -> dict:
    """A cluster's entry in placementStatuses, built once per binding
    version (kept in the row's cache, which lives as long as the version)
    and then reused as it is: an unchanged binding leaves its entry, times
    included, as it was, so a refresh with nothing new writes nothing.
    `old`: the entry in the status now, whose condition times a new entry
    keeps where the status did not change (lastTransitionTime semantics)."""
    key = ("placement-entry", chain[-1][0])
    entry = row["cache"].get(key)
    if entry is None:
        entry = row["cache"][key] = _cluster_status(row, now, chain)
        _keep_transition_times(entry["conditions"], (old or {}).get("conditions") or [])
    return entry


def _keep_transition_times(conditions: list[dict], before: list[dict]) -> None:
    times = {c.get("type"): (c.get("status"), c.get("lastTransitionTime")) for c in before}
    for cond in conditions:
        status, time = times.get(cond["type"], (None, None))
        if status == cond["status"] and time:
            cond["lastTransitionTime"] = time


def _cluster_status(row: dict, now, chain: list[tuple]) -> dict:
    """A cluster's entry in placementStatuses, from its binding's values()."""
    spec, generation = row["spec"] or {}, row["generation"]
    conditions = []
    set_condition(conditions, type="Scheduled", status="True", reason="Scheduled",
                  message="Successfully scheduled resources for placement", observed_generation=generation, now=now)
    own = {c["type"]: c for c in (row["status"] or {}).get("conditions") or []}
    if spec.get("state") != "Bound" or "RolloutStarted" not in own:
        set_condition(conditions, type="RolloutStarted", status="Unknown", reason="RolloutStartedUnknown",
                      message="In the process of deciding whether to roll out the latest resources or not",
                      observed_generation=generation, now=now)
    else:
        conditions += [dict(own[t]) for t, _, _ in chain if t in own]
    entry = {"clusterName": row["target_cluster"], "observedResourceIndex": _snapshot_index(spec),
             "conditions": conditions}
    diffed = (row["status"] or {}).get("diffedPlacements")
    return {**entry, "diffedPlacements": diffed} if diffed else entry


class PlacementRefreshes:
    """Placements whose bindings changed during an engine tick, refreshed
    once at its end instead of after every pass and member sync that
    touched them (three times a tick, each reading every binding)."""

    def __init__(self):
        self._pending: dict[tuple, tuple] = {}  # (placement model, pk) -> (family, namespace, name)

    def add(self, placement, family) -> None:
        self._pending[family.placement, placement.pk] = (family, placement.namespace, placement.name)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def run(self, *, leave: set[tuple] = frozenset()) -> None:
        """Refresh each placement once, read afresh (one query a family), all
        in one transaction (the caller's when it has one: a member sync's).
        `leave`: (placement model, namespace, name) of placements to leave
        pending for the next run()."""
        by_family: dict = {}
        for key, (family, namespace, name) in list(self._pending.items()):
            if (family.placement, namespace, name) not in leave:
                by_family.setdefault(family, []).append(key[1])
                del self._pending[key]
        with transaction.atomic():
            for family, pks in by_family.items():
                for placement in family.placement.objects.filter(pk__in=pks):
                    placement_status_refresh(placement, family)


# PostgreSQL: (table, pk) -> ((uid, resourceVersion), status) of the placement
# statuses this process last wrote or read. Its sequence never draws a
# version twice, so the pair names one content for good (SQLite's counter
# rolls back with a transaction: none kept there).
_statuses: dict[tuple[str, int], tuple] = {}
_STATUSES_KEPT = 2_000


def _remember_status(placement) -> None:
    if connection.vendor == "postgresql":
        if len(_statuses) > _STATUSES_KEPT:
            _statuses.clear()
        _statuses[placement._meta.db_table, placement.pk] = ((placement.uid, placement.resource_version),
                                                             placement.status)


def placements_with_status(queryset) -> list:
    """The placements of `queryset`, each with its status taken from the
    last one this process wrote or read at the same resourceVersion, else
    read (a hundred clusters' entries: 1-2 ms to decode, and a run's wave
    refreshes its placement where the wave before did, in the same worker).
    The statuses are shared: never change them in place (a refresh builds
    a new one)."""
    if connection.vendor != "postgresql":
        return list(queryset.all())
    placements = list(queryset.defer("status"))
    table = queryset.model._meta.db_table
    known = {p.pk: _statuses.get((table, p.pk)) for p in placements}
    missing = [p.pk for p in placements if (known[p.pk] or (None,))[0] != (p.uid, p.resource_version)]
    loaded = ({pk: (version, status) for pk, version, status in queryset.model.objects.filter(pk__in=missing)
               .values_list("pk", "resource_version", "status")} if missing else {})
    found = []
    for placement in placements:
        if placement.pk in loaded:
            version, placement.status = loaded[placement.pk]
            if version != placement.resource_version:  # written between the two reads: read it whole
                try:
                    placement.refresh_from_db()
                except queryset.model.DoesNotExist:
                    continue
            _remember_status(placement)
        elif placement.pk in missing:
            continue  # deleted between the two reads
        else:
            placement.status = known[placement.pk][1]
        found.append(placement)
    return found


def placement_status_refresh(placement, family, attempts: int = 5) -> None:
    """Recompute the placement's status from its latest policy snapshot and
    bindings. Another writer racing us makes us read again and recompute, so
    the last refresh always reflects the last binding change."""
    for _ in range(attempts - 1):
        try:
            return _refresh(placement, family)
        except Conflict:
            placement.refresh_from_db()
    _refresh(placement, family)


def _refresh(placement, family) -> None:
    now = clock.now()
    prefix = family.condition_prefix
    old = placement.status or {}
    conditions = [dict(c) for c in old.get("conditions") or []]
    policy_status = _latest_policy_status(placement, family)
    rows = sorted((b for b in placement_bindings(family, placement) if b["spec"].get("state") != "Unscheduled"),
                  key=lambda b: b["target_cluster"])
    chain = _chain(placement)
    before = {entry.get("clusterName"): entry for entry in old.get("placementStatuses") or []}
    per_cluster = [_cluster_entry(row, before.get(row["target_cluster"]), now, chain) for row in rows]
    scheduled = find_condition((policy_status or {}).get("conditions"), "Scheduled")
    set_condition(conditions, type=f"{prefix}Scheduled", status=(scheduled or {}).get("status", "Unknown"),
                  reason=(scheduled or {}).get("reason", "SchedulePending"), message=(scheduled or {}).get("message", ""),
                  observed_generation=placement.generation, now=now)
    indices = {c["observedResourceIndex"] for c in per_cluster}
    unknown = any(find_condition(c["conditions"], "RolloutStarted")["status"] == "Unknown" for c in per_cluster)
    status = {"conditions": conditions, "placementStatuses": per_cluster}
    if not per_cluster or len(indices) != 1 or "" in indices or unknown:
        _drop_chain(conditions, prefix)
        set_condition(conditions, type=f"{prefix}RolloutStarted", status="Unknown",
                      reason="RolloutControlledByExternalController",
                      message="Rollout is controlled by an external controller and no resource snapshot name is observed across clusters, probably rollout has not started yet",
                      observed_generation=placement.generation, now=now)
        status.update(observedResourceIndex="", selectedResources=[])
    else:
        index = indices.pop()
        _chain_conditions(conditions, prefix, per_cluster, placement.generation, now, chain)
        status.update(observedResourceIndex=index, selectedResources=_selected_refs(placement, family, index))
    status["conditions"] = conditions
    if status != old:
        placement.status = status
        store.save(placement, spec_changed=False)
        _remember_status(placement)
        metrics.placement_status_changed(
            placement=placement, condition_types=[f"{prefix}{t}" for t in ("Scheduled", *(c for c, _, _ in chain))])


def _latest_policy_status(placement, family) -> dict | None:
    """The status of the placement's latest policy snapshot (None: it has none)."""
    for snapshot in sorted(policy_snapshot_rows(family, placement), key=lambda row: -row["index"]):
        if snapshot["labels"].get(L.IS_LATEST) == "true":
            return snapshot["status"]
    return None


def _drop_chain(conditions: list, prefix: str) -> None:
    types = {f"{prefix}{t}" for t, _, _ in _ROLLOUT_CHAIN + _REPORT_DIFF_CHAIN}
    conditions[:] = [c for c in conditions if c.get("type") not in types]


def _chain_conditions(conditions: list, prefix: str, per_cluster: list, generation: int, now,
                      chain: list[tuple]) -> None:
    """Each condition True only when every cluster has it True; the chain
    stops at the first one that is not. A placement that changed its apply
    strategy drops the other chain's last conditions."""
    other = {f"{prefix}{t}" for t, _, _ in _ROLLOUT_CHAIN + _REPORT_DIFF_CHAIN} - {f"{prefix}{t}" for t, _, _ in chain}
    conditions[:] = [c for c in conditions if c.get("type") not in other]
    for position, (ctype, ok_reason, wait_reason) in enumerate(chain):
        states = [(find_condition(c["conditions"], ctype) or {}).get("status") for c in per_cluster]
        if all(s == "True" for s in states):
            status, reason = "True", ok_reason
        elif any(s == "False" for s in states):
            status, reason = "False", wait_reason
        else:
            status, reason = "Unknown", wait_reason
        message = f"{states.count('True')} of {len(states)} clusters: {ctype}"
        set_condition(conditions, type=f"{prefix}{ctype}", status=status, reason=reason, message=message,
                      observed_generation=generation, now=now)
        if status != "True":
            later = {f"{prefix}{t}" for t, _, _ in chain[position + 1:]}
            conditions[:] = [c for c in conditions if c.get("type") not in later]
            return


def _selected_refs(placement, family, index: str) -> list[dict]:
    snapshot = family.resource_snapshot.objects.filter(owner=placement, index=int(index)).first()
    refs = []
    for obj in (snapshot.spec.get("selectedResources") if snapshot else []) or []:
        group, _, version = obj.get("apiVersion", "").rpartition("/")
        ref = {"group": group, "version": version, "kind": obj.get("kind"), "name": obj["metadata"]["name"]}
        if obj["metadata"].get("namespace"):
            ref["namespace"] = obj["metadata"]["namespace"]
        refs.append(ref)
    return refs
