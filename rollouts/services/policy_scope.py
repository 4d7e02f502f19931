"""Which approval policies govern a gate of a run, and the run-creation check.

A policy is attached to a gate of a strategy, to a placement, or to member
clusters by label selector (ApprovalPolicy.Scope). The gate of a strategy
governs itself; a placement or clusters policy governs the gate protecting
each stage whose clusters it protects (engine.protection), so a run meets it
whatever strategy it uses. Several policies on one gate combine into one
Requirement, the strictest winning requirement by requirement.
"""

from dataclasses import dataclass

from django.db.models import Q

from rollouts import models as m
from rollouts.api.errors import BadRequest, Forbidden
from rollouts.api.kinds import Kind
from rollouts.api.labels import parse_selector
from rollouts.controllers.family import family_of
from rollouts.engine import protection, stages

Scope = m.ApprovalPolicy.Scope


class PolicyDenied(Forbidden):
    """An approval, or a status write, the gate's policy does not allow.
    `run` names the gate's run, for the `denied` Event."""

    def __init__(self, message: str, *, run: str = ""):
        super().__init__(message)
        self.run = run


class RunUnprotected(PolicyDenied):
    """A run refused at creation: a stage updates clusters a placement or
    clusters policy protects, and the strategy has no gate before it."""

    def __init__(self, message: str, *, kind_name: str, run: str, namespace: str, policy: str):
        super().__init__(message, run=run)
        self.kind_name, self.namespace, self.policy = kind_name, namespace, policy


@dataclass(frozen=True)
class Requirement:
    """What a gate asks of its approvers: every policy that governs it,
    combined requirement by requirement (the strictest wins). Reads like one
    ApprovalPolicy: quorum, four_eyes, groups, summary."""

    policies: tuple  # ApprovalPolicy rows: the strategy's gate policy first

    @property
    def quorum(self) -> int:
        return max(p.quorum for p in self.policies)

    @property
    def four_eyes(self) -> bool:
        return any(p.four_eyes for p in self.policies)

    @property
    def group_sets(self) -> list[list[str]]:
        """The approver must be in one group of each set."""
        sets = []
        for policy in self.policies:
            if policy.groups and sorted(policy.groups) not in [sorted(s) for s in sets]:
                sets.append(list(policy.groups))
        return sets

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(g for s in self.group_sets for g in s))

    @property
    def groups_text(self) -> str:
        """`sre or dba` (one policy), `sre and dba` (each of two policies)."""
        return " and ".join(" or ".join(s) if len(s) == 1 or len(self.group_sets) == 1 else f"({' or '.join(s)})"
                            for s in self.group_sets)

    @property
    def summary(self) -> str:
        """`quorum 2, groups sre, four-eyes`: the requirement in one phrase."""
        if len(self.policies) == 1:
            return self.policies[0].summary
        parts = [f"quorum {self.quorum}"]
        if self.group_sets:
            parts.append(f"group{'s' if len(self.groups) > 1 else ''} {self.groups_text}")
        if self.four_eyes:
            parts.append("four-eyes")
        return ", ".join(parts)

    @property
    def described(self) -> str:
        """Every policy behind it, as `approval policy …: …`."""
        return "; ".join(p.described for p in self.policies)


def policies_in_scope(run) -> list[m.ApprovalPolicy]:
    """Every policy that may govern a gate of `run`, in one query: its
    strategy's gate policies, its placement's, and every clusters policy."""
    family, spec = family_of(run), run.spec or {}
    return list(m.ApprovalPolicy.objects.filter(
        Q(scope=Scope.GATE, strategy_kind=family.strategy.KIND, strategy_namespace=run.namespace,
          strategy_name=spec.get("stagedRolloutStrategyName", ""))
        | Q(scope=Scope.PLACEMENT, placement_namespace=run.namespace, placement_name=spec.get("placementName", ""))
        | Q(scope=Scope.CLUSTERS)))


def _gate_policies(rows: list[m.ApprovalPolicy]) -> dict[tuple[str, str], m.ApprovalPolicy]:
    """{(stage, gate): the strategy's policy in force}: annotation over admin."""
    found: dict[tuple[str, str], m.ApprovalPolicy] = {}
    for policy in rows:
        if policy.scope != Scope.GATE:
            continue
        key = (policy.stage, policy.gate)
        if key not in found or policy.source == m.ApprovalPolicy.Source.ANNOTATION:
            found[key] = policy
    return found


def as_protections(rows: list[m.ApprovalPolicy]) -> list[protection.Protection]:
    """The placement and clusters policies among `rows`, as the engine sees
    them. A selector that does not parse protects nothing (the admin form
    refuses one)."""
    out = []
    for policy in rows:
        if policy.scope == Scope.PLACEMENT:
            out.append(protection.Protection(policy.pk, policy.described))
        elif policy.scope == Scope.CLUSTERS:
            try:
                selector = parse_selector(policy.cluster_selector)
            except BadRequest:
                continue
            out.append(protection.Protection(policy.pk, policy.described, selector))
    return out


def _protected_gates(run, rows: list[m.ApprovalPolicy], member_labels: dict | None) -> dict:
    """{(stage, gate): [placement/clusters policies]} for the stages the run
    recorded; reads member labels (one query) only when a clusters policy
    exists and the caller did not pass them."""
    found = as_protections(rows)
    status = run.status or {}
    recorded = status.get("stagesStatus") or []
    if not found or not recorded:
        return {}
    clusters = [[c.get("clusterName", "") for c in entry.get("clusters") or []] for entry in recorded]
    if member_labels is None:
        member_labels = ({} if all(p.selector is None for p in found) else
                         dict(m.MemberCluster.objects.filter(name__in={c for names in clusters for c in names})
                              .values_list("name", "labels")))
    strategy = _strategy_stages(run)
    if len(strategy) != len(recorded):
        return {}
    by_key = {p.pk: p for p in rows}
    gates, _ = protection.gate_protections(strategy, clusters, member_labels, found)
    return {gate: [by_key[p.key] for p in protecting] for gate, protecting in gates.items()}


def _strategy_stages(run) -> list[dict]:
    """The stages the run was initialized with: its strategy snapshot, else
    (a hub's run whose status we mirror without one) its strategy's, one query."""
    snapshot = (run.status or {}).get("stagedUpdateStrategySnapshot")
    if snapshot is not None:
        return snapshot.get("stages") or []
    spec = (family_of(run).strategy.objects.filter(namespace=run.namespace,
                                                    name=(run.spec or {}).get("stagedRolloutStrategyName", ""))
            .values_list("spec", flat=True).first())
    return (spec or {}).get("stages") or []


def requirements(run, requests: list, *, rows: list | None = None,
                 member_labels: dict | None = None) -> dict[str, tuple[list, Requirement | None]]:
    """{request name: (the gates it stands for, the Requirement governing
    them or None)} for approval requests of `run`.

    The gates come from the run's status, or the request's name and its
    immutable spec (engine.stages.request_gates), never from its labels.
    One query for the policies (none when `rows` is given), plus one for
    member labels when a clusters policy applies and none are passed."""
    rows = policies_in_scope(run) if rows is None else rows
    status = run.status or {}
    by_gate = _gate_policies(rows)
    protected = _protected_gates(run, rows, member_labels) if rows else {}
    out = {}
    for request in requests:
        keys = stages.request_gates(status, request.name, run=run.name,
                                    stage=(request.spec or {}).get("targetStage", ""))
        found = [by_gate[k] for k in keys if k in by_gate]
        for key in keys:
            found += [p for p in protected.get(key, []) if p not in found]
        out[request.name] = (keys, Requirement(tuple(found)) if found else None)
    return out


def run_protection_check(*, kind: Kind, name: str, namespace: str, spec: dict) -> None:
    """Refuse to create a run whose strategy leaves clusters that a placement
    or clusters policy protects without a gate (RunUnprotected, naming
    spec.stagedRolloutStrategyName, the stage and the policy).

    One query when no such policy exists; with one, four more whatever the
    fleet size: the strategy, the placement's scheduled bindings and their
    clusters' labels. A strategy or placement that is not there yet is left
    to the engine, which checks again at initialization."""
    rows = list(m.ApprovalPolicy.objects.filter(
        Q(scope=Scope.PLACEMENT, placement_namespace=namespace, placement_name=spec.get("placementName", ""))
        | Q(scope=Scope.CLUSTERS)))
    found = as_protections(rows)
    if not found:
        return
    family = family_of(kind.model)
    strategy_name = spec.get("stagedRolloutStrategyName", "")
    strategy = family.strategy.objects.filter(namespace=namespace, name=strategy_name).first()
    if strategy is None:
        return
    selected = [cluster for cluster, binding_spec in family.binding.objects.filter(
        owner__namespace=namespace, owner__name=spec.get("placementName", "")).values_list("target_cluster", "spec")
        if (binding_spec or {}).get("state") != "Unscheduled"]
    labels = dict(m.MemberCluster.objects.filter(name__in=selected).values_list("name", "labels"))
    config = (strategy.spec or {}).get("stages") or []
    _, missing = protection.gate_protections(config, protection.stage_clusters(config, selected, labels), labels,
                                             found)
    if missing:
        stage, unprotected = missing[0]
        raise RunUnprotected(
            f'{kind.kind} "{name}" is forbidden: spec.stagedRolloutStrategyName: '
            f"{protection.unprotected_message(strategy_name, stage, unprotected)}",
            kind_name=kind.kind, run=name, namespace=namespace, policy=unprotected.label)
