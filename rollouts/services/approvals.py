"""Approving a stage gate, as `kubectl fleet approve` does it."""

from django.db import transaction

from rollouts import broadcast, clock, mirror
from rollouts.api import store
from rollouts.api.errors import BadRequest
from rollouts.api.kinds import Kind
from rollouts.conditions import set_condition

from . import events


def approval_request_approve(
    *, kind: Kind, name: str, namespace: str, actor: str, message: str = "", client_address: str = "", via: str = ""
) -> tuple:
    """Set `Approved=True` on the request's status (observedGeneration = its
    generation). Returns (request, changed): approving an approved request
    changes nothing (no condition, no Event), so a double click or a second
    approver is harmless; rollouts.selectors.approval_approver says who did.

    The audit Event carries the comment (`message`, empty when none was
    given), and `client_address` and `via` ("web", "cli") when given."""
    if kind.kind not in ("ClusterApprovalRequest", "ApprovalRequest"):
        raise BadRequest(f"{kind.resource} cannot be approved: name a clusterapprovalrequest or approvalrequest")
    mirrored = store.get(kind, name, namespace)
    if mirror.is_mirrored(mirrored):  # the hub's controller owns it: approve there
        return mirror.approve_on_hub(mirrored, actor=actor, message=message, client_address=client_address,
                                     via=via)
    with transaction.atomic():
        request = store.get(kind, name, namespace, for_update=True)
        current = request.condition("Approved")
        if current and current.get("status") == "True":
            return request, False
        before = dict(request.status or {})
        status = dict(request.status or {})
        conditions = list(status.get("conditions") or [])
        set_condition(
            conditions,
            type="Approved",
            status="True",
            reason=f"{kind.kind}Approved",
            message=message or f"approved by {actor}",
            observed_generation=request.generation,
            now=clock.now(),
        )
        status["conditions"] = conditions
        request.status = status
        store.save(request, spec_changed=False)
        event = events.record_status_change(request, kind, before, actor=actor)
        extra = {"comment": message, "client_address": client_address, "via": via}
        event.details = {**event.details, **{k: v for k, v in extra.items() if v or k == "comment"}}
        event.save(update_fields=["details"])
        broadcast.approval_request_changed(request)  # pushed to the run's viewers after commit
    from rollouts.engine import wakeup

    wakeup.approval_request_changed(request)
    return request, True
