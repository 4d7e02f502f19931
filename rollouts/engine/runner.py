"""The thin layer around the state machine: load a run's world with a fixed
number of queries, decide, carry out the actions, save with compare-and-set,
and record every condition change as an Event row.

run_advance() is the single "advance this run" entry point; it is
idempotent: calling it again right away changes nothing.
"""

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from rollouts import changes, clock, metrics
from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import Conflict
from rollouts.conditions import find_condition, is_true
from rollouts.controllers import labels as L
from rollouts.controllers.bindings import member_labels, placement_bindings, policy_snapshot_rows
from rollouts.controllers.family import FAMILIES, Family, family_of
from rollouts.controllers.placement import (
    PlacementRefreshes,
    placement_status_refresh,
)
from rollouts.mirror.marks import local_only
from rollouts.models.rows import CompiledRead
from rollouts.selectors import freezes as freeze_selectors
from rollouts.services import policies, policy_scope

from . import timeline
from .actions import Written, carry_out
from .freezes import FreezeInfo, holding
from .state_machine import decide
from .world import (
    ApprovalView,
    BindingView,
    Decision,
    PolicySnapshotView,
    ResourceSnapshotView,
    World,
)

log = logging.getLogger(__name__)
MAX_IMMEDIATE_PASSES = 100  # bounds one advance; the next tick goes on from there


def run_finalize(*, run) -> None:
    """What the run's finalizer does on delete (§4.15): remove the approval
    requests labelled with its name; bindings stay as they are."""
    family = family_of(run)
    for request in family.approval_request.objects.filter(namespace=run.namespace):
        if request.labels.get(L.TARGET_UPDATE_RUN) == run.name:
            request.delete()


def active_runs() -> list[tuple[Family, int]]:
    """Active runs of our own hub (a mirrored run is its hub's controller's)."""
    return [(family, pk) for family in FAMILIES
            for pk in local_only(family.run.objects.filter(active=True)).values_list("pk", flat=True)]


def active_placements() -> set[tuple]:
    """(placement model, namespace, name) of the placements our active runs
    roll out (one query a family)."""
    return {(family.placement, namespace, name) for family in FAMILIES
            for namespace, name in local_only(family.run.objects.filter(active=True))
            .values_list("namespace", "spec__placementName")}


class MemberLabels:
    """Member clusters' labels, read once and shared by the passes of one
    advance, or of every run of an engine tick (`whole_fleet`: one query for
    all members, however many runs the tick advances)."""

    def __init__(self, *, whole_fleet: bool = False):
        self._labels: dict[str, dict | None] = {}
        self._whole_fleet, self._loaded = whole_fleet, False

    def of(self, names: set[str]) -> dict[str, dict]:
        """{name: labels} of those of `names` that are members."""
        if self._whole_fleet and not self._loaded:
            self._labels = member_labels()
            self._loaded = True
        missing = [n for n in names if n not in self._labels]
        if missing and not self._whole_fleet:
            found = member_labels(missing)
            self._labels.update({n: found.get(n) for n in missing})
        return {n: self._labels[n] for n in names if self._labels.get(n) is not None}


def run_advance(*, family: Family, pk: int, woken_at: float | None = None,
                freezes: list[FreezeInfo] | None = None, labels: MemberLabels | None = None,
                refreshes: PlacementRefreshes | None = None,
                refresh_with_applies: bool = False) -> Decision | None:
    """Advance one run as far as it can go now: pass after pass while a pass
    changes something (a finished cluster lets the next start at once, a
    completed stage lets the next begin). Returns the last decision, or None
    when the run is gone or another writer got there first. `woken_at` (Unix
    time) is when a writer asked for this advance, for the wake-up lag metric.
    `freezes`: the freezes holding now, read once by a tick for all its runs;
    None: read here (one query). `labels`: the tick's member labels; None:
    read here, once for all the passes. `refreshes`: the tick's, to refresh
    the placement once at its end; None: refreshed here after the passes, in
    their transaction. `refresh_with_applies`: a wave bound is left for the
    refresh that follows its applies (the wave's placement sync, which the
    ClustersBound it sends asks for: agent.placements_sync refreshes what it
    names), one refresh a wave instead of two (a Celery task)."""
    labels = labels or MemberLabels()
    if woken_at is not None:
        metrics.engine_woken(seconds=time.time() - woken_at, path="celery")
    try:
        # One transaction for the passes, the next look and (without a tick)
        # the placement refresh: one commit per advance instead of one per
        # pass, plus two. A conflict in any pass rolls back the whole advance,
        # which the next one redoes (every pass is a compare-and-set).
        with transaction.atomic():
            decision, placement, last = _passes(family, pk, freezes, labels)
            if placement is not None:
                changes.publish(changes.ClustersBound(placement.KIND, placement.namespace, placement.name))
                if refreshes is None and not refresh_with_applies:  # once per advance, not per pass
                    placement_status_refresh(placement, family)
            if decision is not None:
                _finish(family, pk, decision, last)
    except Conflict:
        log.info("run %s changed under us; the next pass picks it up", pk)
        return None
    if placement is not None and refreshes is not None:
        refreshes.add(placement, family)
    return decision


def _passes(family: Family, pk: int, freezes: list[FreezeInfo] | None,
            labels: MemberLabels) -> tuple[Decision | None, object, "Known | None"]:
    """Pass after pass while a pass changes something: (the last decision,
    the placement whose bindings a pass wrote or None, the last pass's
    world with the run's changes not written yet, or None). The world is
    loaded once; a later pass decides on the world the one before left,
    made from its own writes (the run row stays locked: no other writer
    moves it), and only approval requests or deleted bindings make it load
    again. The pass that confirms nothing is left to do thus costs a
    decide, not a reload."""
    decision, placement, known = None, None, None
    for _ in range(MAX_IMMEDIATE_PASSES):
        started = time.perf_counter()
        decision, changed, touched, known = _one_pass(family, pk, freezes, labels, known)
        metrics.engine_pass_finished(seconds=time.perf_counter() - started, changed=changed)
        placement = touched or placement
        if decision is None or not changed:
            break
    return decision, placement, known


def _finish(family: Family, pk: int, decision: Decision, last: "Known | None") -> None:
    """Write the run's changes the passes left (with its next look: one
    write of the row), or else only its next look."""
    if last is not None and last.unsaved:
        last.run.wake_at = _next_look_at(last.run.wake_at, decision)
        store.save(last.run, spec_changed=False)
    else:
        _schedule_next_look(family, pk, decision)


def _next_look_at(current, decision: Decision):
    """The run's wake_at after this decision, as _schedule_next_look writes it."""
    if decision.requeue_after is None:
        return None
    now = clock.now()
    wanted = now + timedelta(seconds=decision.requeue_after)
    return wanted if current is None or current <= now or current > wanted else current


def _schedule_next_look(family: Family, pk: int, decision: Decision) -> None:
    """Record when the run wants another pass. Written only when it moves
    earlier or the old time has passed, so an idle run costs no writes."""
    if decision.requeue_after is None:
        family.run.objects.filter(pk=pk).exclude(wake_at=None).update(wake_at=None)
        return
    wanted = clock.now() + timedelta(seconds=decision.requeue_after)
    family.run.objects.filter(pk=pk).filter(
        Q(wake_at=None) | Q(wake_at__lte=clock.now()) | Q(wake_at__gt=wanted)
    ).update(wake_at=wanted)


def due_runs() -> list[tuple[Family, int]]:
    """Active runs whose next look is due."""
    now = clock.now()
    return [(family, pk) for family in FAMILIES
            for pk in local_only(family.run.objects.filter(active=True, wake_at__lte=now)).values_list("pk", flat=True)]


_retry_logged: dict[tuple, str] = {}  # (run kind, pk) -> the retryable error this process logged last


def _log_retry(run, error: str) -> None:
    """Log a retryable error (a failing cluster…) when it appears or
    changes, not on every pass that meets it again (every tick while a
    cluster keeps failing)."""
    key = (run.KIND, run.pk)
    if not error:
        _retry_logged.pop(key, None)
        return
    if _retry_logged.get(key) != error:
        if len(_retry_logged) > 10_000:  # bounded: runs that finished while failing leave entries
            _retry_logged.clear()
        _retry_logged[key] = error
        log.info("run %s: %s", run.name, error)


@dataclass(frozen=True)
class Known:
    """What the next pass of an advance would load, known from the pass
    before: the locked run row and its world and rows. `unsaved`: the run
    has changes not written yet; they are written once, before a pass
    reloads the world or when the passes stop (with the next look), not
    after every pass (a hundred clusters' status is most of the row)."""

    run: object
    world: World
    rows: dict
    unsaved: bool = False


def _one_pass(family: Family, pk: int, freezes: list[FreezeInfo] | None = None,
              labels: MemberLabels | None = None,
              known: Known | None = None) -> tuple[Decision | None, bool, object, Known | None]:
    """One locked pass: (decision, whether it changed anything, the placement
    whose bindings it wrote or None, what the next pass would load or None:
    load it). Inside an advance's transaction it takes no savepoint of its
    own: a pass that fails fails the advance."""
    with transaction.atomic(savepoint=False):
        if known is None:
            run = _LOCKED_RUN[family.run].first(pk)
            if run is None:
                return None, False, None, None
            world, rows = load_world(run, family, freezes=freezes, labels=labels)
        else:
            run, world, rows = known.run, known.world, known.rows
        decision = decide(world)
        _log_retry(run, decision.retry_error)
        written = carry_out(decision.actions, run, family, rows)
        run_changed = _save(run, decision, world)
        changed = run_changed or bool(decision.actions)
        following = _next_known(run, world, rows, written, unsaved=run_changed or bool(known and known.unsaved))
    touched = rows["placement"] if written.bindings_changed else None
    return decision, changed, touched, following


def _next_known(run, world: World, rows: dict, written: Written, *, unsaved: bool) -> Known | None:
    """The world the next pass would load after this one's writes: its run
    status, and its bound bindings as written. None (load it) after writes
    to anything else a pass reads, and after initialization (an initialized
    run's world leaves the strategy and snapshots out); the run's changes
    are written first then."""
    if written.other or not is_true((world.status or {}).get("conditions"), "Initialized"):
        if unsaved:
            store.save(run, spec_changed=False)
        return None
    if not written.bound:
        return Known(run, replace(world, status=run.status or {}, now=clock.now()), rows, unsaved)
    bound = {row["name"]: row for row in written.bound}
    bindings = {**rows["bindings"], **bound}
    views = [_binding_view(bound[view.name]) if view.name in bound else view for view in world.bindings]
    return Known(run, replace(world, status=run.status or {}, now=clock.now(), bindings=views),
                 {**rows, "bindings": bindings}, unsaved)


def load_world(run, family: Family, now=None, freezes: list[FreezeInfo] | None = None,
               labels: MemberLabels | None = None) -> tuple[World, dict]:
    """The run's world (six queries at most, seven when initializing: the
    approval policies on its placement and clusters; plus two while a gate
    with an approval policy waits with Approved=True; one for the freezes
    holding now unless `freezes` is given, plus one while a freeze holds the
    run and it has gates: their break-glass approvals) and the rows behind it."""
    spec, status = run.spec or {}, run.status or {}
    now = now or clock.now()
    if freezes is None:
        freezes = freeze_selectors.freezes_holding(now)
    # Not its status: a hundred clusters' entries the pass never reads (the
    # refresh after the advance loads it once).
    placement = _PLACEMENT[family.placement].first(run.namespace, spec.get("placementName", ""))
    policy_snapshots = policy_snapshot_rows(family, placement) if placement else []
    bindings = placement_bindings(family, placement) if placement else []
    # Only this placement's clusters: the stages, the gates and the policies
    # look at no other member, and a hub holds ten times more than one placement.
    members = (labels or MemberLabels()).of({b["target_cluster"] for b in bindings}) if bindings else {}
    initialized = is_true(status.get("conditions"), "Initialized")
    strategy = snapshots = None
    protections = []
    if not initialized:
        strategy = family.strategy.objects.filter(namespace=run.namespace, name=spec.get("stagedRolloutStrategyName", "")).first()
        snapshots = list(family.resource_snapshot.objects.filter(owner=placement)) if placement else []
        protections = policy_scope.as_protections(policy_scope.policies_in_scope(run))
    names = timeline.approval_request_names(status)
    approvals = list(family.approval_request.objects.filter(namespace=run.namespace, name__in=names)) if names else []
    unmet = _unmet_policies(run, family, approvals, members)
    frozen = holding(freezes, placement.labels) if placement else None
    broken = _break_glass_approved(family, run, approvals) if frozen else set()
    world = World(
        run_name=run.name,
        namespace=run.namespace,
        generation=run.generation,
        spec=spec,
        status=status,
        now=now,
        placement={"name": placement.name, "spec": placement.spec} if placement else None,
        policy_snapshots=[_policy_view(p) for p in policy_snapshots],
        bindings=[_binding_view(b) for b in bindings],
        member_labels=members,
        strategy=strategy.spec if strategy else None,
        resource_snapshots=[ResourceSnapshotView(s.name, s.labels, s.annotations) for s in snapshots or []],
        approvals={a.name: _approval_view(a, policy_met=a.name not in unmet, break_glass=a.name in broken)
                   for a in approvals},
        protections=protections,
        frozen=frozen,
    )
    rows = {"placement": placement, "bindings": {b["name"]: b for b in bindings}, "approvals": {a.name: a for a in approvals}}
    return world, rows


# The two reads of every world load, compiled once (models/rows.CompiledRead).
_LOCKED_RUN = {family.run: CompiledRead(lambda pk, model=family.run: model.objects.select_for_update().filter(pk=pk))
               for family in FAMILIES}
_PLACEMENT = {family.placement: CompiledRead(lambda namespace, name, model=family.placement: model.objects.filter(
    namespace=namespace, name=name).defer("status").order_by()) for family in FAMILIES}


def _policy_view(row: dict) -> PolicySnapshotView:
    return PolicySnapshotView(row["name"], row["labels"], row["annotations"], row["generation"],
                              tuple(row["status"].get("conditions") or []))


def _binding_view(row: dict) -> BindingView:
    """The state machine's view of a binding, made once per resourceVersion."""
    view = row["cache"].get("view")
    if view is None:
        spec = row["spec"]
        view = row["cache"]["view"] = BindingView(
            name=row["name"],
            cluster=row["target_cluster"],
            state=spec.get("state", ""),
            policy_snapshot=spec.get("schedulingPolicySnapshotName", ""),
            resource_snapshot=spec.get("resourceSnapshotName", ""),
            apply_strategy=spec.get("applyStrategy"),
            cluster_resource_override_snapshots=spec.get("clusterResourceOverrideSnapshots"),
            resource_override_snapshots=spec.get("resourceOverrideSnapshots"),
            generation=row["generation"],
            conditions=tuple(row["status"].get("conditions") or []),
        )
    return view


def _approval_view(a, *, policy_met: bool = True, break_glass: bool = False) -> ApprovalView:
    spec = a.spec or {}
    return ApprovalView(a.name, spec.get("parentStageRollout", ""), spec.get("targetStage", ""), a.generation,
                        tuple((a.status or {}).get("conditions") or []), policy_met, break_glass)


def _break_glass_approved(family: Family, run, approvals: list) -> set[str]:
    """Names of the run's approved requests opened by a confirmed break-glass (one query)."""
    approved = [a.name for a in approvals if a.condition_status("Approved") == "True"]
    if not approved:
        return set()
    return set(m.BreakGlass.objects.filter(request_kind=family.approval_request.KIND, request_namespace=run.namespace,
                                           request_name__in=approved).exclude(confirmed_at=None)
               .values_list("request_name", flat=True))


def _unmet_policies(run, family: Family, approvals: list, member_labels: dict) -> set[str]:
    """Names of the approved-but-not-accepted requests whose gate has an
    approval policy its votes do not meet (Approved=True written by hand, in
    the admin or the database). The gate is the one the run's status names
    the request for, never its labels. Two queries at most, and only while
    such a request waits: the policies in scope of the run, then their votes."""
    waiting = [a for a in approvals if a.condition_status("Approved") == "True"
               and a.condition_status("ApprovalAccepted") != "True"]
    if not waiting:
        return set()
    governed = {name: requirement for name, (_, requirement) in
                policy_scope.requirements(run, waiting, member_labels=member_labels).items() if requirement is not None}
    if not governed:
        return set()
    votes: dict[str, list] = {}
    for vote in m.ApprovalVote.objects.filter(request_kind=family.approval_request.KIND, request_namespace=run.namespace,
                                              request_name__in=list(governed)):
        votes.setdefault(vote.request_name, []).append(vote)
    return {name for name, requirement in governed.items()
            if not policies.quorum_met(votes.get(name, []), run_uid=str(run.uid), quorum=requirement.quorum)}


def _save(run, decision: Decision, world: World) -> bool:
    """Carry the pass's changes to the run (its finalizer, status, active),
    with their events; returns whether it changed. The row is written by
    the pass that ends the advance's work on this world (_one_pass)."""
    changed = False
    if L.RUN_FINALIZER not in (run.finalizers or []):
        run.finalizers = [*(run.finalizers or []), L.RUN_FINALIZER]
        changed = True
    conditions = decision.status.get("conditions") or []
    active = not (find_condition(conditions, "Succeeded") or
                  (find_condition(conditions, "Initialized") or {}).get("status") == "False")
    if decision.status != (run.status or {}) or active != run.active:
        timeline.record_transitions(run, world.status or {}, decision.status, now=world.now)
        metrics.run_status_changed(run=run, before=world.status or {}, after=decision.status, now=world.now)
        run.status, run.active = decision.status, active
        run.finished_at = None if active else (run.finished_at or world.now)
        changes.publish(changes.RunChanged.of(run, changes.Origin.ENGINE))
        changed = True
    return changed
