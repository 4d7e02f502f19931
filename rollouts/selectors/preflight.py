"""Pre-flight of an update run: what KubeFleet's initialization would do for
a new run of a strategy over a placement, computed without writing anything.

The stages come from the engine's own computation (engine.stages.
compute_stages); a strategy it refuses still shows which clusters each
stage would pick, with the refusal as a problem in plain words."""

from dataclasses import dataclass, field

from rollouts import models as m
from rollouts.engine import protection
from rollouts.engine import stages as engine_stages

from .common import family_for
from .snapshots import ClusterGroup, cluster_groups

# compute_stages words its refusals for a run's status; a person reading a
# pre-flight needs only the reason.
_PREFIXES = (engine_stages.PREFIX, engine_stages.VALIDATE, engine_stages.CLIENT, engine_stages.INTERNAL)


@dataclass
class PlanStage:
    name: str
    clusters: list[str]  # in update order


@dataclass
class Plan:
    """What a new run would do: stages with their clusters in order, the
    scheduled clusters in no stage, the problems initialization would refuse
    (empty when it would start), and the clusters grouped by the snapshot
    they run now with the diff to the run's snapshot."""

    placement: str
    strategy: str
    index: str
    stages: list[PlanStage] = field(default_factory=list)
    unstaged: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    groups: list[ClusterGroup] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The plan as text lines, for `fleet apply --dry-run=server`."""
        out = [f"plan: placement {self.placement}, strategy {self.strategy}, snapshot {self.index}"]
        for number, stage in enumerate(self.stages, 1):
            out.append(f"  stage {number} {stage.name}: {', '.join(stage.clusters) or '(no clusters)'}")
        if self.unstaged:
            out.append(f"  in no stage: {', '.join(self.unstaged)}")
        for group in self.groups:
            out.append(f"  now on {group.current or 'nothing'}: {', '.join(group.clusters)}"
                       f" ({len(group.diff)} object{'' if len(group.diff) == 1 else 's'} change)")
        out += [f"  problem: {problem}" for problem in self.problems]
        return out


def plain(message: str) -> str:
    """An engine Terminal message without its status prefixes."""
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if message.startswith(prefix):
                message, changed = message[len(prefix):], True
    return message


def run_plan(*, placement: str, namespace: str, strategy: str, snapshot_index) -> Plan:
    """The pre-flight of a new run of `strategy` over `placement` pinned to
    `snapshot_index`. Reads only; six queries whatever the fleet size (the
    placement, the strategy, its bindings, their members' labels, and two
    for the snapshot groups when the placement has clusters)."""
    family = family_for(namespace)
    index = str(snapshot_index)
    plan = Plan(placement, strategy, index)
    if not family.placement.objects.filter(namespace=namespace, name=placement).exists():
        plan.problems.append(f"placement `{placement}` not found")
        return plan
    spec = family.strategy.objects.filter(namespace=namespace, name=strategy).values_list("spec", flat=True).first()
    if spec is None:
        plan.problems.append(f"referenced updateStrategy `{strategy}` not found")
        spec = {}
    selected = sorted(cluster for cluster, binding_spec in family.binding.objects.filter(
        owner__namespace=namespace, owner__name=placement).values_list("target_cluster", "spec")
        if (binding_spec or {}).get("state") != "Unscheduled")
    labels = dict(m.MemberCluster.objects.filter(name__in=selected).values_list("name", "labels"))
    labels = {name: value or {} for name, value in labels.items()}
    if not selected:
        plan.problems.append(f"placement `{placement}` has no scheduled clusters")
    _fill_stages(plan, spec, selected, labels)
    if selected and engine_stages.atoi(index) is not None:
        plan.groups = cluster_groups(placement=placement, namespace=namespace, index=index)
    return plan


def _fill_stages(plan: Plan, spec: dict, selected: list[str], labels: dict) -> None:
    config = spec.get("stages") or []
    try:
        computed = engine_stages.compute_stages("preflight", plan.strategy, spec, selected, labels)
        plan.stages = [PlanStage(e["stageName"], [c["clusterName"] for c in e["clusters"]]) for e in computed]
    except engine_stages.Terminal as exc:
        plan.problems.append(plain(str(exc)))
        picked = protection.stage_clusters(config, selected, labels)
        plan.stages = [PlanStage(stage.get("name", ""), sorted(names)) for stage, names in zip(config, picked, strict=True)]
    placed = {c for stage in plan.stages for c in stage.clusters}
    plan.unstaged = [c for c in selected if c not in placed]
    if plan.unstaged and not any("not placed in any stage" in p for p in plan.problems):
        # compute_stages stops at its first refusal; name these too.
        plan.problems.append(f"some clusters are not placed in any stage: {', '.join(plan.unstaged)}")
