"""Approving and rejecting a stage gate: `kubectl fleet approve`, plus
Fleet UI's approval policies (services.policies) and rejections."""

from django.db import transaction

from rollouts import changes, clock, mirror
from rollouts import models as m
from rollouts.api import store
from rollouts.api.errors import BadRequest
from rollouts.api.kinds import Kind
from rollouts.conditions import set_condition
from rollouts.controllers.family import APPROVAL_KINDS
from rollouts.engine.freezes import FreezeInfo
from rollouts.selectors import freezes as freeze_selectors

from . import events, policies, runs
from .policies import PolicyDenied

REASON_LIMIT = 1000


def approval_request_approve(
    *, kind: Kind, name: str, namespace: str, actor: str, message: str = "", client_address: str = "", via: str = ""
) -> tuple:
    """Approve the request. Returns (request, changed).

    Without a policy for its gate: set `Approved=True` on the request's status
    (observedGeneration = its generation); approving an approved request
    changes nothing (no condition, no Event), so a double click or a second
    approver is harmless; rollouts.selectors.approval_approver says who did.

    With a policy: record the person's vote (changed=True) and set
    `Approved=True` only when the votes reach the quorum; a vote the policy
    does not allow raises PolicyDenied and leaves a `denied` Event.

    The audit Event carries the comment (`message`, empty when none was
    given), and `client_address` and `via` ("web", "cli") when given."""
    _require_approval_kind(kind, "approved")
    found = store.get(kind, name, namespace)
    gate = policies.gate_of(found)
    _refuse_while_rejected(found, gate)
    _refuse_if_frozen(found, kind, gate, actor=actor, client_address=client_address, via=via)
    if gate.policy is not None:
        return _approve_under_policy(gate, kind, actor=actor, message=message, client_address=client_address,
                                     via=via)
    if mirror.is_mirrored(found):  # the hub's controller owns it: approve there
        return mirror.approve_on_hub(found, actor=actor, message=message, client_address=client_address, via=via)
    extra = {"comment": message, "client_address": client_address, "via": via}
    return _set_approved(kind, name, namespace, actor=actor, message=message or f"approved by {actor}",
                         details={k: v for k, v in extra.items() if v or k == "comment"})


def _refuse_while_rejected(request, gate) -> None:
    """A gate rejected by someone stopped its run: approving it before the
    run is resumed would undo the rejection behind everyone's back (the web
    dialog offers no Approve then; `fleet approve` and a hand-made POST get
    this refusal)."""
    run = gate.run
    if run is None or not run.active or (run.spec or {}).get("state") != "Stop":
        return
    latest = (m.Event.objects.filter(object_kind=request.KIND, object_namespace=request.namespace,
                                     object_name=request.name,
                                     action__in=[m.Event.Action.APPROVED, m.Event.Action.REJECTED])
              .order_by("-id").values_list("action", "actor").first())
    if latest and latest[0] == m.Event.Action.REJECTED:
        raise BadRequest(f"{request.name} was rejected by {latest[1]} and its run {run.name} is stopped: "
                         f"resume the run first (spec.state Run; it then waits at this gate again), then approve")


class Frozen(BadRequest):
    """An approval refused because a freeze holds the gate's run (409)."""

    code = 409
    reason = "Frozen"

    def __init__(self, name: str, freeze: FreezeInfo):
        self.freeze = freeze
        super().__init__(f"{name} cannot be approved during a freeze. {freeze.sentence()}. A break-glass approval "
                         "needs a reason and a second person: ask for it in the approve dialog or with "
                         "`fleet approve ... --break-glass --reason TEXT`, then a different approver confirms it")


def _refuse_if_frozen(request, kind: Kind, gate, *, actor: str, client_address: str, via: str) -> None:
    """Refuse (and audit as `denied`) an approval while a freeze holds the
    run, unless a second person confirmed a break-glass for this gate."""
    frozen = freeze_selectors.freeze_holding_run(gate.run)
    if frozen is None or freeze_selectors.break_glass_confirmed(request):
        return
    refusal = Frozen(request.name, frozen)
    policies.denial_record(kind_name=kind.kind, name=request.name, namespace=request.namespace, run=gate.run_name,
                           actor=actor, reason=str(refusal), attempted="approve", client_address=client_address,
                           via=via)
    raise refusal


def approval_break_glass(*, kind: Kind, name: str, namespace: str, actor: str, reason: str = "",
                         client_address: str = "", via: str = "") -> tuple:
    """Approve a gate during a freeze, by two people. Returns (request,
    "requested" | "approved").

    1. Refuse when no freeze holds the gate's run (approve normally).
    2. Lock the request row; find its pending break-glass.
    3. None pending: `reason` is required; record the request (BreakGlass
       row, `BreakGlassRequested` Event on the run's timeline). The gate
       stays closed.
    4. Pending, asked by `actor`: refused, a second, different person must
       confirm.
    5. Pending, another person: confirm it (`BreakGlassConfirmed` Event) and
       approve the gate as that person (policies apply as to any approval),
       the message naming both and the reason. In one transaction: a refused
       approval leaves the break-glass pending."""
    _require_approval_kind(kind, "approved")
    request = store.get(kind, name, namespace)
    gate = policies.gate_of(request)
    frozen = freeze_selectors.freeze_holding_run(gate.run)
    if frozen is None:
        raise BadRequest(f"no freeze holds {gate.run_name or name}: approve it the usual way, without break-glass")
    with transaction.atomic():
        store.get(kind, name, namespace, for_update=True)
        pending = m.BreakGlass.objects.filter(request_kind=kind.kind, request_namespace=namespace, request_name=name,
                                              confirmed_at=None).first()
        if pending is None:
            _break_glass_request(request, kind, gate, frozen, actor=actor, reason=reason, client_address=client_address,
                                 via=via)
            return request, "requested"
        if pending.requested_by == actor:
            raise BadRequest(f"break-glass needs a second person: {actor} asked for it already; a different "
                             "approver must confirm it")
        pending.confirmed_by, pending.confirmed_at = actor, clock.now()
        pending.save(update_fields=["confirmed_by", "confirmed_at"])
        details = {"freeze": frozen.name, "requestedBy": pending.requested_by, "confirmedBy": actor,
                   "breakGlassReason": pending.reason, "client_address": client_address, "via": via}
        events.record_object(request, kind, m.Event.Action.CONFIGURED, actor=actor, reason="BreakGlassConfirmed",
                             message=f"break-glass during freeze {frozen.name}, asked by {pending.requested_by}: "
                                     f"{pending.reason}", details={k: v for k, v in details.items() if v})
        text = (f"break-glass approval during freeze {frozen.name} by {pending.requested_by} and {actor}: "
                f"{pending.reason}")
        request, _changed = approval_request_approve(kind=kind, name=name, namespace=namespace, actor=actor,
                                                     message=text, client_address=client_address, via=via)
    return request, "approved"


def _break_glass_request(request, kind: Kind, gate, frozen: FreezeInfo, *, actor: str, reason: str,
                         client_address: str, via: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise BadRequest("reason: a break-glass approval needs a reason (why this gate cannot wait for the freeze "
                         "to end)")
    if len(reason) > REASON_LIMIT:
        raise BadRequest(f"reason: {len(reason)} characters long: at most {REASON_LIMIT}")
    m.BreakGlass.objects.create(request_kind=kind.kind, request_namespace=request.namespace, request_name=request.name,
                                run_name=gate.run_name, freeze_name=frozen.name, requested_by=actor, reason=reason,
                                requested_at=clock.now())
    details = {"freeze": frozen.name, "breakGlassReason": reason, "client_address": client_address, "via": via}
    events.record_object(request, kind, m.Event.Action.CREATED, actor=actor, reason="BreakGlassRequested",
                         message=f"break-glass asked during freeze {frozen.name}: {reason}; a second approver "
                                 "must confirm", details={k: v for k, v in details.items() if v})
    changes.publish(changes.ApprovalRequestChanged.of(request, changes.Origin.PERSON))


def _require_approval_kind(kind: Kind, verb: str) -> None:
    if kind.kind not in APPROVAL_KINDS:
        raise BadRequest(f"{kind.resource} cannot be {verb}: name a clusterapprovalrequest or approvalrequest")


def _is_approved(request) -> bool:
    return (request.condition("Approved") or {}).get("status") == "True"


def _set_approved(kind: Kind, name: str, namespace: str, *, actor: str, message: str, details: dict) -> tuple:
    """Lock the request and set Approved=True once; (request, changed)."""
    with transaction.atomic():
        request = store.get(kind, name, namespace, for_update=True)
        if _is_approved(request):
            return request, False
        _approve_locked(request, kind, actor=actor, message=message, details=details)
    return request, True


def _approve_locked(request, kind: Kind, *, actor: str, message: str, details: dict) -> None:
    """Set Approved=True on a request whose row the caller holds locked. An
    Approved=True already there (written by hand, not backed by the policy's
    votes) gets the approvers' message, and the Event is an approval still."""
    handwritten = _is_approved(request)
    before = dict(request.status or {})
    conditions = list(before.get("conditions") or [])
    set_condition(conditions, type="Approved", status="True", reason=f"{kind.kind}Approved", message=message,
                  observed_generation=request.generation, now=clock.now())
    request.status = {**before, "conditions": conditions}
    store.save(request, spec_changed=False)
    if handwritten:
        events.record_object(request, kind, m.Event.Action.APPROVED, actor=actor, reason=f"{kind.kind}Approved",
                             message=message, details=details)
    else:
        events.record_status_change(request, kind, before, actor=actor, details=details)
    changes.publish(changes.ApprovalRequestChanged.of(request, changes.Origin.PERSON))


def _approve_under_policy(gate, kind: Kind, *, actor: str, message: str, client_address: str, via: str) -> tuple:
    """One person's vote on a gate with a policy.

    1. Lock the request row: votes on one gate are counted one at a time, so
       two approvers clicking at once make one transition.
    2. A request approved under the policy: nothing to do (changed=False).
       Approved=True that the votes do not back (written by hand) does not
       count: voting goes on, and the quorum rewrites the condition.
    3. Refuse what the policy does not allow (group, four-eyes, a second vote
       of the same person); the refusal is recorded after the rollback.
    4. Append the vote, bound to the run's current uid, epoch and snapshot.
    5. Below quorum: record the vote as an `approved` Event and stop there.
       At quorum: set Approved=True (here, or on the hub for a mirrored
       request) naming every approver."""
    name, namespace = gate.request.name, gate.request.namespace
    try:
        with transaction.atomic():
            request = store.get(kind, name, namespace, for_update=True)
            gate.request = request
            votes = policies.votes_of(request)
            if _is_approved(request) and policies.quorum_met(votes, run_uid=str(gate.run.uid),
                                                             quorum=gate.policy.quorum):
                return request, False  # Approved=True without the votes (by hand) is no approval: vote on
            binding = policies.binding_of(gate.run)
            approvers = policies.counted(votes, binding)
            mirrored = mirror.is_mirrored(request)
            if not (mirrored and len(approvers) >= gate.policy.quorum):  # else: forward a quorum the hub missed
                reason = policies.refusal(gate, actor=actor, starter=policies.run_starter(gate.run),
                                          approvers=approvers)
                if reason:
                    raise PolicyDenied(f"{actor} may not approve {gate.stage}: {reason} ({policies.describe(gate)})",
                                       run=gate.run_name)
                vote = policies.vote_append(gate, actor=actor, binding=binding, comment=message,
                                            client_address=client_address, via=via)
                approvers.append(actor)
            details = {"comment": message, "client_address": client_address, "via": via,
                       "approvers": approvers, "quorum": gate.policy.quorum, "policy": gate.policy.summary}
            details = {k: v for k, v in details.items() if v or k == "comment"}
            if len(approvers) < gate.policy.quorum:
                _record_vote(request, kind, gate, actor=actor, vote=vote, count=len(approvers), details=details)
                return request, True
            text = f"approved by {', '.join(approvers)} under approval policy {gate.policy.summary}"
            text += f": {message}" if message else ""
            if not mirrored:  # the count and the transition under the same lock
                _approve_locked(request, kind, actor=actor, message=text, details=details)
    except PolicyDenied as exc:
        policies.denial_record(kind_name=kind.kind, name=name, namespace=namespace, run=gate.run_name, actor=actor,
                               reason=str(exc), attempted="approve", client_address=client_address, via=via,
                               policy=gate.policy.summary)
        raise
    if mirrored:  # the hub's controller owns the request: set Approved there, outside our lock
        return mirror.approve_on_hub(request, actor=actor, message=text, client_address=client_address, via=via)
    return request, True


def _record_vote(request, kind: Kind, gate, *, actor: str, vote, count: int, details: dict) -> None:
    """A vote below quorum: an `approved` Event that changes no condition."""
    events.record_object(request, kind, m.Event.Action.APPROVED, actor=actor, reason="ApprovalVoteRecorded",
                         message=f"{count} of {gate.policy.quorum} approvals", details={**details, "vote": vote.pk})
    changes.publish(changes.ApprovalRequestChanged.of(request, changes.Origin.PERSON))


def approval_request_reject(
    *, kind: Kind, name: str, namespace: str, actor: str, reason: str, client_address: str = "", via: str = ""
):
    """Reject a gate: record a `rejected` Event on the run's timeline and stop
    the run (spec.state Stop), in one transaction; a mirrored run is stopped
    on its hub first. `reason` is required. Returns the run.

    The request itself is not changed: once resumed, the run waits at the
    same gate again, and the partial approvals before it no longer count."""
    _require_approval_kind(kind, "rejected")
    reason = (reason or "").strip()
    if not reason:
        raise BadRequest(f"rejecting {name} needs a reason: say why the run must stop (--reason)")
    if len(reason) > REASON_LIMIT:
        raise BadRequest(f"the reason is {len(reason)} characters long: at most {REASON_LIMIT}")
    request = store.get(kind, name, namespace)
    gate = policies.gate_of(request)
    if _is_approved(request):
        raise BadRequest(f"{name} is already approved and cannot be rejected: stop the run instead")
    if gate.run is None or not gate.run.active:
        raise BadRequest(f"{name} cannot be rejected: its run {gate.run_name} has finished or is gone")
    details = {"stage": gate.stage, "gate": gate.gate, "client_address": client_address, "via": via}
    details = {k: v for k, v in details.items() if v}
    if mirror.is_mirrored(gate.run):
        run = runs.run_stop(name=gate.run_name, namespace=namespace, actor=actor)  # on the hub: no rollback
        _record_rejection(request, kind, gate, actor=actor, reason=reason, details=details)
        return run
    with transaction.atomic():
        _record_rejection(request, kind, gate, actor=actor, reason=reason, details=details)
        return runs.run_stop(name=gate.run_name, namespace=namespace, actor=actor)


def _record_rejection(request, kind: Kind, gate, *, actor: str, reason: str, details: dict) -> None:
    events.record_object(request, kind, m.Event.Action.REJECTED, actor=actor, reason="ApprovalRejected",
                         message=reason, details=details)
    changes.publish(changes.ApprovalRequestChanged.of(request, changes.Origin.PERSON))
