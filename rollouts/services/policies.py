"""Approval policies: which policies govern a gate, what a vote is bound to,
who may vote, and whether a gate's votes meet its policies.

Which gate a request stands for comes from its run's recorded status (the
approval request names the engine wrote per stage task), never from the
request's labels, which anyone who may edit the request can change
(engine.stages.request_gates).

Which policies govern a gate: the strategy's own policy for that gate (a row
from the strategy's `fleetui.io/approval-policy` annotation wins over a row
made in the admin), plus every policy on the run's placement or on clusters
it updates whose clusters the gate protects (engine.protection). Several
policies combine requirement by requirement, the strictest wins: the largest
quorum, four-eyes if any asks for it, and an approver must be in one of the
groups of every policy that names groups (`Requirement`). Without any, the
gate has no policy and approving works as in KubeFleet (one approval, a
plain status patch is enough).

Binding: a vote counts only while the run is the same object (uid), has not
been stopped and resumed since (epoch: the id of the run's latest
`state-changed` Event), and rolls out the same snapshot. A gate is met when
some single binding of the current run gathered `quorum` distinct approvers,
so a full approval survives a later stop and resume; a partial one does not.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from rollouts import clock, roles
from rollouts import models as m
from rollouts.api import approval_policy
from rollouts.api.kinds import Kind
from rollouts.controllers.family import family_of

from . import events
from .policy_scope import PolicyDenied as PolicyDenied  # the error callers catch, re-exported
from .policy_scope import Requirement, Scope, requirements


@dataclass
class Gate:
    """One approval request seen as a gate: its run, stage and policy."""

    kind_name: str
    request: object
    run_name: str
    stage: str
    gate: str  # before | after ("" when the request is no gate of its run)
    run: object | None
    policy: Requirement | None


@dataclass
class Progress:
    """Where a gate stands against its policy, for people to read."""

    policy: Requirement
    approvers: list[str]
    starter: str
    met: bool
    voided: int = 0  # earlier votes that no longer count

    @property
    def count(self) -> int:
        return len(self.approvers)

    @property
    def text(self) -> str:
        """`2 of 3 approvals, waiting for someone from sre`."""
        quorum = self.policy.quorum
        if self.met:
            return f"{self.count} of {quorum} approval{'s' if quorum != 1 else ''}: {', '.join(self.approvers)}"
        if self.policy.group_sets:
            who = f"someone from {self.policy.groups_text}"
        elif self.policy.four_eyes and quorum == 1:
            who = "a second person"
        else:
            who = "another approver" if self.count else "an approver"
        if self.policy.four_eyes and self.starter:
            who += f": {self.starter} started the run and may not approve it"
        text = f"{self.count} of {quorum} approval{'s' if quorum != 1 else ''}, waiting for {who}"
        if self.voided:
            text += (f" ({self.voided} earlier approval{'s' if self.voided != 1 else ''} voided: the run was "
                     "stopped and resumed, or its snapshot changed)")
        return text


# Policies -----------------------------------------------------------------------


def strategy_policies_sync(*, strategy, kind: Kind, manifest: dict | None) -> None:
    """Make the annotation rows of `strategy` match its annotation (manifest
    None: the strategy was deleted). Admin rows are left alone."""
    m.ApprovalPolicy.objects.filter(scope=Scope.GATE, strategy_kind=kind.kind, strategy_namespace=strategy.namespace,
                                    strategy_name=strategy.name,
                                    source=m.ApprovalPolicy.Source.ANNOTATION).delete()
    rules = approval_policy.parse(manifest) if manifest is not None else []
    m.ApprovalPolicy.objects.bulk_create([
        m.ApprovalPolicy(strategy_kind=kind.kind, strategy_namespace=strategy.namespace, strategy_name=strategy.name,
                         stage=r.stage, gate=r.gate, groups=list(r.groups), quorum=r.quorum, four_eyes=r.four_eyes,
                         source=m.ApprovalPolicy.Source.ANNOTATION) for r in rules])


def gate_of(request) -> Gate:
    """The gate an approval request stands for, with its run and policy."""
    spec = request.spec or {}
    family = family_of(request)
    run_name, stage = spec.get("parentStageRollout", ""), spec.get("targetStage", "")
    run = family.run.objects.filter(namespace=request.namespace, name=run_name).first()
    keys, requirement = [], None
    if run is not None:
        keys, requirement = requirements(run, [request])[request.name]
    if keys:
        stage = keys[0][0]
    return Gate(request.KIND, request, run_name, stage, keys[0][1] if keys else "", run, requirement)


def describe(gate: Gate) -> str:
    """`approval policy example-strategy/prod/after: quorum 2, groups sre, four-eyes`."""
    return gate.policy.described


# Bindings and votes ---------------------------------------------------------------


def binding_of(run) -> tuple:
    """What a vote cast now is bound to: (run uid, epoch, snapshot name,
    snapshot uid/generation). Two queries."""
    epoch = (m.Event.objects.filter(object_kind=run.KIND, object_namespace=run.namespace, object_name=run.name,
                                    action=m.Event.Action.STATE_CHANGED).order_by("-id")
             .values_list("id", flat=True).first()) or 0
    status, spec = run.status or {}, run.spec or {}
    index = str(status.get("resourceSnapshotIndexUsed") or "")
    name = f"{spec.get('placementName', '')}-{index}-snapshot" if index else ""
    snapshot = (family_of(run).resource_snapshot.objects.filter(namespace=run.namespace, name=name)
                .values_list("uid", "generation").first()) if name else None
    return str(run.uid), epoch, name, f"{snapshot[0]}/{snapshot[1]}" if snapshot else ""


def run_starter(run) -> str:
    """Who started the run: the actor of its latest `created` Event."""
    return (m.Event.objects.filter(object_kind=run.KIND, object_namespace=run.namespace, object_name=run.name,
                                   action=m.Event.Action.CREATED).order_by("-id")
            .values_list("actor", flat=True).first()) or ""


def votes_of(request) -> list[m.ApprovalVote]:
    return list(m.ApprovalVote.objects.filter(request_kind=request.KIND, request_namespace=request.namespace,
                                              request_name=request.name))


def counted(votes: list, binding: tuple) -> list[str]:
    """The distinct approvers whose votes are bound to `binding`, in vote order."""
    return list(dict.fromkeys(v.actor for v in votes if v.binding == binding))


def quorum_met(votes: list, *, run_uid: str, quorum: int) -> bool:
    """Whether one binding of this run (any epoch) gathered `quorum` distinct
    approvers: what the engine checks before it lets a gate open."""
    per_binding: dict[tuple, set] = {}
    for vote in votes:
        if vote.run_uid == run_uid:
            per_binding.setdefault(vote.binding, set()).add(vote.actor)
    return any(len(actors) >= quorum for actors in per_binding.values())


def progress(gate: Gate) -> Progress | None:
    """The gate's standing against its policy, None without a policy."""
    if gate.policy is None or gate.run is None:
        return None
    return _progress(gate.policy, votes_of(gate.request), binding_of(gate.run), run_starter(gate.run))


def progress_for_run(run, requests: dict) -> dict[str, Progress]:
    """{request name: Progress} for the run's requests whose gate has a
    policy: one query without policies, five with (six with a clusters
    policy), for any number of gates."""
    family = family_of(run)
    governed = {name: requirement for name, (_, requirement) in requirements(run, list(requests.values())).items()
                if requirement is not None}
    if not governed:
        return {}
    votes: dict[str, list] = {}
    for vote in m.ApprovalVote.objects.filter(request_kind=family.approval_request.KIND,
                                              request_namespace=run.namespace, request_name__in=list(governed)):
        votes.setdefault(vote.request_name, []).append(vote)
    binding, starter = binding_of(run), run_starter(run)
    return {name: _progress(policy, votes.get(name, []), binding, starter) for name, policy in governed.items()}


def _progress(policy: Requirement, votes: list, binding: tuple, starter: str) -> Progress:
    run_uid = binding[0]
    approvers = counted(votes, binding)
    met = quorum_met(votes, run_uid=run_uid, quorum=policy.quorum)
    if met and len(approvers) < policy.quorum:  # met under an earlier binding: show who met it
        approvers = list(dict.fromkeys(v.actor for v in votes if v.run_uid == run_uid))
    voided = 0 if met else len({v.actor for v in votes if v.binding != binding} - set(approvers))
    return Progress(policy, approvers, starter, met, voided)


def refusal(gate: Gate, *, actor: str, starter: str, approvers: list[str]) -> str | None:
    """Why `actor` may not approve the gate now, or None when they may."""
    policy = gate.policy
    user = get_user_model().objects.filter(username=actor, is_active=True).first()
    if user is None or not user.has_perm(roles.APPROVE):
        return "only Fleet UI users with the approve permission may approve this gate"
    sets = policy.group_sets
    mine = set(user.groups.filter(name__in=policy.groups).values_list("name", flat=True)) if sets else set()
    if any(not mine & set(groups) for groups in sets):
        return f"only members of {policy.groups_text} may approve this gate"
    if policy.four_eyes and actor == starter:
        return "the person who started the run may not approve it"
    if actor in approvers:
        return "you have already approved this gate: another person must approve it"
    return None


def may_approve(gate: Gate, *, user, progress_: Progress | None) -> bool:
    """Whether the dashboard offers `user` the Approve button (the service
    checks again on the POST)."""
    if not user.has_perm(roles.APPROVE):
        return False
    if gate.policy is None or progress_ is None:
        return True
    return refusal(gate, actor=user.get_username(), starter=progress_.starter,
                   approvers=progress_.approvers) is None


def vote_append(gate: Gate, *, actor: str, binding: tuple, comment: str, client_address: str,
                via: str) -> m.ApprovalVote:
    run_uid, epoch, snapshot, snapshot_version = binding
    request = gate.request
    return m.ApprovalVote.objects.create(
        request_kind=request.KIND, request_namespace=request.namespace, request_name=request.name,
        run=gate.run_name, stage=gate.stage, gate=gate.gate, actor=actor, time=clock.now(), comment=comment,
        client_address=client_address, via=via, run_uid=run_uid, epoch=epoch, snapshot=snapshot,
        snapshot_version=snapshot_version)


def denial_record(*, kind_name: str, name: str, namespace: str, run: str, actor: str, reason: str,
                  attempted: str, client_address: str = "", via: str = "", policy: str = "") -> m.Event:
    """Append a `denied` Event. Called after the refused write's transaction
    rolled back, so the refusal is recorded even though the write is not."""
    details = {"attempted": attempted, "client_address": client_address, "via": via, "policy": policy}
    with transaction.atomic():
        return events.record(actor=actor, action=m.Event.Action.DENIED, kind_name=kind_name, name=name,
                             namespace=namespace, run=run, reason="PolicyDenied", message=reason,
                             details={k: v for k, v in details.items() if v})
