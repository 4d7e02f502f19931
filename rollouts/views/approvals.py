"""Approval requests: the list, the Approve dialog, the approval itself and rejecting."""

from django.http import Http404
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_POST

from rollouts import broadcast, roles, selectors
from rollouts.api.errors import ApiError
from rollouts.selectors import freezes as freeze_selectors
from rollouts.selectors.common import kind_of
from rollouts.services import policies
from rollouts.services.approvals import approval_request_approve, approval_request_reject

from .helpers import notify_or_redirect, page
from .runs import render_timeline, run_url

COMMENT_LIMIT = 1000


def approvals_count(request) -> dict:
    """Context processor: the nav's "Approvals (n)" and the tab title's
    "(n)", for people who may view the fleet: `approvals_count` (counted only
    if the page shows it: two queries), when it was counted, and
    `approvals_socket`, the socket a page without its own opens to hear the
    count change ("" when pushes cannot reach this server)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.has_perm(roles.VIEW):
        return {}
    return {"approvals_count": SimpleLazyObject(selectors.approvals_waiting_count),
            "approvals_version": broadcast.count_version(),
            "approvals_socket": broadcast.NAV_SOCKET_PATH if broadcast.pushes_reach_browsers() else ""}


@roles.requires(roles.VIEW)
def approval_list(request):
    return page(request, "rollouts/approval_list.html", {"approvals": selectors.approval_list()})


def _request_or_404(name: str, namespace: str):
    request_obj = selectors.approval_get(name=name, namespace=namespace)
    if request_obj is None:
        raise Http404(f"no approval request {name}")
    return request_obj


@roles.requires(roles.VIEW)
def approval_detail(request, name: str, namespace: str = ""):
    """What approving lets through; from the run page (htmx) only the
    dialog's content, otherwise a page of its own."""
    request_obj = _request_or_404(name, namespace)
    review = selectors.approval_review(request_obj)
    context = {"review": review, "in_dialog": bool(getattr(request, "htmx", False)),
               "refusal": review.refusal_for(request.user), **_freeze_context(request_obj, review)}
    return page(request, "rollouts/approval_detail.html", context, partial="review")


def _freeze_context(request_obj, review) -> dict:
    """`frozen`: the freeze holding the gate's run (the dialog then offers
    break-glass instead of Approve); `break_glass`: the one asked, if any."""
    if review.approver is not None or review.is_rejected:
        return {}
    frozen = freeze_selectors.freeze_holding_run(review.run)
    if frozen is None:
        return {}
    found = freeze_selectors.break_glass_of(request_obj)
    return {"frozen": frozen, "break_glass": found if found and not found.confirmed_at else None}


def _approved_text(name: str, approver) -> str:
    at = f"{approver.at:%Y-%m-%d %H:%M:%S} UTC" if approver and approver.at else "an unknown time"
    who = approver.who if approver else "someone"
    return f"{name} was already approved by {who} at {at}; nothing was changed."


@require_POST
@roles.requires(roles.APPROVE)
def approval_approve(request, name: str, namespace: str = ""):
    """Approve as `fleet approve` does, once: a second approval changes
    nothing and says who approved first, and when."""
    request_obj = _request_or_404(name, namespace)
    comment = request.POST.get("comment", "").strip()[:COMMENT_LIMIT]
    try:
        approved, changed = approval_request_approve(
            kind=kind_of(request_obj), name=name, namespace=namespace, actor=request.user.get_username(),
            message=comment, client_address=roles.client_address(request), via="web")
        # A vote below the quorum leaves the gate waiting: amber, not green.
        level = ("success" if approved.condition_status("Approved") == "True" else "warning") if changed else "info"
        text = (_approved_or_voted_text(approved) if changed
                else _approved_text(name, selectors.approval_approver(approved)))
    except ApiError as exc:
        level, text = "error", str(exc)
    return _back_to_run(request, request_obj, namespace, level, text)


def _approved_or_voted_text(request_obj) -> str:
    if request_obj.condition_status("Approved") == "True":
        return f"{request_obj.name} approved."
    standing = policies.progress(policies.gate_of(request_obj))
    return f"Your approval of {request_obj.name} is recorded: {standing.text if standing else ''}."


def _back_to_run(request, request_obj, namespace: str, level: str, text: str):
    """The run's timeline with the notice (htmx), or a redirect to it."""
    run = selectors.run_get(name=(request_obj.spec or {}).get("parentStageRollout", ""), namespace=namespace)
    if run is None:
        return notify_or_redirect(request, level, text, reverse("rollouts:approvals"),
                                  lambda extra: approval_list(request))
    return notify_or_redirect(request, level, text, run_url(run.name, namespace),
                              render_timeline(request, run.name, namespace))


@require_POST
@roles.requires(roles.APPROVE)
def approval_reject(request, name: str, namespace: str = ""):
    """Reject the gate with a required reason: the run stops."""
    request_obj = _request_or_404(name, namespace)
    reason = request.POST.get("reason", "").strip()
    try:
        approval_request_reject(kind=kind_of(request_obj), name=name, namespace=namespace,
                                actor=request.user.get_username(), reason=reason,
                                client_address=roles.client_address(request), via="web")
        level, text = "rejected", f"{name} rejected: the run is stopping. Resume it to wait at this gate again."
    except ApiError as exc:
        level, text = "error", str(exc)
    return _back_to_run(request, request_obj, namespace, level, text)
