"""Reads for placements, strategies and member clusters."""

from dataclasses import dataclass, field

from rollouts import models as m
from rollouts.api.labels import selector_matches
from rollouts.api.numbers import parse_signed
from rollouts.controllers.family import FAMILIES
from rollouts.members import is_simulated
from rollouts.mirror import mirror_sources

from .common import condition_rows, family_for
from .failures import Failure, binding_failure, placement_status_failures
from .runs import RunRow, run_rows
from .snapshots import SnapshotRow, snapshot_rows


def _bindings(family, **filters) -> list[dict]:
    """Bindings as dicts: placement, target_cluster, state, resource_snapshot,
    failure (a selectors.failures.Failure when the member reports one)."""
    rows = family.binding.objects.filter(**filters).values_list(
        "owner__name", "namespace", "target_cluster", "spec__state", "spec__resourceSnapshotName",
        "generation", "status__conditions", "failed_generation", "failed_attempts")
    return [{"placement": p, "namespace": ns, "target_cluster": c, "state": st or "", "resource_snapshot": snap or "",
             "failure": binding_failure(cluster=c, placement=p, namespace=ns, generation=gen, conditions=conds,
                                        failed_generation=fg, failed_attempts=fa)
             if st == "Bound" else None}
            for p, ns, c, st, snap, gen, conds, fg, fa in rows]


@dataclass
class PlacementRow:
    name: str
    namespace: str
    policy: str
    strategy_type: str
    scheduled: int
    observed_index: str
    conditions: list


def placements_list() -> list[PlacementRow]:
    """Every placement with its scheduled cluster count (two queries per family)."""
    rows = []
    for family in FAMILIES:
        counts = {}
        for b in _bindings(family):
            if b["state"] != "Unscheduled":
                counts[(b["namespace"], b["placement"])] = counts.get((b["namespace"], b["placement"]), 0) + 1
        for p in family.placement.objects.all():
            spec, status = p.spec or {}, p.status or {}
            rows.append(PlacementRow(p.name, p.namespace, (spec.get("policy") or {}).get("placementType", "PickAll"),
                                     (spec.get("strategy") or {}).get("type", "RollingUpdate"),
                                     counts.get((p.namespace, p.name), 0), status.get("observedResourceIndex", ""),
                                     condition_rows(status.get("conditions"))))
    return rows


@dataclass
class PlacementDetail:
    placement: object
    clusters: list[dict]
    snapshots: list[SnapshotRow]
    runs: list[RunRow]
    strategies: list[str]
    default_strategy: str
    conditions: list = field(default_factory=list)
    # Failing clusters as the placement's status reports them: a mirrored
    # placement has no local bindings, so this is where its failures show.
    status_failures: list[Failure] = field(default_factory=list)

    @property
    def latest_index(self):
        return self.snapshots[0].index if self.snapshots else None


def placement_detail(*, name: str, namespace: str = "") -> PlacementDetail | None:
    """The placement, the clusters it schedules (and the snapshot each is
    bound to), its snapshot history, its runs and the strategies a rollback
    may use (default: the one its latest run used)."""
    family = family_for(namespace)
    placement = family.placement.objects.filter(name=name, namespace=namespace).first()
    if placement is None:
        return None
    bindings = sorted((b for b in _bindings(family, owner=placement) if b["state"] != "Unscheduled"),
                      key=lambda b: b["target_cluster"])
    runs = sorted(run_rows(family.run.objects.filter(namespace=namespace, spec__placementName=name)),
                  key=lambda r: r.created, reverse=True)
    strategies = list(family.strategy.objects.filter(namespace=namespace).order_by("name")
                      .values_list("name", flat=True))
    default = next((r.strategy for r in runs if r.strategy in strategies), strategies[0] if strategies else "")
    failures = placement_status_failures(placement.status, placement=name, namespace=namespace)
    return PlacementDetail(placement, bindings, snapshot_rows(placement, bindings), runs, strategies, default,
                           condition_rows((placement.status or {}).get("conditions")),
                           sorted(failures.values(), key=lambda f: f.cluster))


@dataclass
class StageSelection:
    name: str
    selector: str
    sort_key: str
    max_concurrency: str
    before: str
    after: str
    clusters: list[str]


@dataclass
class StrategyView:
    name: str
    namespace: str
    stages: list[StageSelection]


def _selector_text(selector) -> str:
    if selector is None:
        return "nothing (no selector)"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    parts += [f"{e.get('key')} {e.get('operator')} {','.join(e.get('values') or [])}".strip()
              for e in selector.get("matchExpressions") or []]
    return ", ".join(parts) or "every cluster"


def _sorted_clusters(members: list, sort_key: str) -> list[str]:
    """In update order: by the integer sorting label, then by name."""
    if not sort_key:
        return sorted(mem.name for mem in members)

    def order(mem):
        value = parse_signed((mem.labels or {}).get(sort_key, ""))
        return (0, value, mem.name) if value is not None else (1, 0, mem.name)

    return [mem.name for mem in sorted(members, key=order)]


def _tasks_text(tasks) -> str:
    return ", ".join(f"{t.get('type')} {t.get('waitTime', '')}".strip() for t in tasks or []) or "none"


def strategies_list() -> list[StrategyView]:
    """Each strategy's stages and the member clusters each selects now
    (before scheduling narrows them to a placement's clusters)."""
    members = list(m.MemberCluster.objects.all())
    views = []
    for family in FAMILIES:
        for strategy in family.strategy.objects.all():
            stages = []
            for stage in (strategy.spec or {}).get("stages") or []:
                selected = [mem for mem in members if stage.get("labelSelector") is not None
                            and selector_matches(stage["labelSelector"], mem.labels or {})]
                stages.append(StageSelection(
                    stage.get("name", ""), _selector_text(stage.get("labelSelector")), stage.get("sortingLabelKey", ""),
                    str(stage.get("maxConcurrency", 1)), _tasks_text(stage.get("beforeStageTasks")),
                    _tasks_text(stage.get("afterStageTasks")),
                    _sorted_clusters(selected, stage.get("sortingLabelKey", ""))))
            views.append(StrategyView(strategy.name, strategy.namespace, stages))
    return views


@dataclass
class MemberRow:
    name: str
    labels: list[tuple[str, str]]
    simulated: bool
    placements: list[dict]
    hub: str = ""  # the KubeFleet hub it is mirrored from; "" for our own


def _status_only_rows(family, bound: set[tuple]) -> list[dict]:
    """Binding-like rows for the failing clusters a placement's status names
    where no local binding exists (a mirrored hub's placements), one query."""
    rows = []
    for name, namespace, status in family.placement.objects.values_list("name", "namespace", "status"):
        for failure in placement_status_failures(status, placement=name, namespace=namespace).values():
            if (failure.cluster, namespace, name) not in bound:
                rows.append({"placement": name, "namespace": namespace, "target_cluster": failure.cluster,
                             "state": "Bound", "resource_snapshot": "", "failure": failure})
    return rows


def members_list() -> list[MemberRow]:
    """Members with labels, simulated or real, and per placement the snapshot
    its binding puts on the member and whether the member reports a failure
    (one query for members, two per family: bindings, and placements'
    statuses for mirrored placements, which have no local bindings)."""
    on: dict[str, list[dict]] = {}
    for family in FAMILIES:
        bindings = _bindings(family)
        bound = {(b["target_cluster"], b["namespace"], b["placement"]) for b in bindings}
        for b in bindings + _status_only_rows(family, bound):
            on.setdefault(b["target_cluster"], []).append(b)
    members = list(m.MemberCluster.objects.order_by("name"))
    hubs = mirror_sources(members)
    return [MemberRow(mem.name, sorted((mem.labels or {}).items()), is_simulated(mem),
                      sorted(on.get(mem.name, []), key=lambda b: (b["namespace"], b["placement"])),
                      hubs.get((mem.KIND, "", mem.name), ""))
            for mem in members]
